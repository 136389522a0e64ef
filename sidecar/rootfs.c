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

/* A regular file, or -EINVAL (and fd closed). */
static int regular_only(int fd)
{
    struct stat st;
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
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
    struct open_how how = {.flags = READ_FLAGS,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    return regular_only(openat2_retry(rootfd, path, &how));
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
    struct open_how how = {.flags = READ_FLAGS,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    return regular_only(openat2_retry(dirfd, name, &how));
}
