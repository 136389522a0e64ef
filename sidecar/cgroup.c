/* sidecar/cgroup.c - locate and read a process's cgroup; see cgroup.h. */
#include "cgroup.h"

#include "fsread.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"

static bool has_file(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, R_OK) == 0;
}

/* dir = base + path, if it holds the probe file. */
static bool try_dir(char *dir, size_t len, const char *base, const char *path, const char *probe)
{
    if (procparse_cgroup_outside(path))
        return false; /* outside our cgroup namespace: not under our mount */
    int w = snprintf(dir, len, "%s%s", base, strcmp(path, "/") == 0 ? "" : path);
    if (w < 0 || (size_t)w >= len)
        return false;
    return has_file(dir, probe);
}

int cgroup_locate(int pid, struct cgroup_loc *out)
{
    char buf[4096], p[64];
    struct proc_cgroup pc;
    ssize_t n;

    memset(out, 0, sizeof *out);
    snprintf(p, sizeof p, "/proc/%d/cgroup", pid);
    n = fsread(p, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    if (procparse_cgroup(buf, (size_t)n, &pc) != 0)
        return -EINVAL;

    /* cgroup v2: the unified hierarchy at /sys/fs/cgroup or, on hybrid
     * hosts, /sys/fs/cgroup/unified; or the container's own view. */
    if (pc.v2[0]) {
        static const char *bases[] = {CG_ROOT, CG_ROOT "/unified"};
        snprintf(out->path, sizeof out->path, "%s", pc.v2);
        for (size_t i = 0; i < 2 && !out->mem_dir[0]; i++) {
            if (try_dir(out->mem_dir, sizeof out->mem_dir, bases[i], pc.v2, "memory.current"))
                out->v2 = true;
            else
                out->mem_dir[0] = '\0';
        }
        if (!out->mem_dir[0] && procparse_cgroup_outside(pc.v2)) {
            char root[64];
            snprintf(root, sizeof root, "/proc/%d/root" CG_ROOT, pid);
            if (has_file(root, "memory.current")) {
                snprintf(out->mem_dir, sizeof out->mem_dir, "%s", root);
                out->v2 = true;
            }
        }
        if (out->v2) {
            snprintf(out->cpu_dir, sizeof out->cpu_dir, "%s", out->mem_dir);
            if (!has_file(out->cpu_dir, "cpu.stat"))
                out->cpu_dir[0] = '\0';
        }
    }
    /* cgroup v1 (or hybrid without v2 controllers) */
    if (!out->v2) {
        char root[64];
        snprintf(root, sizeof root, "/proc/%d/root", pid);
        if (pc.v1_memory[0]) {
            /* a container's own memory cgroup is its /sys/fs/cgroup/memory */
            const char *base = procparse_cgroup_outside(pc.v1_memory) ? root : "";
            char dir[128];
            snprintf(dir, sizeof dir, "%s" CG_ROOT "/memory", base);
            if (!try_dir(out->mem_dir, sizeof out->mem_dir, dir,
                         base[0] ? "/" : pc.v1_memory, "memory.usage_in_bytes"))
                out->mem_dir[0] = '\0';
            snprintf(out->path, sizeof out->path, "%s", pc.v1_memory);
        }
        if (pc.v1_cpu[0]) {
            const char *base = procparse_cgroup_outside(pc.v1_cpu) ? root : "";
            const char *path = base[0] ? "/" : pc.v1_cpu;
            char dir[192], cpu[128];
            snprintf(dir, sizeof dir, "%s" CG_ROOT "/%s", base, pc.v1_cpu_mount);
            snprintf(cpu, sizeof cpu, "%s" CG_ROOT "/cpu", base);
            if (!try_dir(out->cpu_dir, sizeof out->cpu_dir, dir, path, "cpu.stat") &&
                !try_dir(out->cpu_dir, sizeof out->cpu_dir, cpu, path, "cpu.stat"))
                out->cpu_dir[0] = '\0';
        }
    }
    procparse_container_id(out->path, out->container_id, sizeof out->container_id);
    return 0;
}

static ssize_t read_in(const char *dir, const char *name, char *buf, size_t len)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return fsread(p, buf, len);
}

int cgroup_read(const struct cgroup_loc *loc, struct cgroup_sample *out)
{
    char buf[1024];
    ssize_t n;
    uint64_t v;

    memset(out, 0, sizeof *out);
    out->mem_limit = UINT64_MAX;
    out->psi_cpu = out->psi_memory = NAN;

    if (loc->mem_dir[0]) {
        n = read_in(loc->mem_dir, loc->v2 ? "memory.current" : "memory.usage_in_bytes", buf,
                    sizeof buf);
        if (n == -ENOENT)
            return -ENOENT; /* the cgroup itself is gone */
        if (n > 0 && procparse_u64_file(buf, (size_t)n, &v) == 0) {
            out->have_mem = true;
            out->mem_usage = v;
        }
        n = read_in(loc->mem_dir, loc->v2 ? "memory.max" : "memory.limit_in_bytes", buf,
                    sizeof buf);
        if (n > 0 && procparse_u64_file(buf, (size_t)n, &v) == 0)
            out->mem_limit = v;
        n = read_in(loc->mem_dir, loc->v2 ? "memory.events" : "memory.oom_control", buf,
                    sizeof buf);
        if (n > 0 && procparse_memory_events(buf, (size_t)n, &out->events) != 0)
            out->events.have = false;
        if (loc->v2) {
            double psi;
            n = read_in(loc->mem_dir, "memory.pressure", buf, sizeof buf);
            if (n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0)
                out->psi_memory = psi;
        }
    }
    if (loc->cpu_dir[0]) {
        n = read_in(loc->cpu_dir, "cpu.stat", buf, sizeof buf);
        if (n > 0 && procparse_cpu_stat(buf, (size_t)n, &out->cpu) != 0)
            out->cpu.have = false;
        if (loc->v2) {
            double psi;
            n = read_in(loc->cpu_dir, "cpu.max", buf, sizeof buf);
            if (n > 0 && procparse_cpu_max(buf, (size_t)n, &out->cpu_quota) != 0)
                out->cpu_quota = 0;
            n = read_in(loc->cpu_dir, "cpu.pressure", buf, sizeof buf);
            if (n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0)
                out->psi_cpu = psi;
        } else {
            char b2[64];
            uint64_t per = 0;
            n = read_in(loc->cpu_dir, "cpu.cfs_quota_us", buf, sizeof buf);
            ssize_t n2 = read_in(loc->cpu_dir, "cpu.cfs_period_us", b2, sizeof b2);
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

    if (loc->mem_dir[0]) {
        n = read_in(loc->mem_dir, loc->v2 ? "memory.current" : "memory.usage_in_bytes", buf,
                    sizeof buf);
        if (n == -ENOENT)
            return -ENOENT;
        out->have_mem = n > 0 && procparse_u64_file(buf, (size_t)n, &v) == 0;
        if (out->have_mem)
            out->mem_usage = v;
        if (loc->v2) {
            n = read_in(loc->mem_dir, "memory.pressure", buf, sizeof buf);
            out->psi_memory = n > 0 && procparse_psi_some_avg10(buf, (size_t)n, &psi) == 0 ? psi : NAN;
        }
    }
    if (loc->cpu_dir[0]) {
        n = read_in(loc->cpu_dir, "cpu.stat", buf, sizeof buf);
        if (n <= 0 || procparse_cpu_stat(buf, (size_t)n, &out->cpu) != 0)
            out->cpu.have = false;
        if (loc->v2) {
            n = read_in(loc->cpu_dir, "cpu.pressure", buf, sizeof buf);
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
