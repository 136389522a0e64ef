/* sidecar/procmeta.c - process metadata; see procmeta.h. */
#include "procmeta.h"

#include "cgroup.h"
#include "fsread.h"
#include "procparse.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELF_HEAD_BYTES (64 * 1024)

void procmeta_fini(struct proc_meta *meta)
{
    free(meta->cmdline);
    free(meta->exe);
    meta->cmdline = meta->exe = NULL;
}

void procmeta_copy(struct proc_meta *dst, const struct proc_meta *src)
{
    *dst = *src;
    dst->cmdline = xstrdup(src->cmdline ? src->cmdline : "");
    dst->exe = xstrdup(src->exe ? src->exe : "");
}

int64_t procmeta_boot_wall_ns(void)
{
    static char buf[16384];
    ssize_t n = fsread("/proc/stat", buf, sizeof buf);
    if (n <= 0)
        return 0;
    const char *p = strstr(buf, "\nbtime ");
    long long btime = 0;
    if (!p || sscanf(p + 7, "%lld", &btime) != 1)
        return 0;
    return btime * 1000000000LL;
}

uint64_t procmeta_start_ticks(int pid)
{
    char p[64], buf[1024];
    struct proc_stat st;
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    ssize_t n = fsread(p, buf, sizeof buf);
    if (n <= 0 || procparse_stat(buf, (size_t)n, &st) != 0)
        return 0;
    return st.starttime;
}

static char *read_cmdline(int pid)
{
    char p[64];
    char *buf = xmalloc(8192);
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    ssize_t n = fsread(p, buf, 8192);
    if (n < 0)
        n = 0;
    /* NUL-separated arguments; the trailing NUL is not an argument */
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\0')
            buf[i] = ' ';
    }
    buf[n] = '\0';
    return buf;
}

static void read_build_id(int pid, struct proc_meta *meta)
{
    char p[64];
    unsigned char *head = xmalloc(ELF_HEAD_BYTES);
    size_t used = 0;
    int fd;

    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        meta->exe_errno = errno;
        goto out;
    }
    while (used < ELF_HEAD_BYTES) {
        ssize_t r = read(fd, head + used, ELF_HEAD_BYTES - used);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        used += (size_t)r;
    }
    close(fd);
    if (procparse_elf_build_id(head, used, meta->build_id, sizeof meta->build_id) != 0)
        meta->build_id[0] = '\0';
out:
    free(head);
}

int procmeta_read(int pid, struct proc_meta *meta)
{
    char p[64], buf[4096];
    struct proc_stat st;
    struct proc_status ps;
    ssize_t n;

    memset(meta, 0, sizeof *meta);
    meta->pid = pid;
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    n = fsread(p, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    if (procparse_stat(buf, (size_t)n, &st) != 0)
        return -ESRCH;
    meta->ppid = st.ppid;
    snprintf(meta->comm, sizeof meta->comm, "%s", st.comm);
    meta->start_ticks = st.starttime;
    long hz = sysconf(_SC_CLK_TCK);
    meta->start_wall_ns = procmeta_boot_wall_ns() +
                          (int64_t)(st.starttime * (1000000000ULL / (uint64_t)(hz > 0 ? hz : 100)));
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    n = fsread(p, buf, sizeof buf);
    if (n > 0 && procparse_status(buf, (size_t)n, &ps) == 0)
        meta->uid = ps.uid;
    meta->cmdline = read_cmdline(pid);

    char link[4096];
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    n = readlink(p, link, sizeof link - 1);
    if (n >= 0) {
        link[n] = '\0';
        meta->exe = xstrdup(link);
        read_build_id(pid, meta);
    } else {
        meta->exe_errno = errno;
        meta->exe = xstrdup("");
    }
    struct cgroup_loc loc;
    if (cgroup_locate(pid, &loc) == 0) {
        snprintf(meta->cgroup, sizeof meta->cgroup, "%s", loc.path);
        snprintf(meta->container_id, sizeof meta->container_id, "%s", loc.container_id);
        cgroup_loc_fini(&loc);
    }
    return 0;
}
