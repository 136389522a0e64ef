/* tests/test_rootfs.c - confined opens in a target's filesystem (rootfs.h),
 * on a directory tree made here standing in for a target's root. */
#include <criterion/criterion.h>

#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char root[64], outside[128];
static int rootfd = -1;

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

static void link_at(const char *target, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    cr_assert_eq(symlink(target, p), 0, "symlink %s: %s", p, strerror(errno));
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/stakeout-rootfs-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char p[256];
    snprintf(p, sizeof p, "%s/var", root);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/var/log", root);
    cr_assert_eq(mkdir(p, 0755), 0);
    put("var/log/app.log", "inside\n");
    /* a file of "stakeout's" outside the target's root */
    snprintf(outside, sizeof outside, "%s-outside", root);
    FILE *f = fopen(outside, "w");
    cr_assert_not_null(f);
    fputs("secret\n", f);
    fclose(f);
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(rootfd, 0);
}

static void teardown(void)
{
    char cmd[300];
    close(rootfd);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", root, outside);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(rootfs, .init = setup, .fini = teardown, .timeout = 30);

static void expect_text(int fd, const char *want)
{
    char buf[64] = "";
    cr_assert_geq(fd, 0, "open failed: %s", strerror(-fd));
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_expect_str_eq(buf, want);
}

Test(rootfs, the_targets_own_file_opens)
{
    expect_text(rootfs_open(rootfd, "/var/log/app.log"), "inside\n");
    expect_text(rootfs_open(rootfd, "var/log/app.log"), "inside\n");
    link_at("app.log", "var/log/current.log"); /* a relative link inside is fine */
    expect_text(rootfs_open(rootfd, "/var/log/current.log"), "inside\n");
}

Test(rootfs, an_absolute_symlink_resolves_inside_the_root)
{
    link_at(outside, "var/log/evil.log");
    int fd = rootfs_open(rootfd, "/var/log/evil.log");
    cr_expect_eq(fd, -ENOENT, "the link was followed out of the root: %d", fd);
    /* the same link, had the file been there inside the root, names that one */
    char p[300];
    snprintf(p, sizeof p, "%s%s", root, outside);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p $(dirname %s) && echo planted > %s", p, p);
    cr_assert_eq(system(cmd), 0);
    expect_text(rootfs_open(rootfd, "/var/log/evil.log"), "planted\n");
}

Test(rootfs, dot_dot_cannot_climb_out)
{
    char rel[300];
    snprintf(rel, sizeof rel, "/var/log/../../../../..%s", outside);
    cr_expect_eq(rootfs_open(rootfd, rel), -ENOENT);
    link_at("../../../../../../../..", "var/log/up");
    snprintf(rel, sizeof rel, "/var/log/up%s", outside);
    cr_expect_eq(rootfs_open(rootfd, rel), -ENOENT);
}

Test(rootfs, magic_links_are_refused)
{
    int mine = open(outside, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(mine, 0);
    char target[64];
    snprintf(target, sizeof target, "/proc/%d/fd/%d", (int)getpid(), mine);
    link_at(target, "var/log/magic.log");
    /* /proc is not mounted in this root: nothing there; and through a real
     * /proc, the magic link itself is refused */
    cr_expect_lt(rootfs_open(rootfd, "/var/log/magic.log"), 0);
    int procroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(procroot, 0);
    cr_expect_eq(rootfs_open(procroot, target), -ELOOP);
    close(procroot);
    close(mine);
}

Test(rootfs, a_fifo_or_a_device_is_refused_without_blocking)
{
    char p[256];
    snprintf(p, sizeof p, "%s/var/log/fifo.log", root);
    cr_assert_eq(mkfifo(p, 0600), 0);
    cr_expect_eq(rootfs_open(rootfd, "/var/log/fifo.log"), -EINVAL);
    int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_expect_eq(rootfs_open(slash, "/dev/zero"), -EINVAL);
    close(slash);
    cr_expect_eq(rootfs_open(rootfd, "/var/log"), -EINVAL, "a directory is not a log");
}

/* Whether a node ifd watches was opened since the last call. */
static bool opened(int ifd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(ifd, buf, sizeof buf);
        if (n <= 0)
            return any;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            any = any || (ev->mask & IN_OPEN);
            p += sizeof *ev + ev->len;
        }
    }
}

/* Refused is not enough: opening a device runs its driver, and opening a
 * FIFO wakes the writer waiting on it. Nothing may open either. */
Test(rootfs, a_fifo_or_a_device_is_never_opened)
{
    char fifo[256], dev[256];
    snprintf(fifo, sizeof fifo, "%s/var/log/fifo.log", root);
    snprintf(dev, sizeof dev, "%s/var/log/dev.log", root);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(mknod(dev, S_IFCHR | 0600, makedev(1, 3)), 0, "mknod: %s", strerror(errno));
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    cr_assert_geq(ifd, 0);
    cr_assert_geq(inotify_add_watch(ifd, fifo, IN_OPEN), 0);
    cr_assert_geq(inotify_add_watch(ifd, dev, IN_OPEN), 0);
    int probe = open(dev, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(probe, 0);
    close(probe);
    cr_assert(opened(ifd), "the watch does not see opens: the test would prove nothing");

    cr_expect_eq(rootfs_open(rootfd, "/var/log/fifo.log"), -EINVAL);
    cr_expect_eq(rootfs_open(rootfd, "/var/log/dev.log"), -EINVAL);
    int dir = rootfs_open_dir(rootfd, "/var/log");
    cr_assert_geq(dir, 0);
    cr_expect_eq(rootfs_open_beneath(dir, "fifo.log"), -EINVAL);
    cr_expect_eq(rootfs_open_beneath(dir, "dev.log"), -EINVAL);
    close(dir);
    cr_expect_not(opened(ifd), "a FIFO or a device was opened");
    close(ifd);
}

Test(rootfs, beneath_a_directory_follows_no_symlink)
{
    int dir = rootfs_open_dir(rootfd, "/var/log");
    cr_assert_geq(dir, 0);
    expect_text(rootfs_open_beneath(dir, "app.log"), "inside\n");
    link_at("app.log", "var/log/alias.log");
    cr_expect_eq(rootfs_open_beneath(dir, "alias.log"), -ELOOP);
    cr_expect_eq(rootfs_open_beneath(dir, "../log/app.log"), -EXDEV);
    close(dir);
    cr_expect_eq(rootfs_open_dir(rootfd, "/var/log/app.log"), -ENOTDIR);
}
