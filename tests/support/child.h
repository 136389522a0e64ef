/* tests/support/child.h - a test's own child process with pipes to talk to it.
 *
 * Owns: the child's pid and pipe fds (child_stop releases them). Test support
 * only: children are stopped by their pid (SIGKILL, then reaped), never by
 * name. A child registered here is also killed by an atexit handler, so a
 * failing assertion does not leave it running. */
#ifndef STAKEOUT_TEST_CHILD_H
#define STAKEOUT_TEST_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct child {
    pid_t pid;
    int to_child;      /* its stdin, -1 when closed */
    int from_child;    /* its stdout */
    char buf[8192];    /* read-ahead of its stdout */
    size_t used;
};

/* Start argv[0] (a path) with stdin and stdout as pipes, stderr inherited. */
int child_start(struct child *c, char *const argv[]);

/* Read one line (without the newline) within timeout_ms. Returns its length,
 * or -1 on timeout or EOF. */
int child_readline(struct child *c, char *line, size_t len, int timeout_ms);

/* Write text to its stdin; true when all of it was written. */
bool child_send(struct child *c, const char *text);

/* SIGKILL and reap; returns the wait status. Safe to call twice. */
int child_stop(struct child *c);

/* Path of a test target program ($STAKEOUT_TARGETS_DIR/name). */
const char *child_target(const char *name);

#endif
