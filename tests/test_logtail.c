/* tests/test_logtail.c - following a real log file through appends, partial
 * lines, rotation by rename, copytruncate, deletion and late creation
 * (sidecar/logtail), with the writer a real process (tests/targets/logger)
 * whose own report of what it wrote is the ground truth: every count must
 * match it exactly, so a lost or a doubled line fails. The lines kept
 * around a match must never come from another file than the match's.
 *
 * Nothing sleeps to synchronise: the tailer is driven by poll(2) on its
 * inotify descriptor (and by logtail_poll at a poll interval, as the daemon
 * does), and waiting is polling a condition against a deadline. With
 * --sync the logger stops at each rotation until the test has seen the
 * state it wants to check.
 *
 * The "in_a_root" tests follow the same file as a target's log: the test
 * directory is the root, the path the one inside it, every open a confined
 * one (rootfs). How a target's own log is kept from escaping its root is
 * tested in test_logwatch.c, with a target in a root of its own. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "logscan.h"
#include "logtail.h"
#include "support/child.h"

#define MS 1000000LL
#define PATTERN "\\b(ERROR|FATAL|panic)\\b"

enum drive {
    DRIVE_BOTH,   /* inotify, and logtail_poll every 100 ms as the daemon would */
    DRIVE_EVENTS, /* inotify alone */
    DRIVE_POLLS,  /* logtail_poll alone, every 10 ms: the safety net by itself */
};

static char dir[256];
static char path[512];
static struct logscan *scan;
static struct logtail *tail;
static struct child kid;
static enum drive drive;
static int64_t last_poll;
static int fds_before;
static int rootfd = -1; /* dir as a root, for the in_a_root tests */
static bool in_root;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    cr_assert_not_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char err[256];
    snprintf(dir, sizeof dir, "%s/test_logtail.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/app.log", dir);
    cr_assert_eq(logscan_new(LOG_FORMAT_PLAIN, PATTERN, &scan, err, sizeof err), 0, "%s", err);
    drive = DRIVE_BOTH;
    kid.pid = 0;
    kid.to_child = kid.from_child = -1;
    in_root = false;
    rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(rootfd, 0);
    fds_before = count_fds();
}

