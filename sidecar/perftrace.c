/* sidecar/perftrace.c - syscall tracepoints on the target's threads; see
 * perftrace.h.
 *
 * Every event of a thread has the same sample_type (IDENTIFIER, TID, TIME,
 * RAW, REGS_USER, STACK_USER), so every record decodes the same way; the
 * events that need no stack ask for a copy of 0 bytes, and the tracepoint a
 * record comes from is the first field of its raw data (common_type). The
 * first event of a thread owns the ring; the others write into it
 * (PERF_EVENT_IOC_SET_OUTPUT), and it also reports exits and execs (task,
 * comm). Times are CLOCK_MONOTONIC, as clock.h's. */
#include "perftrace.h"

#include "clock.h"
#include "errbuf.h"
#include "fsread.h"
#include "perfrec.h"
#include "tracefs.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NEVENTS 7
#define RING_TOTAL (32u << 20)      /* bytes of ring for all threads together */
#define RING_MIN_PAGES 4u           /* data pages of one ring: a power of two */
#define RING_MAX_PAGES 512u         /* 2 MiB: a burst of a few hundred stacks */
#define SETTLE_NS (2LL * 1000000LL) /* records younger than this wait for the next poll */
#define ATTACH_PASSES 16
#define FD_RESERVE 64               /* descriptors left for everything else */
#define SAMPLE_TYPE                                                                               \
    (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW |              \
     PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER)

/* x86-64 user registers: AX..IP (perf_regs.h 0..8) and R8..R15 (16..23), in
 * the order a sample holds them. */
#define REGS_MASK 0xff01ffULL
#define NREGS 17

static const struct {
    const char *name;
    enum memcall_nr nr;
    bool exit;                     /* a sys_exit_ event: the result */
    bool exit_follows;             /* an entry whose exit is traced too */
    const char *args[5];           /* fields, in the order of memcall.a */
} events[NEVENTS] = {
    {"sys_enter_mmap", MEMCALL_MMAP, false, true, {"addr", "len", "prot", "flags", "fd"}},
    {"sys_enter_brk", MEMCALL_BRK, false, false, {"brk"}},
    {"sys_enter_mremap", MEMCALL_MREMAP, false, true,
     {"addr", "old_len", "new_len", "flags", "new_addr"}},
    {"sys_enter_mprotect", MEMCALL_MPROTECT, false, false, {"start", "len", "prot"}},
    {"sys_enter_munmap", MEMCALL_MUNMAP, false, false, {"addr", "len"}},
    {"sys_exit_mmap", MEMCALL_MMAP, true, false, {"ret"}},
    {"sys_exit_mremap", MEMCALL_MREMAP, true, false, {"ret"}},
};

struct ring {
    int tid;
    int fds[NEVENTS];              /* owned; fds[0] owns the mapping */
    void *base;                    /* owned: 1 + data pages */
    size_t len;
};

/* A record copied out of a ring, waiting to be handed over in time order. */
struct rec {
    uint64_t time;
    size_t off, len;               /* in the arena */
};

struct perftrace {
    int pid;
    struct tracefs_format fmt[NEVENTS];
    const struct tracefs_field *arg[NEVENTS][5];
    struct ring *rings;            /* owned */
    size_t nrings;
    size_t page, data_pages;
    unsigned char *arena;          /* owned: records, 8-byte aligned */
    size_t arena_len, arena_cap;
    struct rec *recs;              /* owned */
    size_t nrecs, recs_cap;
    unsigned char *wrap;           /* owned: a record that wraps the ring's end */
    struct pollfd *pfd;            /* owned: one per ring */
    size_t pfd_cap;
    size_t fd_budget;              /* descriptors the events may take in all */
    struct perftrace_stats st;
};

