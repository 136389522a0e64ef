/* sidecar/memcapture.c - one memory capture; see memcapture.h.
 *
 * Shape, each step undone in reverse on every path:
 *   1. smaps of the target (the mappings before; reserves and the break
 *      seed the ledger); symbols_snapshot;
 *   2. the unwinder (stackwalk_new), the method's events (perftrace_open;
 *      when refused and the method is auto, or when asked, ptrace:
 *      memptrace_run attaches, runs and detaches in 3);
 *   3. until the end, the stop flag or the target's exit or exec: hand
 *      each call to the ledger (memcall.h), unwinding the stack of those
 *      that can grow memory;
 *   4. close the events; what each sample still holds; smaps again, the
 *      changed mappings into the profile; symbols_snapshot again. */
#include "memcapture.h"

#include "clock.h"
#include "errbuf.h"
#include "fsread.h"
#include "memcall.h"
#include "memledger.h"
#include "memptrace.h"
#include "perftrace.h"
#include "sampler.h"
#include "smaps.h"
#include "stackwalk.h"
#include "symbols.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS 50
#define SMAPS_MAX (64u << 20)
#define PROGRESS_NS (100LL * 1000000LL)

/* A call whose entry was seen and whose exit is to come. */
struct pending {
    struct memcall call;
    uint32_t n;
    uint64_t ips[SAMPLER_MAX_FRAMES];
};

struct walker {
    int tid;
    struct stackwalk_thread *swt;  /* owned */
};

struct mcap {
    const struct memcapture_opts *o;
    struct profile *p;             /* owned until returned */
    struct memledger *ledger;      /* owned */
    struct stackwalk *sw;          /* owned */
    struct walker *walkers;        /* owned, one per thread seen */
    size_t nwalkers;
    struct pending *pending;       /* owned */
    size_t npending, pending_cap;
    uint64_t calls, unwound, unwind_failed, stack_bytes;
    uint64_t ips[SAMPLER_MAX_FRAMES];
};

const char *memcapture_method_name(enum memcapture_method m)
{
    switch (m) {
    case MEMCAPTURE_TRACEPOINT: return "tracepoint";
    case MEMCAPTURE_PTRACE: return "ptrace";
    default: return "auto";
    }
}

