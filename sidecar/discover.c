/* sidecar/discover.c - find target processes; see discover.h. */
#include "discover.h"

#include "fsread.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct seen {
    int pid;
    uint64_t mask;   /* bit i: matches process target i (targets beyond 64 are rechecked) */
    unsigned scan;   /* scan number it was last listed in */
};

struct discover {
    const struct config *cfg;
    struct seen *seen;   /* sorted by pid */
    size_t nseen, cap;
    unsigned scan;
    int self;
    pcre2_match_data *md;
    struct discover_result *res; /* one per target, arrays owned here */
};

struct discover *discover_new(const struct config *cfg)
{
    struct discover *d = xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->self = (int)getpid();
    d->md = pcre2_match_data_create(1, NULL);
    if (!d->md) {
        fprintf(stderr, "stakeout: out of memory\n");
        abort();
    }
    d->res = xcalloc(cfg->ntargets ? cfg->ntargets : 1, sizeof *d->res);
    return d;
}

void discover_set_config(struct discover *d, const struct config *cfg)
{
    d->cfg = cfg;
}

void discover_free(struct discover *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->cfg->ntargets; i++)
        free(d->res[i].pids);
    free(d->res);
    free(d->seen);
    pcre2_match_data_free(d->md);
    free(d);
}

static bool re_match(pcre2_code *re, pcre2_match_data *md, const char *s)
{
    return pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
}

bool discover_match_process(const struct target_spec *t, const char *comm, const char *cmdline)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    bool m = md && t->process_re &&
             (re_match(t->process_re, md, comm) || (cmdline[0] && re_match(t->process_re, md, cmdline)));
    pcre2_match_data_free(md);
    return m;
}

