/* tests/support/jail.c - a target in a root of its own; see jail.h. */
#include "jail.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_JAILS 8
static pid_t live[MAX_JAILS];

static void stop_all(void)
{
    for (int i = 0; i < MAX_JAILS; i++)
        jail_stop(live[i]);
}

pid_t jail_start(const char *root, bool own_ns)
{
    static bool registered;
    int ready[2];
    char ok = 0;
    ssize_t n;

    if (!registered) {
        atexit(stop_all);
        registered = true;
    }
    cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        bool ns = !own_ns || (unshare(CLONE_NEWNS) == 0 &&
                              mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
        ok = 'n';
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && ns && chroot(root) == 0 && chdir("/") == 0)
            ok = 'y';
        if (write(ready[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    for (int i = 0; i < MAX_JAILS; i++) {
        if (live[i] == 0) {
            live[i] = pid;
            break;
        }
    }
    close(ready[1]);
    do
        n = read(ready[0], &ok, 1);
    while (n == -1 && errno == EINTR);
    close(ready[0]);
    cr_assert_eq(ok, 'y', "the jailed target could not set up its root (unshare, chroot %s)", root);
    return pid;
}

void jail_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
        ;
    for (int i = 0; i < MAX_JAILS; i++) {
        if (live[i] == pid)
            live[i] = 0;
    }
}
