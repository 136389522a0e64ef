/* tests/targets/demo.c - the bundled demo service (its process is named
 * stakeout-demo), for ./deploy/demo.sh and the end-to-end tests.
 *
 *   stakeout-demo --log PATH [--normal S] [--hot S] [--errors S] [--leak S]
 *                 [--after S] [--rate N] [--threads N]
 *
 * It pretends to serve N requests per second (default 50) and logs a line
 * for each, then goes through phases, each S seconds long:
 *   normal  light work, INFO lines;                              (default 15)
 *   hot     every request also scores recommendations: a CPU hot spot in
 *           score_recommendations(), several frames deep;          (default 20)
 *   errors  most requests fail with ERROR lines (a burst);          (default 15)
 *   leak    every request keeps 64 KiB it never frees (0: skipped); (default 0)
 *   after   light work again, then exit 0 (0: run until killed).    (default 0)
 * It prints "phase NAME" on stdout as each phase starts. Functions are
 * noinline and built with frame pointers so profiles name them.
 * --threads N starts N more threads that only sleep, before "ready": a
 * many-threaded service, for the tests of stakeout's descriptor use. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static FILE *logf_;
static volatile double sink;
static unsigned long request_id;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void log_line(const char *level, const char *msg)
{
    char stamp[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(logf_, "%s %s request=%lu %s\n", stamp, level, request_id, msg);
    fflush(logf_);
}

NOINLINE static double parse_request(unsigned long id)
{
    double x = (double)(id % 97);
    for (int i = 0; i < 2000; i++)
        x = x * 1.0000001 + 0.5;
    return x;
}

NOINLINE static double score_item(double seed, int item)
{
    double s = seed + item;
    for (int i = 0; i < 4000; i++)
        s = s * 0.999999 + (double)(i & 7);
    return s;
}

NOINLINE static double score_recommendations(double seed)
{
    double total = 0;
    for (int item = 0; item < 3000; item++)
        total += score_item(seed, item);
    return total;
}

NOINLINE static double recommend(double seed)
{
    return score_recommendations(seed) / 3000.0;
}

NOINLINE static double render_response(double v)
{
    double x = v;
    for (int i = 0; i < 1000; i++)
        x = x * 0.9999 + 1.0;
    return x;
}

static void *volatile last_session; /* so the compiler keeps the allocation */

/* Keeps 64 KiB per request that nothing ever frees: the leak. */
NOINLINE static void cache_session(void)
{
    char *keep = malloc(64 * 1024);
    if (keep)
        memset(keep, 1, 64 * 1024);
    last_session = keep;
}

NOINLINE static void handle_request(int hot, int failing, int leaking)
{
    request_id++;
    double v = parse_request(request_id);
    if (hot)
        v += recommend(v);
    if (leaking)
        cache_session();
    sink += render_response(v);
    if (failing && request_id % 5 != 0)
        log_line("ERROR", "checkout failed: payment backend timeout (upstream=payments)");
    else
        log_line("INFO", hot ? "recommendations served" : "ok");
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* n threads that sleep for the life of the process, on small stacks. */
static int start_sleepers(int n)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    if (pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN * 4) != 0) {
        pthread_attr_destroy(&attr);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, sleeper, NULL) != 0) {
            pthread_attr_destroy(&attr);
            return -1;
        }
    }
    pthread_attr_destroy(&attr);
    return 0;
}

static void run_phase(const char *name, double seconds, int rate, int hot, int failing,
                      int leaking)
{
    if (seconds <= 0)
        return;
    printf("phase %s\n", name);
    fflush(stdout);
    double end = now_s() + seconds, period = 1.0 / rate;
    double next = now_s();
    while (now_s() < end) {
        handle_request(hot, failing, leaking);
        next += period;
        double wait = next - now_s();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
            nanosleep(&ts, NULL);
        } else if (wait < -1.0) {
            next = now_s(); /* fell behind (the hot phase): do not try to catch up */
        }
    }
}

int main(int argc, char **argv)
{
    const char *log = NULL;
    double normal = 15, hot = 20, errors = 15, leak = 0, after = 0;
    int rate = 50, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--log") == 0)
            log = argv[i + 1];
        else if (strcmp(argv[i], "--normal") == 0)
            normal = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--hot") == 0)
            hot = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--errors") == 0)
            errors = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--leak") == 0)
            leak = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--after") == 0)
            after = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
    }
    if (!log || rate <= 0 || threads < 0) {
        fprintf(stderr, "usage: stakeout-demo --log PATH [--normal S] [--hot S] [--errors S] "
                        "[--leak S] [--after S] [--rate N] [--threads N]\n");
        return 2;
    }
    if (start_sleepers(threads) != 0) {
        fprintf(stderr, "stakeout-demo: cannot start %d threads\n", threads);
        return 1;
    }
    logf_ = fopen(log, "a");
    if (!logf_) {
        perror(log);
        return 1;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    run_phase("normal", normal, rate, 0, 0, 0);
    run_phase("hot", hot, rate, 1, 0, 0);
    run_phase("errors", errors, rate, 0, 1, 0);
    run_phase("leak", leak, rate, 0, 0, 1);
    if (after > 0) {
        run_phase("after", after, rate, 0, 0, 0);
        return 0;
    }
    printf("phase steady\n");
    fflush(stdout);
    for (;;)
        run_phase("steady", 3600, rate, 0, 0, 0);
}
