/* sidecar/procparse.h - parsers for the text files of /proc and cgroupfs.
 *
 * Owns nothing (outputs are caller structs; strings are copied into fixed
 * buffers). Pure: every function parses a buffer the caller has read, so
 * each is unit-tested on recorded text. Reading is in cgroup.c and
 * collector.c (maps: stackwalk.c, symbols.c). All parsers are bounds-checked
 * and never read past n; a missing field leaves its "have" flag false rather
 * than failing.
 *
 * buf need not be NUL-terminated. A short read can cut a file anywhere, so in
 * files of several lines the text after the last '\n' is ignored (it may end
 * in half a number or half a path); single-value files (cpu.max, u64 files)
 * are taken with or without their '\n'. Functions returning int return 0 or
 * a negative errno; outputs are written only on success. */
#ifndef STAKEOUT_PROCPARSE_H
#define STAKEOUT_PROCPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Number scanners, for the maps parser here, perfmap.c and the NSpid line in
 * symbols.c: the hex (no "0x") or decimal digits at *s, before end. True
 * with the value in *out and *s moved past the digits; false, with neither
 * written, when there is no digit or the value does not fit 64 bits (the
 * decimal one refuses anything above UINT64_MAX - 6). */
bool procparse_hex(const char **s, const char *end, uint64_t *out)
    __attribute__((warn_unused_result));
bool procparse_dec(const char **s, const char *end, uint64_t *out)
    __attribute__((warn_unused_result));

/* /proc/PID/status: the fields libproc2's stat items do not give us. Sizes in
 * bytes (the file says kB). Fields absent from the text stay 0 (kernel
 * threads have no Vm lines); -EINVAL when none of them is there. */
struct proc_status {
    bool have_rss;
    uint64_t rss, rss_anon, rss_file, rss_shmem, swap, vm_size;
    uint64_t voluntary_ctxt, nonvoluntary_ctxt;
    unsigned threads;
    unsigned uid;          /* real uid */
    int tracer_pid;        /* TracerPid: non-zero when a debugger is attached */
    char state;            /* first letter of State, '?' when absent */
};

int procparse_status(const char *buf, size_t n, struct proc_status *out)
    __attribute__((warn_unused_result));

/* /proc/PID/stat and /proc/PID/task/TID/stat. comm may contain spaces and
 * parentheses: it is everything between the first '(' and the last ')'
 * (cut to 63 bytes). -EINVAL unless "pid (comm)" and the fields through
 * starttime (22) are there; fields after the last one present stay 0. */
struct proc_stat {
    int pid;
    char comm[64];
    char state;
    int ppid;
    uint64_t minflt, majflt;
    uint64_t utime, stime;     /* clock ticks */
    long num_threads;
    uint64_t starttime;        /* clock ticks after boot */
    int processor;             /* CPU last run on */
};

int procparse_stat(const char *buf, size_t n, struct proc_stat *out)
    __attribute__((warn_unused_result));

/* /proc/PID/cgroup: the v2 path ("0::/path") and, for v1, the memory and
 * cpu controller paths. Paths are NUL-terminated; empty when absent.
 * -EINVAL when no line has the form "ID:controllers:path", -ENAMETOOLONG
 * when a path we keep does not fit (never cut: a cut path is wrong). */
struct proc_cgroup {
    char v2[512];
    char v1_memory[512];
    char v1_cpu[512];          /* the hierarchy holding "cpu" (may be "cpu,cpuacct") */
    char v1_cpu_mount[64];     /* its controller list as in the file: "cpu,cpuacct" */
};

int procparse_cgroup(const char *buf, size_t n, struct proc_cgroup *out)
    __attribute__((warn_unused_result));

/* Whether a path of /proc/PID/cgroup lies outside the reader's cgroup
 * namespace: the kernel writes it relative to the reader's root, climbing
 * with ".." components ("/../app"), when the process is in no cgroup below
 * that root (a process of another container). A cgroup may be named
 * "..foo": only a whole ".." component counts. */
bool procparse_cgroup_outside(const char *path);

