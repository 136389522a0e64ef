/* sidecar/fsread.c - small-file reads; see fsread.h. */
#include "fsread.h"

#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

ssize_t fsread_fd(int fd, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return -EINVAL;
    while (used < len - 1) {
        ssize_t r = read(fd, buf + used, len - 1 - used);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            buf[used] = '\0';
            return -errno;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    buf[used] = '\0';
    return (ssize_t)used;
}

ssize_t fsread_at(int dirfd, const char *name, char *buf, size_t len)
{
    int fd;

    if (len == 0)
        return -EINVAL;
    do {
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1)
        return -errno;
    ssize_t rc = fsread_fd(fd, buf, len);
    close(fd);
    return rc;
}

ssize_t fsread(const char *path, char *buf, size_t len)
{
    return fsread_at(AT_FDCWD, path, buf, len);
}

int fsread_alloc(const char *path, size_t max, char **out, size_t *outlen)
{
    size_t cap = max < 16384 ? max : 16384, len = 0;
    int fd, rc = 0;

    if (max < 2)
        return -EINVAL;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd == -1 && errno == EINTR);
    if (fd == -1)
        return -errno;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 == cap) { /* full but for the NUL */
            if (cap >= max)
                break;
            cap = cap > max / 2 ? max : 2 * cap;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}