static void remove_tree(const char *d)
{
    DIR *dh = opendir(d);
    struct dirent *e;
    if (!dh)
        return;
    while ((e = readdir(dh))) {
        char p[1024];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        if (e->d_type == DT_DIR)
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(dh);
    rmdir(d);
}

static void teardown(void)
{
    if (kid.pid > 0)
        child_stop(&kid);
    logtail_free(tail);
    tail = NULL;
    logscan_free(scan);
    scan = NULL;
    close(rootfd);
    rootfd = -1;
    remove_tree(dir);
}

TestSuite(logtail, .init = setup, .fini = teardown, .timeout = 90);

/* Follow path; in_root: as "/..." inside the root dir. */
static void start_tail(void)
{
    if (in_root)
        cr_assert_eq(logtail_new(rootfd, path + strlen(dir), scan, &tail), 0);
    else
        cr_assert_eq(logtail_new(-1, path, scan, &tail), 0);
    last_poll = mono_ns();
}

static struct logscan_stats sstats(void)
{
    struct logscan_stats st;
    logscan_stats(scan, &st);
    return st;
}

static struct logtail_stats tstats(void)
{
    struct logtail_stats st;
    logtail_stats(tail, &st);
    return st;
}

/* Wait up to ms for the tailer's descriptor (or the logger's stdout), then
 * let the tailer do what there is to do. True when the logger has output. */
static bool step(int ms)
{
    struct pollfd pf[2];
    nfds_t n = 0;
    int ti = -1, ci = -1;

    if (drive != DRIVE_POLLS) {
        pf[n] = (struct pollfd){.fd = logtail_fd(tail), .events = POLLIN};
        ti = (int)n++;
    }
    if (kid.pid > 0 && kid.from_child >= 0) {
        pf[n] = (struct pollfd){.fd = kid.from_child, .events = POLLIN};
        ci = (int)n++;
    }
    if (drive != DRIVE_EVENTS && ms > 10)
        ms = 10; /* the poll interval of the safety net */
    int r = poll(pf, n, ms);
    cr_assert(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
    if (ti >= 0 && (pf[ti].revents & POLLIN))
        cr_assert_eq(logtail_process(tail, mono_ns(), wall_ns()), 0);
    int64_t now = mono_ns();
    if (drive == DRIVE_POLLS || (drive == DRIVE_BOTH && now - last_poll >= 100 * MS)) {
        cr_assert_eq(logtail_poll(tail, now, wall_ns()), 0);
        last_poll = now;
    }
    return r > 0 && ci >= 0 && (pf[ci].revents & (POLLIN | POLLHUP));
}

/* Drive the tailer until cond() holds; fail after ms. */
static void wait_until(bool (*cond)(void *), void *arg, int ms, const char *what)
{
    int64_t deadline = mono_ns() + ms * MS;
    while (!cond(arg)) {
        cr_assert(mono_ns() < deadline, "timed out waiting for %s (lines %llu, matched %llu)", what,
                  (unsigned long long)sstats().lines, (unsigned long long)sstats().matched);
        step(50);
    }
}

static bool lines_reach(void *arg)
{
    return sstats().lines >= *(uint64_t *)arg;
}

static void wait_lines(uint64_t n)
{
    wait_until(lines_reach, &n, 20000, "lines");
    cr_assert_eq(sstats().lines, n, "%llu lines, expected %llu", (unsigned long long)sstats().lines,
                 (unsigned long long)n);
}

static bool bytes_reach(void *arg)
{
    return tstats().bytes >= *(uint64_t *)arg;
}

static bool truncations_reach(void *arg)
{
    return tstats().truncations >= *(uint64_t *)arg;
}

static bool not_following(void *arg)
{
    (void)arg;
    return !tstats().following;
}

static bool marker_seen(void *arg)
{
    size_t n = logscan_nmatches(scan);
    (void)arg;
    return n && strcmp(logscan_match_at(scan, n - 1)->line.text, "marker FATAL") == 0;
}

static void append(const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert_neq(fd, -1, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(close(fd), 0);
}

struct report {
    unsigned long long lines, errors, rotations;
};

/* Run the logger with extra arguments (NULL-terminated) to its end, answering
 * its --sync events once the tailer has seen what each one announces. base:
 * lines the scanner had counted before. */
static struct report run_logger(uint64_t base, const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    char line[256];
    struct report rep = {0};
    uint64_t truncs = tstats().truncations;
    int64_t deadline = mono_ns() + 60000 * MS;

    argv[n++] = (char *)child_target("logger");
    argv[n++] = "--file";
    argv[n++] = path;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    cr_assert_eq(child_start(&kid, argv), 0);
    for (;;) {
        int got = child_readline(&kid, line, sizeof line, 0);
        if (got < 0) {
            cr_assert(mono_ns() < deadline, "the logger did not finish");
            if (step(50))
                got = child_readline(&kid, line, sizeof line, 2000);
            if (got < 0)
                continue;
        }
        char ev[32];
        unsigned long long l = 0, e = 0, r = 0;
        int k = sscanf(line, "%31s lines=%llu errors=%llu rotations=%llu", ev, &l, &e, &r);
        cr_assert(k >= 3, "logger said '%s'", line);
        if (strcmp(ev, "done") == 0) {
            rep = (struct report){l, e, r};
            break;
        }
        if (strcmp(ev, "truncated") == 0) {
            truncs++;
            wait_until(truncations_reach, &truncs, 20000, "the truncation");
        } else {
            wait_lines(base + l);
            cr_assert_eq(sstats().matched, e);
            if (strcmp(ev, "switched") == 0)
                cr_assert(tstats().following && tstats().draining >= 1);
            else if (strcmp(ev, "deleted") == 0)
                wait_until(not_following, NULL, 20000, "the deletion");
        }
        cr_assert(child_send(&kid, "g"));
    }
    child_stop(&kid);
    return rep;
}

/* After the logger is done: the tailer counts exactly what it wrote, and
 * keeps counting exactly that when the rotated files are let go. */
static void expect_exactly(uint64_t base_lines, uint64_t base_matched, struct report rep)
{
    wait_lines(base_lines + rep.lines);
    cr_assert_eq(sstats().matched, base_matched + rep.errors, "matched %llu, logger wrote %llu",
                 (unsigned long long)sstats().matched,
                 (unsigned long long)(base_matched + rep.errors));
    cr_assert_eq(logtail_poll(tail, mono_ns() + LOGTAIL_DRAIN_NS + 1000 * MS, wall_ns()), 0);
    cr_assert_eq(tstats().draining, 0);
    cr_assert_eq(sstats().lines, base_lines + rep.lines);
    cr_assert_eq(sstats().matched, base_matched + rep.errors);
    cr_assert_eq(sstats().truncated, 0);
}

/* Free the tailer and check that it closed every descriptor it opened. */
static void expect_no_leak(void)
{
    logtail_free(tail);
    tail = NULL;
    cr_assert_eq(count_fds(), fds_before);
}

Test(logtail, starts_at_the_end_and_counts_only_new_lines)
{
    static const char *const hist[] = {"--count", "100", "--rate", "0", NULL};
    static const char *const more[] = {"--count", "400", "--rate", "4000", "--split", NULL};
    start_tail();
    struct report h = run_logger(0, hist);
    cr_assert_eq(h.lines, 100);
    wait_lines(100);
    /* a second tailer started now sees none of that history */
    logtail_free(tail);
    logscan_free(scan);
    char err[256];
    cr_assert_eq(logscan_new(LOG_FORMAT_PLAIN, PATTERN, &scan, err, sizeof err), 0);
    start_tail();
    cr_assert(tstats().following);
    struct report r = run_logger(0, more);
    expect_exactly(0, 0, r);
    cr_assert_eq(r.errors, 57); /* seq 1..400 with seq % 7 == 3 */
    expect_no_leak();
}

Test(logtail, starting_mid_line_skips_the_rest_of_that_line)
{
    append("old ERROR\nhalf a line ER");
    start_tail();
    append("ROR still old\nnew ERROR\nnew");
    uint64_t bytes = 27;
    wait_until(bytes_reach, &bytes, 20000, "the append");
    wait_lines(1);
    cr_assert_eq(sstats().matched, 1);
    cr_assert_str_eq(logscan_match_at(scan, 0)->line.text, "new ERROR");
}

Test(logtail, partial_line_is_counted_once_completed)
{
    start_tail();
    append("one ER");
    uint64_t bytes = 6;
    wait_until(bytes_reach, &bytes, 20000, "the partial line");
    cr_assert_eq(sstats().lines, 0);
    append("ROR two\r\n");
    wait_lines(1);
    cr_assert_eq(sstats().matched, 1);
    cr_assert_str_eq(logscan_match_at(scan, 0)->line.text, "one ERROR two");
}

Test(logtail, file_created_after_start_is_read_from_its_start)
{
    static const char *const args[] = {"--count", "700", "--rate", "5000", NULL};
    start_tail();
    cr_assert_not(tstats().following);
    struct report r = run_logger(0, args);
    expect_exactly(0, 0, r);
    cr_assert_eq(tstats().opens, 1);
    expect_no_leak();
}

static void directory_later(void)
{
    static const char *const args[] = {"--count", "200", "--rate", "0", NULL};
    snprintf(path, sizeof path, "%s/later/app.log", dir);
    start_tail();
    char sub[300];
    snprintf(sub, sizeof sub, "%s/later", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    struct report r = run_logger(0, args);
    expect_exactly(0, 0, r);
}

Test(logtail, directory_created_after_start_is_picked_up_by_the_poll)
{
    directory_later();
}

Test(logtail, in_a_root_a_directory_created_after_start_is_picked_up)
{
    in_root = true;
    directory_later();
}

Test(logtail, rename_rotation_loses_and_doubles_nothing)
{
    static const char *const args[] = {"--count", "3000", "--rate", "2000", "--rotate", "rename",
                                       "--every", "500",  "--late", "3",    "--split",  NULL};
    start_tail();
    struct report r = run_logger(0, args);
    cr_assert_eq(r.rotations, 5);
    expect_exactly(0, 0, r);
    cr_assert_eq(tstats().rotations, 5);
    expect_no_leak();
}

static void rename_sync(enum drive d)
{
    static const char *const args[] = {"--count", "600", "--rate", "0", "--rotate", "rename",
                                       "--every", "100", "--late", "5", "--sync",   NULL};
    drive = d;
    append("history ERROR\n");
    start_tail();
    struct report r = run_logger(0, args);
    cr_assert_eq(r.rotations, 5);
    expect_exactly(0, 0, r);
    cr_assert_eq(tstats().rotations, 5);
    cr_assert_eq(tstats().opens, 6);
    expect_no_leak();
}

/* The late lines go to the old file after the tailer has moved on to the
 * new one (the logger waits until the first line of the new file counted). */
Test(logtail, rename_rotation_counts_writes_to_the_old_file_after_the_switch)
{
    rename_sync(DRIVE_BOTH);
}

Test(logtail, rename_rotation_with_inotify_alone)
{
    rename_sync(DRIVE_EVENTS);
}

Test(logtail, rename_rotation_with_the_poll_alone)
{
    rename_sync(DRIVE_POLLS);
}

Test(logtail, in_a_root_rename_rotation_counts_every_line_once)
{
    in_root = true;
    rename_sync(DRIVE_BOTH);
}

Test(logtail, in_a_root_rename_rotation_with_inotify_alone)
{
    in_root = true;
    rename_sync(DRIVE_EVENTS);
}

static void copytruncate_sync(void)
{
    static const char *const args[] = {"--count",  "1000",         "--rate",  "0",
                                       "--rotate", "copytruncate", "--every", "150",
                                       "--split",  "--sync",       NULL};
    start_tail();
    struct report r = run_logger(0, args);
    cr_assert_eq(r.rotations, 6);
    expect_exactly(0, 0, r);
    cr_assert_eq(tstats().truncations, 6);
    cr_assert_eq(tstats().rotations, 0);
    expect_no_leak();
}

Test(logtail, copytruncate_restarts_at_zero_and_loses_nothing_read_in_time)
{
    copytruncate_sync();
}

Test(logtail, in_a_root_copytruncate_loses_nothing_read_in_time)
{
    in_root = true;
    copytruncate_sync();
}

/* Free running, a line written just before a truncation can be lost (no
 * reader can see it); nothing may ever be counted twice. */
Test(logtail, copytruncate_free_running_never_counts_twice)
{
    static const char *const args[] = {"--count",      "2000",    "--rate", "2000", "--rotate",
                                       "copytruncate", "--every", "400",    NULL};
    start_tail();
    struct report r = run_logger(0, args);
    cr_assert_eq(r.rotations, 4);
    /* once the tailer has read a marker appended last, it has read it all */
    append("marker FATAL\n");
    wait_until(marker_seen, NULL, 20000, "the marker");
    cr_assert_leq(sstats().lines, r.lines + 1);
    cr_assert_leq(sstats().matched, r.errors + 1);
    cr_assert_geq(sstats().lines, 400, "%llu", (unsigned long long)sstats().lines);
    cr_assert_geq(tstats().truncations, 1);
}

static void delete_sync(void)
{
    static const char *const args[] = {"--count", "500", "--rate", "0", "--rotate", "delete",
                                       "--every", "100", "--late", "4", "--sync",   NULL};
    start_tail();
    struct report r = run_logger(0, args);
    cr_assert_eq(r.rotations, 4);
    expect_exactly(0, 0, r);
    cr_assert_eq(tstats().rotations, 4);
    expect_no_leak();
}

Test(logtail, deleted_file_is_read_to_its_end_then_the_new_one_followed)
{
    delete_sync();
}

Test(logtail, in_a_root_a_deleted_and_recreated_file_is_followed)
{
    in_root = true;
    delete_sync();
}

Test(logtail, deletion_free_running_loses_nothing)
{
    static const char *const args[] = {"--count", "2000", "--rate", "2000", "--rotate", "delete",
                                       "--every", "500",  "--late", "3",    NULL};
    start_tail();
    struct report r = run_logger(0, args);
    expect_exactly(0, 0, r);
}

Test(logtail, renamed_back_file_is_not_read_twice)
{
    char moved[600];
    snprintf(moved, sizeof moved, "%s.tmp", path);
    append("a ERROR\n");
    start_tail();
    append("b ERROR\n");
    wait_lines(1);
    cr_assert_eq(rename(path, moved), 0);
    wait_until(not_following, NULL, 20000, "the rename");
    cr_assert_eq(rename(moved, path), 0);
    append("c ERROR\n");
    wait_lines(2);
    cr_assert_eq(sstats().matched, 2);
    cr_assert_eq(tstats().draining, 0);
    cr_assert_eq(tstats().opens, 1);
}

/* ---- context never spans files ---- */

enum change { CHANGE_RENAME, CHANGE_TRUNCATE, CHANGE_DELETE, CHANGE_SYMLINK };

static void write_file(const char *p, const char *text, int flags)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    cr_assert_neq(fd, -1, "%s: %s", p, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(close(fd), 0);
}

static void expect_match(size_t i, const char *line, size_t nbefore, const char *const *before,
                         size_t nafter, const char *const *after)
{
    cr_assert_gt(logscan_nmatches(scan), i);
    const struct logscan_match *m = logscan_match_at(scan, i);
    cr_assert_str_eq(m->line.text, line);
    cr_assert_eq(m->nbefore, nbefore, "'%s': %zu lines before, expected %zu%s%s", line, m->nbefore,
                 nbefore, m->nbefore ? ", the first: " : "", m->nbefore ? m->before[0].text : "");
    for (size_t k = 0; k < nbefore; k++)
        cr_assert_str_eq(m->before[k].text, before[k]);
    cr_assert_eq(m->nafter, nafter, "'%s': %zu lines after, expected %zu%s%s", line, m->nafter,
                 nafter, m->nafter ? ", the first: " : "", m->nafter ? m->after[0].text : "");
    for (size_t k = 0; k < nafter; k++)
        cr_assert_str_eq(m->after[k].text, after[k]);
}

/* A file read to an error on its last line, then another file (or the same
 * one from its start) with an error on its first: neither error gets the
 * other file's lines as context. This is how a symlink swapped to a secret
 * file would put that file's lines into an alert. */
static void context_across(enum change how)
{
    static const char *const old_before[] = {"secret 1", "secret 2"};
    static const char *const new_after[] = {"after 1"};
    const char *fresh = "new ERROR\nafter 1\n"; /* shorter than the old text: a truncation */
    char other[600], link_tmp[600];
    int old_fd = -1;

    snprintf(other, sizeof other, "%s/other.log", dir);
    snprintf(link_tmp, sizeof link_tmp, "%s/link.tmp", dir);
    if (how == CHANGE_SYMLINK) {
        char first[600];
        snprintf(first, sizeof first, "%s/first.log", dir);
        write_file(first, "", O_TRUNC);
        cr_assert_eq(symlink("first.log", path), 0);
    } else {
        write_file(path, "", O_TRUNC);
    }
    start_tail();
    append("secret 1\nsecret 2\nold ERROR\n");
    wait_lines(3);
    expect_match(0, "old ERROR", 2, old_before, 0, NULL);

    switch (how) {
    case CHANGE_RENAME: /* replaced: a new file renamed over the name */
        old_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        cr_assert_neq(old_fd, -1);
        write_file(other, fresh, O_TRUNC);
        cr_assert_eq(rename(other, path), 0);
        break;
    case CHANGE_TRUNCATE: /* copytruncate, and the writer starts again */
        write_file(path, fresh, O_TRUNC);
        break;
    case CHANGE_DELETE: /* gone, then back */
        cr_assert_eq(unlink(path), 0);
        wait_until(not_following, NULL, 20000, "the deletion");
        write_file(path, fresh, O_EXCL);
        break;
    case CHANGE_SYMLINK: /* the link now names another file */
        write_file(other, fresh, O_TRUNC);
        cr_assert_eq(symlink("other.log", link_tmp), 0);
        cr_assert_eq(rename(link_tmp, path), 0);
        break;
    }
    wait_lines(5);
    expect_match(0, "old ERROR", 2, old_before, 0, NULL);
    expect_match(1, "new ERROR", 0, NULL, 1, new_after);

    if (old_fd >= 0) {
        /* the writer of the replaced file is not done with it yet: its late
         * lines still count, with their own file's lines as context */
        static const char *const late_before[] = {"secret 1", "secret 2", "old ERROR"};
        const char late[] = "late ERROR\n";
        cr_assert_eq(write(old_fd, late, sizeof late - 1), (ssize_t)(sizeof late - 1));
        cr_assert_eq(close(old_fd), 0);
        wait_lines(6);
        expect_match(1, "new ERROR", 0, NULL, 1, new_after);
        expect_match(2, "late ERROR", 3, late_before, 0, NULL);
    }
}

Test(logtail, context_does_not_span_a_rename_rotation)
{
    context_across(CHANGE_RENAME);
    cr_assert_eq(tstats().rotations, 1);
}

Test(logtail, context_does_not_span_a_truncation)
{
    context_across(CHANGE_TRUNCATE);
    cr_assert_eq(tstats().truncations, 1);
}

Test(logtail, context_does_not_span_a_deletion)
{
    context_across(CHANGE_DELETE);
    cr_assert_eq(tstats().opens, 2);
}

Test(logtail, context_does_not_span_a_swapped_symlink)
{
    context_across(CHANGE_SYMLINK);
    cr_assert_eq(tstats().rotations, 1);
}

Test(logtail, in_a_root_a_swapped_symlink_inside_it_is_followed)
{
    in_root = true;
    context_across(CHANGE_SYMLINK);
    cr_assert_eq(tstats().rotations, 1);
}

/* A FIFO in the log's place is refused and never waited on: the writer
 * blocked opening it stays blocked (nobody opened it for reading). */
Test(logtail, in_a_root_a_fifo_is_refused_without_opening_it)
{
    in_root = true;
    cr_assert_eq(mkfifo(path, 0600), 0);
    start_tail();
    cr_assert_eq(logtail_poll(tail, mono_ns(), wall_ns()), -EINVAL);
    cr_assert_not(tstats().following);
    int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_eq(w, -1, "the FIFO has a reader");
    cr_assert_eq(errno, ENXIO);
}

Test(logtail, path_that_is_a_directory_is_reported)
{
    cr_assert_eq(mkdir(path, 0755), 0);
    start_tail();
    cr_assert_eq(logtail_poll(tail, mono_ns(), wall_ns()), -EINVAL);
    cr_assert_not(tstats().following);
    cr_assert_eq(rmdir(path), 0);
    cr_assert_eq(logtail_poll(tail, mono_ns(), wall_ns()), 0);
}

Test(logtail, bad_arguments_are_rejected)
{
    struct logtail *t = NULL;
    cr_assert_eq(logtail_new(-1, "", scan, &t), -EINVAL);
    cr_assert_eq(logtail_new(-1, "/var/log/", scan, &t), -EINVAL);
    cr_assert_null(t);
    logtail_free(NULL);
}