bool memcapture_method_parse(const char *s, enum memcapture_method *out)
{
    static const enum memcapture_method all[] = {MEMCAPTURE_AUTO, MEMCAPTURE_TRACEPOINT,
                                                 MEMCAPTURE_PTRACE};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, memcapture_method_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

enum memcapture_method memcapture_choose(int pid, char *why, size_t len)
{
    if (perftrace_probe(pid > 0 ? pid : getpid(), why, len) == 0)
        return MEMCAPTURE_TRACEPOINT;
    return MEMCAPTURE_PTRACE;
}

/* ---- the calls ---- */

static struct stackwalk_thread *walker_of(struct mcap *m, int tid)
{
    for (size_t i = 0; i < m->nwalkers; i++) {
        if (m->walkers[i].tid == tid)
            return m->walkers[i].swt;
    }
    m->walkers = xreallocarray(m->walkers, m->nwalkers + 1, sizeof *m->walkers);
    struct walker *w = &m->walkers[m->nwalkers++];
    w->tid = tid;
    w->swt = stackwalk_thread_new(m->sw, tid);
    /* name the thread while it is there */
    char path[64], name[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", m->o->pid, tid);
    ssize_t n = fsread(path, name, sizeof name);
    if (n > 0) {
        while (n > 0 && name[n - 1] == '\n')
            name[--n] = '\0';
        profile_thread_name(m->p, tid, name);
    }
    return w->swt;
}

static uint32_t unwind(struct mcap *m, const struct memcall_event *e, uint64_t *ips)
{
    if (!e->regs)
        return 0;
    struct stackwalk_thread *swt = walker_of(m, e->call.tid);
    stackwalk_snapshot_from(m->sw, swt, e->regs, e->stack, e->stack_len);
    uint32_t n = stackwalk_unwind(m->sw, swt, ips, SAMPLER_MAX_FRAMES);
    m->unwound++;
    m->unwind_failed += n == 0;
    return n;
}

static struct pending *pending_of(struct mcap *m, int tid)
{
    for (size_t i = 0; i < m->npending; i++) {
        if (m->pending[i].call.tid == tid)
            return &m->pending[i];
    }
    return NULL;
}

static void on_event(void *ctx, const struct memcall_event *e)
{
    struct mcap *m = ctx;
    if (e->kind == MEMCALL_ENTER) {
        m->calls++;
        m->stack_bytes += e->stack_len;
        if (!e->exit_follows) {
            uint32_t n = memcall_grows(e->call.nr) ? unwind(m, e, m->ips) : 0;
            memcall_apply(m->ledger, m->p, &e->call, m->ips, n);
            return;
        }
        /* its exit says where it went: keep the stack until then */
        struct pending *pd = pending_of(m, e->call.tid);
        if (!pd) {
            if (m->npending == m->pending_cap) {
                m->pending_cap = m->pending_cap ? 2 * m->pending_cap : 8;
                m->pending = xreallocarray(m->pending, m->pending_cap, sizeof *m->pending);
            }
            pd = &m->pending[m->npending++];
        }
        pd->call = e->call;
        pd->n = unwind(m, e, pd->ips);
        return;
    }
    struct pending *pd = pending_of(m, e->call.tid);
    if (!pd || pd->call.nr != e->call.nr)
        return; /* its entry came before the capture */
    pd->call.ret = e->call.ret;
    pd->call.have_ret = true;
    memcall_apply(m->ledger, m->p, &pd->call, pd->ips, pd->n);
    *pd = m->pending[--m->npending];
}

/* ---- the mappings ---- */

/* Reserves (anonymous PROT_NONE: arenas' room to grow) and the break, as
 * they are when the capture starts. */
static void seed_ledger(struct memledger *l, const struct smaps *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct smaps_entry *e = &s->v[i];
        if (e->kind == SMAPS_HEAP)
            memledger_set_brk(l, e->end);
        else if (strcmp(e->perms, "---p") == 0 && e->inode == 0 && e->path[0] == '\0')
            memledger_reserved(l, e->start, e->end);
    }
}

static uint64_t rss_of(const struct smaps *s)
{
    uint64_t rss = 0;
    for (size_t i = 0; i < s->n; i++)
        rss += s->v[i].rss;
    return rss;
}

static void add_map_changes(struct profile *p, const struct smaps *before,
                            const struct smaps *after)
{
    struct prof_memory *pm = profile_memory(p);
    struct smaps_change *c;
    size_t n = smaps_diff(before, after, &c);
    for (size_t i = 0; i < n; i++) {
        if (i < MEMCAPTURE_MAX_MAP_CHANGES) {
            struct prof_map_change pc = {.path = (char *)c[i].path,
                                         .start = c[i].start,
                                         .size_before = c[i].size_before,
                                         .size_after = c[i].size_after,
                                         .rss_before = c[i].rss_before,
                                         .rss_after = c[i].rss_after};
            snprintf(pc.kind, sizeof pc.kind, "%s", smaps_kind_name(c[i].kind));
            profile_add_map_change(p, &pc);
        } else {
            pm->changes_omitted++;
            pm->changes_omitted_rss += (int64_t)c[i].rss_after - (int64_t)c[i].rss_before;
        }
    }
    free(c);
    pm->rss_before = rss_of(before);
    pm->rss_after = rss_of(after);
}

/* ---- what is resident ---- */

#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_CHUNK 4096 /* entries read at a time */

struct resident {
    int fd;                        /* /proc/PID/pagemap */
    uint64_t page;
    uint64_t *bytes;               /* owned: per owner (sample) */
    size_t n;
    bool failed;
};

/* The present pages of [start, end), from the target's page map. */
static void count_range(void *ctx, uint64_t start, uint64_t end, uint32_t owner)
{
    struct resident *r = ctx;
    if (r->failed || owner >= r->n)
        return;
    uint64_t buf[PAGEMAP_CHUNK];
    for (uint64_t va = start; va < end;) {
        uint64_t pages = (end - va) / r->page;
        if (pages > PAGEMAP_CHUNK)
            pages = PAGEMAP_CHUNK;
        if (pages == 0)
            break;
        ssize_t got;
        do
            got = pread(r->fd, buf, pages * 8, (off_t)(va / r->page * 8));
        while (got == -1 && errno == EINTR);
        if (got <= 0) {
            r->failed = got == -1; /* 0: past the address space, nothing there */
            return;
        }
        for (ssize_t i = 0; i < got / 8; i++)
            r->bytes[owner] += (buf[i] & PAGEMAP_PRESENT) ? r->page : 0;
        va += (uint64_t)(got / 8) * r->page;
    }
}

/* Every sample's bytes still held at the end, counting only the pages that
 * are resident: address space a call grew but the target never touched (a
 * thread's 8 MiB stack, a reserve made usable) is not memory it holds.
 * Where the page map cannot be read, held is what is still mapped. */
static void set_held(struct mcap *m)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", m->o->pid);
    struct resident r = {.fd = open(path, O_RDONLY | O_CLOEXEC),
                         .page = (uint64_t)sysconf(_SC_PAGESIZE),
                         .n = m->p->nsamples};
    if (r.fd >= 0) {
        r.bytes = xcalloc(r.n ? r.n : 1, sizeof *r.bytes);
        memledger_each(m->ledger, count_range, &r);
        close(r.fd);
    }
    if (r.fd < 0 || r.failed) {
        memcall_finish(m->ledger, m->p);
        profile_note(m->p,
                     "the target's page map could not be read: bytes held are those still "
                     "mapped, touched or not");
    } else {
        for (size_t i = 0; i < r.n; i++)
            profile_set_inuse(m->p, i, r.bytes[i]);
        profile_memory(m->p)->resident = true;
    }
    free(r.bytes);
}

