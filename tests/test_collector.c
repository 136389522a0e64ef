/* tests/test_collector.c - the collectors against real processes from
 * tests/targets: CPU within tolerance of what a burner does, hot threads by
 * name, RSS, threads, fds, restarts (pid file, regex, exec), a target that is
 * not there yet, an OOM kill named as such (also when a poll reads the
 * counters while the killed process is a zombie), the descriptors of a
 * cgroup shared by its processes and closed after them, missing permission
 * reported without a crash, and `stakeout status --json`. No fake /proc. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "config.h"
#include "discover.h"
#include "support/cgroup.h"
#include "support/child.h"
#include "support/spawn.h"

#define MIB (1024.0 * 1024.0)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The measurement interval itself, not a synchronisation. */
static void wait_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static struct config *cfg_from(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct config *cfg_from(const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct diag_list d;
    struct config *cfg = NULL;
    diag_init(&d);
    if (config_parse("t.yaml", text, strlen(text), NULL, NULL, &cfg, &d) != 0) {
        diag_print(&d, "t.yaml", stderr);
        cr_assert_fail("test config does not parse:\n%s", text);
    }
    diag_fini(&d);
    return cfg;
}

static void start(struct child *c, const char *target, const char *a1, const char *a2,
                  const char *a3, const char *a4)
{
    char *argv[6] = {(char *)child_target(target), (char *)a1, (char *)a2, (char *)a3,
                     (char *)a4, NULL};
    cr_assert_eq(child_start(c, argv), 0);
    char line[128];
    cr_assert_gt(child_readline(c, line, sizeof line, 10000), 0, "%s did not start", target);
    cr_assert(strncmp(line, "ready ", 6) == 0, "%s said '%s'", target, line);
}

static void expect_reply(struct child *c, const char *cmd, const char *prefix)
{
    char line[256];
    cr_assert(child_send(c, cmd));
    cr_assert_gt(child_readline(c, line, sizeof line, 20000), 0, "no reply to %s", cmd);
    cr_assert(strncmp(line, prefix, strlen(prefix)) == 0, "'%s' answered '%s'", cmd, line);
}

static size_t poll_events(struct collector *c, const struct coll_event **ev)
{
    return collector_poll(c, mono_ns(), ev);
}

static struct instance *only_alive(struct collector *c)
{
    struct instance *found = NULL;
    for (size_t i = 0; i < collector_count(c); i++) {
        struct instance *in = collector_at(c, i);
        if (in->alive) {
            cr_assert_null(found, "more than one process matched");
            found = in;
        }
    }
    cr_assert_not_null(found, "no process matched");
    return found;
}

static const struct coll_event *find_event(const struct coll_event *ev, size_t n,
                                           enum coll_event_kind kind)
{
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kind == kind)
            return &ev[i];
    }
    return NULL;
}

static double last(struct instance *in, enum metric m)
{
    const struct sample *s = history_last(&in->hist);
    cr_assert_not_null(s);
    return s->v[m];
}

/* The burner's own account of its CPU time, for a ground truth. */
struct truth {
    long long cpu_ns, wall_ns;
};

static struct truth ask_truth(struct child *b)
{
    struct truth t;
    char line[128];
    cr_assert(child_send(b, "cpu\n"));
    cr_assert_gt(child_readline(b, line, sizeof line, 10000), 0);
    cr_assert_eq(sscanf(line, "cpu_ns=%lld wall_ns=%lld", &t.cpu_ns, &t.wall_ns), 2, "%s", line);
    return t;
}

static double truth_pct(struct truth a, struct truth b)
{
    return 100.0 * (double)(b.cpu_ns - a.cpu_ns) / (double)(b.wall_ns - a.wall_ns);
}

