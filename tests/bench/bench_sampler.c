/* tests/bench/bench_sampler.c - what a capture costs the target, and how
 * true its profile is.
 *
 * Target: tests/targets/split (60/30/10 in leaf_a/leaf_b/leaf_c), with 1 and
 * with 4 busy threads; it reports its own throughput (rounds per second).
 * Configurations, each over the same window on the same process:
 *   none          the unprofiled reference
 *   stakeout@49/99/199   sampler_capture in CPU mode, default governor
 *   perf -g @99   perf record -F 99 -g (frame pointers), the kernel's way
 *   perf dwarf @99  perf record -F 99 --call-graph dwarf (8 KiB stack copies)
 * The machine is small and shared: configurations are interleaved round by
 * round and each round's loss is against that round's unprofiled window;
 * the figures are medians over the rounds.
 *
 * Figures: throughput loss (%), accuracy (largest distance of a leaf's
 * share from the truth, in points), achieved rate, and for stakeout the
 * cost per sample per thread: how long the sampled thread was stopped
 * (interrupt to resume, as measured by the sampler) and stakeout's own CPU
 * per sample. Goal: at 99 Hz under 1% loss single-threaded, under 3% with 4
 * threads, accuracy within 3 points, and less loss than perf dwarf.
 *
 *   bench_sampler [--rounds N] [--seconds S]     (defaults 5 and 3) */
#include "profile.h"
#include "sampler.h"
#include "symbols.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SPLIT_PATH
#error "SPLIT_PATH: the split target's path (tests/bench/CMakeLists.txt sets it)"
#endif

#define PERF "/usr/bin/perf"
#define MAX_ROUNDS 15

enum config { C_NONE, C_S49, C_S99, C_S199, C_PERF_FP, C_PERF_DWARF, N_CONFIGS };
static const char *config_name[N_CONFIGS] = {"none", "stakeout 49 Hz", "stakeout 99 Hz",
                                             "stakeout 199 Hz", "perf -g 99 Hz",
                                             "perf dwarf 99 Hz"};
static const unsigned config_rate[N_CONFIGS] = {0, 49, 99, 199, 99, 99};

struct result {
    double thr[MAX_ROUNDS];        /* rounds per second */
    double loss[MAX_ROUNDS];       /* % against the round's unprofiled window */
    double acc[MAX_ROUNDS];        /* points, NaN when not measured */
    double rate[MAX_ROUNDS];       /* achieved Hz per thread */
    double stop_us[MAX_ROUNDS];    /* per sample per thread */
    double cpu_us[MAX_ROUNDS];     /* stakeout's CPU per sample */
    int n;
};

struct target {
    pid_t pid;
    FILE *to, *from;
};

static pid_t perf_child;
static struct target *live_target;