static int sys_perf_event_open(struct perf_event_attr *a, int tid)
{
    return (int)syscall(SYS_perf_event_open, a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static int load_formats(struct perftrace *t, char *err, size_t errlen)
{
    char dir[128];
    int rc = tracefs_find(dir, sizeof dir, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < NEVENTS; i++) {
        rc = tracefs_event(dir, "syscalls", events[i].name, &t->fmt[i], err, errlen);
        if (rc < 0)
            return rc;
        for (size_t k = 0; k < 5 && events[i].args[k]; k++) {
            t->arg[i][k] = tracefs_field(&t->fmt[i], events[i].args[k]);
            if (!t->arg[i][k]) {
                errbuf_set(err, errlen, "tracepoint syscalls:%s has no field '%s'",
                           events[i].name, events[i].args[k]);
                return -EINVAL;
            }
        }
    }
    return 0;
}

static void attr_for(struct perf_event_attr *a, const struct perftrace *t, size_t i, bool leader)
{
    memset(a, 0, sizeof *a);
    a->size = sizeof *a;
    a->type = PERF_TYPE_TRACEPOINT;
    a->config = (uint64_t)t->fmt[i].id;
    a->sample_period = 1;
    a->sample_type = SAMPLE_TYPE;
    a->sample_regs_user = REGS_MASK;
    a->sample_stack_user = memcall_grows(events[i].nr) && !events[i].exit ? MEMCALL_STACK_BYTES
                                                                           : 0;
    a->sample_id_all = 1;
    a->use_clockid = 1;
    a->clockid = CLOCK_MONOTONIC;
    if (leader) {
        a->task = 1;  /* PERF_RECORD_EXIT */
        a->comm = 1;  /* PERF_RECORD_COMM, with COMM_EXEC on exec */
        a->watermark = 1;
        a->wakeup_watermark = (uint32_t)(t->data_pages * t->page / 4);
    }
}

static void ring_close(struct perftrace *t, struct ring *r)
{
    if (r->base)
        munmap(r->base, r->len);
    for (size_t i = 0; i < NEVENTS; i++) {
        if (r->fds[i] >= 0)
            close(r->fds[i]);
    }
    (void)t;
}

/* The events of one thread, writing into one ring. */
static int ring_open(struct perftrace *t, int tid, struct ring *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->tid = tid;
    for (size_t i = 0; i < NEVENTS; i++)
        r->fds[i] = -1;
    int rc = 0;
    for (size_t i = 0; i < NEVENTS; i++) {
        struct perf_event_attr a;
        attr_for(&a, t, i, i == 0);
        r->fds[i] = sys_perf_event_open(&a, tid);
        if (r->fds[i] == -1) {
            rc = -errno;
            errbuf_set(err, errlen, "perf_event_open(syscalls:%s) on thread %d: %s",
                       events[i].name, tid, strerror(errno));
            goto fail;
        }
        if (i == 0) {
            r->len = (1 + t->data_pages) * t->page;
            r->base = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fds[0], 0);
            if (r->base == MAP_FAILED) {
                rc = -errno;
                r->base = NULL;
                errbuf_set(err, errlen,
                           "cannot map a perf ring of %zu KiB: %s (locked memory: "
                           "perf_event_mlock_kb, or CAP_IPC_LOCK)",
                           r->len / 1024, strerror(errno));
                goto fail;
            }
        } else if (ioctl(r->fds[i], PERF_EVENT_IOC_SET_OUTPUT, r->fds[0]) == -1) {
            rc = -errno;
            errbuf_set(err, errlen, "PERF_EVENT_IOC_SET_OUTPUT: %s", strerror(errno));
            goto fail;
        }
    }
    t->st.ring_bytes += r->len;
    return 0;
fail:
    ring_close(t, r);
    memset(r, 0, sizeof *r);
    return rc;
}

static bool has_ring(const struct perftrace *t, int tid)
{
    for (size_t i = 0; i < t->nrings; i++) {
        if (t->rings[i].tid == tid)
            return true;
    }
    return false;
}

/* The tids of /proc/PID/task; returns how many (0: gone). */
static size_t list_tasks(int pid, int **out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    *out = NULL;
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end != '\0' || v <= 0 || v > INT_MAX)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        (*out)[n++] = (int)v;
    }
    closedir(d);
    return n;
}

/* Descriptors this process may still open. */
static size_t fds_left(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
        return SIZE_MAX;
    size_t open_now = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        while (readdir(d))
            open_now++;
        closedir(d);
    }
    return rl.rlim_cur > open_now ? (size_t)rl.rlim_cur - open_now : 0;
}

static size_t ring_pages_for(size_t threads, size_t page)
{
    size_t per = RING_TOTAL / (threads ? threads : 1) / page, pages = RING_MIN_PAGES;
    while (pages * 2 <= per && pages * 2 <= RING_MAX_PAGES)
        pages *= 2;
    return pages;
}