Test(collector, cpu_one_thread_burner_reads_85_to_105, .timeout = 30)
{
    struct child b;
    start(&b, "burner", "--threads", "1", NULL, NULL);
    struct config *cfg = cfg_from("version: 1\ntargets: [{name: b, match: {pid: %d}}]\n"
                                  "rules: []\n", b.pid);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    poll_events(c, &ev);
    struct truth t0 = ask_truth(&b);
    struct instance *in = only_alive(c);
    cr_assert(isnan(last(in, METRIC_CPU)), "no CPU before a second poll: it is a delta");
    wait_ms(2000);
    poll_events(c, &ev);
    struct truth t1 = ask_truth(&b);
    double cpu = last(in, METRIC_CPU), truth = truth_pct(t0, t1);
    /* the measurement follows what the process really got, within 5 points */
    cr_assert(fabs(cpu - truth) < 5.0, "measured %.1f%%, the burner says %.1f%%", cpu, truth);
    /* and on a machine that gives it a core, that is one whole core */
    if (truth >= 90.0)
        cr_assert(cpu >= 85.0 && cpu <= 105.0, "one spinning thread reads %.1f%%", cpu);
    else
        /* cr_log_info: Criterion exits 1 after any warning */
        cr_log_info("machine busy: the burner got %.1f%% of a core; range check skipped", truth);
    cr_assert_gt(last(in, METRIC_CPU_LIMIT), 0.0);
    cr_assert_leq(last(in, METRIC_CPU_LIMIT), cpu + 0.01, "cpu_limit divides by >= 1 CPU");
    collector_free(c);
    config_free(cfg);
    child_stop(&b);
}

Test(collector, hot_threads_name_the_burning_thread, .timeout = 30)
{
    struct child b;
    start(&b, "burner", "--threads", "1", "--idle", "3");
    struct config *cfg = cfg_from("version: 1\ntargets: [{name: b, match: {pid: %d}}]\n"
                                  "rules: []\n", b.pid);
    struct collector *c = collector_new(cfg);
    collector_track_threads(c, true);
    const struct coll_event *ev;
    poll_events(c, &ev);
    struct truth t0 = ask_truth(&b);
    wait_ms(1500);
    poll_events(c, &ev);
    struct truth t1 = ask_truth(&b);
    struct instance *in = only_alive(c);
    cr_assert_eq(last(in, METRIC_THREADS), 5.0, "main + 1 burner + 3 idle");
    cr_assert_geq(in->nhot, 1);
    cr_assert_str_eq(in->hot[0].name, "burn-0");
    double truth = truth_pct(t0, t1);
    cr_assert(fabs(in->hot[0].cpu - truth) < 5.0, "burn-0 at %.1f%%, the burner says %.1f%%",
              in->hot[0].cpu, truth);
    for (size_t i = 1; i < in->nhot; i++)
        cr_assert_lt(in->hot[i].cpu, 2.0, "%s at %.1f%%", in->hot[i].name, in->hot[i].cpu);
    collector_free(c);
    config_free(cfg);
    child_stop(&b);
}

Test(collector, rss_and_fds_follow_the_process, .timeout = 60)
{
    struct child a;
    start(&a, "allocator", NULL, NULL, NULL, NULL);
    /* a rule reads fds, so they are counted at every poll */
    struct config *cfg = cfg_from("version: 1\ntargets: [{name: a, match: {pid: %d}}]\n"
                                  "rules: [{name: f, when: 'fds > 100000'}]\n", a.pid);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    poll_events(c, &ev);
    struct instance *in = only_alive(c);
    double rss0 = last(in, METRIC_RSS), fds0 = last(in, METRIC_FDS);
    cr_assert_gt(rss0, 0);
    cr_assert_geq(fds0, 3);
    expect_reply(&a, "grow 64\n", "ok rss_mib=64");
    expect_reply(&a, "open 10\n", "ok fds_opened=10");
    wait_ms(100);
    poll_events(c, &ev);
    double rss1 = last(in, METRIC_RSS), fds1 = last(in, METRIC_FDS);
    cr_assert_geq(rss1 - rss0, 60 * MIB, "rss grew %.1f MiB", (rss1 - rss0) / MIB);
    cr_assert_lt(rss1 - rss0, 80 * MIB, "rss grew %.1f MiB", (rss1 - rss0) / MIB);
    cr_assert_eq(fds1 - fds0, 10, "fds %g -> %g", fds0, fds1);
    /* the RSS split comes from /proc/PID/status at the next detail poll */
    for (int i = 0; i < 10; i++)
        poll_events(c, &ev);
    cr_assert_geq(in->detail.rss_anon, 64 * MIB, "the growth is anonymous memory");
    collector_free(c);
    config_free(cfg);
    child_stop(&a);
}

static void write_pid_file(const char *path, pid_t pid)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "%d\n", (int)pid);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0);
}

