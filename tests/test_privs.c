/* tests/test_privs.c - who may have written the rules file
 * (privs_check_rules_fd, and config_load, which opens the file once and
 * checks that descriptor): real files and directories in a private
 * temporary directory, owned by another user (uid 65534, chown as root),
 * made writable by others, made safe again; sticky and read-only-mounted
 * directories; a symlink swapped after the open.
 *
 * Changing owners needs root and read-only mounts need CAP_SYS_ADMIN (in a
 * private mount namespace of a child, reaped by its pid): without them a
 * test skips, and fails when CI is set. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "privs.h"

#define NOBODY 65534
#define RULES "version: 1\ntargets: [{name: a, match: {pid: 1}}]\nrules: []\n"

static char dir[256];   /* private (0700), under $TMPDIR or /tmp */
static char rules[512]; /* dir/rules.yaml, 0600, root's */
static char err[1024];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_privs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(rules, sizeof rules, "%s/rules.yaml", dir);
    int fd = open(rules, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, RULES, strlen(RULES)), (ssize_t)strlen(RULES));
    cr_assert_eq(close(fd), 0);
    err[0] = '\0';
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "test_privs: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void teardown(void)
{
    /* subdirectories, symlinks and FIFOs: depth first, links not followed */
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(privs, .init = setup, .fini = teardown, .timeout = 30);

static void need_root(void)
{
    if (geteuid() == 0)
        return;
    cr_assert_null(getenv("CI"), "changing a file's owner needs root");
    cr_skip_test("changing a file's owner needs root");
}

/* privs_check_rules_fd on path opened as config_load opens it. */
static int check(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    cr_assert_neq(fd, -1, "%s: %s", path, strerror(errno));
    err[0] = '\0';
    int rc = privs_check_rules_fd(fd, path, err, sizeof err);
    close(fd);
    return rc;
}

static void expect_refused(const char *path, const char *why)
{
    cr_assert_eq(check(path), -EPERM, "%s accepted (%s)", path, err);
    cr_assert(strstr(err, why), "'%s' is not in: %s", why, err);
}

static void expect_accepted(const char *path)
{
    cr_assert_eq(check(path), 0, "%s refused: %s", path, err);
}

Test(privs, own_file_in_private_directory_is_accepted)
{
    expect_accepted(rules);
}

Test(privs, file_owned_by_another_user_is_refused_until_chowned)
{
    need_root();
    cr_assert_eq(chown(rules, NOBODY, NOBODY), 0);
    expect_refused(rules, "the rules file is owned by uid 65534, not by root or stakeout's user");
    cr_assert(strstr(err, "chown it"), "%s", err);
    cr_assert_eq(chown(rules, 0, 0), 0);
    expect_accepted(rules);
}

Test(privs, file_others_can_write_is_refused_until_chmodded)
{
    cr_assert_eq(chmod(rules, 0602), 0);
    expect_refused(rules, "the rules file is writable by other users");
    cr_assert_eq(chmod(rules, 0620), 0);
    expect_refused(rules, "the rules file is writable by its group");
    cr_assert(strstr(err, "chmod go-w"), "%s", err);
    cr_assert_eq(chmod(rules, 0644), 0);
    expect_accepted(rules);
}

Test(privs, file_in_a_directory_others_can_write_is_refused_until_chmodded)
{
    char want[700];
    cr_assert_eq(chmod(dir, 0777), 0);
    snprintf(want, sizeof want, "directory %s is writable by other users", dir);
    expect_refused(rules, want);
    cr_assert_eq(chmod(dir, 0770), 0);
    snprintf(want, sizeof want, "directory %s is writable by its group", dir);
    expect_refused(rules, want);
    cr_assert_eq(chmod(dir, 0755), 0);
    expect_accepted(rules);
}

/* As /tmp: others cannot rename or remove what they do not own there. */
Test(privs, sticky_directory_others_can_write_is_accepted)
{
    cr_assert_eq(chmod(dir, 01777), 0);
    expect_accepted(rules);
}

Test(privs, directory_owned_by_another_user_is_refused)
{
    char want[700];
    need_root();
    cr_assert_eq(chown(dir, NOBODY, NOBODY), 0);
    snprintf(want, sizeof want, "directory %s is owned by uid 65534", dir);
    expect_refused(rules, want);
    /* its owner could also have made it sticky: that changes nothing */
    cr_assert_eq(chmod(dir, 01777), 0);
    expect_refused(rules, want);
    cr_assert_eq(chown(dir, 0, 0), 0);
    expect_accepted(rules);
}

/* Whoever can write a directory further up can rename the one below. */
Test(privs, directory_above_others_can_write_is_refused)
{
    char sub[400], deep[600], want[700];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(deep, sizeof deep, "%s/rules.yaml", sub);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(rename(rules, deep), 0);
    expect_accepted(deep);
    cr_assert_eq(chmod(dir, 0777), 0);
    snprintf(want, sizeof want, "directory %s is writable by other users", dir);
    expect_refused(deep, want);
}

/* The name stakeout opens at every reload may be a symlink: the directory
 * that holds the name counts too. */
Test(privs, symlink_in_a_directory_others_can_write_is_refused)
{
    char pub[400], link[600], want[700];
    snprintf(pub, sizeof pub, "%s/public", dir);
    snprintf(link, sizeof link, "%s/rules.yaml", pub);
    cr_assert_eq(mkdir(pub, 0755), 0);
    cr_assert_eq(symlink(rules, link), 0);
    expect_accepted(link);
    cr_assert_eq(chmod(pub, 0777), 0);
    snprintf(want, sizeof want, "directory %s is writable by other users", pub);
    expect_refused(link, want);
    expect_accepted(rules); /* the file itself, by its own name, is fine */
}

/* The check is made on the descriptor, not on the name: what was opened is
 * what is judged (and what config_load reads), whatever the name points to
 * by the time of the check. */
Test(privs, check_judges_the_opened_file_not_what_the_name_points_to_later)
{
    char bad[600], link[600], tmp[600];
    need_root();
    snprintf(bad, sizeof bad, "%s/bad.yaml", dir);
    snprintf(link, sizeof link, "%s/current.yaml", dir);
    snprintf(tmp, sizeof tmp, "%s/current.tmp", dir);
    int fd = open(bad, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_neq(fd, -1);
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(chown(bad, NOBODY, NOBODY), 0);

    /* opened while the name pointed at another user's file, swapped to a
     * good one before the check: still refused */
    cr_assert_eq(symlink("bad.yaml", link), 0);
    fd = open(link, O_RDONLY | O_CLOEXEC);
    cr_assert_neq(fd, -1);
    cr_assert_eq(symlink("rules.yaml", tmp), 0);
    cr_assert_eq(rename(tmp, link), 0);
    cr_assert_eq(privs_check_rules_fd(fd, link, err, sizeof err), -EPERM, "%s", err);
    cr_assert(strstr(err, "owned by uid 65534"), "%s", err);
    cr_assert_eq(close(fd), 0);

    /* and the other way round: opened good, swapped bad: accepted, for the
     * descriptor read is the good file */
    fd = open(link, O_RDONLY | O_CLOEXEC);
    cr_assert_neq(fd, -1);
    cr_assert_eq(symlink("bad.yaml", tmp), 0);
    cr_assert_eq(rename(tmp, link), 0);
    cr_assert_eq(privs_check_rules_fd(fd, link, err, sizeof err), 0, "%s", err);
    cr_assert_eq(close(fd), 0);
}

Test(privs, file_removed_after_the_open_is_reported_as_changed)
{
    int fd = open(rules, O_RDONLY | O_CLOEXEC);
    cr_assert_neq(fd, -1);
    cr_assert_eq(unlink(rules), 0);
    cr_assert_eq(privs_check_rules_fd(fd, rules, err, sizeof err), -EAGAIN, "%s", err);
    cr_assert(strstr(err, "moved or removed while it was checked"), "%s", err);
    cr_assert_eq(close(fd), 0);
}

/* config_load opens once and checks that descriptor: refused files are
 * not parsed, `check` gets a warning and the parsed file. A FIFO put at the
 * name does not hang it. */
Test(privs, config_load_refuses_warns_or_trusts_as_asked)
{
    struct diag_list d;
    struct config *c = NULL;
    need_root();
    cr_assert_eq(chown(rules, NOBODY, NOBODY), 0);

    diag_init(&d);
    cr_assert_eq(config_load(rules, CONFIG_TRUST_REQUIRE, &c, &d), -EPERM);
    cr_assert_null(c);
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.items[0].line, 0);
    cr_assert(strstr(d.items[0].msg, "owned by uid 65534"), "%s", d.items[0].msg);
    diag_fini(&d);

    diag_init(&d);
    cr_assert_eq(config_load(rules, CONFIG_TRUST_WARN, &c, &d), 0);
    cr_assert_not_null(c);
    cr_assert_eq(c->ntargets, 1);
    cr_assert_eq(d.n, 1);
    cr_assert(strstr(d.items[0].msg, "warning: stakeout run would refuse this file: the rules "
                                     "file is owned by uid 65534"),
              "%s", d.items[0].msg);
    config_free(c);
    c = NULL;
    diag_fini(&d);

    diag_init(&d);
    cr_assert_eq(config_load(rules, CONFIG_TRUST_ANY, &c, &d), 0);
    cr_assert_eq(d.n, 0);
    config_free(c);
    c = NULL;
    diag_fini(&d);

    cr_assert_eq(chown(rules, 0, 0), 0);
    diag_init(&d);
    cr_assert_eq(config_load(rules, CONFIG_TRUST_REQUIRE, &c, &d), 0);
    cr_assert_eq(d.n, 0);
    config_free(c);
    diag_fini(&d);
}

Test(privs, fifo_at_the_name_is_refused_without_waiting_for_a_writer)
{
    char fifo[400];
    struct diag_list d;
    struct config *c = NULL;
    snprintf(fifo, sizeof fifo, "%s/fifo.yaml", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    diag_init(&d);
    cr_assert_eq(config_load(fifo, CONFIG_TRUST_REQUIRE, &c, &d), -EPERM);
    cr_assert(diag_find(&d, "not a regular file"));
    diag_fini(&d);
}

/* A read-only mount cannot be changed by anyone here, whatever its mode
 * bits say (Kubernetes mounts a ConfigMap read-only in a 0777 directory).
 * In a child, in its own mount namespace: a tmpfs on dir/ro, 0777, holding
 * the rules; judged while writable, then remounted read-only. The child
 * exits 0 when both verdicts are right, 2 when it may not mount. */
static int ro_child(void)
{
    char ro[400], file[600];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    snprintf(file, sizeof file, "%s/rules.yaml", ro);
    if (unshare(CLONE_NEWNS) == -1)
        return errno == EPERM ? 2 : 3;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
        return 4;
    if (mount("none", ro, "tmpfs", 0, "mode=0777") == -1)
        return errno == EPERM ? 2 : 5;
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd == -1 || write(fd, RULES, strlen(RULES)) != (ssize_t)strlen(RULES) || close(fd) != 0)
        return 6;
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || privs_check_rules_fd(fd, file, err, sizeof err) != -EPERM ||
        !strstr(err, "writable by other users"))
        return 7;
    close(fd);
    if (mount(NULL, ro, NULL, MS_REMOUNT | MS_RDONLY, NULL) == -1)
        return 8;
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || privs_check_rules_fd(fd, file, err, sizeof err) != 0) {
        fprintf(stderr, "refused on a read-only mount: %s\n", err);
        return 9;
    }
    close(fd);
    return 0;
}

Test(privs, directory_on_a_read_only_mount_is_accepted_whatever_its_mode)
{
    char ro[400];
    int status;
    snprintf(ro, sizeof ro, "%s/ro", dir);
    cr_assert_eq(mkdir(ro, 0755), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        _exit(ro_child());
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child died: status %d", status);
    if (WEXITSTATUS(status) == 2) {
        cr_assert_null(getenv("CI"), "mounting a tmpfs in a mount namespace needs CAP_SYS_ADMIN");
        cr_skip_test("mounting a tmpfs in a mount namespace needs CAP_SYS_ADMIN");
    }
    cr_assert_eq(WEXITSTATUS(status), 0, "step %d of the child failed", WEXITSTATUS(status));
}