/* One line of /proc/PID/maps, "START-END PERMS OFFSET MAJ:MIN INODE [PATH]",
 * with or without its '\n' (the caller splits the file into lines). path
 * points into line (not NUL-terminated: path_len bytes, 0 for anonymous
 * memory), without the " (deleted)" the kernel appends to unlinked files.
 * -EINVAL when a field is missing or malformed, a device number does not fit
 * 32 bits, or start >= end. */
struct proc_map {
    uint64_t start, end, offset;
    uint64_t dev;              /* MAJ << 32 | MIN */
    uint64_t inode;
    char perms[5];             /* "r-xp" */
    const char *path;          /* borrowed from line */
    size_t path_len;
    bool deleted;              /* the path had " (deleted)" after it */
};

int procparse_maps_line(const char *line, size_t n, struct proc_map *out)
    __attribute__((warn_unused_result));

/* A container id in a cgroup path: the last 64-hex-digit run (docker,
 * containerd, cri-o: ".../docker-<id>.scope", ".../cri-containerd-<id>.scope",
 * "/kubepods/.../<id>"). Writes "" when there is none. */
void procparse_container_id(const char *path, char *out, size_t len);

/* A Kubernetes pod's uid in a cgroup path: the last "pod<uid>" component,
 * as the systemd driver (".../kubepods-burstable-pod<uid, '_' for
 * '-'>.slice/...") and cgroupfs ("/kubepods/burstable/pod<uid>/...") name
 * it; a static pod's uid is 32 hex digits. Written with '-', as the
 * kubelet names /var/log/pods/<namespace>_<pod>_<uid>; "" when there is
 * none (or out is too small). */
void procparse_pod_uid(const char *path, char *out, size_t len);

/* cgroup v2 cpu.max ("max 100000" or "200000 100000"): quota in CPUs
 * (2.0), or 0 when unlimited; -EINVAL otherwise. v1: cfs_quota_us and
 * cfs_period_us, where a quota of -1 (or any value <= 0) means unlimited: 0. */
int procparse_cpu_max(const char *buf, size_t n, double *cpus) __attribute__((warn_unused_result));
double procparse_cfs_quota(long long quota_us, long long period_us);

/* cpu.stat: nr_periods, nr_throttled (both v1 and v2 name them so). have is
 * false when neither is there (v2 without the cpu controller); -EINVAL
 * when one of them is not a number. */
struct cg_cpu_stat {
    uint64_t nr_periods, nr_throttled;
    bool have;
};
int procparse_cpu_stat(const char *buf, size_t n, struct cg_cpu_stat *out)
    __attribute__((warn_unused_result));

/* memory.events: high, max, oom, oom_kill (v2). v1 memory.oom_control gives
 * oom_kill only. have is false when none of them is there; -EINVAL when one
 * of them is not a number. */
struct cg_mem_events {
    uint64_t high, max, oom, oom_kill;
    bool have;
};
int procparse_memory_events(const char *buf, size_t n, struct cg_mem_events *out)
    __attribute__((warn_unused_result));

/* A single number file (memory.current, memory.max, limit_in_bytes ...).
 * "max" is UINT64_MAX. v1's "no limit" (a huge page-aligned number) is
 * reported as UINT64_MAX too, as is anything from 2^62 up. -EINVAL when the
 * text is not one unsigned number. */
int procparse_u64_file(const char *buf, size_t n, uint64_t *out)
    __attribute__((warn_unused_result));

/* cpu.pressure / memory.pressure: the "some avg10" percentage. -EINVAL when
 * there is no "some" line with an avg10. */
int procparse_psi_some_avg10(const char *buf, size_t n, double *out)
    __attribute__((warn_unused_result));

/* The NT_GNU_BUILD_ID note of an ELF file whose first n bytes (at least the
 * program or section headers and notes) are in buf. Writes lowercase hex
 * into out. Returns 0, -ENOENT when there is no build-id in buf, -EINVAL when
 * buf is not an ELF file we understand (ELF32/64, either byte order) or is
 * cut before the headers, -ERANGE when out cannot hold the hex and its NUL
 * (41 bytes for the usual SHA-1 id). */
int procparse_elf_build_id(const unsigned char *buf, size_t n, char *out, size_t len)
    __attribute__((warn_unused_result));

#endif