Test(collector, restart_by_pid_file_carries_old_pid_new_pid_and_history, .timeout = 60)
{
    char dir[] = "/tmp/stakeout-coll-XXXXXX", pidfile[4096];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pidfile, sizeof pidfile, "%s/app.pid", dir);
    struct child a1, a2;
    start(&a1, "allocator", NULL, NULL, NULL, NULL);
    write_pid_file(pidfile, a1.pid);
    struct config *cfg = cfg_from("version: 1\npoll_interval: 200ms\n"
                                  "targets: [{name: app, match: {pid_file: '%s'}}]\n"
                                  "rules: []\n", pidfile);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    size_t n = poll_events(c, &ev);
    cr_assert_not_null(find_event(ev, n, COLL_APPEARED));
    for (int i = 0; i < 4; i++) {
        wait_ms(200);
        poll_events(c, &ev);
    }
    int old = a1.pid;
    child_stop(&a1);
    n = poll_events(c, &ev);
    const struct coll_event *ex = find_event(ev, n, COLL_EXITED);
    cr_assert_not_null(ex, "the exit is seen at the next poll");
    cr_assert_eq(ex->old_pid, old);
    cr_assert_str_eq(ex->reason, "exited");
    cr_assert_geq(ex->nwindow, 4, "the history before the end comes with it");

    start(&a2, "allocator", NULL, NULL, NULL, NULL);
    write_pid_file(pidfile, a2.pid);
    n = poll_events(c, &ev);
    const struct coll_event *re = find_event(ev, n, COLL_RESTARTED);
    cr_assert_not_null(re, "the successor is a restart");
    cr_assert_eq(re->old_pid, old);
    cr_assert_eq(re->new_pid, a2.pid);
    cr_assert_geq(re->nwindow, 4);
    cr_assert_str_eq(re->old_meta.comm, "allocator");
    struct instance *in = only_alive(c);
    cr_assert_eq(in->pid, a2.pid);
    cr_assert_eq(in->restarts, 1);
    cr_assert_eq(collector_count(c), 1, "the same instance, not a second one");
    collector_free(c);
    config_free(cfg);
    child_stop(&a2);
    unlink(pidfile);
    rmdir(dir);
}

Test(collector, target_not_there_yet_is_waited_for_then_found, .timeout = 30)
{
    char tag[64];
    snprintf(tag, sizeof tag, "late-%d-%ld", (int)getpid(), (long)mono_ns());
    struct config *cfg = cfg_from("version: 1\n"
                                  "targets: [{name: late, match: {process: 'burner .*--tag %s'}}]\n"
                                  "rules: []\n", tag);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    size_t n = poll_events(c, &ev);
    cr_assert_eq(n, 0);
    cr_assert_eq(collector_count(c), 0, "nothing matches yet");
    struct child b;
    start(&b, "burner", "--threads", "0", "--tag", tag);
    n = poll_events(c, &ev);
    const struct coll_event *ap = find_event(ev, n, COLL_APPEARED);
    cr_assert_not_null(ap, "found at the next poll while waiting");
    cr_assert_eq(ap->inst->pid, b.pid);
    cr_assert_str_eq(ap->inst->meta.comm, "burner");
    cr_assert(strstr(ap->inst->meta.cmdline, tag), "%s", ap->inst->meta.cmdline);
    cr_assert(strstr(ap->inst->meta.exe, "burner"), "%s", ap->inst->meta.exe);
    cr_assert_eq(strlen(ap->inst->meta.build_id), 40, "GNU build-id of the test target");
    cr_assert_gt(ap->inst->meta.start_wall_ns, 0);

    /* a regex target that restarts: killed, then started again */
    int old = b.pid;
    child_stop(&b);
    n = poll_events(c, &ev);
    cr_assert_not_null(find_event(ev, n, COLL_EXITED));
    start(&b, "burner", "--threads", "0", "--tag", tag);
    n = poll_events(c, &ev);
    const struct coll_event *re = find_event(ev, n, COLL_RESTARTED);
    cr_assert_not_null(re);
    cr_assert_eq(re->old_pid, old);
    cr_assert_eq(re->new_pid, b.pid);
    collector_free(c);
    config_free(cfg);
    child_stop(&b);
}

/* Descriptors of this process taken on /dev/null, so that its reads of
 * /proc fail with EMFILE as they do when a capture or a crowd of clients
 * holds them all. */