/* ---- the capture ---- */

static void read_comm(struct profile *p, int pid)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0)
        return;
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    snprintf(p->comm, sizeof p->comm, "%s", buf);
    profile_text_clean(p->comm);
}

static void run_tracepoints(struct mcap *m, struct perftrace *t)
{
    const struct memcapture_opts *o = m->o;
    int64_t start = m->p->start_mono_ns;
    int64_t end = o->duration_ns > INT64_MAX - start ? INT64_MAX : start + o->duration_ns;
    int64_t next_progress = start;
    struct perftrace_stats st;
    for (;;) {
        perftrace_stats(t, &st);
        int64_t now = clock_mono_ns();
        if (now >= end || st.exited || st.execed || (o->stop && *o->stop))
            break;
        int64_t left_ms = (end - now) / 1000000 + 1;
        perftrace_poll(t, left_ms < POLL_MS ? (int)left_ms : POLL_MS, false, on_event, m);
        if (o->progress && now >= next_progress) {
            o->progress(o->progress_ctx, now - start, m->calls);
            next_progress = now + PROGRESS_NS;
        }
    }
    perftrace_poll(t, 0, true, on_event, m);
    perftrace_stats(t, &st);
    double at = (double)(clock_mono_ns() - start) / 1e9;
    if (st.exited) {
        m->p->aborted = true;
        profile_note(m->p, "target exited after %.2fs: capture ended with the calls so far", at);
    } else if (st.execed) {
        m->p->aborted = true;
        profile_note(m->p, "target called exec after %.2fs: capture ended with the calls so far",
                     at);
    } else if (o->stop && *o->stop) {
        m->p->aborted = true;
        profile_note(m->p, "capture ended early on request after %.2fs", at);
    }
    struct prof_memory *pm = profile_memory(m->p);
    pm->lost = st.lost;
    if (st.lost)
        profile_note(m->p,
                     "%llu address-space call(s) not seen: the kernel dropped their records (the "
                     "target made them faster than stakeout read them); growth may be charged "
                     "that was given back",
                     (unsigned long long)st.lost);
}

/* The calls by system-call stops: memptrace attaches, hands each call to
 * on_event, and detaches; its notes go into the profile. */
static int run_ptrace(struct mcap *m, char *err, size_t errlen)
{
    const struct memcapture_opts *o = m->o;
    struct memptrace_opts po = {.pid = o->pid, .duration_ns = o->duration_ns,
                                .max_stopped = o->max_stopped, .stop = o->stop,
                                .progress = o->progress, .progress_ctx = o->progress_ctx,
                                .target_status = o->target_status, .fn = on_event, .ctx = m};
    struct memptrace_stats st;
    int rc = memptrace_run(&po, m->p, &st, err, errlen);
    if (rc < 0)
        return rc;
    profile_memory(m->p)->stopped_share = st.stopped_share;
    return 0;
}

static int check_opts(const struct memcapture_opts *o, char *err, size_t errlen)
{
    if (o->pid <= 0) {
        errbuf_set(err, errlen, "invalid pid %d", o->pid);
        return -EINVAL;
    }
    if (o->duration_ns <= 0) {
        errbuf_set(err, errlen, "the duration must be positive");
        return -EINVAL;
    }
    if (o->pid == getpid()) {
        errbuf_set(err, errlen, "stakeout cannot profile itself");
        return -EINVAL;
    }
    if (!(o->max_stopped >= 0 && o->max_stopped <= 1)) {
        errbuf_set(err, errlen, "the share of time stopped must be within 0..1");
        return -EINVAL;
    }
    return 0;
}

