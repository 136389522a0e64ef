/* sidecar/logtail.c - inotify and stat driven file following; see logtail.h. */
#include "logtail.h"

#include "rootfs.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory, for the name coming and going; each open file, for its
 * writes and for its own rename or deletion. */
static const uint32_t dir_events = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                   IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
static const uint32_t file_events = IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

/* One open file: the current one or a rotated one still being read. */
struct tfile {
    int fd; /* owned, -1: none */
    int wd; /* watch on its inode, -1: none */
    dev_t dev;
    ino_t ino;
    off_t off;              /* next byte to read */
    bool skip_line;         /* started mid-line: drop bytes up to the first '\n' */
    int64_t last_data_ns;   /* when data last came (or when it was rotated away) */
    struct logscan_src src; /* its partial last line */
};

struct logtail {
    int rootfd;           /* owned: the root path is resolved in (O_PATH), -1: our own */
    char *path;           /* owned */
    char *dir;            /* owned: the directory part of path */
    char *base;           /* owned: the name part */
    struct logscan *scan; /* borrowed */
    int ifd;              /* owned inotify instance */
    int dir_wd;           /* -1: not watched (yet) */
    struct tfile cur;
    struct tfile old[LOGTAIL_MAX_OLD]; /* oldest first */
    size_t nold;
    char *buf; /* owned, LOGTAIL_CHUNK bytes */
    struct logtail_stats st;
};

static void keep_err(int *rc, int err)
{
    if (err < 0 && *rc == 0)
        *rc = err;
}

static void tfile_init(struct tfile *f)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->wd = -1;
    logscan_src_init(&f->src);
}

static void unwatch(struct logtail *t, int *wd)
{
    /* Its only failure, EINVAL, means the kernel has already dropped the
     * watch (the inode is gone, IN_IGNORED is on its way): nothing to undo. */
    if (*wd >= 0)
        (void)inotify_rm_watch(t->ifd, *wd);
    *wd = -1;
}

/* Stop reading f. flush: its held partial line counts as a line. */
static void tfile_close(struct logtail *t, struct tfile *f, bool flush, int64_t mono_ns,
                        int64_t wall_ns)
{
    if (flush)
        logscan_flush(t->scan, &f->src, mono_ns, wall_ns);
    logscan_src_fini(&f->src);
    unwatch(t, &f->wd);
    if (f->fd >= 0)
        close(f->fd); /* read-only: nothing to lose; never retried on EINTR */
    tfile_init(f);
}

