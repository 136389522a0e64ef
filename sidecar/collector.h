/* sidecar/collector.h - measure every watched process at each poll.
 *
 * Owns: the watched-process instances (one per process a target matches),
 * their histories and metadata, the libproc2 handle, the events of the
 * last poll, and the directory descriptors of the cgroups of live
 * instances: opened when the process is found (cgroup.h: they still read
 * after its death, when its /proc/PID/root is gone), shared by the
 * processes of one cgroup, closed once the last of them has died. At most
 * one descriptor per distinct cgroup on v2 and two (memory, cpu) on v1, so
 * never more than two per live instance. Borrows: the config. I/O: /proc
 * through libproc2 (stat items: CPU ticks, faults, threads, state, start
 * time, comm) and plain reads where libproc2 has no item or would read the
 * same file twice (/proc/PID/status for the RSS split, swap, size and
 * context switches; the fd count from stat(2) of /proc/PID/fd; cgroupfs for
 * limits, throttling, events and pressure).
 *
 * Idle polling is cheap by design: discovery lists /proc only every few
 * polls once every target is found; per-thread CPU is read only for
 * instances whose threads are tracked (a rule pending, a status request);
 * cgroup files are read once per cgroup per poll, and only when a rule reads
 * a cgroup metric (otherwise every few polls, for context); the same holds
 * for the fd count and the details of /proc/PID/status.
 *
 * A process counts as exited only when its /proc entry is gone. A read that
 * fails otherwise (out of descriptors, no permission) is a missing sample
 * and a COLL_PROBLEM, never an exit or a restart (see discover.h too). */
#ifndef STAKEOUT_COLLECTOR_H
#define STAKEOUT_COLLECTOR_H

#include "cgroup.h"
#include "config.h"
#include "history.h"
#include "procmeta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COLLECTOR_HOT_THREADS 5
#define COLLECTOR_GROWTH_WINDOW_NS (120LL * 1000000000LL)
#define COLLECTOR_DISCOVER_EVERY_NS (5LL * 1000000000LL)
#define COLLECTOR_SELECT_BATCH 128

struct hot_thread {
    int tid;
    char name[32];
    double cpu;                  /* percent of one core over the last interval */
};

/* What a poll saw beyond the rule metrics. */
struct inst_detail {
    uint64_t rss_anon, rss_file, rss_shmem, swap, vm_size;  /* bytes */
    double voluntary_ctxt_per_s, involuntary_ctxt_per_s;
    double minflt_per_s, majflt_per_s;
    bool have_cg_mem;
    uint64_t cg_usage, cg_limit;  /* cg_limit UINT64_MAX: none */
    double cpu_quota;             /* CPUs, 0: none */
    struct cg_mem_events events;  /* counters as last read */
    char state;
    int tracer_pid;
};

struct instance {
    size_t target;               /* index into config targets */
    int pid;
    bool alive;
    struct proc_meta meta;
    struct history hist;
    struct inst_detail detail;
    unsigned restarts;
    int slot;                    /* for the caller (engine slot), -1 initially */
    bool track_threads;          /* read per-thread CPU at each poll */
    struct hot_thread hot[COLLECTOR_HOT_THREADS];
    size_t nhot;
    struct inst_private *priv;   /* owned, collector.c's delta state */
};

enum coll_event_kind {
    COLL_APPEARED,      /* a target's process was found (first time for this instance) */
    COLL_EXITED,        /* it went away; no successor yet */
    COLL_RESTARTED,     /* a successor was found (new pid, or exec of a new binary) */
    COLL_MEMORY_EVENT,  /* a memory.events counter went up */
    COLL_PROBLEM,       /* something could not be read (permission, ...) */
};

struct coll_event {
    enum coll_event_kind kind;
    struct instance *inst;       /* NULL for a PROBLEM not tied to one process */
    int old_pid, new_pid;
    const char *reason;          /* "exited", "oom-killed", "exec", "pid reused" */
    struct proc_meta old_meta;   /* RESTARTED / EXITED: the process that ended */
    struct sample *window;       /* RESTARTED / EXITED: history before the end, oldest first */
    size_t nwindow;
    int64_t died_ns;
    struct cg_mem_events events; /* counters at the end (RESTARTED / EXITED / MEMORY_EVENT) */
    char what[256];              /* MEMORY_EVENT: "oom_kill +1"; PROBLEM: the message */
};

struct collector;

struct collector *collector_new(const struct config *cfg);
void collector_free(struct collector *c);

/* Poll every target at monotonic time now_ns. Returns the number of events;
 * *events points into the collector until the next poll. */
size_t collector_poll(struct collector *c, int64_t now_ns, const struct coll_event **events);

/* Errors per minute of a target's logs, measured by the caller; NaN when the
 * target has no logs. Used for the next poll's samples. */
void collector_set_errors(struct collector *c, size_t target, double per_min);

/* Instances, alive or waiting for a successor. */
size_t collector_count(const struct collector *c);
struct instance *collector_at(struct collector *c, size_t i);

/* A reloaded config with the same targets (same names, matches and logs, in
 * the same order): the collector borrows it from now on. */
void collector_set_config(struct collector *c, const struct config *cfg);

/* The rules in force: metrics they read are measured at every poll; the
 * others (fds, cgroup values) every few polls, carried in between. Called by
 * collector_new with the config's rules, and again on reload. */
void collector_set_rules(struct collector *c, const struct rule_spec *rules, size_t n);

/* How often discovery lists /proc once every target is found (default
 * COLLECTOR_DISCOVER_EVERY_NS, at least one poll interval). */
void collector_discover_every(struct collector *c, int64_t ns);

/* Track per-thread CPU of instances found from now on (status does). */
void collector_track_threads(struct collector *c, bool on);

/* Number of polls done. */
unsigned long collector_polls(const struct collector *c);

#endif