struct fdfill {
    int fds[1024];
    size_t n;
    struct rlimit saved;
};

/* Lower the soft limit (cheaper to fill), then take every descriptor left
 * but keep_free. No assertion while full: Criterion needs none to report,
 * but a failing test should not depend on that. Returns false on failure. */
static bool fill_fds(struct fdfill *f, size_t keep_free)
{
    for (;;) {
        if (f->n == sizeof f->fds / sizeof f->fds[0])
            return false;
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd == -1)
            break;
        f->fds[f->n++] = fd;
    }
    if (errno != EMFILE)
        return false;
    for (size_t i = 0; i < keep_free && f->n > 0; i++)
        close(f->fds[--f->n]);
    return true;
}

static void release_fds(struct fdfill *f)
{
    while (f->n > 0)
        close(f->fds[--f->n]);
}

/* What came out of a run of polls. */
struct tally {
    size_t exited, restarted, problems_emfile;
};

/* n polls, one (pretended) second apart: discovery runs at each. */
static void poll_tally(struct collector *c, int64_t *now, int n, struct tally *t)
{
    for (int i = 0; i < n; i++) {
        const struct coll_event *ev;
        *now += 1000000000LL;
        size_t k = collector_poll(c, *now, &ev);
        for (size_t j = 0; j < k; j++) {
            t->exited += ev[j].kind == COLL_EXITED;
            t->restarted += ev[j].kind == COLL_RESTARTED;
            t->problems_emfile +=
                ev[j].kind == COLL_PROBLEM && strstr(ev[j].what, strerror(EMFILE)) != NULL;
        }
    }
}

/* Out of descriptors, /proc cannot be read, which says nothing about the
 * targets: no exit and no restart, by libproc2 (no descriptor at all), by a
 * pid file, or by discovery looking at the processes again (one descriptor
 * left: /proc can be listed, a command line cannot be read). A real exit
 * is still seen without a descriptor. */
Test(collector, out_of_descriptors_reads_as_unknown_never_as_an_exit, .timeout = 60)
{
    char tag[64], dir[] = "/tmp/stakeout-coll-XXXXXX", pidfile[4096];
    snprintf(tag, sizeof tag, "fds-%d-%ld", (int)getpid(), (long)mono_ns());
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pidfile, sizeof pidfile, "%s/app.pid", dir);
    struct child b, a;
    start(&b, "burner", "--threads", "0", "--tag", tag);
    start(&a, "allocator", NULL, NULL, NULL, NULL);
    write_pid_file(pidfile, a.pid);
    struct config *cfg_b = cfg_from("version: 1\npoll_interval: 1s\n"
                                    "targets: [{name: b, match: {process: 'burner .*--tag %s'}}]\n"
                                    "rules: []\n",
                                    tag);
    struct config *cfg_a = cfg_from("version: 1\npoll_interval: 1s\n"
                                    "targets: [{name: a, match: {pid_file: '%s'}}]\n"
                                    "rules: []\n",
                                    pidfile);
    struct collector *cb = collector_new(cfg_b), *ca = collector_new(cfg_a);
    collector_discover_every(cb, 0);
    collector_discover_every(ca, 0);
    int64_t now = mono_ns();
    struct tally first = {0}, none = {0}, one = {0}, after = {0}, killed = {0};
    poll_tally(cb, &now, 2, &first);
    poll_tally(ca, &now, 2, &first);
    cr_assert_eq(collector_count(cb), 1);
    cr_assert_eq(collector_count(ca), 1);

    struct fdfill fill = {.n = 0};
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &fill.saved), 0);
    struct rlimit low = {256, fill.saved.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    bool filled = fill_fds(&fill, 0);
    poll_tally(cb, &now, 3, &none);
    poll_tally(ca, &now, 3, &none);
    /* one free: discovery lists /proc with it, then reads nothing; twice
     * DISCOVER_FULL_EVERY polls take in a scan that looks at every pid again */
    bool one_free = filled && fill_fds(&fill, 1);
    poll_tally(cb, &now, 2 * DISCOVER_FULL_EVERY, &one);
    /* a real exit without a descriptor: child_stop frees its pipes, so fill again */
    child_stop(&a);
    bool refilled = fill_fds(&fill, 0);
    poll_tally(ca, &now, 1, &killed);
    release_fds(&fill);
    unlink(pidfile); /* before any assertion: a failing test leaves nothing behind */
    rmdir(dir);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &fill.saved), 0);
    cr_assert(filled && one_free && refilled, "could not use up the descriptors");

    cr_assert_eq(none.exited + none.restarted, 0, "out of descriptors read as an exit");
    cr_assert_gt(none.problems_emfile, 0, "the unread process is reported, with the cause");
    cr_assert_eq(one.exited + one.restarted, 0, "discovery took an unread process for gone");
    cr_assert_eq(killed.exited, 1, "the allocator's exit went unseen");

    /* descriptors back: the burner is measured again, same instance, no event */
    poll_tally(cb, &now, 2, &after);
    cr_assert_eq(after.exited + after.restarted, 0);
    struct instance *in = only_alive(cb);
    cr_assert_eq(in->pid, b.pid);
    cr_assert_eq(in->restarts, 0);
    cr_assert_eq(history_last(&in->hist)->t_ns, now, "no sample at the last poll");
    cr_assert_eq(collector_count(cb), 1);

    collector_free(cb);
    collector_free(ca);
    config_free(cfg_b);
    config_free(cfg_a);
    child_stop(&b);
}

