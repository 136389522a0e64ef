/* sidecar/privs.c - capabilities, no_new_privs and trust in the rules file; see
 * privs.h. */
#include "privs.h"

#include "errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38 /* Linux 5.8; older headers lack the name */
#endif

int privs_drop(bool dac_read_search, char *kept, size_t len)
{
    /* keep a capability only if we hold it now: CAP_SYS_PTRACE for CPU
     * profiles and memory by ptrace, CAP_PERFMON for memory by syscall
     * tracepoints, CAP_DAC_READ_SEARCH when asked for (logs of another user) */
    static const cap_value_t candidates[3] = {CAP_SYS_PTRACE, CAP_PERFMON, CAP_DAC_READ_SEARCH};
    cap_value_t want[3];
    int nwant = 0;
    int rc = 0;
    cap_t cur = cap_get_proc();
    cap_t next = NULL;

    if (!cur)
        return -errno;
    for (int i = 0; i < (dac_read_search ? 3 : 2); i++) {
        cap_flag_value_t v = CAP_CLEAR;
        if (CAP_IS_SUPPORTED(candidates[i]) &&
            cap_get_flag(cur, candidates[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET)
            want[nwant++] = candidates[i];
    }
    /* the bounding set can only shrink with CAP_SETPCAP, which we may hold */
    cap_flag_value_t setpcap = CAP_CLEAR;
    if (cap_get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap) == 0 && setpcap == CAP_SET) {
        for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
            bool keep = false;
            for (int i = 0; i < nwant; i++)
                keep |= want[i] == c;
            if (!keep && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) != 0 && errno != EINVAL) {
                rc = -errno;
                goto out;
            }
        }
    }
    next = cap_init();
    if (!next) {
        rc = -errno;
        goto out;
    }
    if (nwant > 0 && (cap_set_flag(next, CAP_PERMITTED, nwant, want, CAP_SET) != 0 ||
                      cap_set_flag(next, CAP_EFFECTIVE, nwant, want, CAP_SET) != 0)) {
        rc = -errno;
        goto out;
    }
    if (cap_set_proc(next) != 0) {
        rc = -errno;
        goto out;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        rc = -errno;
        goto out;
    }
    snprintf(kept, len, "%s", nwant ? "" : "none");
    for (int i = 0; i < nwant; i++) {
        char *name = cap_to_name(want[i]);
        size_t at = strlen(kept);
        snprintf(kept + at, len - at, "%s%s", i ? "," : "", name ? name : "?");
        cap_free(name);
    }
out:
    if (next)
        cap_free(next);
    cap_free(cur);
    return rc;
}

static bool trusted_owner(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

/* One directory, dir (absolute); see privs_check_rules_fd. */
static int check_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    struct statvfs vfs;
    int rc = 0;
    /* O_NOFOLLOW: dir is a resolved path; a symlink there now was swapped in */
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (dfd == -1 && (errno == ENOTDIR || errno == ELOOP || errno == ENOENT)) {
        errbuf_set(err, errlen, "directory %s changed while it was checked", dir);
        return -EAGAIN;
    }
    if (dfd == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot open directory %s: %s", dir, strerror(errno));
        return rc;
    }
    if (fstat(dfd, &st) == -1 || fstatvfs(dfd, &vfs) == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot stat directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if (vfs.f_flag & ST_RDONLY)
        goto out;
    if (!trusted_owner(st.st_uid)) {
        rc = -EPERM;
        errbuf_set(err, errlen,
                   "directory %s is owned by uid %u, not by root or stakeout's user (uid %u): "
                   "its owner can put another rules file in its place; chown it",
                   dir, (unsigned)st.st_uid, (unsigned)geteuid());
    } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        rc = -EPERM;
        errbuf_set(err, errlen,
                   "directory %s is writable by %s: they can put another rules file in its "
                   "place; chmod go-w it",
                   dir, (st.st_mode & S_IWOTH) ? "other users" : "its group");
    }
out:
    close(dfd);
    return rc;
}

/* The directory part of path, resolved (realpath), into out[PATH_MAX]. */
static int dir_of(const char *path, char *out)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return -ENAMETOOLONG;
    return realpath(dir, out) ? 0 : -errno;
}

/* The absolute path p becomes the directory that holds it. */
static void cut_to_parent(char *p)
{
    char *slash = strrchr(p, '/');

    if (slash == p)
        slash[1] = '\0'; /* something in / */
    else
        *slash = '\0';
}

/* dir (absolute, resolved) and every directory above it. */
static int check_dirs_up(const char *dir, char *err, size_t errlen)
{
    char p[PATH_MAX];
    int rc;

    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        rc = check_dir(p, err, errlen);
        if (rc != 0 || strcmp(p, "/") == 0)
            return rc;
        cut_to_parent(p);
    }
}

int privs_check_rules_fd(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st, now;
    char self[64], file[PATH_MAX], fdir[PATH_MAX], ndir[PATH_MAX];
    ssize_t n;
    int rc;

    if (fstat(fd, &st) == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot stat the rules file: %s", strerror(errno));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "the rules file is not a regular file");
        return -EPERM;
    }
    if (!trusted_owner(st.st_uid)) {
        errbuf_set(err, errlen,
                   "the rules file is owned by uid %u, not by root or stakeout's user (uid %u): "
                   "whoever owns it decides what stakeout attaches to; chown it",
                   (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        errbuf_set(err, errlen,
                   "the rules file is writable by %s: whoever can write it decides what "
                   "stakeout attaches to; chmod go-w it",
                   (st.st_mode & S_IWOTH) ? "other users" : "its group");
        return -EPERM;
    }

    /* Where the file is now: its own path, checked to still name it. */
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    n = readlink(self, file, sizeof file - 1);
    if (n == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot tell where the rules file is (%s): %s", self,
                   strerror(errno));
        return rc;
    }
    file[n] = '\0';
    if (file[0] != '/' || lstat(file, &now) == -1 || now.st_dev != st.st_dev ||
        now.st_ino != st.st_ino) {
        errbuf_set(err, errlen, "the rules file was moved or removed while it was checked");
        return -EAGAIN;
    }
    snprintf(fdir, sizeof fdir, "%s", file);
    cut_to_parent(fdir);
    rc = check_dirs_up(fdir, err, errlen);
    if (rc != 0)
        return rc;

    /* The directory of the name stakeout opens at every reload. */
    rc = dir_of(path, ndir);
    if (rc != 0) {
        errbuf_set(err, errlen, "cannot resolve the directory of %s: %s", path, strerror(-rc));
        return rc == -ENOENT ? -EAGAIN : rc;
    }
    if (strcmp(ndir, fdir) != 0)
        rc = check_dirs_up(ndir, err, errlen);
    return rc;
}
