/* sidecar/logwatch.c - all targets' logs; see logwatch.h. */
#include "logwatch.h"

#include "logtail.h"
#include "procparse.h"
#include "rootfs.h"
#include "slog.h"
#include "xalloc.h"

#include <errno.h>
#include <glob.h>
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
    int pid;                       /* the target's process; 0: not known yet */
    bool in_root;                  /* the path is in pid's root, not in ours */
    char container_id[65];         /* pid's, for a host path; "": none */
    char pod_uid[40];
    int tail_root;                 /* whose root tail resolves its path in; 0: ours */
    int err;                       /* why it cannot be followed, as last logged; 0: it is */
    char path[PATH_MAX];           /* what tail follows */
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

/* Log why w cannot be followed (why, or err's text), once for each new
 * reason; err 0: it is followed. */
static void report(struct watched_log *w, const char *target, int err, const char *why)
{
    char pid[16];
    if (err == 0 || err == w->err) {
        w->err = err;
        return;
    }
    w->err = err;
    snprintf(pid, sizeof pid, "%d", w->pid);
    slog(SLOG_WARN, "cannot follow log", "target", target, "path", w->spec->path, "pid", pid,
         "error", why ? why : strerror(-err), NULL);
}

/* A host log's path with the target's ids put in. Returns 0, -ENODATA
 * (why set) when the target has no such id, or -ENAMETOOLONG. */
static int put_ids(const struct watched_log *w, char *out, size_t len, const char **why)
{
    const struct {
        const char *name, *value, *missing;
    } ids[] = {
        {LOG_PLACEHOLDER_CONTAINER_ID, w->container_id, "its cgroup path names no container id"},
        {LOG_PLACEHOLDER_POD_UID, w->pod_uid, "its cgroup path names no pod uid"},
    };
    size_t used = 0;

    for (const char *p = w->spec->path; *p;) {
        const char *value = NULL;
        size_t skip = 1;
        for (size_t i = 0; i < sizeof ids / sizeof ids[0] && !value; i++) {
            if (strncmp(p, ids[i].name, strlen(ids[i].name)) == 0) {
                value = ids[i].value;
                skip = strlen(ids[i].name);
                if (!*value) {
                    *why = ids[i].missing;
                    return -ENODATA;
                }
            }
        }
        size_t n = value ? strlen(value) : 1;
        if (used + n >= len)
            return -ENAMETOOLONG;
        memcpy(out + used, value ? value : p, n);
        used += n;
        p += skip;
    }
    out[used] = '\0';
    return 0;
}

/* Of the files pattern matches, the most recently modified (the later in
 * glob's order on a tie): a kubelet keeps the log of a container's
 * previous run next to the current one. -ENOENT when none matches yet. */
static int newest_match(const char *pattern, char *out, size_t len)
{
    glob_t g;
    struct timespec best = {0, 0};
    const char *pick = NULL;
    int rc = glob(pattern, 0, NULL, &g);

    if (rc == GLOB_NOMATCH)
        return -ENOENT;
    if (rc != 0)
        return rc == GLOB_NOSPACE ? -ENOMEM : -EIO;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        if (stat(g.gl_pathv[i], &st) == -1 || !S_ISREG(st.st_mode))
            continue;
        if (!pick || st.st_mtim.tv_sec > best.tv_sec ||
            (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec >= best.tv_nsec)) {
            pick = g.gl_pathv[i];
            best = st.st_mtim;
        }
    }
    rc = !pick ? -ENOENT : strlen(pick) >= len ? -ENAMETOOLONG : 0;
    if (rc == 0)
        snprintf(out, len, "%s", pick);
    globfree(&g);
    return rc;
}

/* What w's log names now: the target's path; or on the host side its
 * pattern with the target's ids put in, and the newest match when it is a
 * glob (a plain path is followed before it exists). */
static int log_path(const struct watched_log *w, char *out, size_t len, const char **why)
{
    char pattern[PATH_MAX];
    int rc;

    *why = NULL;
    if (w->spec->root == LOG_ROOT_TARGET) {
        snprintf(out, len, "%s", w->spec->path);
        return 0;
    }
    rc = put_ids(w, pattern, sizeof pattern, why);
    if (rc != 0)
        return rc;
    if (!strpbrk(pattern, "*?[")) {
        snprintf(out, len, "%s", pattern);
        return 0;
    }
    rc = newest_match(pattern, out, len);
    if (rc == -ENOENT)
        *why = "no file matches the pattern yet";
    return rc;
}

/* Follow what w's log names now. A file of our own filesystem already
 * followed is followed on (nothing lost); otherwise the follower starts
 * anew, in pid's root when the path is there (taken now and kept by the
 * follower: a later process has a root of its own). */
static void follow(struct watched_log *w, const char *target)
{
    char path[PATH_MAX];
    const char *why = NULL;
    int rootfd = -1, root = w->in_root ? w->pid : 0;
    int rc = log_path(w, path, sizeof path, &why);

    if (rc == 0 && w->tail && root == 0 && w->tail_root == 0 && strcmp(path, w->path) == 0)
        return;
    logtail_free(w->tail);
    w->tail = NULL;
    if (rc == 0 && root > 0) {
        rootfd = rootfs_open_root(root);
        if (rootfd < 0)
            rc = rootfd;
    }
    if (rc == 0) {
        snprintf(w->path, sizeof w->path, "%s", path);
        w->tail_root = root;
        rc = logtail_new(rootfd, w->path, w->scan, &w->tail);
    }
    if (rootfd >= 0)
        close(rootfd);
    /* before its process is known a target has no ids: nothing to say */
    if (!(rc == -ENODATA && w->pid == 0))
        report(w, target, rc, why);
}

void logwatch_target_pid(struct logwatch *lw, size_t target, int pid, const char *cgroup)
{
    bool in_root = pid > 0 && other_root(pid);
    char cid[sizeof lw->logs[0].container_id], uid[sizeof lw->logs[0].pod_uid];

    procparse_container_id(cgroup, cid, sizeof cid);
    procparse_pod_uid(cgroup, uid, sizeof uid);
    for (size_t i = 0; i < lw->nlogs; i++) {
        struct watched_log *w = &lw->logs[i];
        if (w->target != target)
            continue;
        w->pid = pid > 0 ? pid : 0;
        w->in_root = in_root && w->spec->root == LOG_ROOT_TARGET;
        snprintf(w->container_id, sizeof w->container_id, "%s", cid);
        snprintf(w->pod_uid, sizeof w->pod_uid, "%s", uid);
        w->err = 0; /* a new process: say again what goes wrong */
        follow(w, lw->cfg->targets[target].name);
    }
}

void logwatch_poll(struct logwatch *lw, int64_t mono_ns, int64_t wall_ns)
{
    for (size_t i = 0; i < lw->nlogs; i++) {
        struct watched_log *w = &lw->logs[i];
        if (!w->tail) {
            /* not followed yet (until its pid is known, a target's own
             * path is ours), or it could not be: try again */
            follow(w, lw->cfg->targets[w->target].name);
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