Test(collector, exec_of_a_new_binary_is_a_restart, .timeout = 30)
{
    struct child a;
    start(&a, "allocator", NULL, NULL, NULL, NULL);
    struct config *cfg = cfg_from("version: 1\ntargets: [{name: a, match: {pid: %d}}]\n"
                                  "rules: []\n", a.pid);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    poll_events(c, &ev);
    cr_assert_str_eq(only_alive(c)->meta.comm, "allocator");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "exec %s\n", child_target("burner"));
    cr_assert(child_send(&a, cmd));
    char line[128];
    cr_assert_gt(child_readline(&a, line, sizeof line, 10000), 0, "burner did not start");
    cr_assert(strncmp(line, "ready ", 6) == 0);
    size_t n = poll_events(c, &ev);
    const struct coll_event *re = find_event(ev, n, COLL_RESTARTED);
    cr_assert_not_null(re, "an exec is seen as a restart");
    cr_assert_str_eq(re->reason, "exec");
    cr_assert_eq(re->old_pid, a.pid);
    cr_assert_eq(re->new_pid, a.pid);
    cr_assert_str_eq(re->old_meta.comm, "allocator");
    struct instance *in = only_alive(c);
    cr_assert_str_eq(in->meta.comm, "burner");
    cr_assert(strstr(in->meta.exe, "burner"));
    collector_free(c);
    config_free(cfg);
    child_stop(&a);
}

/* A memory limit of 48 MiB on the test's own cgroup, and no swap beyond it
 * where there is swap: the OOM killer, not the swap, answers a growth. */
static void limit_memory(const char *dir, bool v2)
{
    char swap[320];
    cgroup_set(dir, v2 ? "memory.max" : "memory.limit_in_bytes", "50331648");
    const char *swap_file = v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
    snprintf(swap, sizeof swap, "%s/%s", dir, swap_file);
    if (access(swap, W_OK) == 0)
        cgroup_set(dir, swap_file, v2 ? "0" : "50331648");
}

Test(collector, oom_kill_in_the_cgroup_is_named_as_the_exit_reason, .timeout = 60)
{
    char dir[256];
    bool v2 = cgroup_make("memory", dir, sizeof dir);
    limit_memory(dir, v2);
    struct child a;
    start(&a, "allocator", NULL, NULL, NULL, NULL);
    cgroup_join(dir, a.pid);
    struct config *cfg = cfg_from("version: 1\ntargets: [{name: a, match: {pid: %d}}]\n"
                                  "rules: []\n", a.pid);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    poll_events(c, &ev);
    struct instance *in = only_alive(c);
    cr_assert(in->detail.have_cg_mem, "the cgroup of the target is read");
    cr_assert_eq(in->detail.cg_limit, 48u << 20);
    cr_assert_geq(last(in, METRIC_MEM_LIMIT), 0.0);
    cr_assert(child_send(&a, "grow 200\n"));
    /* the kernel kills it: wait for the pipe to close */
    char line[128];
    cr_assert_lt(child_readline(&a, line, sizeof line, 20000), 0, "allocator survived: %s", line);
    int st = 0;
    while (waitpid(a.pid, &st, 0) == -1 && errno == EINTR)
        ;
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "killed by the OOM killer");
    a.pid = 0;
    size_t n = poll_events(c, &ev);
    const struct coll_event *ex = find_event(ev, n, COLL_EXITED);
    cr_assert_not_null(ex);
    cr_assert_str_eq(ex->reason, "oom-killed");
    cr_assert_geq(ex->events.oom_kill, 1);
    collector_free(c);
    config_free(cfg);
    child_stop(&a);
    cgroup_remove(dir);
}

