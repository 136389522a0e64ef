/* tests/targets/split.c - a CPU burner whose time splits 60/30/10 across
 * named functions several frames deep: the ground truth of the sampler's
 * accuracy tests and benchmark.
 *
 *   split [--threads N] [--seconds S] [--fork-after MS] [--exec-after MS]
 *         [--tag TEXT]
 *
 * Each of N threads (named split-0..) repeats a round:
 *   main -> worker -> run_round -> path_a -> step_a -> leaf_a   6 units
 *                               -> path_b -> leaf_b             3 units
 *                               -> leaf_c                       1 unit
 * A unit is UNIT_ITERS turns of one dependent multiply-add, inlined into
 * each leaf, so the leaves' self times are truthfully 6:3:1 and everything
 * else is a few instructions per round. Built with -O1
 * -fno-omit-frame-pointer; the functions are noinline and noclone and keep
 * their names.
 *
 * Prints "ready PID" once the threads run. On the line "rate" on stdin it
 * answers "rounds=R ns=T": rounds finished by all threads so far and the
 * monotonic clock, so a benchmark measures throughput over any window.
 * --seconds: exit after S seconds. --fork-after / --exec-after: fork a child
 * (which exits at once) or exec itself (as "split --tag exec") after MS
 * milliseconds, once. --tag only makes the command line unique. It leaves
 * through _exit: no atexit handler (a sanitizer's leak check) runs in a
 * process that may still be traced. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UNIT_ITERS 20000UL
#define MAX_THREADS 64

#ifdef __clang__
#define BURN __attribute__((noinline)) /* clang does not clone functions across calls */
#else
#define BURN __attribute__((noinline, noclone))
#endif

struct slot {
    volatile uint64_t rounds;
    char pad[56];
};
static struct slot slots[MAX_THREADS];
static volatile uint64_t sink;

static inline __attribute__((always_inline)) uint64_t spin(uint64_t x, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

BURN uint64_t leaf_a(uint64_t x)
{
    return spin(x, 6 * UNIT_ITERS);
}

BURN uint64_t leaf_b(uint64_t x)
{
    return spin(x, 3 * UNIT_ITERS);
}

BURN uint64_t leaf_c(uint64_t x)
{
    return spin(x, 1 * UNIT_ITERS);
}

BURN uint64_t step_a(uint64_t x)
{
    x = leaf_a(x);
    __asm__ volatile("" : "+r"(x));
    return x;
}

BURN uint64_t path_a(uint64_t x)
{
    x = step_a(x);
    __asm__ volatile("" : "+r"(x));
    return x;
}

BURN uint64_t path_b(uint64_t x)
{
    x = leaf_b(x);
    __asm__ volatile("" : "+r"(x));
    return x;
}

BURN uint64_t run_round(uint64_t x)
{
    x = path_a(x);
    x = path_b(x);
    x = leaf_c(x);
    return x;
}

BURN void *worker(void *arg)
{
    int id = (int)(long)arg;
    char name[16];
    snprintf(name, sizeof name, "split-%d", id);
    pthread_setname_np(pthread_self(), name);
    uint64_t x = (uint64_t)id + 1;
    for (;;) {
        x = run_round(x);
        slots[id].rounds++;
        sink = x;
    }
    return NULL;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void answer_rate(int threads)
{
    uint64_t total = 0;
    for (int i = 0; i < threads; i++)
        total += slots[i].rounds;
    printf("rounds=%llu ns=%lld\n", (unsigned long long)total, (long long)mono_ns());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int threads = 1;
    long seconds = 0, fork_after = -1, exec_after = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atol(argv[++i]);
        else if (strcmp(argv[i], "--fork-after") == 0 && i + 1 < argc)
            fork_after = atol(argv[++i]);
        else if (strcmp(argv[i], "--exec-after") == 0 && i + 1 < argc)
            exec_after = atol(argv[++i]);
        else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
            i++;
    }
    if (threads < 1 || threads > MAX_THREADS)
        threads = 1;
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(long)i) != 0)
            _exit(1);
    }
    int64_t start = mono_ns();
    printf("ready %d\n", (int)getpid());
    fflush(stdout);

    char line[256];
    size_t used = 0;
    bool stdin_open = true;
    for (;;) {
        int64_t now = mono_ns(), wake = now + 1000000000LL;
        if (seconds > 0) {
            int64_t end = start + seconds * 1000000000LL;
            if (now >= end)
                _exit(0);
            if (end < wake)
                wake = end;
        }
        if (fork_after >= 0) {
            int64_t at = start + fork_after * 1000000LL;
            if (now >= at) {
                fork_after = -1;
                pid_t child = fork();
                if (child == 0)
                    _exit(0);
                if (child > 0)
                    while (waitpid(child, NULL, 0) == -1 && errno == EINTR)
                        ;
                continue;
            }
            if (at < wake)
                wake = at;
        }
        if (exec_after >= 0) {
            int64_t at = start + exec_after * 1000000LL;
            if (now >= at) {
                char *args[] = {argv[0], "--tag", "exec", NULL};
                execv("/proc/self/exe", args);
                _exit(127);
            }
            if (at < wake)
                wake = at;
        }
        struct pollfd pf = {.fd = 0, .events = POLLIN};
        int timeout = (int)((wake - now) / 1000000) + 1;
        int r = poll(&pf, stdin_open ? 1 : 0, timeout);
        if (r <= 0)
            continue;
        ssize_t got = read(0, line + used, sizeof line - 1 - used);
        if (got <= 0) {
            stdin_open = false;
            continue;
        }
        used += (size_t)got;
        line[used] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            if (strcmp(line, "rate") == 0)
                answer_rate(threads);
            size_t rest = used - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest + 1);
            used = rest;
        }
        if (used == sizeof line - 1)
            used = 0;
    }
}
