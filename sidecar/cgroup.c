/* sidecar/cgroup.c - locate and read a process's cgroup; see cgroup.h. */
#include "cgroup.h"

#include "fsread.h"
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"

static const struct cgroup_dir NO_DIR = {.fd = -1};

/* The one failure that makes cgroup_locate fail: any other means "not
 * visible" (no such file, no access, a kernel without openat2). */
static bool out_of_fds(int err)
{
    return err == -EMFILE || err == -ENFILE;
}

/* Open name in d for reading; confined when d is in the target's root. */
static int open_in(const struct cgroup_dir *d, const char *name)
{
    if (d->in_root)
        return rootfs_open_beneath(d->fd, name);
    int fd;
    do {
        fd = openat(d->fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd == -1 && errno == EINTR);
    return fd == -1 ? -errno : fd;
}

static ssize_t read_in(const struct cgroup_dir *d, const char *name, char *buf, size_t len)
{
    int fd = open_in(d, name);
    if (fd < 0)
        return fd;
    ssize_t n = fsread_fd(fd, buf, len);
    close(fd);
    return n;
}

/* Whether d holds name (a file of the controller we look for). Returns 1,
 * 0, or a negative errno when out of descriptors. */
static int holds(const struct cgroup_dir *d, const char *name)
{
    int fd = open_in(d, name);
    if (fd < 0)
        return out_of_fds(fd) ? fd : 0;
    close(fd);
    return 1;
}

/* Take fd (a directory, or a negative errno) as *d if it is a cgroupfs
 * directory holding probe; close it otherwise. Returns 0, or a negative
 * errno when out of descriptors. */
static int keep_dir(struct cgroup_dir *d, int fd, bool in_root, const char *probe)
{
    struct cgroup_dir cand = {.fd = fd, .in_root = in_root};
    struct statfs sf;
    struct stat st;
    int rc = 0;

    if (fd < 0)
        return out_of_fds(fd) ? fd : 0;
    if (fstatfs(fd, &sf) == -1 || fstat(fd, &st) == -1)
        goto drop;
    if (sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC)
        goto drop; /* whatever the target put there, not a cgroup */
    rc = holds(&cand, probe);
    if (rc != 1)
        goto drop;
    cand.dev = st.st_dev;
    cand.ino = st.st_ino;
    *d = cand;
    return 0;
drop:
    close(fd);
    return rc < 0 ? rc : 0;
}

/* Whose cgroup directories cgroup_locate looks for: the target's root is
 * opened at the first path outside our view. */
struct seek {
    int pid;
    int rootfd; /* -1 until opened */
};

/* Set *d, unless already set, to base + path in our own view, or to base
 * in the target's root when path is outside our view (the container's own
 * cgroup is what it sees there), if that is a cgroup holding probe.
 * Returns 0, or a negative errno when out of descriptors. */
static int try_dir(struct cgroup_dir *d, struct seek *sk, const char *base, const char *path,
                   const char *probe)
{
    if (d->fd >= 0)
        return 0;
    if (procparse_cgroup_outside(path)) {
        if (sk->rootfd < 0)
            sk->rootfd = rootfs_open_root(sk->pid);
        if (sk->rootfd < 0)
            return out_of_fds(sk->rootfd) ? sk->rootfd : 0;
        return keep_dir(d, rootfs_open_dir(sk->rootfd, base), true, probe);
    }
    char dir[PATH_MAX];
    int w = snprintf(dir, sizeof dir, "%s%s", base, strcmp(path, "/") == 0 ? "" : path);
    if (w < 0 || (size_t)w >= sizeof dir)
        return 0;
    int fd;
    do {
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    return keep_dir(d, fd == -1 ? -errno : fd, false, probe);
}

int cgroup_locate(int pid, struct cgroup_loc *out)
{
    char buf[4096], p[64];
    struct proc_cgroup pc;
    struct cgroup_loc loc = {.mem = NO_DIR, .cpu = NO_DIR};
    struct seek sk = {.pid = pid, .rootfd = -1};
    int rc = 0;

    snprintf(p, sizeof p, "/proc/%d/cgroup", pid);
    ssize_t n = fsread(p, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    if (procparse_cgroup(buf, (size_t)n, &pc) != 0)
        return -EINVAL;

    /* cgroup v2: the unified hierarchy at /sys/fs/cgroup or, on hybrid
     * hosts, /sys/fs/cgroup/unified; both controllers in one directory */
    if (pc.v2[0]) {
        snprintf(loc.path, sizeof loc.path, "%s", pc.v2);
        rc = try_dir(&loc.mem, &sk, CG_ROOT, pc.v2, "memory.current");
        if (rc == 0)
            rc = try_dir(&loc.mem, &sk, CG_ROOT "/unified", pc.v2, "memory.current");
        loc.v2 = loc.mem.fd >= 0;
        int cpu = rc == 0 && loc.v2 ? holds(&loc.mem, "cpu.stat") : 0;
        if (cpu == 1)
            loc.cpu = loc.mem;
        else if (cpu < 0)
            rc = cpu;
    }
    /* cgroup v1 (or hybrid without v2 controllers) */
    if (rc == 0 && !loc.v2) {
        if (pc.v1_memory[0]) {
            snprintf(loc.path, sizeof loc.path, "%s", pc.v1_memory);
            rc = try_dir(&loc.mem, &sk, CG_ROOT "/memory", pc.v1_memory, "memory.usage_in_bytes");
        }
        if (rc == 0 && pc.v1_cpu[0]) {
            char base[128];
            snprintf(base, sizeof base, CG_ROOT "/%s", pc.v1_cpu_mount);
            rc = try_dir(&loc.cpu, &sk, base, pc.v1_cpu, "cpu.stat");
            if (rc == 0)
                rc = try_dir(&loc.cpu, &sk, CG_ROOT "/cpu", pc.v1_cpu, "cpu.stat");
        }
    }
    if (sk.rootfd >= 0)
        close(sk.rootfd);
    if (rc != 0) {
        cgroup_loc_fini(&loc);
        return rc;
    }
    procparse_container_id(loc.path, loc.container_id, sizeof loc.container_id);
    *out = loc;
    return 0;
}

void cgroup_loc_fini(struct cgroup_loc *loc)
{
    if (loc->cpu.fd >= 0 && loc->cpu.fd != loc->mem.fd)
        close(loc->cpu.fd);
    if (loc->mem.fd >= 0)
        close(loc->mem.fd);
    loc->mem = loc->cpu = NO_DIR;
}

static bool same_dir(const struct cgroup_dir *a, const struct cgroup_dir *b)
{
    if (a->fd < 0 || b->fd < 0)
        return a->fd < 0 && b->fd < 0;
    return a->dev == b->dev && a->ino == b->ino;
}

bool cgroup_same(const struct cgroup_loc *a, const struct cgroup_loc *b)
{
    return a->v2 == b->v2 && same_dir(&a->mem, &b->mem) && same_dir(&a->cpu, &b->cpu);
}

int cgroup_read(const struct cgroup_loc *loc, struct cgroup_sample *out)
{
    char buf[1024];
    ssize_t n;
    uint64_t v;

    memset(out, 0, sizeof *out);
    out->mem_limit = UINT64_MAX;
    out->psi_cpu = out->psi_memory = NAN;

    if (loc->mem.fd >= 0) {
        n = read_in(&loc->mem, loc->v2 ? "memory.current" : "memory.usage_in_bytes", buf,
                    sizeof buf);
        if (n == -ENOENT)
            return -ENOENT; /* the cgroup itself is gone */
        if (n > 0 && procparse_u64_file(buf, (size_t)n, &v) == 0) {
            out->have_mem = true;
            out->mem_usage = v;
        }
        n = read_in(&loc->mem, loc->v2 ? "memory.max" : "memory.limit_in_bytes", buf, sizeof buf);
        if (n > 0 && procparse_u64_file(buf, (size_t)n, &v) == 0)
            out->mem_limit = v;
        n = read_in(&loc->mem, loc->v2 ? "memory.events" : "memory.oom_control", buf, sizeof buf);
        if (n > 0 && procparse_memory_events(buf, (size_t)n, &out->events) != 0)
            out->events.have = false;
        if (loc->v2) {
            double psi;
            n = read_in(&loc->mem, "memory.pressure", buf, sizeof buf);
            if (n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0)
                out->psi_memory = psi;
        }
    }
    if (loc->cpu.fd >= 0) {
        n = read_in(&loc->cpu, "cpu.stat", buf, sizeof buf);
        if (n > 0 && procparse_cpu_stat(buf, (size_t)n, &out->cpu) != 0)
            out->cpu.have = false;
        if (loc->v2) {
            double psi;
            n = read_in(&loc->cpu, "cpu.max", buf, sizeof buf);
            if (n > 0 && procparse_cpu_max(buf, (size_t)n, &out->cpu_quota) != 0)
                out->cpu_quota = 0;
            n = read_in(&loc->cpu, "cpu.pressure", buf, sizeof buf);
            if (n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0)
                out->psi_cpu = psi;
        } else {
            char b2[64];
            uint64_t per = 0;
            n = read_in(&loc->cpu, "cpu.cfs_quota_us", buf, sizeof buf);
            ssize_t n2 = read_in(&loc->cpu, "cpu.cfs_period_us", b2, sizeof b2);
            long long quota = 0;
            if (n > 0 && sscanf(buf, "%lld", &quota) == 1 && n2 > 0 &&
                procparse_u64_file(b2, (size_t)n2, &per) == 0)
                out->cpu_quota = procparse_cfs_quota(quota, (long long)per);
        }
    }
    return 0;
}

int cgroup_read_fast(const struct cgroup_loc *loc, struct cgroup_sample *out)
{
    char buf[1024];
    ssize_t n;
    uint64_t v;
    double psi;

    if (loc->mem.fd >= 0) {
        n = read_in(&loc->mem, loc->v2 ? "memory.current" : "memory.usage_in_bytes", buf,
                    sizeof buf);
        if (n == -ENOENT)
            return -ENOENT;
        out->have_mem = n > 0 && procparse_u64_file(buf, (size_t)n, &v) == 0;
        if (out->have_mem)
            out->mem_usage = v;
        if (loc->v2) {
            n = read_in(&loc->mem, "memory.pressure", buf, sizeof buf);
            out->psi_memory = n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0 ? psi : NAN;
        }
    }
    if (loc->cpu.fd >= 0) {
        n = read_in(&loc->cpu, "cpu.stat", buf, sizeof buf);
        if (n <= 0 || procparse_cpu_stat(buf, (size_t)n, &out->cpu) != 0)
            out->cpu.have = false;
        if (loc->v2) {
            n = read_in(&loc->cpu, "cpu.pressure", buf, sizeof buf);
            out->psi_cpu = n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0 ? psi : NAN;
        }
    }
    return 0;
}

unsigned cgroup_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}