int perftrace_open(int pid, struct perftrace **out, char *err, size_t errlen)
{
    struct perftrace *t = xcalloc(1, sizeof *t);
    t->pid = pid;
    t->page = (size_t)sysconf(_SC_PAGESIZE);
    int *tids = NULL;
    int rc = load_formats(t, err, errlen);
    if (rc < 0)
        goto fail;
    size_t n = list_tasks(pid, &tids);
    if (n == 0) {
        errbuf_set(err, errlen, "pid %d is gone", pid);
        rc = -ESRCH;
        goto fail;
    }
    size_t left = fds_left();
    if (left != SIZE_MAX && (n * NEVENTS + FD_RESERVE) * 2 > left) {
        errbuf_set(err, errlen,
                   "%zu threads would take %zu descriptors for tracepoints, and %zu are left "
                   "(RLIMIT_NOFILE)",
                   n, n * NEVENTS, left);
        rc = -EMFILE;
        goto fail;
    }
    t->data_pages = ring_pages_for(n, t->page);
    for (int pass = 0; pass < ATTACH_PASSES; pass++) {
        size_t added = 0;
        for (size_t i = 0; i < n; i++) {
            if (has_ring(t, tids[i]))
                continue;
            t->rings = xreallocarray(t->rings, t->nrings + 1, sizeof *t->rings);
            rc = ring_open(t, tids[i], &t->rings[t->nrings], err, errlen);
            if (rc == -ESRCH)
                continue; /* exited meanwhile */
            if (rc < 0)
                goto fail;
            t->nrings++;
            added++;
        }
        free(tids);
        tids = NULL;
        if (added == 0)
            break;
        n = list_tasks(pid, &tids);
    }
    if (t->nrings == 0) {
        errbuf_set(err, errlen, "pid %d is gone", pid);
        rc = -ESRCH;
        goto fail;
    }
    t->st.threads = (uint32_t)t->nrings;
    t->fd_budget = left == SIZE_MAX ? SIZE_MAX : left / 2;
    t->wrap = xmalloc(65536 + 8);
    *out = t;
    return 0;
fail:
    free(tids);
    perftrace_close(t);
    return rc;
}

void perftrace_close(struct perftrace *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrings; i++)
        ring_close(t, &t->rings[i]);
    free(t->rings);
    free(t->arena);
    free(t->recs);
    free(t->wrap);
    free(t->pfd);
    free(t);
}

void perftrace_stats(const struct perftrace *t, struct perftrace_stats *out)
{
    *out = t->st;
}

/* ---- reading the rings ---- */

static void keep(struct perftrace *t, const void *rec, size_t len, uint64_t time)
{
    size_t at = (t->arena_len + 7) & ~(size_t)7;
    if (at + len > t->arena_cap) {
        t->arena_cap = (at + len) * 2;
        t->arena = xrealloc(t->arena, t->arena_cap);
    }
    memcpy(t->arena + at, rec, len);
    t->arena_len = at + len;
    if (t->nrecs == t->recs_cap) {
        t->recs_cap = t->recs_cap ? 2 * t->recs_cap : 1024;
        t->recs = xreallocarray(t->recs, t->recs_cap, sizeof *t->recs);
    }
    t->recs[t->nrecs++] = (struct rec){time, at, len};
}

/* One record of the ring (its bytes contiguous in rec). */
static void take_record(struct perftrace *t, const struct perf_event_header *h, const void *rec)
{
    uint32_t pid, tid;
    uint64_t time;
    switch (h->type) {
    case PERF_RECORD_SAMPLE: {
        struct perfrec_sample s;
        if (perfrec_sample(rec, h->size, SAMPLE_TYPE, NREGS, &s) < 0)
            return;
        t->st.records++;
        keep(t, rec, h->size, s.time);
        return;
    }
    case PERF_RECORD_LOST: {
        uint64_t lost;
        if (h->size >= sizeof *h + 16) {
            memcpy(&lost, (const unsigned char *)rec + sizeof *h + 8, 8);
            t->st.lost += lost;
        }
        return;
    }
    case PERF_RECORD_EXIT:
        /* { u32 pid, ppid, tid, ptid; u64 time; } */
        if (h->size >= sizeof *h + 16) {
            memcpy(&pid, (const unsigned char *)rec + sizeof *h, 4);
            memcpy(&tid, (const unsigned char *)rec + sizeof *h + 8, 4);
            if ((int)pid == t->pid && (int)tid == t->pid)
                t->st.exited = true;
        }
        return;
    case PERF_RECORD_COMM:
        if ((h->misc & PERF_RECORD_MISC_COMM_EXEC) &&
            perfrec_sample_id(rec, h->size, SAMPLE_TYPE, &pid, &tid, &time) == 0 &&
            (int)pid == t->pid)
            t->st.execed = true;
        return;
    default:
        return;
    }
}

