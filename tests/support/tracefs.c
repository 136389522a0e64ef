/* tests/support/tracefs.c - see tracefs.h. */
#include "support/tracefs.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define EVENTS "/sys/kernel/tracing/events/syscalls"

void support_tracefs_require(void)
{
    if (access(EVENTS, R_OK | X_OK) == 0 || access("/sys/kernel/debug/tracing/events/syscalls",
                                                   R_OK | X_OK) == 0)
        return;
    int e = 0;
    if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == -1)
        e = errno;
    if (e == 0 && access(EVENTS, R_OK | X_OK) == 0)
        return;
    if (getenv("CI"))
        cr_assert_fail("tracefs is not mounted and cannot be (%s): CI runs as root",
                       e ? strerror(e) : "no syscall events");
    cr_skip_test("tracefs is not mounted and cannot be: %s", e ? strerror(e) : "no events");
}
