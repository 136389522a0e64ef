/* tests/support/child.c - child processes with pipes; see child.h. */
#include "child.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64
static pid_t live[MAX_CHILDREN];

static void kill_all(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    }
}

static void remember(pid_t pid)
{
    static bool registered;
    if (!registered) {
        atexit(kill_all);
        registered = true;
    }
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] == 0) {
            live[i] = pid;
            return;
        }
    }
}

static void forget(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (live[i] == pid)
            live[i] = 0;
    }
}

int child_start(struct child *c, char *const argv[])
{
    int in[2], out[2];
    memset(c, 0, sizeof *c);
    c->to_child = c->from_child = -1;
    if (pipe2(in, O_CLOEXEC) == -1)
        return -errno;
    if (pipe2(out, O_CLOEXEC) == -1) {
        close(in[0]);
        close(in[1]);
        return -errno;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == -1)
        return -errno;
    if (pid == 0) {
        /* a test killed by its timeout (SIGKILL: no atexit) takes this
         * process with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(in[0], 0);
        dup2(out[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->pid = pid;
    c->to_child = in[1];
    c->from_child = out[0];
    remember(pid);
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int child_readline(struct child *c, char *line, size_t len, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->used);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            size_t k = n < len - 1 ? n : len - 1;
            memcpy(line, c->buf, k);
            line[k] = '\0';
            memmove(c->buf, nl + 1, c->used - n - 1);
            c->used -= n + 1;
            return (int)k;
        }
        long long left = deadline - now_ms();
        if (left <= 0 || c->used == sizeof c->buf)
            return -1;
        struct pollfd pf = {.fd = c->from_child, .events = POLLIN};
        int r = poll(&pf, 1, (int)left);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t got = read(c->from_child, c->buf + c->used, sizeof c->buf - c->used);
        if (got <= 0)
            return -1;
        c->used += (size_t)got;
    }
}

bool child_send(struct child *c, const char *text)
{
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(c->to_child, text + off, n - off);
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += (size_t)w;
    }
    return true;
}

int child_stop(struct child *c)
{
    int st = 0;
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, &st, 0) == -1 && errno == EINTR)
            ;
        forget(c->pid);
        c->pid = 0;
    }
    if (c->to_child >= 0)
        close(c->to_child);
    if (c->from_child >= 0)
        close(c->from_child);
    c->to_child = c->from_child = -1;
    return st;
}

const char *child_target(const char *name)
{
    static char path[4096];
    const char *dir = getenv("STAKEOUT_TARGETS_DIR");
    cr_assert_not_null(dir, "STAKEOUT_TARGETS_DIR is not set (run the tests through ctest)");
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}