static void read_ring(struct perftrace *t, struct ring *r)
{
    struct perf_event_mmap_page *pg = r->base;
    unsigned char *data = (unsigned char *)r->base + t->page;
    uint64_t size = (uint64_t)t->data_pages * t->page;
    uint64_t head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = pg->data_tail;
    while (tail < head) {
        uint64_t off = tail % size;
        struct perf_event_header h;
        if (size - off >= sizeof h) {
            memcpy(&h, data + off, sizeof h);
        } else {
            memcpy(&h, data + off, (size_t)(size - off));
            memcpy((unsigned char *)&h + (size - off), data, sizeof h - (size_t)(size - off));
        }
        if (h.size < sizeof h || h.size > head - tail)
            break; /* never: the kernel writes whole records */
        const void *rec = data + off;
        if (off + h.size > size) {
            size_t first = (size_t)(size - off);
            memcpy(t->wrap, data + off, first);
            memcpy(t->wrap + first, data, h.size - first);
            rec = t->wrap;
        } else if (((uintptr_t)rec & 7) != 0) {
            memcpy(t->wrap, rec, h.size);
            rec = t->wrap;
        }
        take_record(t, &h, rec);
        tail += h.size;
    }
    __atomic_store_n(&pg->data_tail, tail, __ATOMIC_RELEASE);
}

static int by_time(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off; /* one ring's order within a tick */
}

static int event_of(const struct perftrace *t, const void *raw, uint32_t len)
{
    if (len < 2)
        return -1;
    uint16_t type;
    memcpy(&type, raw, 2);
    for (int i = 0; i < NEVENTS; i++) {
        if (t->fmt[i].id == type)
            return i;
    }
    return -1;
}

static bool hand_over(const struct perftrace *t, const struct rec *r, perftrace_fn fn, void *ctx)
{
    struct perfrec_sample s;
    const unsigned char *rec = t->arena + r->off;
    if (perfrec_sample(rec, r->len, SAMPLE_TYPE, NREGS, &s) < 0)
        return false;
    int i = event_of(t, s.raw, s.raw_len);
    if (i < 0)
        return false;
    struct memcall_event e = {.kind = events[i].exit ? MEMCALL_EXIT : MEMCALL_ENTER,
                                .exit_follows = events[i].exit_follows};
    e.call.nr = events[i].nr;
    e.call.tid = (int)s.tid;
    e.call.t_ns = (int64_t)s.time;
    for (size_t k = 0; k < 5 && events[i].args[k]; k++) {
        uint64_t v;
        if (!tracefs_value(t->arg[i][k], s.raw, s.raw_len, &v))
            return false;
        if (events[i].exit) {
            e.call.ret = v;
            e.call.have_ret = true;
        } else {
            e.call.a[k] = v;
        }
    }
    struct user_regs_struct regs;
    if (!events[i].exit && s.regs && s.stack && s.stack_len > 0) {
        /* perf_regs.h order: AX BX CX DX SI DI BP SP IP, then R8..R15 */
        memset(&regs, 0, sizeof regs);
        uint64_t v[NREGS];
        memcpy(v, s.regs, sizeof v);
        regs.rax = v[0];
        regs.rbx = v[1];
        regs.rcx = v[2];
        regs.rdx = v[3];
        regs.rsi = v[4];
        regs.rdi = v[5];
        regs.rbp = v[6];
        regs.rsp = v[7];
        regs.rip = v[8];
        regs.r8 = v[9];
        regs.r9 = v[10];
        regs.r10 = v[11];
        regs.r11 = v[12];
        regs.r12 = v[13];
        regs.r13 = v[14];
        regs.r14 = v[15];
        regs.r15 = v[16];
        e.regs = &regs;
        e.stack = s.stack;
        e.stack_len = (size_t)s.stack_len;
    }
    fn(ctx, &e);
    return true;
}

