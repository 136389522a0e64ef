/* sidecar/logwatch.c - all targets' logs; see logwatch.h. */
#include "logwatch.h"

#include "logtail.h"
#include "rootfs.h"
#include "slog.h"
#include "xalloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct watched_log {
    size_t target;
    const struct log_spec *spec;   /* borrowed from the config */
    struct logscan *scan;          /* owned */
    struct logtail *tail;          /* owned, NULL while it cannot be followed */
    int root_pid;                  /* path is in this process's root; 0: in ours */
    int err;                       /* why it cannot be followed, as last logged; 0: it is */
    char path[PATH_MAX];           /* what is followed */
};

struct logwatch {
    const struct config *cfg;
    struct watched_log *logs;      /* owned */
    size_t nlogs;
};

size_t logwatch_kept_max(size_t nlogs)
{
    size_t share = LOGWATCH_KEPT_BYTES / ((nlogs ? nlogs : 1) * LOGSCAN_KEPT_LINES);
    size_t max = share > 0 ? share - 1 : 0; /* each kept line also has its NUL */

    if (max > LOGSCAN_KEPT_MAX)
        max = LOGSCAN_KEPT_MAX;
    return max < LOGWATCH_KEPT_MIN ? LOGWATCH_KEPT_MIN : max;
}

struct logwatch *logwatch_new(const struct config *cfg, char *err, size_t errlen)
{
    struct logwatch *lw = xcalloc(1, sizeof *lw);
    lw->cfg = cfg;
    for (size_t t = 0; t < cfg->ntargets; t++)
        lw->nlogs += cfg->targets[t].nlogs;
    lw->logs = xcalloc(lw->nlogs ? lw->nlogs : 1, sizeof *lw->logs);
    size_t k = 0;
    for (size_t t = 0; t < cfg->ntargets; t++) {
        for (size_t i = 0; i < cfg->targets[t].nlogs; i++, k++) {
            struct watched_log *w = &lw->logs[k];
            w->target = t;
            w->spec = &cfg->targets[t].logs[i];
            if (logscan_new(w->spec->format, w->spec->error_pattern, &w->scan, err, errlen) != 0) {
                lw->nlogs = k;
                logwatch_free(lw);
                return NULL;
            }
            logscan_set_kept_max(w->scan, logwatch_kept_max(lw->nlogs));
        }
    }
    return lw;
}

void logwatch_set_config(struct logwatch *lw, const struct config *cfg)
{
    lw->cfg = cfg;
    size_t k = 0;
    for (size_t t = 0; t < cfg->ntargets; t++) {
        for (size_t i = 0; i < cfg->targets[t].nlogs && k < lw->nlogs; i++, k++)
            lw->logs[k].spec = &cfg->targets[t].logs[i];
    }
}

void logwatch_free(struct logwatch *lw)
{
    if (!lw)
        return;
    for (size_t i = 0; i < lw->nlogs; i++) {
        logtail_free(lw->logs[i].tail);
        logscan_free(lw->logs[i].scan);
    }
    free(lw->logs);
    free(lw);
}

/* Whether pid's files are not ours: it runs in another mount namespace,
 * or chrooted in ours. False when that cannot be told (no access to its
 * /proc entries): its /proc/PID/root is closed to us too. */
static bool other_root(int pid)
{
    char p[64], mine[64] = "", theirs[64] = "";
    struct stat a, b;
    ssize_t n = readlink("/proc/self/ns/mnt", mine, sizeof mine - 1);
    snprintf(p, sizeof p, "/proc/%d/ns/mnt", pid);
    ssize_t m = readlink(p, theirs, sizeof theirs - 1);
    if (n <= 0 || m <= 0)
        return false;
    mine[n] = theirs[m] = '\0';
    if (strcmp(mine, theirs) != 0)
        return true;
    snprintf(p, sizeof p, "/proc/%d/root", pid);
    return stat("/proc/self/root", &a) == 0 && stat(p, &b) == 0 &&
           (a.st_dev != b.st_dev || a.st_ino != b.st_ino);
}

