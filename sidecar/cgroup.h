/* sidecar/cgroup.h - the cgroup of a watched process: where it is, and its
 * limits, usage, throttling, memory events and pressure.
 *
 * Owns: the directory descriptors of a struct cgroup_loc (cgroup_loc_fini
 * closes them). I/O: reads /proc/PID/cgroup and cgroupfs; parsing is in
 * procparse.c. Handles cgroup v2, v1 and hybrid hosts, and a target in its
 * own cgroup namespace (a container): when its path is outside our view
 * ("/.."), its cgroup is the container's own, /sys/fs/cgroup (v1:
 * /sys/fs/cgroup/memory and /sys/fs/cgroup/cpu,cpuacct) as the target sees
 * it, opened through its root with rootfs_open_dir and its files read with
 * rootfs_open_beneath: the target decides what its filesystem holds there,
 * so a directory that is not a cgroupfs one is refused.
 *
 * The directories are opened once, by cgroup_locate, while the process
 * lives, and read through their descriptors: /proc/PID/root goes with the
 * process, the descriptor does not. It works until the cgroup is removed,
 * so memory.events read after a death says whether the OOM killer caused
 * it. */
#ifndef STAKEOUT_CGROUP_H
#define STAKEOUT_CGROUP_H

#include "procparse.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One controller's directory. */
struct cgroup_dir {
    int fd;                        /* O_PATH | O_DIRECTORY; -1: not visible */
    bool in_root;                  /* opened through the target's root: read confined */
    dev_t dev;                     /* with ino, which cgroup it is, whatever the way to it */
    ino_t ino;
};

/* Where a process's cgroup is. Owns the descriptors: a copy moves them
 * (finish only one of the two). */
struct cgroup_loc {
    bool v2;                       /* memory and cpu files are v2 names */
    struct cgroup_dir mem;         /* memory controller */
    struct cgroup_dir cpu;         /* cpu controller; on v2 the same descriptor as mem */
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

/* Find and open the cgroup directories of pid (one descriptor on v2, two
 * on v1). A controller that is not visible has fd -1. Returns 0, or a
 * negative errno when /proc/PID/cgroup cannot be read (the process is
 * gone, or no permission) or a directory that is there cannot be opened
 * (-EMFILE: out of descriptors); nothing stays open then. */
int cgroup_locate(int pid, struct cgroup_loc *out) __attribute__((warn_unused_result));

/* Close the directories of a loc cgroup_locate filled; it holds none
 * afterwards. */
void cgroup_loc_fini(struct cgroup_loc *loc);

/* Whether a and b are the same cgroups (the same directories, by device and
 * inode, whatever the paths that led to them). */
bool cgroup_same(const struct cgroup_loc *a, const struct cgroup_loc *b);

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