static void cleanup(void)
{
    if (perf_child > 0) {
        kill(perf_child, SIGKILL);
        waitpid(perf_child, NULL, 0);
        perf_child = 0;
    }
    if (live_target && live_target->pid > 0) {
        kill(live_target->pid, SIGKILL);
        waitpid(live_target->pid, NULL, 0);
        live_target->pid = 0;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(1);
}

static int start_target(struct target *t, int threads)
{
    int in[2], out[2];
    if (pipe(in) == -1 || pipe(out) == -1)
        return -1;
    pid_t pid = fork();
    if (pid == -1)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        char n[16];
        snprintf(n, sizeof n, "%d", threads);
        execl(SPLIT_PATH, SPLIT_PATH, "--threads", n, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->pid = pid;
    t->to = fdopen(in[1], "w");
    t->from = fdopen(out[0], "r");
    char line[128];
    if (!fgets(line, sizeof line, t->from) || strncmp(line, "ready", 5) != 0)
        return -1;
    live_target = t;
    return 0;
}

static void stop_target(struct target *t)
{
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
    fclose(t->to);
    fclose(t->from);
    live_target = NULL;
}

/* Rounds done so far and the target's clock. */
static void target_rate(struct target *t, double *rounds, double *ns)
{
    unsigned long long r = 0;
    long long n = 0;
    char line[128];
    fprintf(t->to, "rate\n");
    fflush(t->to);
    if (fgets(line, sizeof line, t->from))
        sscanf(line, "rounds=%llu ns=%lld", &r, &n);
    *rounds = (double)r;
    *ns = (double)n;
}

static double accuracy_from_shares(const double share[3])
{
    static const double truth[3] = {60, 30, 10};
    double total = share[0] + share[1] + share[2], worst = 0;
    if (total <= 0)
        return NAN;
    for (int i = 0; i < 3; i++) {
        double d = fabs(100 * share[i] / total - truth[i]);
        if (d > worst)
            worst = d;
    }
    return worst;
}

static double profile_accuracy(const struct profile *p)
{
    static const char *leaves[3] = {"leaf_a", "leaf_b", "leaf_c"};
    double n[3] = {0};
    for (uint32_t s = 0; s < p->nstacks; s++) {
        if (p->stacks[s].nframes == 0)
            continue;
        const char *leaf = profile_frame_name(p, p->stacks[s].frames[0]);
        for (int i = 0; i < 3; i++) {
            if (leaf && strcmp(leaf, leaves[i]) == 0)
                n[i] += (double)p->stacks[s].count;
        }
    }
    return accuracy_from_shares(n);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void run_stakeout(struct target *t, unsigned rate, int seconds, struct result *r, int i)
{
    struct symcache *sc = symcache_new();
    struct sampler_opts o = {.pid = t->pid, .mode = PROFILE_TYPE_CPU, .rate_hz = rate,
                             .duration_ns = (int64_t)seconds * 1000000000LL, .symbols = sc};
    struct profile *p = NULL;
    char err[256];
    double c0 = cpu_seconds();
    if (sampler_capture(&o, &p, err, sizeof err) < 0) {
        fprintf(stderr, "bench_sampler: capture failed: %s\n", err);
        cleanup();
        exit(1);
    }
    double c1 = cpu_seconds();
    symbols_resolve(sc, p);
    size_t n = p->nsamples ? p->nsamples : 1;
    r->acc[i] = profile_accuracy(p);
    r->rate[i] = p->rate_achieved_hz;
    r->stop_us[i] = (double)p->stopped_ns / (double)n / 1e3;
    r->cpu_us[i] = (c1 - c0) * 1e6 / (double)n;
    profile_free(p);
    symcache_free(sc);
}

static char perf_path[64]; /* set once in main: a forked child must not rename it */

static const char *perf_data(void)
{
    return perf_path;
}

/* perf record on the target for the window; false (and why) when perf cannot. */
static bool run_perf(struct target *t, bool dwarf, int seconds, char *why, size_t whylen)
{
    char pid[16], secs[16];
    snprintf(pid, sizeof pid, "%d", t->pid);
    snprintf(secs, sizeof secs, "%d", seconds);
    char errpath[96];
    snprintf(errpath, sizeof errpath, "%s.err", perf_data());
    perf_child = fork();
    if (perf_child == 0) {
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(e, 2);
        if (dwarf)
            execl(PERF, PERF, "record", "-q", "-F", "99", "--call-graph", "dwarf", "-p", pid,
                  "-o", perf_data(), "--", "sleep", secs, (char *)NULL);
        else
            execl(PERF, PERF, "record", "-q", "-F", "99", "-g", "-p", pid, "-o", perf_data(),
                  "--", "sleep", secs, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(perf_child, &st, 0);
    perf_child = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return true;
    FILE *f = fopen(errpath, "r");
    char line[256] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    snprintf(why, whylen, "perf record exited with %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
             line[0] ? line : "(no message)");
    return false;
}

/* Leaf shares from perf report's self overhead per symbol. */
static double perf_accuracy(bool dwarf)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             PERF " report -i %s --no-children --sort sym --stdio -q -F overhead,sym 2>/dev/null",
             perf_data());
    (void)dwarf;
    FILE *f = popen(cmd, "r");
    if (!f)
        return NAN;
    double share[3] = {0};
    char line[512];
    while (fgets(line, sizeof line, f)) {
        double pct;
        char sym[256];
        if (sscanf(line, " %lf%% [.] %255s", &pct, sym) != 2)
            continue;
        if (strcmp(sym, "leaf_a") == 0)
            share[0] += pct;
        else if (strcmp(sym, "leaf_b") == 0)
            share[1] += pct;
        else if (strcmp(sym, "leaf_c") == 0)
            share[2] += pct;
    }
    pclose(f);
    return accuracy_from_shares(share);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double tmp[MAX_ROUNDS];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!isnan(v[i]))
            tmp[k++] = v[i];
    }
    if (k == 0)
        return NAN;
    qsort(tmp, (size_t)k, sizeof tmp[0], cmp_double);
    return k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}

static void bench(int threads, int rounds, int seconds)
{
    struct target t;
    if (start_target(&t, threads) < 0) {
        fprintf(stderr, "bench_sampler: cannot start %s\n", SPLIT_PATH);
        cleanup();
        exit(1);
    }
    struct result res[N_CONFIGS];
    memset(res, 0, sizeof res);
    char perf_why[2][320] = {"", ""};
    bool perf_ok[2] = {true, true};
    struct timespec settle = {.tv_sec = 0, .tv_nsec = 300000000};
    nanosleep(&settle, NULL);
    for (int r = 0; r < rounds; r++) {
        double base = NAN;
        for (int k = 0; k < N_CONFIGS; k++) {
            /* rotate the order so no configuration always follows another */
            enum config c = (enum config)((k + r) % N_CONFIGS);
            struct result *out = &res[c];
            int i = out->n;
            out->acc[i] = out->rate[i] = out->stop_us[i] = out->cpu_us[i] = NAN;
            double r0, n0, r1, n1;
            target_rate(&t, &r0, &n0);
            bool measured = true;
            switch (c) {
            case C_NONE: {
                struct timespec w = {.tv_sec = seconds, .tv_nsec = 0};
                nanosleep(&w, NULL);
                break;
            }
            case C_S49:
            case C_S99:
            case C_S199:
                run_stakeout(&t, config_rate[c], seconds, out, i);
                break;
            case C_PERF_FP:
            case C_PERF_DWARF: {
                int w = c == C_PERF_DWARF;
                if (!perf_ok[w]) {
                    measured = false;
                    break;
                }
                perf_ok[w] = run_perf(&t, w, seconds, perf_why[w], sizeof perf_why[w]);
                measured = perf_ok[w];
                break;
            }
            case N_CONFIGS:
                break;
            }
            target_rate(&t, &r1, &n1);
            if (!measured)
                continue;
            out->thr[i] = (r1 - r0) / ((n1 - n0) / 1e9);
            if (c == C_PERF_FP || c == C_PERF_DWARF)
                out->acc[i] = perf_accuracy(c == C_PERF_DWARF);
            out->n++;
            if (c == C_NONE)
                base = out->thr[i];
        }
        /* losses against this round's unprofiled window */
        for (int c = 1; c < N_CONFIGS; c++) {
            if (res[c].n > 0 && !isnan(base))
                res[c].loss[res[c].n - 1] = 100.0 * (1.0 - res[c].thr[res[c].n - 1] / base);
        }
    }
    stop_target(&t);
    unlink(perf_data());
    char errpath[96];
    snprintf(errpath, sizeof errpath, "%s.err", perf_data());
    unlink(errpath);

    printf("\nsplit with %d busy thread%s, %d rounds of %d s (medians):\n", threads,
           threads == 1 ? "" : "s", rounds, seconds);
    printf("  %-18s %12s %8s %10s %9s %12s %12s\n", "config", "rounds/s", "loss %", "acc pts",
           "rate Hz", "stop us/smp", "cpu us/smp");
    for (int c = 0; c < N_CONFIGS; c++) {
        const struct result *x = &res[c];
        if (x->n == 0) {
            printf("  %-18s not measured: %s\n", config_name[c],
                   perf_why[c == C_PERF_DWARF]);
            continue;
        }
        char loss[16] = "-", acc[16] = "-", rate[16] = "-", stop[16] = "-", cpu[16] = "-";
        if (c != C_NONE)
            snprintf(loss, sizeof loss, "%.2f", median(x->loss, x->n));
        if (!isnan(median(x->acc, x->n)))
            snprintf(acc, sizeof acc, "%.1f", median(x->acc, x->n));
        if (!isnan(median(x->rate, x->n)))
            snprintf(rate, sizeof rate, "%.1f", median(x->rate, x->n));
        if (!isnan(median(x->stop_us, x->n)))
            snprintf(stop, sizeof stop, "%.1f", median(x->stop_us, x->n));
        if (!isnan(median(x->cpu_us, x->n)))
            snprintf(cpu, sizeof cpu, "%.1f", median(x->cpu_us, x->n));
        printf("  %-18s %12.0f %8s %10s %9s %12s %12s\n", config_name[c], median(x->thr, x->n),
               loss, acc, rate, stop, cpu);
    }
    for (int w = 0; w < 2; w++) {
        if (!perf_ok[w])
            printf("  NOTE: %s could not record on this machine: %s\n",
                   config_name[C_PERF_FP + w], perf_why[w]);
    }
}

int main(int argc, char **argv)
{
    int rounds = 5, seconds = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
    }
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 5;
    if (seconds < 1)
        seconds = 3;
    snprintf(perf_path, sizeof perf_path, "/tmp/bench_sampler-%d.data", (int)getpid());
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(cleanup);
    if (access(PERF, X_OK) != 0)
        printf("NOTE: %s is not installed: the perf references are not measured\n", PERF);
    printf("bench_sampler: target %s, truth 60/30/10, goal at 99 Hz: loss < 1%% (1 thread), "
           "< 3%% (4 threads), accuracy < 3 points, less loss than perf dwarf\n",
           SPLIT_PATH);
    bench(1, rounds, seconds);
    bench(4, rounds, seconds);
    return 0;
}
