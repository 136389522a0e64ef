/* tests/support/cgroup.c - a test's own cgroup; see cgroup.h. */
#include "cgroup.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char made[8][320]; /* what is left to remove at exit, outermost first */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void remove_left(void)
{
    for (size_t i = sizeof made / sizeof made[0]; i-- > 0;) {
        if (made[i][0])
            cgroup_remove(made[i]);
    }
}

static void remember(const char *dir)
{
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        if (!made[i][0]) {
            snprintf(made[i], sizeof made[i], "%s", dir);
            return;
        }
    }
}

bool cgroup_make(const char *controller, char *dir, size_t len)
{
    static bool registered;
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    if (v2)
        snprintf(dir, len, "/sys/fs/cgroup/stakeout-test-%d", (int)getpid());
    else
        snprintf(dir, len, "/sys/fs/cgroup/%s/stakeout-test-%d", controller, (int)getpid());
    if (mkdir(dir, 0755) == -1) {
        if (getenv("CI"))
            cr_assert_fail("cannot create a %s cgroup in CI: %s", controller, strerror(errno));
        cr_skip_test("cannot create a %s cgroup: %s", controller, strerror(errno));
    }
    if (!registered) {
        atexit(remove_left);
        registered = true;
    }
    remember(dir);
    return v2;
}

void cgroup_make_container(const char *parent, const char *pod_uid, const char *container_id,
                           char *dir, size_t len)
{
    char uid[64];
    snprintf(uid, sizeof uid, "%s", pod_uid);
    for (char *p = uid; *p; p++)
        *p = *p == '-' ? '_' : *p;
    int n = snprintf(dir, len, "%s/kubepods-pod%s.slice", parent, uid);
    cr_assert(n > 0 && (size_t)n < len && (size_t)n < sizeof made[0], "%s: too long", dir);
    cr_assert_eq(mkdir(dir, 0755), 0, "%s: %s", dir, strerror(errno));
    remember(dir);
    size_t used = (size_t)n;
    n = snprintf(dir + used, len - used, "/cri-containerd-%s.scope", container_id);
    cr_assert(n > 0 && used + (size_t)n < len && used + (size_t)n < sizeof made[0], "%s: too long",
              dir);
    cr_assert_eq(mkdir(dir, 0755), 0, "%s: %s", dir, strerror(errno));
    remember(dir);
}

void cgroup_set(const char *dir, const char *name, const char *value)
{
    char file[256];
    snprintf(file, sizeof file, "%s/%s", dir, name);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "cannot open %s: %s", file, strerror(errno));
    ssize_t w = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    cr_assert_eq(w, (ssize_t)strlen(value), "cannot write '%s' to %s: %s", value, file,
                 strerror(e));
}

void cgroup_join(const char *dir, int pid)
{
    char text[32];
    snprintf(text, sizeof text, "%d", pid);
    cgroup_set(dir, "cgroup.procs", text);
}

unsigned long long cgroup_value(const char *dir, const char *name, const char *key)
{
    char file[256], line[256];
    unsigned long long v = 0;
    bool found = false;
    snprintf(file, sizeof file, "%s/%s", dir, name);
    FILE *f = fopen(file, "re");
    cr_assert_not_null(f, "cannot open %s: %s", file, strerror(errno));
    while (!found && fgets(line, sizeof line, f)) {
        size_t k = key ? strlen(key) : 0;
        if (!key)
            found = sscanf(line, "%llu", &v) == 1;
        else if (strncmp(line, key, k) == 0 && line[k] == ' ')
            found = sscanf(line + k + 1, "%llu", &v) == 1;
    }
    fclose(f);
    cr_assert(found, "no %s in %s", key ? key : "number", file);
    return v;
}

void cgroup_remove(const char *dir)
{
    long long deadline = now_ms() + 5000;
    int rc = rmdir(dir), e = errno;
    while (rc == -1 && e == EBUSY && now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rc = rmdir(dir);
        e = errno;
    }
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        if (strcmp(made[i], dir) == 0)
            made[i][0] = '\0';
    }
    if (rc == -1 && e != ENOENT)
        fprintf(stderr, "cannot remove %s: %s\n", dir, strerror(e));
}
