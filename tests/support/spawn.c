/* tests/support/spawn.c - run a child and capture stdout/stderr; see spawn.h. */
#include "spawn.h"

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

extern char **environ;

struct sink {
    int fd;
    char *buf;
    size_t len, cap;
};

static void sink_read(struct sink *s)
{
    char tmp[4096];
    ssize_t n = read(s->fd, tmp, sizeof tmp);
    if (n == -1 && errno == EINTR)
        return;
    if (n <= 0) {
        close(s->fd);
        s->fd = -1;
        return;
    }
    if (s->len + (size_t)n + 1 > s->cap) {
        s->cap = (s->len + (size_t)n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    memcpy(s->buf + s->len, tmp, (size_t)n);
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int spawn_capture(char *const argv[], char *const extra_env[], int timeout_ms,
                  struct spawn_result *res)
{
    int outp[2], errp[2];
    memset(res, 0, sizeof *res);
    if (pipe2(outp, O_CLOEXEC) == -1)
        return -errno;
    if (pipe2(errp, O_CLOEXEC) == -1) {
        int e = errno;
        close(outp[0]);
        close(outp[1]);
        return -e;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == -1) {
        int e = errno;
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        return -e;
    }
    if (pid == 0) {
        /* a test killed by its timeout (SIGKILL: no atexit) takes this
         * process with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull != -1)
            dup2(devnull, 0);
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        for (size_t i = 0; extra_env && extra_env[i]; i++)
            putenv(extra_env[i]);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    struct sink sinks[2] = {{outp[0], NULL, 0, 0}, {errp[0], NULL, 0, 0}};
    long long deadline = now_ms() + timeout_ms;
    while (sinks[0].fd != -1 || sinks[1].fd != -1) {
        struct pollfd pf[2];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++) {
            if (sinks[i].fd != -1)
                pf[n++] = (struct pollfd){.fd = sinks[i].fd, .events = POLLIN};
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            res->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(pf, n, (int)left) == -1 && errno != EINTR)
            break;
        for (nfds_t i = 0; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (int k = 0; k < 2; k++) {
                if (sinks[k].fd == pf[i].fd)
                    sink_read(&sinks[k]);
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        if (sinks[k].fd != -1)
            close(sinks[k].fd);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
        ;
    res->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    res->out = sinks[0].buf ? sinks[0].buf : strdup("");
    res->err = sinks[1].buf ? sinks[1].buf : strdup("");
    return 0;
}

void spawn_result_fini(struct spawn_result *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}

const char *spawn_stakeout_bin(void)
{
    const char *p = getenv("STAKEOUT_BIN");
    cr_assert_not_null(p, "STAKEOUT_BIN is not set (run the tests through ctest)");
    return p;
}

const char *spawn_source_dir(void)
{
    const char *p = getenv("STAKEOUT_SOURCE_DIR");
    cr_assert_not_null(p, "STAKEOUT_SOURCE_DIR is not set (run the tests through ctest)");
    return p;
}
