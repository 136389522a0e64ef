/* tests/bench/bench_logmatch.c - log matching throughput against grep.
 *
 * Generates a realistic log of about 300 MB (timestamps, levels, varied
 * messages, about 1% ERROR/FATAL/panic lines and some near misses such as
 * "errors=0" or "panicked") in a temporary directory, then times logscan fed
 * in 64 KiB chunks read from it, as logtail does, and `grep -cE` of the same
 * pattern on the same file, best of three each after a warm-up read so that
 * both read from the page cache. The counts must agree. grep runs with
 * LC_ALL=C (its fastest setting) and in the inherited locale; the faster is
 * the reference. Prints lines/s for each and the ratio; the goal is >= 1.
 * Times are CPU time (user + system, of this process or of the grep child):
 * the machine is shared, and wall time there measures the neighbours as much
 * as the code. Wall-clock figures are printed too.
 *
 *   bench_logmatch [MB]      (default 300) */
#include "logscan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PATTERN "\\b(ERROR|FATAL|panic)\\b"
#define CHUNK (64 * 1024)
#define RUNS 3

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Seconds of one run. */
struct took {
    double cpu, wall;
};

static void keep_best(struct took *best, struct took t)
{
    if (t.cpu < best->cpu)
        best->cpu = t.cpu;
    if (t.wall < best->wall)
        best->wall = t.wall;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 16) % n);
}

static const char *const paths[] = {"/api/v1/orders",
                                    "/api/v1/users",
                                    "/api/v2/search",
                                    "/healthz",
                                    "/api/v1/cart/items",
                                    "/static/app.js",
                                    "/api/v1/payments/authorize",
                                    "/metrics"};
static const char *const components[] = {"http-worker", "db-pool", "scheduler", "cache",
                                         "grpc-server", "auth",    "billing",   "indexer"};

/* One line into buf; returns its length and whether it should match. */
static int gen_line(char *buf, size_t len, uint64_t i, int *match)
{
    int64_t t = 1715677200000LL + (int64_t)i * 3;
    int n = snprintf(buf, len, "2024-05-14T%02d:%02d:%02d.%03dZ ", (int)(t / 3600000 % 24),
                     (int)(t / 60000 % 60), (int)(t / 1000 % 60), (int)(t % 1000));
    const char *comp = components[rnd(8)];
    unsigned w = rnd(16);
    uint32_t r = rnd(1000);

    *match = 0;
    if (r < 7) {
        *match = 1;
        n += snprintf(buf + n, len - (size_t)n,
                      "ERROR [%s-%u] request failed path=%s status=%u err=\"upstream timeout "
                      "after %ums\" trace=%08x%08x\n",
                      comp, w, paths[rnd(8)], 500 + rnd(5), 1000 + rnd(9000), rnd(1u << 31),
                      rnd(1u << 31));
    } else if (r < 8) {
        *match = 1;
        n += snprintf(buf + n, len - (size_t)n,
                      "FATAL [%s-%u] cannot open database: connection refused (attempt %u)\n", comp,
                      w, rnd(10));
    } else if (r < 10) {
        *match = 1;
        n += snprintf(buf + n, len - (size_t)n,
                      "WARN  [%s-%u] goroutine %u: panic: runtime error: index out of range "
                      "[%u] with length %u\n",
                      comp, w, rnd(100000), rnd(64), rnd(64));
    } else if (r < 140) {
        n += snprintf(buf + n, len - (size_t)n,
                      "WARN  [%s-%u] slow query took %ums rows=%u errors=0 retries=%u "
                      "(worker panicked earlier? no) table=orders_%u\n",
                      comp, w, 200 + rnd(3000), rnd(10000), rnd(3), rnd(64));
    } else if (r < 340) {
        n += snprintf(buf + n, len - (size_t)n,
                      "DEBUG [%s-%u] cache %s key=user:%u:profile ttl=%us size=%uB\n", comp, w,
                      rnd(2) ? "hit" : "miss", rnd(1000000), rnd(3600), rnd(65536));
    } else if (r < 360) {
        n += snprintf(buf + n, len - (size_t)n,
                      "INFO  [%s-%u] retrying after transient error: ERRORS_TOTAL=%u "
                      "ERROR_RATE=0.%02u\n",
                      comp, w, rnd(100), rnd(100));
    } else {
        n += snprintf(buf + n, len - (size_t)n,
                      "INFO  [%s-%u] %s %s/%u %u %u.%ums bytes=%u user=u%u ua=\"Mozilla/5.0 "
                      "(X11; Linux x86_64)\"\n",
                      comp, w, rnd(4) ? "GET" : "POST", paths[rnd(8)], rnd(100000),
                      rnd(10) ? 200 : 404, rnd(200), rnd(10), rnd(100000), rnd(100000));
    }
    return n;
}

/* Write about mb megabytes; returns the number of lines, *nmatch the
 * matching ones. */
static long long generate(const char *path, long long mb, long long *nmatch)
{
    FILE *f = fopen(path, "w");
    char line[512];
    long long bytes = 0, lines = 0;

    *nmatch = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (bytes < mb * 1000 * 1000) {
        int m;
        int n = gen_line(line, sizeof line, (uint64_t)lines, &m);
        if (fwrite(line, 1, (size_t)n, f) != (size_t)n) {
            perror(path);
            fclose(f);
            return -1;
        }
        bytes += n;
        lines++;
        *nmatch += m;
    }
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return lines;
}

