/* tests/support/cgroup.h - a test's own cgroup, to put a process under a
 * memory limit or a CPU quota.
 *
 * Owns: the directories it makes (/sys/fs/cgroup[/CONTROLLER]/stakeout-test-PID,
 * PID the test process's, and cgroups made inside it), removed by
 * cgroup_remove and, should an assertion end the test first, by an atexit
 * handler (innermost first). Test support only: make the
 * cgroup before starting the children that go into it (the handlers run in
 * reverse order, so the children are killed and reaped first). v1 here, v2
 * where the hierarchy is unified. */
#ifndef STAKEOUT_TEST_CGROUP_H
#define STAKEOUT_TEST_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

/* Make the cgroup for controller ("memory", "cpu") and its path in dir.
 * Skips the test where it cannot be made, except in CI, where that is a
 * failure. Returns whether it is v2. */
bool cgroup_make(const char *controller, char *dir, size_t len);

/* Write value to the cgroup's file name; fails the test when it cannot. */
void cgroup_set(const char *dir, const char *name, const char *value);

/* Move pid into the cgroup. */
void cgroup_join(const char *dir, int pid);

/* The value of "KEY VALUE" line key in file name (memory.oom_control,
 * memory.events), or of the file itself when key is NULL (one number);
 * fails the test when it cannot be read. */
unsigned long long cgroup_value(const char *dir, const char *name, const char *key);

/* Make, inside parent (from cgroup_make), the cgroup of a Kubernetes pod's
 * container as the kubelet's systemd driver names it:
 * kubepods-pod<pod_uid, '_' for '-'>.slice/cri-containerd-<container_id>.scope.
 * Its path in dir; both are removed with the others. */
void cgroup_make_container(const char *parent, const char *pod_uid, const char *container_id,
                           char *dir, size_t len);

/* Remove the cgroup, once the processes in it are reaped (polls up to 5 s
 * while the kernel lets go of them). */
void cgroup_remove(const char *dir);

#endif