/* Read f from its offset to its end (or LOGTAIL_BUDGET) into the scanner. */
static int tfile_read(struct logtail *t, struct tfile *f, int64_t mono_ns, int64_t wall_ns)
{
    struct stat st;
    size_t budget = LOGTAIL_BUDGET;

    if (f->fd < 0)
        return 0;
    if (fstat(f->fd, &st) == -1)
        return -errno;
    if (st.st_size < f->off) {
        /* copytruncate: what was held belongs to the old contents */
        logscan_flush(t->scan, &f->src, mono_ns, wall_ns);
        f->off = 0;
        f->skip_line = false;
        t->st.truncations++;
    }
    while (budget > 0) {
        ssize_t n = pread(f->fd, t->buf, LOGTAIL_CHUNK, f->off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -errno;
        if (n == 0)
            return 0;
        f->off += n;
        f->last_data_ns = mono_ns;
        t->st.bytes += (uint64_t)n;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        const char *p = t->buf;
        size_t len = (size_t)n;
        if (f->skip_line) {
            const char *nl = memchr(p, '\n', len);
            if (!nl)
                continue;
            len -= (size_t)(nl + 1 - p);
            p = nl + 1;
            f->skip_line = false;
        }
        logscan_feed(t->scan, &f->src, p, len, mono_ns, wall_ns);
    }
    t->st.behind = true;
    return 0;
}

/* Watch the inode behind fd itself, not whatever a path names by now. */
static int watch_fd(struct logtail *t, int fd, uint32_t events)
{
    char proc[64];

    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return inotify_add_watch(t->ifd, proc, events);
}

/* In a target's root the directory is found by rootfs like the file (a
 * path given to inotify would be walked unconfined) and watched through
 * its descriptor. */
static int watch_dir(struct logtail *t)
{
    int wd, dfd = -1;

    if (t->rootfd < 0) {
        wd = inotify_add_watch(t->ifd, t->dir, dir_events);
        if (wd == -1)
            return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    } else {
        dfd = rootfs_open_dir(t->rootfd, t->dir);
        if (dfd < 0)
            return dfd == -ENOENT || dfd == -ENOTDIR ? 0 : dfd;
        wd = watch_fd(t, dfd, dir_events);
        if (wd == -1)
            wd = -errno;
        close(dfd);
        if (wd < 0)
            return wd;
    }
    t->dir_wd = wd;
    return 0;
}

/* The file the path names now, for reading: in the target's root through
 * rootfs (confined to it, regular files only, never opened otherwise);
 * in our own filesystem opened as named (the rules file names it), a
 * regular file too, and never blocking. Returns it or a negative errno. */
static int open_file(const struct logtail *t)
{
    struct stat st;
    int fd;

    if (t->rootfd >= 0)
        return rootfs_open(t->rootfd, t->path);
    do {
        fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1)
        return -errno;
    if (fstat(fd, &st) == -1) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

/* The current file was renamed, deleted or replaced: keep reading it for a
 * while from the old list. */
static void retire_cur(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
{
    if (t->nold == LOGTAIL_MAX_OLD) {
        tfile_close(t, &t->old[0], true, mono_ns, wall_ns);
        memmove(&t->old[0], &t->old[1], (LOGTAIL_MAX_OLD - 1) * sizeof t->old[0]);
        t->nold--;
    }
    t->old[t->nold] = t->cur;
    t->old[t->nold].last_data_ns = mono_ns;
    t->nold++;
    tfile_init(&t->cur);
    t->st.rotations++;
}

/* Make the file now at the path current; when the path names none, the
 * current file is rotated away. at_end: the first file, whose history is
 * not counted. */
static int open_path(struct logtail *t, bool at_end, int64_t mono_ns, int64_t wall_ns)
{
    struct stat st;
    int rc = 0;
    int fd = open_file(t);

    if (fd == -ENOENT || fd == -ENOTDIR) {
        if (t->cur.fd >= 0)
            retire_cur(t, mono_ns, wall_ns);
        return 0;
    }
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) == -1) {
        rc = -errno;
        goto close_fd;
    }
    if (t->cur.fd >= 0 && t->cur.dev == st.st_dev && t->cur.ino == st.st_ino)
        goto close_fd; /* still the same file */
    for (size_t i = 0; i < t->nold; i++) {
        if (t->old[i].dev == st.st_dev && t->old[i].ino == st.st_ino) {
            /* renamed back: carry on where it was, count nothing twice */
            struct tfile back = t->old[i];
            memmove(&t->old[i], &t->old[i + 1], (t->nold - i - 1) * sizeof t->old[0]);
            t->nold--;
            if (t->cur.fd >= 0)
                retire_cur(t, mono_ns, wall_ns);
            t->cur = back;
            rc = tfile_read(t, &t->cur, mono_ns, wall_ns);
            goto close_fd;
        }
    }
    if (t->cur.fd >= 0)
        retire_cur(t, mono_ns, wall_ns);
    t->cur.fd = fd;
    t->cur.dev = st.st_dev;
    t->cur.ino = st.st_ino;
    t->cur.off = at_end ? st.st_size : 0;
    t->cur.last_data_ns = mono_ns;
    t->cur.wd = watch_fd(t, fd, file_events); /* -1 (no /proc): logtail_poll still sees it */
    t->st.opens++;
    fd = -1;
    if (at_end && st.st_size > 0) {
        char last;
        ssize_t n;
        do
            n = pread(t->cur.fd, &last, 1, st.st_size - 1);
        while (n == -1 && errno == EINTR);
        t->cur.skip_line = n == 1 && last != '\n';
    } else if (!at_end) {
        rc = tfile_read(t, &t->cur, mono_ns, wall_ns);
    }
close_fd:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Has the path moved on from the current file? In a target's root there is
 * no confined stat(2): open_path opens what the path names and compares. */
static int check_path(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
{
    struct stat st;

    if (t->rootfd >= 0)
        return open_path(t, false, mono_ns, wall_ns);
    if (stat(t->path, &st) == -1) {
        if (errno != ENOENT && errno != ENOTDIR)
            return -errno;
        if (t->cur.fd >= 0)
            retire_cur(t, mono_ns, wall_ns);
        return 0;
    }
    if (t->cur.fd >= 0 && t->cur.dev == st.st_dev && t->cur.ino == st.st_ino)
        return 0;
    return open_path(t, false, mono_ns, wall_ns);
}

static void expire_old(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
{
    for (size_t i = 0; i < t->nold;) {
        if (mono_ns - t->old[i].last_data_ns >= LOGTAIL_DRAIN_NS) {
            tfile_close(t, &t->old[i], true, mono_ns, wall_ns);
            memmove(&t->old[i], &t->old[i + 1], (t->nold - i - 1) * sizeof t->old[0]);
            t->nold--;
        } else {
            i++;
        }
    }
}

/* Everything, in the order that loses nothing: the current file to its
 * end, the old ones, then whatever the path names now. */
static int check_all(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
{
    int rc = 0;

    if (t->dir_wd < 0)
        keep_err(&rc, watch_dir(t));
    keep_err(&rc, tfile_read(t, &t->cur, mono_ns, wall_ns));
    for (size_t i = 0; i < t->nold; i++)
        keep_err(&rc, tfile_read(t, &t->old[i], mono_ns, wall_ns));
    keep_err(&rc, check_path(t, mono_ns, wall_ns));
    expire_old(t, mono_ns, wall_ns);
    return rc;
}

int logtail_new(int rootfd, const char *path, struct logscan *scan, struct logtail **out)
{
    struct logtail *t;
    const char *slash;
    int ifd, rc, myroot = -1;

    if (!path || !*path || path[strlen(path) - 1] == '/')
        return -EINVAL;
    if (strlen(path) >= PATH_MAX)
        return -ENAMETOOLONG;
    if (rootfd >= 0) {
        myroot = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
        if (myroot == -1)
            return -errno;
    }
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd == -1) {
        rc = -errno;
        goto close_root;
    }
    t = xcalloc(1, sizeof *t);
    t->rootfd = myroot;
    t->path = xstrdup(path);
    slash = strrchr(path, '/');
    if (!slash) {
        t->dir = xstrdup(".");
        t->base = xstrdup(path);
    } else {
        t->dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
        t->base = xstrdup(slash + 1);
    }
    t->scan = scan;
    t->ifd = ifd;
    t->dir_wd = -1;
    tfile_init(&t->cur);
    t->buf = xmalloc(LOGTAIL_CHUNK);
    /* Watch first, then look: a file created in between is seen either way.
     * Errors here (no directory yet, no permission) are retried by
     * logtail_poll, which reports them. */
    (void)watch_dir(t);
    (void)open_path(t, true, 0, 0);
    *out = t;
    return 0;
close_root:
    if (myroot >= 0)
        close(myroot);
    return rc;
}

void logtail_free(struct logtail *t)
{
    if (!t)
        return;
    tfile_close(t, &t->cur, false, 0, 0);
    for (size_t i = 0; i < t->nold; i++)
        tfile_close(t, &t->old[i], false, 0, 0);
    close(t->ifd);
    if (t->rootfd >= 0)
        close(t->rootfd);
    free(t->buf);
    free(t->base);
    free(t->dir);
    free(t->path);
    free(t);
}

int logtail_fd(const struct logtail *t)
{
    return t->ifd;
}

int logtail_process(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
{
    char evbuf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool full = false, cur = false, old[LOGTAIL_MAX_OLD] = {false};
    int rc = 0;

    t->st.behind = false;
    for (;;) {
        ssize_t n = read(t->ifd, evbuf, sizeof evbuf);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            if (errno != EAGAIN)
                keep_err(&rc, -errno);
            break;
        }
        if (n == 0)
            break;
        for (char *p = evbuf; p < evbuf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                full = true;
            } else if (ev->wd == t->dir_wd) {
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    /* the directory itself went: watch the path's again */
                    if (!(ev->mask & IN_IGNORED))
                        unwatch(t, &t->dir_wd);
                    t->dir_wd = -1;
                    full = true;
                } else if (ev->len && strcmp(ev->name, t->base) == 0) {
                    full = true;
                }
            } else if (ev->wd == t->cur.wd) {
                if (ev->mask & IN_IGNORED)
                    t->cur.wd = -1;
                if (ev->mask & ~(unsigned)IN_MODIFY)
                    full = true;
                cur = true;
            } else {
                for (size_t i = 0; i < t->nold; i++) {
                    if (ev->wd == t->old[i].wd) {
                        old[i] = true;
                        if (ev->mask & IN_IGNORED)
                            t->old[i].wd = -1;
                    }
                }
            }
        }
    }
    if (full) {
        keep_err(&rc, check_all(t, mono_ns, wall_ns));
    } else {
        if (cur)
            keep_err(&rc, tfile_read(t, &t->cur, mono_ns, wall_ns));
        for (size_t i = 0; i < t->nold; i++) {
            if (old[i])
                keep_err(&rc, tfile_read(t, &t->old[i], mono_ns, wall_ns));
        }
    }
    return rc;
}

int logtail_poll(struct logtail *t, int64_t mono_ns, int64_t wall_ns)
{
    t->st.behind = false;
    return check_all(t, mono_ns, wall_ns);
}

void logtail_stats(const struct logtail *t, struct logtail_stats *out)
{
    *out = t->st;
    out->following = t->cur.fd >= 0;
    out->draining = t->nold;
}
