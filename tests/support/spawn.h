/* tests/support/spawn.h - run a program for a test and capture what it prints.
 *
 * Owns: the captured output buffers (spawn_result_fini). Test support only:
 * the child is waited for by its pid, killed with SIGKILL if it outlives the
 * deadline, and always reaped. */
#ifndef STAKEOUT_TEST_SPAWN_H
#define STAKEOUT_TEST_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

struct spawn_result {
    int status;      /* exit code, or 128 + signal */
    bool timed_out;
    char *out;       /* stdout, NUL-terminated, owned */
    char *err;       /* stderr, NUL-terminated, owned */
};

/* Run argv (argv[0] is a path) with optional extra environment entries
 * ("NAME=value", NULL-terminated, may be NULL) and stdin from /dev/null.
 * Returns 0 once the child is reaped, or a negative errno if it could not
 * be started. */
int spawn_capture(char *const argv[], char *const extra_env[], int timeout_ms,
                  struct spawn_result *res);

void spawn_result_fini(struct spawn_result *res);

/* Path of the stakeout binary under test ($STAKEOUT_BIN) and of the source
 * tree ($STAKEOUT_SOURCE_DIR); the test fails if they are not set. */
const char *spawn_stakeout_bin(void);
const char *spawn_source_dir(void);

#endif