/* An OOM-killed process stays a zombie until its parent reaps it, and the
 * polls in between read its cgroup's counters, already raised by the kill
 * (a full read at least every 10 polls): its exit is an OOM kill all the
 * same, and no memory event of its own. */
Test(collector, oom_killed_target_polled_as_a_zombie_is_still_oom_killed, .timeout = 60)
{
    char dir[256];
    bool v2 = cgroup_make("memory", dir, sizeof dir);
    limit_memory(dir, v2);
    struct child a;
    start(&a, "allocator", NULL, NULL, NULL, NULL);
    cgroup_join(dir, a.pid);
    struct config *cfg = cfg_from("version: 1\ntargets: [{name: a, match: {pid: %d}}]\n"
                                  "rules: []\n", a.pid);
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    poll_events(c, &ev);
    struct instance *in = only_alive(c);
    cr_assert(in->detail.events.have, "the cgroup's memory events are read");
    cr_assert_eq(in->detail.events.oom_kill, 0);

    cr_assert(child_send(&a, "grow 200\n"));
    char line[128];
    cr_assert_lt(child_readline(&a, line, sizeof line, 20000), 0, "allocator survived: %s", line);
    siginfo_t si = {0};
    cr_assert_eq(waitid(P_PID, (id_t)a.pid, &si, WEXITED | WNOWAIT), 0, "%s", strerror(errno));
    cr_assert(si.si_code == CLD_KILLED && si.si_status == SIGKILL, "killed by the OOM killer");
    for (int i = 0; i < 21; i++) {
        size_t n = poll_events(c, &ev);
        cr_assert_null(find_event(ev, n, COLL_EXITED), "a zombie is taken for gone");
        cr_assert_null(find_event(ev, n, COLL_MEMORY_EVENT), "the zombie's own kill as an event");
    }
    cr_assert_eq(in->detail.state, 'Z');
    child_stop(&a); /* reaped: gone from /proc */
    size_t n = poll_events(c, &ev);
    const struct coll_event *ex = find_event(ev, n, COLL_EXITED);
    cr_assert_not_null(ex);
    cr_assert_str_eq(ex->reason, "oom-killed");
    cr_assert_geq(ex->events.oom_kill, 1);
    collector_free(c);
    config_free(cfg);
    cgroup_remove(dir);
}

/* The descriptors this process holds on cgroupfs directories. */
static size_t cgroup_dir_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d, "%s", strerror(errno));
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        char to[4096];
        ssize_t k = readlinkat(dirfd(d), de->d_name, to, sizeof to - 1);
        if (k > 0) {
            to[k] = '\0';
            n += strncmp(to, "/sys/fs/cgroup/", 15) == 0 || strcmp(to, "/sys/fs/cgroup") == 0;
        }
    }
    closedir(d);
    return n;
}

/* Three processes in one cgroup: its directories are open once for the
 * three (one on v2, memory and cpu on v1), while one of them lives. */
