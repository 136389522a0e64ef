/* tests/targets/leaker.c - a process that leaks from one call path while
 * another allocates and frees twice as much, for memory-profile tests.
 *
 *   leaker [--size large|small] [--thread] [--late-thread MS] [--rate KIB]
 *          [--syscalls] [--bench N]
 *
 * Rounds: leak_path() keeps a batch of blocks it never frees (the leak),
 * churn_path() takes a batch twice as large and frees it (a request's
 * scratch memory). --size large: one 256 KiB block per batch, each its own
 * mmap (malloc's mmap threshold is fixed at 128 KiB); small: 16 blocks of
 * 4 KiB from the brk heap (top pad 0, trim threshold 0: freeing the churn's
 * 128 KiB at the top of the heap gives it back to the kernel, as glibc does
 * once 64 KiB or more is free there). --rate: KiB leaked per second
 * (default 2048; the churn is twice that), which sets the rounds' pace.
 * --thread: the rounds run in a second thread (its own malloc arena)
 * instead of the main one; --late-thread MS: they start in a thread
 * created MS milliseconds after "ready" (during a capture). --syscalls:
 * instead, a tight loop of 1-byte writes to /dev/null and nothing else
 * allocated, for the overhead of tracing a syscall-heavy process.
 * --bench N: instead, rounds as fast as it can, each a churn of 256 KiB
 * (mmap and munmap) and of 64 x 4 KiB (the break up and down, with glibc's
 * usual top pad and trim threshold), and every Nth round a leak of
 * 256 KiB: an allocation-heavy process whose rounds are its throughput.
 *
 * Prints "ready PID" once its first rounds have run; on "count" on stdin
 * answers "leaked=BYTES churned=BYTES rounds=N" (stdin closed: exits). */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static size_t block = 256 * 1024;
static int batch = 1; /* blocks the leak keeps per round; the churn takes twice */
static long rate_kib = 2048;
static atomic_ullong leaked, churned, rounds, writes;
static atomic_int started;

static void *volatile sink;

NOINLINE static void *leak_alloc(size_t n)
{
    char *p = malloc(n);
    if (p)
        memset(p, 0x5a, n); /* resident */
    return p;
}

NOINLINE static void leak_path(void)
{
    for (int i = 0; i < batch; i++) {
        void *p = leak_alloc(block);
        if (!p)
            abort();
        sink = p; /* kept: the leak */
    }
    leaked += (unsigned long long)batch * block;
}

NOINLINE static void *churn_alloc(size_t n)
{
    char *p = malloc(n);
    if (p)
        memset(p, 0xa5, n);
    return p;
}

NOINLINE static void churn_path(void)
{
    void *v[64];
    for (int i = 0; i < 2 * batch; i++) {
        v[i] = churn_alloc(block);
        if (!v[i])
            abort();
    }
    for (int i = 2 * batch - 1; i >= 0; i--) /* the top of the heap first */
        free(v[i]);
    churned += 2ULL * (unsigned long long)batch * block;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};
    while (nanosleep(&ts, &ts) == -1)
        ;
}

/* A round per batch leaked, paced by the rate. */
NOINLINE static void *rounds_loop(void *arg)
{
    (void)arg;
    long period_ns = (long)((double)batch * (double)block / (double)(rate_kib * 1024) * 1e9);
    started = 1;
    for (;;) {
        leak_path();
        churn_path();
        rounds++;
        sleep_ns(period_ns);
    }
    return NULL;
}

NOINLINE static void *syscall_loop(void *arg)
{
    (void)arg;
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0)
        abort();
    started = 1;
    for (;;) {
        if (write(fd, "x", 1) != 1)
            abort();
        writes++;
    }
    return NULL;
}

static long late_ms = -1;

/* One block of n bytes, touched on its first page only: the calls, not
 * memset, are the work. */
NOINLINE static void *bench_alloc(size_t n)
{
    char *p = malloc(n);
    if (p)
        p[0] = 1;
    return p;
}

NOINLINE static void bench_churn(void)
{
    void *big = bench_alloc(256 * 1024), *small[64];
    for (int i = 0; i < 64; i++)
        small[i] = bench_alloc(4096);
    for (int i = 63; i >= 0; i--)
        free(small[i]);
    free(big);
}

NOINLINE static void bench_leak(void)
{
    sink = bench_alloc(256 * 1024);
    leaked += 256 * 1024;
}

static void bench_loop(long every)
{
    started = 1;
    for (unsigned long long r = 1;; r++) {
        bench_churn();
        if (r % (unsigned long long)every == 0)
            bench_leak();
        rounds++;
    }
}

static void *late_starter(void *arg)
{
    (void)arg;
    sleep_ns(late_ms * 1000000L);
    pthread_t t;
    if (pthread_create(&t, NULL, rounds_loop, NULL) != 0)
        abort();
    return NULL;
}

/* Says "ready" once the work has started, then answers "count" until
 * stdin closes, and then ends the process. */
static void *answer(void *arg)
{
    (void)arg;
    while (!started)
        sleep_ns(1000000L);
    printf("ready %d\n", (int)getpid());
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "count", 5) == 0)
            printf("leaked=%llu churned=%llu rounds=%llu writes=%llu\n",
                   (unsigned long long)leaked, (unsigned long long)churned,
                   (unsigned long long)rounds, (unsigned long long)writes);
    }
    exit(0);
}

int main(int argc, char **argv)
{
    int thread = 0, syscalls = 0;
    long bench_every = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            i++;
            bool small = strcmp(argv[i], "small") == 0;
            block = small ? 4096 : 256 * 1024;
            batch = small ? 16 : 1;
        } else if (strcmp(argv[i], "--thread") == 0) {
            thread = 1;
        } else if (strcmp(argv[i], "--late-thread") == 0 && i + 1 < argc) {
            late_ms = atol(argv[++i]);
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            rate_kib = atol(argv[++i]);
        } else if (strcmp(argv[i], "--syscalls") == 0) {
            syscalls = 1;
        } else if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc) {
            bench_every = atol(argv[++i]);
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* fixed, so that each path's calls are its own: no dynamic mmap
     * threshold, no top pad, the heap trimmed as soon as its top is free */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (bench_every == 0) {
        mallopt(M_TOP_PAD, 0);
        mallopt(M_TRIM_THRESHOLD, 0);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, answer, NULL) != 0)
        return 1;
    if (syscalls)
        syscall_loop(NULL);
    if (bench_every > 0)
        bench_loop(bench_every);
    if (late_ms >= 0) {
        started = 1;
        late_starter(NULL);
        for (;;)
            pause();
    }
    if (thread) {
        if (pthread_create(&t, NULL, rounds_loop, NULL) != 0)
            return 1;
        for (;;)
            pause();
    }
    rounds_loop(NULL);
    return 0;
}
