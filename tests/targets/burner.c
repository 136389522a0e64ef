/* tests/targets/burner.c - a CPU burner with named threads, for collector and
 * sampler tests.
 *
 *   burner [--threads N] [--idle M] [--vfork MS] [--tag TEXT] [--seconds S]
 *
 * Starts N threads named burn-0.. that spin (default 1) and M threads named
 * idle-0.. that sleep (at most 64), prints "ready PID" on stdout once all
 * are named and spinning or asleep, then runs until killed or for S seconds. --tag only makes the command line
 * unique so a test can match exactly this process.
 *
 * --vfork MS adds a thread named vfork-0 that calls vfork(): its child
 * sleeps MS milliseconds and exits, and the thread waits for it in
 * uninterruptible sleep (D), where no ptrace interrupt reaches it. "ready"
 * comes once it waits; afterwards it sleeps like an idle thread.
 *
 * On the line "cpu" on stdin it answers "cpu_ns=C wall_ns=W": its own CPU
 * time and the monotonic clock, the ground truth a test compares a
 * measurement with on a machine too busy to give it a whole core. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long long sink;

#define MAX_IDLE 64
static _Atomic int idle_tid[MAX_IDLE]; /* set once the thread has its name */
static _Atomic int spinning;

static void *spin(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "burn-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    spinning++;
    for (;;)
        sink++;
    return NULL;
}


static void *idle(void *arg)
{
    char name[16];
    snprintf(name, sizeof name, "idle-%d", (int)(long)arg);
    pthread_setname_np(pthread_self(), name);
    idle_tid[(long)arg] = (int)syscall(SYS_gettid);
    for (;;)
        pause();
    return NULL;
}

static _Atomic int vfork_tid;

static void *vforker(void *arg)
{
    long ms = (long)arg;
    pthread_setname_np(pthread_self(), "vfork-0");
    vfork_tid = (int)syscall(SYS_gettid);
    pid_t child = vfork();
    if (child == 0) {
        /* only syscalls here: the child borrows the parent's memory */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1)
            ;
        _exit(0);
    }
    for (;;)
        pause();
    return NULL;
}

/* True once thread tid is in state want: "ready" must not come while an
 * idle thread is still on its way to pause(), or a CPU-mode capture that
 * starts at once sees it running. */
static int in_state(int tid, char want)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == want;
}

int main(int argc, char **argv)
{
    int threads = 1, idles = 0, seconds = 0;
    long vfork_ms = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc)
            idles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--vfork") == 0 && i + 1 < argc)
            vfork_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc)
            i++;
    }
    if (idles < 0 || idles > MAX_IDLE)
        return 1;
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, spin, (void *)(long)i) != 0)
            return 1;
    }
    for (int i = 0; i < idles; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle, (void *)(long)i) != 0)
            return 1;
    }
    if (vfork_ms > 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, vforker, (void *)vfork_ms) != 0)
            return 1;
    }
    /* all threads named, spinning or asleep; 10 s at most */
    for (int waited = 0; waited < 10000; waited++) {
        int ok = spinning == threads;
        for (int i = 0; i < idles && ok; i++)
            ok = idle_tid[i] != 0 && in_state(idle_tid[i], 'S');
        if (ok && vfork_ms > 0)
            ok = vfork_tid != 0 && in_state(vfork_tid, 'D');
        if (ok)
            break;
        usleep(1000);
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    if (seconds > 0) {
        sleep((unsigned)seconds);
        return 0;
    }
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "cpu", 3) == 0) {
            struct timespec cpu, wall;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
            clock_gettime(CLOCK_MONOTONIC, &wall);
            printf("cpu_ns=%lld wall_ns=%lld\n", cpu.tv_sec * 1000000000LL + cpu.tv_nsec,
                   wall.tv_sec * 1000000000LL + wall.tv_nsec);
            fflush(stdout);
        }
    }
    for (;;) /* stdin closed: keep burning until killed */
        pause();
}
