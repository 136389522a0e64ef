/* sidecar/stackwalk.h - the call stack of one stopped thread of another
 * process: libunwind's DWARF unwinder first, a frame-pointer walk where a
 * frame has no unwind information (Go, JIT code, code built without tables).
 *
 * Owns: one libunwind address space per target (created once, with
 * UNW_CACHE_GLOBAL), a copy of the target's memory map, the unwind table of
 * each object it maps (keyed by build-id, else device and inode), a cache of
 * the pages of its read-only file-backed memory, and one stock _UPT context
 * per thread for the accessors it delegates to. Borrows nothing.
 *
 * I/O: /proc/PID/maps (once, then again only when an address falls outside
 * every known mapping), process_vm_readv for memory in bulk, PTRACE_GETREGS
 * once per stack. The libunwind-ptrace accessors re-read the maps and the
 * ELF files on every unwind; these read ELF headers and .eh_frame_hdr from
 * the target's own memory instead, so a target in another mount namespace,
 * or whose binary was deleted, unwinds the same, and no file is opened.
 *
 * Two steps per stack, so the thread is stopped for as short a time as
 * possible: stackwalk_snapshot, while the caller holds the thread in a
 * ptrace-stop, copies its registers (PTRACE_GETREGS) and the live part of
 * its stack (one process_vm_readv); stackwalk_unwind, once the caller has
 * resumed it, runs libunwind over that copy (and over the cached read-only
 * pages). libunwind's own cost - its cache locks alone make two
 * sigprocmask calls per frame - is paid by stakeout, not by the target.
 * Memory an unwind needs beyond the copy (a stack deeper than the copy
 * limit) is read live: the outer frames of a running thread rarely change.
 * This module never stops, resumes or names anything. Single-threaded: one
 * snapshot at a time per struct stackwalk. */
#ifndef STAKEOUT_STACKWALK_H
#define STAKEOUT_STACKWALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

struct stackwalk;
struct stackwalk_thread;

struct stackwalk_stats {
    uint64_t stacks;           /* unwinds */
    uint64_t dwarf_frames;     /* frames found by DWARF unwind information */
    uint64_t fp_frames;        /* frames found by walking frame pointers */
    uint64_t mem_syscalls;     /* process_vm_readv (or PTRACE_PEEKDATA) calls */
    uint64_t stack_bytes;      /* copied by snapshots */
    uint64_t page_hits;        /* reads served from the read-only page cache */
    uint64_t maps_reads;       /* times /proc/PID/maps was read */
    uint32_t objects;          /* objects with an unwind table */
};

/* Prepare to unwind the threads of process pid: reads its maps. Returns 0,
 * or a negative errno with a message in err (-ESRCH: gone; -EACCES/-EPERM:
 * no access to its maps). */
int stackwalk_new(int pid, struct stackwalk **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void stackwalk_free(struct stackwalk *sw);

/* Per-thread state (the _UPT context of tid). Freed by stackwalk_thread_free,
 * before the stackwalk it belongs to. */
struct stackwalk_thread *stackwalk_thread_new(struct stackwalk *sw, int tid);
void stackwalk_thread_free(struct stackwalk_thread *t);

/* Copy the registers and live stack of t, which must be in a ptrace-stop.
 * Returns 0, or a negative errno when its registers cannot be read (it is
 * not stopped, or gone). Replaces the previous snapshot of any thread. */
int stackwalk_snapshot(struct stackwalk *sw, struct stackwalk_thread *t)
    __attribute__((warn_unused_result));

/* A snapshot of t from registers and a copy of its stack taken by someone
 * else (a perf sample: PERF_SAMPLE_REGS_USER and PERF_SAMPLE_STACK_USER),
 * stack[0] being the byte at regs->rsp. t need not be stopped, nor traced:
 * nothing is read from it here. Replaces the previous snapshot. */
void stackwalk_snapshot_from(struct stackwalk *sw, struct stackwalk_thread *t,
                             const struct user_regs_struct *regs, const void *stack, size_t len);

/* Unwind the last snapshot, taken of t; t may be running again. Writes at
 * most max addresses into ips, leaf first, raw: the leaf's instruction
 * pointer and each caller's return address as the stack holds it
 * (symbols_resolve looks return addresses up at addr - 1). Returns the
 * number written: 0 without a snapshot of t. */
uint32_t stackwalk_unwind(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t *ips,
                          uint32_t max);

void stackwalk_get_stats(const struct stackwalk *sw, struct stackwalk_stats *out);

/* A pure helper, exposed for the unit tests. */

/* Size in bytes of a DWARF pointer encoding (DW_EH_PE_*), 0 when unsupported. */
unsigned stackwalk_eh_enc_size(uint8_t enc);

#endif
