/* sidecar/rootfs.c - confined opens in a target's filesystem; see rootfs.h. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define READ_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

static int openat2_retry(int dirfd, const char *path, const struct open_how *how)
{
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, how, sizeof *how);
    } while (fd == -1 && errno == EINTR);
    return fd == -1 ? -errno : (int)fd;
}

/* The regular file behind fd (an O_PATH descriptor, closed here) opened for
 * reading, or -EINVAL. The type is checked before anything is opened: an
 * open(2) of a device runs its driver (a watchdog starts, a tape rewinds,
 * a serial line raises DTR) and one of a FIFO meets its writer, whatever
 * stakeout does with the descriptor afterwards. The reopen goes through
 * /proc/self/fd, which names the inode fd holds, not a path that could have
 * been swapped since. */
static int reopen_regular(int fd)
{
    struct stat st;
    char self[64];
    int rfd, err;

    if (fd < 0)
        return fd;
    if (fstat(fd, &st) == -1) {
        err = -errno;
        close(fd);
        return err;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    do {
        rfd = open(self, READ_FLAGS);
    } while (rfd == -1 && errno == EINTR);
    err = rfd == -1 ? -errno : rfd;
    close(fd);
    return err;
}

int rootfs_open_root(int pid)
{
    char path[64];
    int fd;
    snprintf(path, sizeof path, "/proc/%d/root", pid);
    do {
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    return fd == -1 ? -errno : fd;
}

int rootfs_open(int rootfd, const char *path)
{
    if (rootfd < 0)
        return -EBADF;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    return reopen_regular(openat2_retry(rootfd, path, &how));
}

int rootfs_open_dir(int rootfd, const char *path)
{
    if (rootfd < 0)
        return -EBADF;
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    return openat2_retry(rootfd, path, &how);
}

int rootfs_open_beneath(int dirfd, const char *name)
{
    if (dirfd < 0)
        return -EBADF;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    return reopen_regular(openat2_retry(dirfd, name, &how));
}
