/* tests/bench/bench_poll.c - cost of one poll per watched process.
 *
 * Starts 1, 100 and 1,000 idle target processes (tests/targets/burner with
 * no burning thread), lets the collector find them, then times polls. The
 * reference, measured in the same run on the same processes: a bare
 * open/read/close of /proc/PID/stat and /proc/PID/status. Goal: within 1.5x
 * of the bare reads and under 20 us per process per poll.
 *
 * Discovery (listing /proc for new processes) is not part of a poll: it runs
 * every 5 s, or every poll while a target waits. Its steady cost per scan is
 * reported beside (everything on the machine is listed, not just targets).
 * Every child is killed and reaped by its pid. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "config.h"
#include "discover.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static pid_t *kids;
static size_t nkids;

static void stop_all(void)
{
    for (size_t i = 0; i < nkids; i++)
        kill(kids[i], SIGKILL);
    for (size_t i = 0; i < nkids; i++)
        while (waitpid(kids[i], NULL, 0) == -1 && errno == EINTR)
            ;
    nkids = 0;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_all();
    _exit(1);
}

static int start_idle(const char *burner, const char *tag, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == -1)
            return -1;
        if (pid == 0) {
            int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, 0);
            dup2(devnull, 1);
            execl(burner, burner, "--threads", "0", "--tag", tag, (char *)NULL);
            _exit(127);
        }
        kids[nkids++] = pid;
    }
    return 0;
}

/* the reference: bare reads of stat and status for every process */
static double bare_reads_ns(size_t rounds)
{
    char buf[4096], path[64];
    volatile size_t sink = 0;
    int64_t t0 = mono_ns();
    for (size_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nkids; i++) {
            static const char *files[] = {"stat", "status"};
            for (int f = 0; f < 2; f++) {
                snprintf(path, sizeof path, "/proc/%d/%s", (int)kids[i], files[f]);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd == -1)
                    continue;
                ssize_t n = read(fd, buf, sizeof buf);
                sink += n > 0 ? (size_t)n : 0;
                close(fd);
            }
        }
    }
    (void)sink;
    return (double)(mono_ns() - t0) / (double)(rounds * nkids);
}

static int run(const char *burner, size_t n, size_t rounds)
{
    char tag[64], yaml[512];
    snprintf(tag, sizeof tag, "bench-poll-%d-%zu", (int)getpid(), n);
    if (start_idle(burner, tag, n) != 0)
        return -1;
    snprintf(yaml, sizeof yaml,
             "version: 1\npoll_interval: 1s\n"
             "targets: [{name: idle, match: {process: 'burner .*--tag %s$'}}]\nrules: []\n",
             tag);
    struct diag_list d;
    struct config *cfg = NULL;
    diag_init(&d);
    if (config_parse("bench.yaml", yaml, strlen(yaml), NULL, NULL, &cfg, &d) != 0)
        return -1;
    diag_fini(&d);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    int64_t now = 1000000000LL;
    size_t found = 0;
    /* wait until every child has exec'd and been found (bounded) */
    for (int tries = 0; tries < 600 && found < n; tries++) {
        collector_poll(c, now, &ev);
        now += cfg->poll_interval_ns;
        found = 0;
        for (size_t i = 0; i < collector_count(c); i++)
            found += collector_at(c, i)->alive;
        if (found < n) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
    }
    if (found < n) {
        fprintf(stderr, "bench_poll: found %zu of %zu processes\n", found, n);
        return -1;
    }
    double best_poll = 1e18, best_bare = 1e18, best_scan = 1e18;
    for (int rep = 0; rep < 3; rep++) {
        /* polls between two discoveries, one poll interval apart */
        collector_discover_every(c, INT64_MAX / 4);
        collector_poll(c, now, &ev); /* the last discovery at the old cadence */
        now += cfg->poll_interval_ns;
        int64_t t0 = mono_ns();
        for (size_t r = 0; r < rounds; r++) {
            collector_poll(c, now, &ev);
            now += cfg->poll_interval_ns;
        }
        double per = (double)(mono_ns() - t0) / (double)(rounds * n);
        if (per < best_poll)
            best_poll = per;
        double bare = bare_reads_ns(rounds);
        if (bare < best_bare)
            best_bare = bare;
        /* discovery on its own, the same code the collector runs every 5 s:
         * a steady scan lists /proc and examines only pids it has not seen */
        struct discover *disc = discover_new(cfg);
        struct discover_result res[1];
        if (discover_scan(disc, res) != 0) /* the first scan examines everything */
            return -1;
        t0 = mono_ns();
        int scans = 0;
        for (; scans < DISCOVER_FULL_EVERY - 1; scans++) {
            if (discover_scan(disc, res) != 0)
                return -1;
        }
        double scan = (double)(mono_ns() - t0) / scans;
        if (scan < best_scan)
            best_scan = scan;
        discover_free(disc);
    }
    printf("bench_poll: %4zu processes: poll %.1f us/process, bare stat+status reads %.1f "
           "us/process, ratio %.2f (goal <= 1.5, < 20 us); discovery %.2f ms per scan (every 5 s)\n",
           n, best_poll / 1000.0, best_bare / 1000.0, best_poll / best_bare, best_scan / 1e6);
    collector_free(c);
    config_free(cfg);
    stop_all();
    return 0;
}

int main(int argc, char **argv)
{
    char self[PATH_MAX], burner[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    snprintf(burner, sizeof burner, "%s/../targets/burner", dirname(self));
    if (access(burner, X_OK) != 0) {
        fprintf(stderr, "bench_poll: %s not built\n", burner);
        return 1;
    }
    kids = calloc(1000, sizeof *kids);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(stop_all);
    int rc = 0;
    static const size_t sizes[] = {1, 100, 1000};
    static const size_t rounds[] = {2000, 100, 20};
    for (int i = 0; i < 3; i++) {
        /* `bench_poll 100` runs one size only (for profiling) */
        if (argc > 1 && (size_t)atol(argv[1]) != sizes[i])
            continue;
        int r = run(burner, sizes[i], rounds[i]);
        if (r < 0) {
            stop_all();
            return 2;
        }
        rc |= r > 0;
    }
    return rc;
}