static int warm(const char *path)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd == -1)
        return -1;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    close(fd);
    return n == 0 ? 0 : -1;
}

/* One logscan pass; returns 0, or -1 on error. */
static int run_logscan(const char *path, struct logscan_stats *st, struct took *took)
{
    static char buf[CHUNK];
    struct logscan *s;
    char err[256];
    double t0 = now_s(), c0 = cpu_s();
    int fd;
    ssize_t n;

    if (logscan_new(LOG_FORMAT_PLAIN, PATTERN, &s, err, sizeof err) != 0) {
        fprintf(stderr, "bench_logmatch: %s\n", err);
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        logscan_free(s);
        return -1;
    }
    while ((n = read(fd, buf, sizeof buf)) > 0)
        logscan_feed(s, NULL, buf, (size_t)n, clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_REALTIME));
    close(fd);
    took->wall = now_s() - t0;
    took->cpu = cpu_s() - c0;
    logscan_stats(s, st);
    logscan_free(s);
    return n == 0 ? 0 : -1;
}

/* One grep pass (locale NULL: inherited); returns 0 with *count its count,
 * or -1. */
static int run_grep(const char *path, const char *locale, long long *count, struct took *took)
{
    int p[2];
    char out[64];
    size_t used = 0;
    int st;
    struct rusage ru;
    double t0 = now_s();

    if (pipe2(p, O_CLOEXEC) == -1)
        return -1;
    pid_t pid = fork();
    if (pid == -1)
        return -1;
    if (pid == 0) {
        if (dup2(p[1], 1) == -1)
            _exit(127);
        if (locale && setenv("LC_ALL", locale, 1) != 0)
            _exit(127);
        execlp("grep", "grep", "-cE", PATTERN, path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        ssize_t n = read(p[0], out + used, sizeof out - 1 - used);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(p[0]);
    while (wait4(pid, &st, 0, &ru) == -1) {
        if (errno != EINTR)
            return -1;
    }
    took->wall = now_s() - t0;
    took->cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    out[used] = '\0';
    if (!WIFEXITED(st) || WEXITSTATUS(st) > 1)
        return -1;
    *count = atoll(out);
    return 0;
}

int main(int argc, char **argv)
{
    long long mb = argc > 1 ? atoll(argv[1]) : 300;
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    long long lines, expect, gcount = -1;
    struct took best_s = {1e30, 1e30}, best_gc = {1e30, 1e30}, best_gl = {1e30, 1e30}, t;
    struct logscan_stats st = {0};
    int rc = 1;

    snprintf(dir, sizeof dir, "%s/bench_logmatch.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/app.log", dir);
    lines = generate(path, mb, &expect);
    if (lines < 0 || warm(path) != 0)
        goto out;
    for (int i = 0; i < RUNS; i++) {
        long long c;
        if (run_logscan(path, &st, &t) != 0)
            goto out;
        keep_best(&best_s, t);
        if (run_grep(path, "C", &gcount, &t) != 0) {
            fprintf(stderr, "bench_logmatch: grep failed\n");
            goto out;
        }
        keep_best(&best_gc, t);
        if (run_grep(path, NULL, &c, &t) != 0 || c != gcount) {
            fprintf(stderr, "bench_logmatch: grep failed or disagrees with itself\n");
            goto out;
        }
        keep_best(&best_gl, t);
    }
    if ((long long)st.matched != gcount || (long long)st.matched != expect ||
        (long long)st.lines != lines) {
        fprintf(stderr,
                "bench_logmatch: counts differ: stakeout %llu of %llu lines, grep %lld, "
                "generated %lld of %lld\n",
                (unsigned long long)st.matched, (unsigned long long)st.lines, gcount, expect,
                lines);
        goto out;
    }
    double ref = best_gc.cpu < best_gl.cpu ? best_gc.cpu : best_gl.cpu;
    double ref_wall = best_gc.wall < best_gl.wall ? best_gc.wall : best_gl.wall;
    double ml = (double)lines / 1e6;
    printf("bench_logmatch: %lld MB, %lld lines, %lld matching, best of %d\n", mb, lines, gcount,
           RUNS);
    printf("bench_logmatch: cpu: grep LC_ALL=C %.1f Mlines/s, grep in %s %.1f Mlines/s\n",
           ml / best_gc.cpu, getenv("LANG") ? getenv("LANG") : "the inherited locale",
           ml / best_gl.cpu);
    printf("bench_logmatch: wall: stakeout %.1f Mlines/s, grep %.1f Mlines/s, ratio %.2f\n",
           ml / best_s.wall, ml / ref_wall, ref_wall / best_s.wall);
    printf("bench_logmatch: stakeout %.1f Mlines/s, grep %.1f Mlines/s, ratio %.2f (goal >= 1.0)\n",
           ml / best_s.cpu, ml / ref, ref / best_s.cpu);
    rc = 0;
out:
    if (unlink(path) == -1 && errno != ENOENT)
        perror(path);
    if (rmdir(dir) == -1)
        perror(dir);
    return rc;
}