Test(collector, cgroup_directories_are_shared_by_its_processes_and_closed_after_them,
     .timeout = 60)
{
    char dir[256], tag[64];
    bool v2 = cgroup_make("memory", dir, sizeof dir);
    snprintf(tag, sizeof tag, "shared-%d-%ld", (int)getpid(), (long)mono_ns());
    struct child a[3];
    for (int i = 0; i < 3; i++) {
        start(&a[i], "allocator", "--tag", tag, NULL, NULL);
        cgroup_join(dir, a[i].pid);
    }
    struct config *cfg = cfg_from("version: 1\n"
                                  "targets: [{name: a, match: {process: 'allocator --tag %s$'}}]\n"
                                  "rules: []\n", tag);
    size_t before = cgroup_dir_fds();
    struct collector *c = collector_new(cfg);
    const struct coll_event *ev;
    poll_events(c, &ev);
    cr_assert_eq(collector_count(c), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert(collector_at(c, i)->detail.have_cg_mem, "the cgroup is read");
    cr_assert_eq(cgroup_dir_fds() - before, v2 ? 1u : 2u, "%zu descriptors for one cgroup",
                 cgroup_dir_fds() - before);

    child_stop(&a[0]);
    size_t n = poll_events(c, &ev);
    cr_assert_not_null(find_event(ev, n, COLL_EXITED));
    cr_assert_eq(cgroup_dir_fds() - before, v2 ? 1u : 2u, "the others still use it");
    child_stop(&a[1]);
    child_stop(&a[2]);
    n = poll_events(c, &ev);
    cr_assert_not_null(find_event(ev, n, COLL_EXITED));
    cr_assert_eq(cgroup_dir_fds(), before, "closed once its last process is gone");
    collector_free(c);
    config_free(cfg);
    cgroup_remove(dir);
}

Test(collector, missing_permission_problem_names_the_cause, .timeout = 30)
{
    if (geteuid() != 0) {
        cr_skip_test("needs root to drop to another user");
        return;
    }
    struct child b;
    start(&b, "burner", "--threads", "0", NULL, NULL);
    char cfgpath[] = "/tmp/stakeout-perm-XXXXXX";
    int fd = mkstemp(cfgpath);
    cr_assert_neq(fd, -1);
    dprintf(fd, "version: 1\ntargets: [{name: b, match: {pid: %d}}]\nrules: []\n", b.pid);
    close(fd);
    chmod(cfgpath, 0644);
    /* setpriv is util-linux: run `stakeout status` as nobody, against root's process */
    char *argv[] = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    (char *)spawn_stakeout_bin(), "status", "-c", cfgpath, "--json", NULL};
    struct spawn_result res;
    cr_assert_eq(spawn_capture(argv, NULL, 20000, &res), 0);
    unlink(cfgpath);
    int target_pid = b.pid;
    child_stop(&b);
    cr_assert_eq(res.status, 0, "status failed: %s", res.err);
    cr_assert(strstr(res.err, "Permission denied"), "stderr: %s", res.err);
    cr_assert(strstr(res.err, "CAP_SYS_PTRACE"), "the log says what is missing: %s", res.err);
    json_error_t jerr;
    json_t *root = json_loads(res.out, 0, &jerr);
    cr_assert_not_null(root, "not JSON: %s", jerr.text);
    json_t *t0 = json_array_get(json_object_get(root, "targets"), 0);
    cr_assert_eq(json_integer_value(json_object_get(t0, "pid")), target_pid, "still watched");
    /* what needs ptrace access is empty; what /proc gives anyone is there */
    cr_assert_str_eq(json_string_value(json_object_get(t0, "exe")), "");
    cr_assert_str_eq(json_string_value(json_object_get(t0, "build_id")), "");
    cr_assert(json_is_integer(json_object_get(json_object_get(t0, "metrics"), "rss")));
    cr_assert(json_is_integer(json_object_get(json_object_get(t0, "metrics"), "threads")));
    json_decref(root);
    spawn_result_fini(&res);
}

