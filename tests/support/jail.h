/* tests/support/jail.h - a target set up the way an attacker inside a
 * container would have it: a mount namespace of its own and a chroot.
 *
 * Owns: the child it forks. Test support only: the child never execs (its
 * root needs no binary) and waits until it is killed by its pid (jail_stop
 * kills and reaps it; one left running is killed by an atexit handler, and
 * by PR_SET_PDEATHSIG should the test process die first). */
#ifndef STAKEOUT_TEST_JAIL_H
#define STAKEOUT_TEST_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

/* Fork a process that unshares its mount namespace (when own_ns) and
 * chroots into root; returns its pid once it is in there. Fails the test
 * when it cannot. */
pid_t jail_start(const char *root, bool own_ns);

/* SIGKILL pid and reap it. Safe with 0 and with a pid already stopped. */
void jail_stop(pid_t pid);

#endif
