/* sidecar/cgroup.h - the cgroup of a watched process: where it is, and its
 * limits, usage, throttling, memory events and pressure.
 *
 * Owns nothing. I/O: reads /proc/PID/cgroup and cgroupfs; parsing is in
 * procparse.c. Handles cgroup v2, v1 and hybrid hosts, and a target in its
 * own cgroup namespace (a container): when its path is outside our view
 * ("/.."), its files are read through /proc/PID/root/sys/fs/cgroup (v1:
 * /sys/fs/cgroup/memory and /sys/fs/cgroup/cpu,cpuacct), which is the
 * container's own cgroup. */
#ifndef STAKEOUT_CGROUP_H
#define STAKEOUT_CGROUP_H

#include "procparse.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct cgroup_loc {
    bool v2;                       /* memory and cpu files are v2 names */
    char mem_dir[PATH_MAX];        /* "" when no memory controller is visible */
    char cpu_dir[PATH_MAX];        /* "" when no cpu controller is visible */
    char path[512];                /* cgroup path as /proc/PID/cgroup names it */
    char container_id[65];         /* "" when the path names none */
};

struct cgroup_sample {
    bool have_mem;
    uint64_t mem_usage;            /* bytes */
    uint64_t mem_limit;            /* bytes, UINT64_MAX: no limit */
    double cpu_quota;              /* CPUs, 0: no quota */
    struct cg_cpu_stat cpu;
    struct cg_mem_events events;
    double psi_cpu, psi_memory;    /* percent, NaN when not available */
};

/* Find the cgroup directories of pid. Returns 0, or a negative errno when
 * /proc/PID/cgroup cannot be read (the process is gone, or no permission). */
int cgroup_locate(int pid, struct cgroup_loc *out) __attribute__((warn_unused_result));

/* Read the current values. Missing files leave their fields unset (NaN,
 * have_* false); only a cgroup that vanished returns -ENOENT. */
int cgroup_read(const struct cgroup_loc *loc, struct cgroup_sample *out)
    __attribute__((warn_unused_result));

/* Refresh only what changes from one poll to the next: memory usage, cpu.stat
 * and pressure. Limits, quota and memory.events keep the values of the last
 * cgroup_read. */
int cgroup_read_fast(const struct cgroup_loc *loc, struct cgroup_sample *inout)
    __attribute__((warn_unused_result));

/* Number of online CPUs (the cpu_limit denominator without a quota). */
unsigned cgroup_online_cpus(void);

#endif