static void add_pid(struct discover_result *r, size_t *cap, int pid)
{
    if (r->n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        r->pids = xreallocarray(r->pids, *cap, sizeof *r->pids);
    }
    r->pids[r->n++] = pid;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static struct seen *find_seen(struct discover *d, int pid)
{
    size_t lo = 0, hi = d->nseen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->seen[mid].pid == pid)
            return &d->seen[mid];
        if (d->seen[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether a failed read of a /proc/PID file says the process is gone. Any
 * other error (EMFILE, ENFILE, EACCES, ...) says nothing about it. */
static bool gone_errno(ssize_t err)
{
    return err == -ENOENT || err == -ESRCH;
}

/* Examine one pid against every `process` target: *mask gets bit i when it
 * matches target i (none when it is gone). Returns 0, or a negative errno
 * when its names cannot be read now; *mask is then not set. */
static int examine(struct discover *d, int pid, uint64_t *mask)
{
    char p[64], comm[64], cmdline[4096];
    uint64_t m = 0;

    snprintf(p, sizeof p, "/proc/%d/comm", pid);
    ssize_t n = fsread(p, comm, sizeof comm);
    if (n < 0 && !gone_errno(n))
        return (int)n;
    if (n <= 0) {
        *mask = 0;
        return 0;
    }
    if (comm[n - 1] == '\n')
        comm[n - 1] = '\0';
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    n = fsread(p, cmdline, sizeof cmdline);
    if (n < 0 && !gone_errno(n))
        return (int)n; /* an empty command line would read as a kernel thread's */
    if (n < 0)
        n = 0;
    while (n > 0 && cmdline[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++) {
        if (cmdline[i] == '\0')
            cmdline[i] = ' ';
    }
    cmdline[n] = '\0';
    for (size_t i = 0; i < d->cfg->ntargets && i < 64; i++) {
        const struct target_spec *t = &d->cfg->targets[i];
        if (t->match != MATCH_PROCESS || !t->process_re)
            continue;
        /* kernel threads have no command line and are never targets */
        if (cmdline[0] &&
            (re_match(t->process_re, d->md, comm) || re_match(t->process_re, d->md, cmdline)))
            m |= 1ULL << i;
    }
    *mask = m;
    return 0;
}

static int scan_proc(struct discover *d, size_t *caps)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    bool full = d->scan % DISCOVER_FULL_EVERY == 0;
    bool any_process = false;

    for (size_t i = 0; i < d->cfg->ntargets; i++)
        any_process |= d->cfg->targets[i].match == MATCH_PROCESS;
    if (!any_process) {
        if (dir)
            closedir(dir);
        return 0;
    }
    if (!dir)
        return -errno;
    size_t before = d->nseen;
    while ((de = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == d->self)
            continue;
        struct seen *s = find_seen(d, (int)pid);
        uint64_t mask;
        if (!s) {
            if (examine(d, (int)pid, &mask) != 0)
                continue; /* cannot tell now: a new pid again at the next scan */
            if (d->nseen == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 256;
                d->seen = xreallocarray(d->seen, d->cap, sizeof *d->seen);
            }
            /* appended unsorted; sorted once after the listing */
            d->seen[d->nseen++] = (struct seen){(int)pid, mask, d->scan};
            continue;
        }
        if (full && examine(d, (int)pid, &mask) == 0)
            s->mask = mask; /* one that cannot be read now keeps what it matched */
        s->scan = d->scan;
    }
    closedir(dir);
    (void)before;
    /* drop pids that are gone, then restore order */
    size_t k = 0;
    for (size_t i = 0; i < d->nseen; i++) {
        if (d->seen[i].scan == d->scan)
            d->seen[k++] = d->seen[i];
    }
    d->nseen = k;
    qsort(d->seen, d->nseen, sizeof *d->seen, cmp_int);
    for (size_t i = 0; i < d->nseen; i++) {
        for (size_t t = 0; t < d->cfg->ntargets && t < 64; t++) {
            if (d->seen[i].mask & (1ULL << t))
                add_pid(&d->res[t], &caps[t], d->seen[i].pid);
        }
    }
    return 0;
}

static bool pid_alive(int pid)
{
    char p[32];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    return access(p, F_OK) == 0;
}

static int read_pid_file(const char *path, int *pid)
{
    char buf[64];
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    char *end;
    long v = strtol(buf, &end, 10);
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
        end++;
    if (end == buf || *end != '\0' || v <= 0 || v > 4194304)
        return -EINVAL;
    *pid = (int)v;
    return 0;
}

static int read_cgroup_procs(const char *path, struct discover_result *r, size_t *cap, int self)
{
    static const char *bases[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified",
                                  "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                                  "/sys/fs/cgroup/systemd"};
    char p[4096];
    static char buf[1 << 16];
    ssize_t n = -ENOENT;

    for (size_t i = 0; i < sizeof bases / sizeof bases[0] && n == -ENOENT; i++) {
        snprintf(p, sizeof p, "%s%s%s/cgroup.procs", bases[i], path[0] == '/' ? "" : "/", path);
        n = fsread(p, buf, sizeof buf);
    }
    if (n < 0)
        return (int)n;
    for (char *s = buf; *s;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        if (v > 0 && v != self)
            add_pid(r, cap, (int)v);
        s = end;
        while (*s == '\n')
            s++;
    }
    return 0;
}

int discover_scan(struct discover *d, struct discover_result *res)
{
    const struct config *cfg = d->cfg;
    size_t caps[64 + 1];
    size_t *cap = cfg->ntargets <= 64 ? caps : xcalloc(cfg->ntargets, sizeof *cap);
    int rc;

    for (size_t i = 0; i < cfg->ntargets; i++) {
        free(d->res[i].pids);
        d->res[i] = (struct discover_result){0};
        cap[i] = 0;
    }
    d->scan++;
    rc = scan_proc(d, cap);
    for (size_t i = 0; i < cfg->ntargets; i++) {
        const struct target_spec *t = &cfg->targets[i];
        struct discover_result *r = &d->res[i];
        int pid = 0;
        switch (t->match) {
        case MATCH_PID:
            if (pid_alive(t->pid))
                add_pid(r, &cap[i], t->pid);
            break;
        case MATCH_PID_FILE:
            r->err = read_pid_file(t->match_arg, &pid);
            if (r->err == 0 && pid_alive(pid))
                add_pid(r, &cap[i], pid);
            /* no file: no process; a file being rewritten (EINVAL) or not
             * readable now says nothing */
            r->unknown = r->err != 0 && r->err != -ENOENT;
            break;
        case MATCH_CGROUP:
            r->err = read_cgroup_procs(t->match_arg, r, &cap[i], d->self);
            if (r->n > 1)
                qsort(r->pids, r->n, sizeof *r->pids, cmp_int);
            r->unknown = r->err != 0 && r->err != -ENOENT;
            break;
        case MATCH_PROCESS:
            break; /* filled by scan_proc */
        }
        res[i] = *r;
    }
    if (cap != caps)
        free(cap);
    return rc;
}
