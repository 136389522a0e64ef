/* tests/support/untraced.c - see untraced.h. */
#include "support/untraced.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool support_thread_status(int pid, int tid, int *tracer, char *state)
{
    char path[96], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    *tracer = -1;
    *state = '?';
    while (fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "TracerPid:", 10) == 0)
            *tracer = atoi(buf + 10);
        else if (strncmp(buf, "State:", 6) == 0 && sscanf(buf + 6, " %c", state) != 1)
            *state = '?';
    }
    fclose(f);
    return true;
}

void support_assert_untraced(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    int64_t deadline = mono_ms() + 2000;
    for (;;) {
        DIR *d = opendir(path);
        cr_assert_not_null(d, "target %d is gone", pid);
        bool ok = true;
        int threads = 0;
        char why[160] = "";
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            int tid = atoi(e->d_name), tracer;
            char state;
            if (!support_thread_status(pid, tid, &tracer, &state))
                continue; /* exited meanwhile */
            threads++;
            cr_assert_eq(tracer, 0, "thread %d of %d is traced by %d", tid, pid, tracer);
            cr_assert(state != 'Z' && state != 'X', "thread %d of %d is dead (%c)", tid, pid,
                      state);
            if (state == 't' || state == 'T') {
                ok = false;
                snprintf(why, sizeof why, "thread %d of %d is stopped (%c)", tid, pid, state);
            }
        }
        closedir(d);
        cr_assert_gt(threads, 0, "no thread of %d could be read", pid);
        if (ok)
            return;
        cr_assert_lt(mono_ms(), deadline, "%s", why);
        struct timespec ts = {0, 20 * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
    }
}
