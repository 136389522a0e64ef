/* tests/targets/churn.c - threads that come and go all the time, for the
 * sampler's thread-churn test.
 *
 *   churn [--live N] [--seconds S]
 *
 * Keeps about N (default 4) short-lived threads alive: each burns about 2 ms
 * in churn_work and exits, and the main thread starts a new one as soon as
 * one ends. Prints "ready PID" once started; on the line "count" on stdin it
 * answers "created=N". Leaves through _exit (see split.c). */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ended = PTHREAD_COND_INITIALIZER;
static int live;
static volatile uint64_t sink;
static uint64_t created;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) uint64_t churn_work(uint64_t x)
{
    int64_t end = mono_ns() + 2000000;
    while (mono_ns() < end) {
        for (int i = 0; i < 1000; i++) {
            x = x * 6364136223846793005ULL + 1;
            __asm__ volatile("" : "+r"(x));
        }
    }
    return x;
}

static void *short_lived(void *arg)
{
    sink = churn_work((uint64_t)(uintptr_t)arg);
    pthread_mutex_lock(&lock);
    live--;
    pthread_cond_signal(&ended);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *spawner(void *arg)
{
    int want = (int)(long)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (live >= want)
            pthread_cond_wait(&ended, &lock);
        live++;
        pthread_mutex_unlock(&lock);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        uint64_t n = __atomic_add_fetch(&created, 1, __ATOMIC_RELAXED);
        if (pthread_create(&t, &attr, short_lived, (void *)(uintptr_t)n) != 0) {
            pthread_mutex_lock(&lock);
            live--;
            pthread_mutex_unlock(&lock);
            usleep(1000);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int want = 4;
    long seconds = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--live") == 0 && i + 1 < argc)
            want = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atol(argv[++i]);
    }
    pthread_t sp;
    if (pthread_create(&sp, NULL, spawner, (void *)(long)(want > 0 ? want : 1)) != 0)
        _exit(1);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    int64_t end = seconds > 0 ? mono_ns() + seconds * 1000000000LL : INT64_MAX;
    char line[128];
    for (;;) {
        int64_t now = mono_ns();
        if (now >= end)
            _exit(0);
        struct pollfd pf = {.fd = 0, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t got = read(0, line, sizeof line - 1);
        if (got <= 0) {
            pause();
            continue;
        }
        line[got] = '\0';
        if (strncmp(line, "count", 5) == 0) {
            unsigned long long n = __atomic_load_n(&created, __ATOMIC_RELAXED);
            printf("created=%llu\n", n);
            fflush(stdout);
        }
    }
}
