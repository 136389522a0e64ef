/* sidecar/procmeta.h - what a process is: read once per process life.
 *
 * Owns: the strings in struct proc_meta (procmeta_fini). I/O: /proc/PID/stat,
 * status, cmdline, exe and the executable's ELF build-id, read through
 * /proc/PID/exe so a process in another mount namespace (a container) is
 * described from its own files, never from ours. Environment variables of
 * the target are never read. */
#ifndef STAKEOUT_PROCMETA_H
#define STAKEOUT_PROCMETA_H

#include <stdbool.h>
#include <stdint.h>

struct proc_meta {
    int pid, ppid;
    unsigned uid;
    char comm[64];
    char *cmdline;            /* owned; arguments joined by spaces; "" for kernel threads */
    char *exe;                /* owned; path of the executable, or "" without permission */
    char build_id[129];       /* hex; "" when unknown */
    uint64_t start_ticks;     /* /proc/PID/stat starttime */
    int64_t start_wall_ns;    /* start time as Unix time */
    char cgroup[512];         /* cgroup path */
    char container_id[65];
    int exe_errno;            /* why exe / build-id are missing (0 when present) */
};

/* Fill meta for pid. Returns 0, or a negative errno when the process is
 * gone; partial permission problems leave fields empty and set exe_errno. */
int procmeta_read(int pid, struct proc_meta *meta) __attribute__((warn_unused_result));

void procmeta_fini(struct proc_meta *meta);

/* Copy (strings duplicated). */
void procmeta_copy(struct proc_meta *dst, const struct proc_meta *src);

/* Start time of pid in clock ticks after boot, or 0 when it is gone: cheap
 * check for pid reuse. */
uint64_t procmeta_start_ticks(int pid);

/* Boot time as Unix nanoseconds (from /proc/stat btime). */
int64_t procmeta_boot_wall_ns(void);

#endif
