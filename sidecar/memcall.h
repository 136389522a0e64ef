/* sidecar/memcall.h - one address-space system call of the target, as a
 * memory capture sees it, and what it does to the ledger and the profile.
 *
 * Owns nothing; borrows the ledger and the profile it updates. Pure: the
 * capture's methods (tracepoints, ptrace) turn what they see into a struct
 * memcall, and memcall_apply gives every method the same meaning of the
 * calls: which grow memory (a sample of the call's stack, weighing the
 * bytes) and which give it back (credited in the ledger). Arguments come
 * from the watched process: any value is possible, and none is trusted
 * beyond being a number.
 *
 * madvise(MADV_DONTNEED) and the like are not calls here: an allocator
 * that drops pages that way (glibc's thread arenas, jemalloc) touches them
 * again later without any call, so crediting the drop would hide growth
 * that no call shows; the pages stay charged to whoever grew the range. */
#ifndef STAKEOUT_MEMCALL_H
#define STAKEOUT_MEMCALL_H

#include "memledger.h"
#include "profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

enum memcall_nr {
    MEMCALL_MMAP,     /* a: addr, len, prot, flags, fd; ret: the address */
    MEMCALL_MUNMAP,   /* a: addr, len */
    MEMCALL_BRK,      /* a: brk; ret: the break after it */
    MEMCALL_MREMAP,   /* a: old_addr, old_len, new_len, flags, new_addr; ret: the address */
    MEMCALL_MPROTECT, /* a: start, len, prot */
    MEMCALL_COUNT
};

struct memcall {
    enum memcall_nr nr;
    int tid;
    int64_t t_ns;                  /* monotonic */
    uint64_t a[5];
    uint64_t ret;                  /* the result, as the kernel returned it */
    bool have_ret;                 /* false: the method saw only the entry (assume success) */
};

#define MEMCALL_STACK_BYTES 8192u /* user stack copied per growing call, as perf's default */

/* What a method saw of a call, in the order of the calls: its entry (with
 * the caller's registers and a copy of the top of its stack when it can
 * grow memory), and for mmap and mremap its exit (the address). An entry
 * whose exit is to come is followed by it in the same thread's order. */
struct memcall_event {
    enum { MEMCALL_ENTER, MEMCALL_EXIT } kind;
    bool exit_follows;             /* ENTER: an EXIT of this call is to come */
    struct memcall call;           /* ENTER: nr, tid, time, args; EXIT: nr, tid, time, ret */
    const struct user_regs_struct *regs; /* ENTER of a growing call, else NULL */
    const void *stack;             /* its user stack from regs->rsp up (borrowed) */
    size_t stack_len;
};

/* The call numbers of this architecture's system calls, for the methods
 * that see raw numbers (ptrace); -1 when nr is not one of them. */
int memcall_from_syscall(long sysno);

/* Whether the stack of nr's caller is wanted: only calls that can grow
 * memory are charged to a stack. */
bool memcall_grows(enum memcall_nr nr);

/* Apply c: growth is charged in the ledger and added to p as a sample of
 * ips (leaf first, n frames) weighing the bytes grown; what is given back
 * is credited. A call that failed (ret an error) changes nothing. Returns
 * the bytes charged. */
uint64_t memcall_apply(struct memledger *l, struct profile *p, const struct memcall *c,
                       const uint64_t *ips, uint32_t n);

/* After the last call: set every sample's bytes still held (inuse) from the
 * ledger. */
void memcall_finish(const struct memledger *l, struct profile *p);

const char *memcall_name(enum memcall_nr nr);

#endif