/* Threads started since the last look get their events: a thread's events
 * are its own (the kernel maps no ring of inherited per-thread events), so
 * a new thread is seen from its first poll on. */
static void follow_new_threads(struct perftrace *t)
{
    int *tids = NULL;
    size_t n = list_tasks(t->pid, &tids);
    for (size_t i = 0; i < n; i++) {
        if (has_ring(t, tids[i]))
            continue;
        if ((t->nrings + 1) * NEVENTS > t->fd_budget) {
            t->st.unfollowed++;
            continue;
        }
        char err[256];
        t->rings = xreallocarray(t->rings, t->nrings + 1, sizeof *t->rings);
        if (ring_open(t, tids[i], &t->rings[t->nrings], err, sizeof err) == 0) {
            t->nrings++;
            t->st.threads++;
        } else {
            t->st.unfollowed++; /* gone meanwhile, or refused */
        }
    }
    free(tids);
}

size_t perftrace_poll(struct perftrace *t, int timeout_ms, bool final, perftrace_fn fn, void *ctx)
{
    if (!final)
        follow_new_threads(t);
    if (t->pfd_cap < t->nrings) {
        t->pfd_cap = t->nrings * 2;
        t->pfd = xreallocarray(t->pfd, t->pfd_cap, sizeof *t->pfd);
    }
    for (size_t i = 0; i < t->nrings; i++)
        t->pfd[i] = (struct pollfd){.fd = t->rings[i].fds[0], .events = POLLIN};
    if (timeout_ms > 0 && !final)
        poll(t->pfd, t->nrings, timeout_ms); /* EINTR: read what is there */
    for (size_t i = 0; i < t->nrings; i++)
        read_ring(t, &t->rings[i]);
    if (t->nrecs > 1)
        qsort(t->recs, t->nrecs, sizeof *t->recs, by_time);
    uint64_t upto = final ? UINT64_MAX : (uint64_t)(clock_mono_ns() - SETTLE_NS);
    size_t done = 0, handed = 0;
    while (done < t->nrecs && t->recs[done].time <= upto) {
        handed += hand_over(t, &t->recs[done], fn, ctx);
        done++;
    }
    /* keep the rest for the next poll, at the start of the arena */
    size_t len = 0;
    for (size_t i = done; i < t->nrecs; i++) {
        struct rec r = t->recs[i];
        size_t at = (len + 7) & ~(size_t)7;
        memmove(t->arena + at, t->arena + r.off, r.len);
        t->recs[i - done] = (struct rec){r.time, at, r.len};
        len = at + r.len;
    }
    t->nrecs -= done;
    t->arena_len = len;
    return handed;
}

int perftrace_probe(int pid, char *why, size_t len)
{
    struct perftrace t = {.pid = pid};
    int rc = load_formats(&t, why, len);
    if (rc < 0)
        return rc;
    struct perf_event_attr a;
    t.data_pages = RING_MIN_PAGES;
    t.page = (size_t)sysconf(_SC_PAGESIZE);
    attr_for(&a, &t, 0, false);
    int fd = sys_perf_event_open(&a, pid);
    if (fd == -1) {
        rc = -errno;
        char paranoid[16] = "?";
        ssize_t n = fsread("/proc/sys/kernel/perf_event_paranoid", paranoid, sizeof paranoid);
        if (n > 0 && paranoid[n - 1] == '\n')
            paranoid[n - 1] = '\0';
        errbuf_set(why, len,
                   "perf_event_open of a syscall tracepoint refused: %s (perf_event_paranoid is "
                   "%s; raw tracepoint records need CAP_PERFMON or CAP_SYS_ADMIN, or a setting "
                   "of -1; a seccomp filter may forbid the call)",
                   strerror(-rc), paranoid);
        return rc;
    }
    close(fd);
    errbuf_set(why, len, "syscall tracepoints allowed (perf_event_open)");
    return 0;
}