Test(collector, status_json_lists_each_matched_process_with_metrics, .timeout = 30)
{
    char tag[64];
    snprintf(tag, sizeof tag, "status-%d-%ld", (int)getpid(), (long)mono_ns());
    struct child b1, b2;
    start(&b1, "burner", "--threads", "1", "--tag", tag);
    start(&b2, "burner", "--threads", "0", "--tag", tag);
    char cfgpath[] = "/tmp/stakeout-status-XXXXXX";
    int fd = mkstemp(cfgpath);
    cr_assert_neq(fd, -1);
    dprintf(fd,
            "version: 1\npoll_interval: 1s\n"
            "targets:\n"
            "  - {name: burners, match: {process: 'burner .*--tag %s'}}\n"
            "  - {name: absent, match: {process: 'no-such-process-%s'}}\n"
            "rules:\n"
            "  - {name: hot, when: 'cpu > 20%%', for: 10s}\n"
            "  - {name: drift, when: 'cpu > 3x baseline'}\n",
            tag, tag);
    close(fd);
    char *argv[] = {(char *)spawn_stakeout_bin(), "status", "-c", cfgpath, "--json", NULL};
    struct spawn_result res;
    cr_assert_eq(spawn_capture(argv, NULL, 20000, &res), 0);
    unlink(cfgpath);
    int burning_pid = b1.pid;
    child_stop(&b1);
    child_stop(&b2);
    cr_assert_eq(res.status, 0, "%s", res.err);
    json_error_t jerr;
    json_t *root = json_loads(res.out, 0, &jerr);
    cr_assert_not_null(root, "not JSON: %s\n%s", jerr.text, res.out);
    json_t *targets = json_object_get(root, "targets");
    cr_assert_eq(json_array_size(targets), 3, "two burners and the absent target");
    int seen_hot = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *t = json_array_get(targets, i);
        cr_assert_str_eq(json_string_value(json_object_get(t, "name")), "burners");
        cr_assert_str_eq(json_string_value(json_object_get(t, "comm")), "burner");
        json_t *m = json_object_get(t, "metrics");
        double cpu = json_number_value(json_object_get(m, "cpu"));
        cr_assert(json_is_integer(json_object_get(m, "rss")));
        cr_assert(json_is_integer(json_object_get(m, "threads")));
        cr_assert(json_is_integer(json_object_get(m, "fds")));
        cr_assert(json_is_null(json_object_get(m, "errors")), "no logs configured");
        json_t *rules = json_object_get(t, "rules");
        cr_assert_eq(json_array_size(rules), 2);
        json_t *hot = json_array_get(rules, 0), *drift = json_array_get(rules, 1);
        if (json_integer_value(json_object_get(t, "pid")) == burning_pid) {
            cr_assert(cpu > 25, "the burner burns: %.1f", cpu);
            cr_assert_str_eq(json_string_value(json_object_get(hot, "state")), "pending");
            seen_hot++;
        } else {
            cr_assert(cpu < 5, "the idle one idles: %.1f", cpu);
            cr_assert_str_eq(json_string_value(json_object_get(hot, "reason")),
                             "condition false");
        }
        cr_assert_str_eq(json_string_value(json_object_get(drift, "reason")), "warming up");
    }
    cr_assert_eq(seen_hot, 1);
    json_t *absent = json_array_get(targets, 2);
    cr_assert(json_is_null(json_object_get(absent, "pid")));
    json_decref(root);
    spawn_result_fini(&res);
}

/* status follows the target's logs between its two polls: a logger writing
 * 70 lines/s, one in seven an ERROR, reads about 600 errors a minute. */
Test(collector, status_counts_error_lines_of_the_target_logs, .timeout = 30)
{
    char dir[] = "/tmp/stakeout-statlog-XXXXXX", log[4096], cfgpath[4200];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(log, sizeof log, "%s/app.log", dir);
    char *largv[] = {(char *)child_target("logger"), "--file", log, "--rate", "70/s",
                     "--count", "1000000", NULL};
    struct child lg;
    cr_assert_eq(child_start(&lg, largv), 0);
    snprintf(cfgpath, sizeof cfgpath, "%s/rules.yaml", dir);
    FILE *f = fopen(cfgpath, "w");
    cr_assert_not_null(f);
    fprintf(f, "version: 1\npoll_interval: 2s\n"
               "targets: [{name: app, match: {pid: %d}, logs: [{path: '%s'}]}]\nrules: []\n",
            lg.pid, log);
    cr_assert_eq(fclose(f), 0);
    char *argv[] = {(char *)spawn_stakeout_bin(), "status", "-c", cfgpath, "--json", NULL};
    struct spawn_result res;
    cr_assert_eq(spawn_capture(argv, NULL, 20000, &res), 0);
    child_stop(&lg);
    unlink(cfgpath);
    char rotated[4200];
    unlink(log);
    snprintf(rotated, sizeof rotated, "%s", dir);
    rmdir(rotated);
    cr_assert_eq(res.status, 0, "%s", res.err);
    json_error_t jerr;
    json_t *root = json_loads(res.out, 0, &jerr);
    cr_assert_not_null(root, "not JSON: %s", jerr.text);
    json_t *m = json_object_get(json_array_get(json_object_get(root, "targets"), 0), "metrics");
    double errors = json_number_value(json_object_get(m, "errors"));
    cr_assert(errors > 300 && errors < 900, "600 errors a minute read as %.0f", errors);
    json_decref(root);
    spawn_result_fini(&res);
}