int memcapture_run(const struct memcapture_opts *o, struct profile **out, char *err,
                   size_t errlen)
{
    int rc = check_opts(o, err, errlen);
    if (rc < 0)
        return rc;
    struct mcap m = {.o = o};
    struct smaps before = {0}, after = {0};
    struct perftrace *t = NULL;
    char why[512];

    rc = smaps_read(o->pid, SMAPS_MAX, &before, err, errlen);
    if (rc < 0)
        return rc == -ENOENT ? -ESRCH : rc;
    m.p = profile_new(PROFILE_TYPE_MEMORY, 0);
    m.p->pid = o->pid;
    read_comm(m.p, o->pid);
    m.ledger = memledger_new((uint64_t)sysconf(_SC_PAGESIZE));
    seed_ledger(m.ledger, &before);
    if (o->symbols && symbols_snapshot(o->symbols, o->pid, m.p) < 0)
        profile_note(m.p, "could not read the target's mappings before the capture");

    rc = stackwalk_new(o->pid, &m.sw, err, errlen);
    if (rc < 0)
        goto out;
    enum memcapture_method method = o->method;
    if (method != MEMCAPTURE_PTRACE) {
        rc = perftrace_open(o->pid, &t, why, sizeof why);
        if (rc < 0 && (method == MEMCAPTURE_TRACEPOINT || rc == -ESRCH)) {
            errbuf_set(err, errlen, "memory capture by tracepoints is not possible: %s", why);
            if (rc != -ESRCH)
                rc = -ENOTSUP;
            goto out;
        }
        method = rc < 0 ? MEMCAPTURE_PTRACE : MEMCAPTURE_TRACEPOINT;
        if (rc < 0)
            profile_note(m.p,
                         "syscall tracepoints not used (%s): calls seen by ptrace instead, "
                         "which stops the target at every system call",
                         why);
    }
    struct prof_memory *pm = profile_memory(m.p);
    snprintf(pm->method, sizeof pm->method, "%s", memcapture_method_name(method));
    m.p->start_wall_ns = clock_wall_ns();
    m.p->start_mono_ns = clock_mono_ns();
    if (method == MEMCAPTURE_TRACEPOINT) {
        run_tracepoints(&m, t);
        perftrace_close(t);
        t = NULL;
    } else {
        char perr[512];
        rc = run_ptrace(&m, perr, sizeof perr);
        if (rc < 0 && o->method == MEMCAPTURE_AUTO)
            errbuf_set(err, errlen,
                       "memory capture is not possible here: by tracepoints: %s; by ptrace: %s",
                       why, perr);
        else if (rc < 0)
            errbuf_set(err, errlen, "memory capture by ptrace is not possible: %s", perr);
        if (rc == -EPERM && o->method == MEMCAPTURE_AUTO)
            rc = -ENOTSUP; /* neither method is allowed; -EBUSY, -ESRCH say more */
        if (rc < 0)
            goto out;
    }
    m.p->duration_ns = clock_mono_ns() - m.p->start_mono_ns;

    set_held(&m);
    struct memledger_stats ls;
    memledger_stats(m.ledger, &ls);
    pm->calls = m.calls;
    pm->stack_bytes = m.stack_bytes;
    pm->charged = ls.charged;
    pm->credited = ls.credited;
    pm->unseen_released = ls.unseen_released;
    profile_note(m.p,
                 "memory allocated before the capture is not charged to any stack (only growth "
                 "seen during the capture is); the mappings and the RSS history show the whole "
                 "trend");
    char aerr[256];
    if (smaps_read(o->pid, SMAPS_MAX, &after, aerr, sizeof aerr) == 0)
        add_map_changes(m.p, &before, &after);
    else
        profile_note(m.p, "could not read the target's mappings after the capture: %s", aerr);
    if (o->symbols && kill(o->pid, 0) == 0 && symbols_snapshot(o->symbols, o->pid, m.p) < 0)
        profile_note(m.p, "could not read the target's mappings after the capture");
    rc = 0;
out:
    perftrace_close(t);
    for (size_t i = 0; i < m.nwalkers; i++)
        stackwalk_thread_free(m.walkers[i].swt);
    free(m.walkers);
    free(m.pending);
    stackwalk_free(m.sw);
    memledger_free(m.ledger);
    smaps_fini(&before);
    smaps_fini(&after);
    if (rc < 0) {
        profile_free(m.p);
        return rc;
    }
    *out = m.p;
    return 0;
}