/* Log why w cannot be followed, once for each new reason. */
static void report(struct watched_log *w, const char *target, int err)
{
    char pid[16];
    if (err == 0 || err == w->err) {
        w->err = err;
        return;
    }
    w->err = err;
    snprintf(pid, sizeof pid, "%d", w->root_pid);
    slog(SLOG_WARN, "cannot follow log", "target", target, "path", w->path, "root_pid", pid,
         "error", strerror(-err), NULL);
}

/* (Re)start w's follower on w->path: in the root of w->root_pid, taken now
 * (the follower keeps it; a later process has a root of its own), or in
 * our own filesystem. */
static void start(struct watched_log *w, const char *target)
{
    int rootfd = -1, rc = 0;

    logtail_free(w->tail);
    w->tail = NULL;
    if (w->root_pid > 0) {
        rootfd = rootfs_open_root(w->root_pid);
        if (rootfd < 0)
            rc = rootfd;
    }
    if (rc == 0)
        rc = logtail_new(rootfd, w->path, w->scan, &w->tail);
    if (rootfd >= 0)
        close(rootfd);
    report(w, target, rc);
}

void logwatch_target_pid(struct logwatch *lw, size_t target, int pid)
{
    int root_pid = pid > 0 && other_root(pid) ? pid : 0;
    const char *name = lw->cfg->targets[target].name;

    for (size_t i = 0; i < lw->nlogs; i++) {
        struct watched_log *w = &lw->logs[i];
        if (w->target != target)
            continue;
        /* the same file of our own filesystem: follow on, losing nothing */
        if (root_pid == 0 && w->root_pid == 0 && w->tail && strcmp(w->path, w->spec->path) == 0)
            continue;
        w->root_pid = root_pid;
        snprintf(w->path, sizeof w->path, "%s", w->spec->path);
        start(w, name);
    }
}

void logwatch_poll(struct logwatch *lw, int64_t mono_ns, int64_t wall_ns)
{
    for (size_t i = 0; i < lw->nlogs; i++) {
        struct watched_log *w = &lw->logs[i];
        if (!w->tail) {
            /* not followed yet, or it could not be: until its pid is known,
             * the target's own path is ours */
            snprintf(w->path, sizeof w->path, "%s", w->spec->path);
            start(w, lw->cfg->targets[w->target].name);
            if (!w->tail)
                continue;
        }
        if (logtail_poll(w->tail, mono_ns, wall_ns) != 0)
            continue; /* logtail keeps retrying; nothing to add here */
    }
}

size_t logwatch_fds(const struct logwatch *lw, int *fds, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < lw->nlogs && n < max; i++) {
        if (lw->logs[i].tail)
            fds[n++] = logtail_fd(lw->logs[i].tail);
    }
    return n;
}

void logwatch_ready(struct logwatch *lw, int fd, int64_t mono_ns, int64_t wall_ns)
{
    for (size_t i = 0; i < lw->nlogs; i++) {
        struct watched_log *w = &lw->logs[i];
        if (w->tail && logtail_fd(w->tail) == fd && logtail_process(w->tail, mono_ns, wall_ns) != 0)
            continue;
    }
}

double logwatch_errors_per_min(const struct logwatch *lw, size_t t, int64_t now_ns)
{
    double sum = 0;
    bool any = false;
    for (size_t i = 0; i < lw->nlogs; i++) {
        if (lw->logs[i].target != t)
            continue;
        any = true;
        sum += (double)logscan_errors_per_min(lw->logs[i].scan, now_ns);
    }
    return any ? sum : NAN;
}

const struct logscan *logwatch_scanner(const struct logwatch *lw, size_t t, size_t i,
                                       const char **path)
{
    size_t k = 0;
    for (size_t j = 0; j < lw->nlogs; j++) {
        if (lw->logs[j].target != t)
            continue;
        if (k++ == i) {
            if (path)
                *path = lw->logs[j].path;
            return lw->logs[j].scan;
        }
    }
    return NULL;
}
