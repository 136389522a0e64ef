/* tests/test_sampler.c - the sampler (sampler.h, stackwalk.h) and `stakeout
 * record` against real processes from tests/targets.
 *
 * Ground truth: split burns 60/30/10 in leaf_a/leaf_b/leaf_c, several frames
 * deep. After every capture the target must be running, untraced and not
 * stopped (TracerPid 0, state not t/T, in every thread). Ptrace works here:
 * a capture refused with EPERM skips a test on a developer's machine and
 * fails it when CI is set. Every child is killed and reaped by its pid. */
#include <criterion/criterion.h>

#include "profile.h"
#include "sampler.h"
#include "stackwalk.h"
#include "symbols.h"
#include "support/cgroup.h"
#include "support/child.h"
#include "support/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Start a target and wait for its "ready PID" line. */
static void start_target(struct child *c, char *const argv[])
{
    cr_assert_eq(child_start(c, argv), 0, "cannot start %s", argv[0]);
    char line[128];
    cr_assert_gt(child_readline(c, line, sizeof line, 10000), 0, "%s did not get ready", argv[0]);
    cr_assert_eq(strncmp(line, "ready ", 6), 0, "unexpected first line '%s'", line);
}

/* TracerPid and state of one thread; false when it cannot be read. */
static bool thread_status(int pid, int tid, int *tracer, char *state)
{
    char path[96], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    *tracer = -1;
    *state = '?';
    while (fgets(buf, sizeof buf, f)) {
        if (strncmp(buf, "TracerPid:", 10) == 0)
            *tracer = atoi(buf + 10);
        else if (strncmp(buf, "State:", 6) == 0)
            sscanf(buf + 6, " %c", state);
    }
    fclose(f);
    return true;
}

/* Every thread of pid: not traced by anyone but `tracer`, not stopped. */
static void assert_untouched_by(int pid, int tracer_ok)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    int64_t deadline = mono_ms() + 2000;
    for (;;) {
        DIR *d = opendir(path);
        cr_assert_not_null(d, "target %d is gone", pid);
        bool ok = true;
        char why[160] = "";
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            int tid = atoi(e->d_name), tracer;
            char state;
            if (!thread_status(pid, tid, &tracer, &state))
                continue; /* exited meanwhile */
            cr_assert_eq(tracer, tracer_ok, "thread %d of %d is traced by %d", tid, pid, tracer);
            if (state == 't' || state == 'T') {
                ok = false;
                snprintf(why, sizeof why, "thread %d of %d is stopped (%c)", tid, pid, state);
            }
        }
        closedir(d);
        if (ok)
            return;
        cr_assert_lt(mono_ms(), deadline, "%s", why);
        sleep_ms(20);
    }
}

static void assert_untouched(int pid)
{
    assert_untouched_by(pid, 0);
}

static void skip_or_fail_eperm(int rc, const char *err)
{
    if (rc != -EPERM)
        return;
    if (getenv("CI"))
        cr_assert_fail("ptrace refused in CI: %s", err);
    cr_skip_test("ptrace not permitted here: %s", err);
}

struct cap_args {
    enum profile_type mode;
    unsigned rate;
    int64_t ms;
    double max_stopped;
};

static int capture(int pid, struct cap_args a, struct profile **out, char *err, size_t errlen)
{
    struct symcache *sc = symcache_new();
    struct sampler_opts o = {.pid = pid, .mode = a.mode, .rate_hz = a.rate,
                             .duration_ns = a.ms * 1000000LL, .max_stopped = a.max_stopped,
                             .symbols = sc};
    int rc = sampler_capture(&o, out, err, errlen);
    skip_or_fail_eperm(rc, err);
    if (rc == 0)
        symbols_resolve(sc, *out);
    symcache_free(sc);
    return rc;
}

static struct profile *capture_ok(int pid, struct cap_args a)
{
    struct profile *p = NULL;
    char err[256] = "";
    int rc = capture(pid, a, &p, err, sizeof err);
    cr_assert_eq(rc, 0, "capture failed: %d %s", rc, err);
    return p;
}

/* Self counts of the leaves, as shares of their sum. */
static void leaf_shares(const struct profile *p, const char *prefix, uint64_t min_total,
                        double out[3])
{
    static const char *leaves[3] = {"leaf_a", "leaf_b", "leaf_c"};
    uint64_t n[3] = {0}, total = 0;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const struct prof_stack *st = &p->stacks[s];
        if (st->nframes == 0)
            continue;
        const char *leaf = profile_frame_name(p, st->frames[0]);
        for (int i = 0; i < 3; i++) {
            char want[64];
            snprintf(want, sizeof want, "%s%s", prefix, leaves[i]);
            if (leaf && strcmp(leaf, want) == 0) {
                n[i] += st->count;
                total += st->count;
            }
        }
    }
    cr_assert_gt(total, min_total, "only %llu samples in the leaves", (unsigned long long)total);
    for (int i = 0; i < 3; i++)
        out[i] = 100.0 * (double)n[i] / (double)total;
}

/* The tolerance is the 5 points; the sample count must make it
 * several standard errors wide. A share p from n samples varies by
 * sqrt(p(1-p)/n): 2 points at 600 samples (a 5-point miss about once in 80
 * runs), 1.1 points at 2,000, 1.4 at 1,200 (3.5 standard errors). Callers
 * ask for 2,000 or more; with more busy threads than CPUs a thread waits
 * for one to take its stop, the governor slows down, and fewer come. */
static void assert_split(const struct profile *p)
{
    double s[3];
    leaf_shares(p, "", 1200, s);
    cr_expect(s[0] > 55 && s[0] < 65, "leaf_a %.1f%%, want 60 +- 5", s[0]);
    cr_expect(s[1] > 25 && s[1] < 35, "leaf_b %.1f%%, want 30 +- 5", s[1]);
    cr_expect(s[2] > 5 && s[2] < 15, "leaf_c %.1f%%, want 10 +- 5", s[2]);
}

/* A stack whose frames, leaf first, start with names[0..n). */
static bool has_path(const struct profile *p, const char *const *names, size_t n)
{
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const struct prof_stack *st = &p->stacks[s];
        if (st->nframes < n)
            continue;
        size_t i = 0;
        while (i < n) {
            const char *f = profile_frame_name(p, st->frames[i]);
            if (!f || strcmp(f, names[i]) != 0)
                break;
            i++;
        }
        if (i == n)
            return true;
    }
    return false;
}

static const char *const path_a[] = {"leaf_a", "step_a", "path_a", "run_round", "worker",
                                     "start_thread"};

static bool has_note(const struct profile *p, const char *word)
{
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strstr(p->notes[i], word))
            return true;
    }
    return false;
}

static size_t distinct_tids(const struct profile *p, const char *name_prefix)
{
    size_t n = 0;
    for (uint32_t i = 0; i < p->nthreads; i++) {
        if (p->threads[i].samples > 0 &&
            strncmp(p->threads[i].name, name_prefix, strlen(name_prefix)) == 0)
            n++;
    }
    return n;
}

TestSuite(sampler, .timeout = 60);

Test(sampler, split_shares_within_5_points_with_full_call_path)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 499, 4500, 0.25});
    assert_untouched(c.pid);
    assert_split(p);
    cr_expect(has_path(p, path_a, sizeof path_a / sizeof path_a[0]),
              "no stack leaf_a <- step_a <- path_a <- run_round <- worker <- start_thread");
    cr_expect_eq(distinct_tids(p, "split-0"), 1);
    cr_expect_eq(p->threads_skipped, 0);
    cr_expect_gt(p->stopped_ns, 0, "stops are measured");
    cr_expect_eq(p->type, PROFILE_TYPE_CPU);
    cr_expect_eq(p->pid, c.pid);
    cr_expect_str_eq(p->comm, "split");
    profile_free(p);
    child_stop(&c);
}

/* Ticks come at random gaps around the interval, so nothing periodic in
 * the target is sampled in lockstep. Gaps uniform in [T/2, 3T/2) put 30%
 * of them under 0.8 T; fixed ticks put none there, as ticks never burst.
 * A tick where the thread was not sampled (late on a loaded machine) only
 * makes a longer gap, so the short ones are what to count. */
Test(sampler, ticks_come_at_random_gaps_around_the_interval)
{
    struct child c;
    char *argv[] = {(char *)child_target("burner"), NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 2000, 1.0});
    assert_untouched(c.pid);
    child_stop(&c);
    int32_t busy = 0;
    for (uint32_t i = 0; i < p->nthreads; i++) {
        if (strcmp(p->threads[i].name, "burn-0") == 0)
            busy = p->threads[i].tid;
    }
    cr_assert_neq(busy, 0, "the busy thread was not sampled");
    double t = 1000.0 / 99, sum = 0;
    size_t n = 0, shorter = 0;
    int64_t prev = -1;
    for (size_t i = 0; i < p->nsamples; i++) {
        if (p->samples[i].tid != busy)
            continue;
        if (prev >= 0) {
            double gap = (double)(p->samples[i].t_ns - prev) / 1e6;
            sum += gap;
            shorter += gap < 0.8 * t;
            n++;
        }
        prev = p->samples[i].t_ns;
    }
    cr_assert_gt(n, 100, "only %zu gaps", n);
    double mean = sum / (double)n, share = (double)shorter / (double)n;
    cr_log_info("gaps: %zu, mean %.2f ms (interval %.2f ms), %.0f%% under 0.8 of it", n, mean, t,
                share * 100);
    cr_expect(mean > 0.85 * t && mean < 1.5 * t, "mean gap %.2f ms, interval %.2f ms", mean, t);
    cr_expect(share > 0.15, "%.0f%% of gaps under 0.8 of the interval, want about 30%%",
              share * 100);
    profile_free(p);
}

Test(sampler, multithreaded_target_samples_every_busy_thread)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--threads", "3", NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 199, 6000, 0.25});
    assert_untouched(c.pid);
    cr_expect_eq(distinct_tids(p, "split-"), 3, "samples from %zu of 3 busy threads",
                 distinct_tids(p, "split-"));
    assert_split(p);
    profile_free(p);
    child_stop(&c);
}

Test(sampler, thread_churn_is_followed_and_left_untraced)
{
    struct child c;
    char *argv[] = {(char *)child_target("churn"), "--live", "4", NULL};
    start_target(&c, argv);
    cr_assert(child_send(&c, "count\n"));
    char line[64];
    cr_assert_gt(child_readline(&c, line, sizeof line, 5000), 0);
    unsigned long long before = strtoull(line + 8, NULL, 10);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 199, 2000, 0.25});
    assert_untouched(c.pid);
    cr_assert(child_send(&c, "count\n"));
    cr_assert_gt(child_readline(&c, line, sizeof line, 5000), 0);
    unsigned long long after = strtoull(line + 8, NULL, 10);
    cr_expect_gt(after, before + 100, "threads kept coming (%llu -> %llu)", before, after);
    const char *const churn[] = {"churn_work"};
    cr_expect(has_path(p, churn, 1), "no sample in churn_work");
    cr_expect_gt(p->nthreads, 20, "samples from only %u threads", p->nthreads);
    cr_expect_eq(p->threads_skipped, 0);
    profile_free(p);
    child_stop(&c);
}

Test(sampler, target_exiting_mid_capture_ends_it_with_the_samples)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--seconds", "1", NULL};
    start_target(&c, argv);
    int status = -1;
    struct symcache *sc = symcache_new();
    struct sampler_opts o = {.pid = c.pid, .mode = PROFILE_TYPE_CPU, .rate_hz = 99,
                             .duration_ns = 10000000000LL, .max_stopped = 0.25, .symbols = sc,
                             .target_status = &status};
    struct profile *p = NULL;
    char err[256];
    int64_t t0 = mono_ms();
    int rc = sampler_capture(&o, &p, err, sizeof err);
    skip_or_fail_eperm(rc, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_lt(mono_ms() - t0, 4000, "the capture went on after the target exited");
    cr_expect(p->aborted);
    cr_expect(has_note(p, "exited"), "no note says the target exited");
    cr_expect_gt(p->nsamples, 10);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    symbols_resolve(sc, p);
    cr_expect(has_path(p, path_a, 4), "a target that exited is still named");
    profile_free(p);
    symcache_free(sc);
    child_stop(&c);
}

Test(sampler, target_exec_mid_capture_ends_it_and_is_left_running)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--exec-after", "700", NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 10000, 0.25});
    cr_expect(p->aborted);
    cr_expect(has_note(p, "exec"), "no note says the target called exec");
    char line[64];
    cr_expect_gt(child_readline(&c, line, sizeof line, 5000), 0, "the exec'd program runs");
    assert_untouched(c.pid);
    profile_free(p);
    child_stop(&c);
}

Test(sampler, target_fork_mid_capture_ends_it_and_detaches_the_child)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--fork-after", "700", NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 10000, 0.25});
    cr_expect(p->aborted);
    cr_expect(has_note(p, "forked"), "no note says the target forked");
    cr_expect_gt(p->nsamples, 10);
    assert_untouched(c.pid);
    /* the fork's child exits at once and the target reaps it: it must not
     * hang in a stop of ours */
    char line[64];
    cr_assert(child_send(&c, "rate\n"));
    cr_expect_gt(child_readline(&c, line, sizeof line, 5000), 0, "the target still answers");
    profile_free(p);
    child_stop(&c);
}

Test(sampler, stripped_binary_gets_module_offset_frames_and_full_stacks)
{
    struct child c;
    char *argv[] = {(char *)child_target("split_stripped"), NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 199, 3000, 0.25});
    assert_untouched(c.pid);
    size_t deep = 0, labelled = 0, total = 0;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const struct prof_stack *st = &p->stacks[s];
        if (st->nframes == 0)
            continue;
        total += st->count;
        const char *leaf = profile_frame_name(p, st->frames[0]);
        if (leaf && strncmp(leaf, "split_stripped+0x", 17) == 0)
            labelled += st->count;
        if (st->nframes >= 5) /* leaf, 1-3 callers, worker, start_thread, clone3 */
            deep += st->count;
    }
    cr_assert_gt(total, 100);
    cr_expect_gt(labelled, total * 9 / 10, "%zu of %zu leaves read split_stripped+0x...",
                 labelled, total);
    cr_expect_gt(deep, total * 9 / 10, "%zu of %zu stacks are full (unwound without symbols)",
                 deep, total);
    profile_free(p);
    child_stop(&c);
}

Test(sampler, code_without_unwind_tables_is_walked_by_frame_pointers)
{
    struct child c;
    char *argv[] = {(char *)child_target("split_notables"), NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 499, 4500, 0.25});
    assert_untouched(c.pid);
    cr_expect(has_path(p, path_a, sizeof path_a / sizeof path_a[0]),
              "no full stack through code without .eh_frame");
    assert_split(p);
    profile_free(p);
    child_stop(&c);
}

Test(sampler, go_binary_gets_full_stacks_by_frame_pointers)
{
    struct child c;
    char *argv[] = {(char *)child_target("gospin"), NULL};
    start_target(&c, argv);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 199, 2000, 0.25});
    assert_untouched(c.pid);
    const char *const go[] = {"main.leafGo", "main.midGo", "main.topGo", "main.main",
                              "runtime.main"};
    cr_expect(has_path(p, go, 5), "no main.leafGo <- midGo <- topGo <- main <- runtime.main");
    profile_free(p);
    child_stop(&c);
}

Test(sampler, target_in_its_own_mount_namespace_is_named)
{
    /* the binary lives on a tmpfs mounted only in the target's namespace:
     * the path in its maps does not exist for us */
    char dir[] = "/tmp/stakeout-mntns-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char script[1024];
    snprintf(script, sizeof script,
             "mount -t tmpfs none %s && cp %s %s/hidden-split && exec %s/hidden-split", dir,
             child_target("split"), dir, dir);
    struct child c;
    char *argv[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", script, NULL};
    start_target(&c, argv);
    char hidden[128];
    snprintf(hidden, sizeof hidden, "%s/hidden-split", dir);
    cr_assert_neq(access(hidden, F_OK), 0, "the binary should not be visible here");
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 199, 3000, 0.25});
    assert_untouched(c.pid);
    cr_expect(has_path(p, path_a, 5), "not symbolized across mount namespaces");
    profile_free(p);
    child_stop(&c);
    rmdir(dir);
}

/* A tracer of our own: a child that PTRACE_SEIZEs pid and waits. */
static pid_t start_tracer(int pid)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t t = fork();
    cr_assert_neq(t, -1);
    if (t == 0) {
        close(ready[0]);
        char ok = ptrace(PTRACE_SEIZE, pid, NULL, NULL) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char ok = 0;
    cr_assert_eq(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    if (ok != 'y') {
        kill(t, SIGKILL);
        waitpid(t, NULL, 0);
        skip_or_fail_eperm(-EPERM, "the test's own tracer could not attach");
    }
    return t;
}

Test(sampler, target_already_traced_is_refused_and_left_as_it_was)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    pid_t tracer = start_tracer(c.pid);
    struct profile *p = NULL;
    char err[256] = "";
    int rc = capture(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 1000, 0}, &p, err, sizeof err);
    cr_expect_eq(rc, -EBUSY, "rc %d (%s)", rc, err);
    cr_expect_null(p);
    cr_expect(strstr(err, "already traced") != NULL, "message: %s", err);
    int tr;
    char state;
    cr_assert(thread_status(c.pid, c.pid, &tr, &state));
    cr_expect_eq(tr, tracer, "the debugger's attachment is untouched");
    cr_expect(state != 't' && state != 'T', "state %c", state);
    kill(tracer, SIGKILL);
    waitpid(tracer, NULL, 0);
    assert_untouched(c.pid);
    child_stop(&c);
}

Test(sampler, a_thread_traced_by_another_tracer_is_skipped_and_reported)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--threads", "2", NULL};
    start_target(&c, argv);
    /* trace one worker thread (not the leader) from a tracer of our own */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", c.pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    int worker = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        if (tid > 0 && tid != c.pid)
            worker = tid;
    }
    closedir(d);
    cr_assert_gt(worker, 0);
    pid_t tracer = start_tracer(worker);
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 1500, 0.25});
    cr_expect_eq(p->threads_skipped, 1);
    cr_expect(has_note(p, "already traced"), "no note about the skipped thread");
    for (uint32_t i = 0; i < p->nthreads; i++)
        cr_expect_neq(p->threads[i].tid, worker, "the traced thread was sampled");
    cr_expect_gt(p->nsamples, 50, "the other threads were sampled");
    int tr;
    char state;
    cr_assert(thread_status(c.pid, worker, &tr, &state));
    cr_expect_eq(tr, tracer, "the other tracer keeps its thread");
    kill(tracer, SIGKILL);
    waitpid(tracer, NULL, 0);
    assert_untouched(c.pid);
    profile_free(p);
    child_stop(&c);
}

Test(sampler, target_near_its_cgroup_memory_limit_is_skipped_with_a_note)
{
    char dir[128];
    bool v2 = cgroup_make("memory", dir, sizeof dir);
    cgroup_set(dir, v2 ? "memory.max" : "memory.limit_in_bytes", "67108864");
    struct child c;
    char *argv[] = {(char *)child_target("allocator"), NULL};
    start_target(&c, argv);
    cgroup_join(dir, c.pid);
    cr_assert(child_send(&c, "grow 56\n"));
    char line[128];
    cr_assert_gt(child_readline(&c, line, sizeof line, 10000), 0, "the allocator did not grow");
    struct sampler_opts o = {.pid = c.pid, .mode = PROFILE_TYPE_CPU, .rate_hz = 99,
                             .duration_ns = 2000000000LL, .abort_mem_limit_pct = 80};
    struct profile *p = NULL;
    char err[256];
    int rc = sampler_capture(&o, &p, err, sizeof err);
    skip_or_fail_eperm(rc, err);
    cr_expect_eq(rc, 0, "%s", err);
    if (rc == 0) {
        cr_expect(p->aborted);
        cr_expect(has_note(p, "memory"), "no note about the memory limit");
        cr_expect_eq(p->nsamples, 0);
        profile_free(p);
    }
    assert_untouched(c.pid);
    child_stop(&c);
    cgroup_remove(dir);
}

/* A thread throttled by its CPU quota takes its stop only when its next
 * period begins, up to 80 ms later. The sampler must not wait for it (nor
 * give up on it, which biases the profile towards where a thread is when
 * its quota runs out): the sample is taken when the stop comes. */
Test(sampler, throttled_target_is_sampled_late_and_left_untouched)
{
    char dir[128];
    /* 20 ms of CPU per 100 ms period */
    if (cgroup_make("cpu", dir, sizeof dir)) {
        cgroup_set(dir, "cpu.max", "20000 100000");
    } else {
        cgroup_set(dir, "cpu.cfs_period_us", "100000");
        cgroup_set(dir, "cpu.cfs_quota_us", "20000");
    }
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--threads", "1", NULL};
    start_target(&c, argv);
    cgroup_join(dir, c.pid);
    sleep_ms(300); /* into the throttled rhythm */
    struct profile *p = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 3000, 1.0});
    assert_untouched(c.pid);
    child_stop(&c);
    cgroup_remove(dir);
    cr_expect(has_note(p, "taken late"), "no sample was taken late");
    /* Waiting up to 20 ms and giving up left samples out and made the
     * governor cut the rate; taken late, about 3 come per 100 ms period
     * (two while the thread runs, one at its throttling): 90 in 3 s, each
     * a whole stack. Shares are not checked: the quota runs out after the
     * same CPU time each period, so the late samples alias with the
     * target's rounds and shares move by 10 points from run to run. */
    double s[3];
    leaf_shares(p, "", 60, s);
    cr_log_info("throttled: %zu samples, leaves %.1f/%.1f/%.1f", p->nsamples, s[0], s[1], s[2]);
    cr_expect(has_path(p, path_a, sizeof path_a / sizeof path_a[0]), "no full leaf_a path");
    profile_free(p);
}

/* The tid of pid's thread named name, 0 when there is none. */
static int thread_named(int pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char file[300], comm[32] = "";
        snprintf(file, sizeof file, "/proc/%d/task/%s/comm", pid, e->d_name);
        FILE *f = fopen(file, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && strncmp(comm, name, strlen(name)) == 0 &&
            comm[strlen(name)] == '\n')
            found = atoi(e->d_name);
        fclose(f);
    }
    closedir(d);
    return found;
}

static char thread_state(int pid, int tid)
{
    int tracer;
    char state;
    return thread_status(pid, tid, &tracer, &state) ? state : '?';
}

/* A thread in uninterruptible sleep takes no PTRACE_INTERRUPT: the stop is
 * pending until the sleep ends, long after the capture gave up waiting for
 * it. It must not come then (the thread would stay in a tracing stop for as
 * long as the tracer lives): every thread ever seized ends the capture
 * detached. Held across the end: one thread waiting in vfork() (its child
 * sleeps 7 s), one frozen by the cgroup freezer until the test thaws it. */
Test(sampler, threads_asleep_in_d_at_the_end_are_released_when_they_wake)
{
    char dir[128];
    if (cgroup_make("freezer", dir, sizeof dir)) {
        cgroup_remove(dir);
        if (getenv("CI"))
            cr_assert_fail("no cgroup v1 freezer (one thread cannot be frozen alone in v2)");
        cr_skip_test("no cgroup v1 freezer: one thread cannot be frozen alone in v2");
    }
    struct child c;
    char *argv[] = {(char *)child_target("burner"), "--threads", "1", "--idle", "1",
                    "--vfork", "7000", NULL};
    start_target(&c, argv);
    int frozen = thread_named(c.pid, "idle-0"), vforker = thread_named(c.pid, "vfork-0");
    cr_assert(frozen > 0 && vforker > 0, "no idle-0 or vfork-0 thread");
    char text[32];
    snprintf(text, sizeof text, "%d", frozen);
    cgroup_set(dir, "tasks", text);
    cgroup_set(dir, "freezer.state", "FROZEN");
    int64_t deadline = mono_ms() + 5000;
    while (thread_state(c.pid, frozen) != 'D' && mono_ms() < deadline)
        sleep_ms(10);
    cr_assert_eq(thread_state(c.pid, frozen), 'D', "the freezer did not freeze idle-0");
    cr_assert_eq(thread_state(c.pid, vforker), 'D', "vfork-0 is not waiting in vfork()");

    struct symcache *sc = symcache_new();
    struct sampler_opts o = {.pid = c.pid, .mode = PROFILE_TYPE_WALL, .rate_hz = 99,
                             .duration_ns = 500000000LL, .max_stopped = 0.25,
                             .abort_dstate_ns = 60000000000LL};
    struct profile *p = NULL;
    char err[256] = "";
    int rc = sampler_capture(&o, &p, err, sizeof err);
    symcache_free(sc);
    skip_or_fail_eperm(rc, err);
    cr_assert_eq(rc, 0, "capture failed: %s", err);
    /* the two asleep, not the burning thread held up behind them */
    cr_expect(has_note(p, "2 thread(s) did not stop to be detached"),
              "no note about the two sleeping threads");
    cr_expect_gt(p->nsamples, 10, "the burning thread was not sampled");
    profile_free(p);
    cr_expect_eq(thread_state(c.pid, vforker), 'D', "the vfork ended before the capture did");

    /* wake both, then every thread must run, none traced or stopped */
    cgroup_set(dir, "freezer.state", "THAWED");
    deadline = mono_ms() + 10000;
    while ((thread_state(c.pid, vforker) == 'D' || thread_state(c.pid, frozen) == 'D') &&
           mono_ms() < deadline)
        sleep_ms(20);
    cr_assert_neq(thread_state(c.pid, vforker), 'D', "vfork-0 still waits for its child");
    assert_untouched(c.pid); /* a stop left pending: traced and 't' at once */
    child_stop(&c);
    cgroup_remove(dir);
}

Test(sampler, cpu_mode_counts_idle_threads_wall_mode_samples_them)
{
    struct child c;
    char *argv[] = {(char *)child_target("burner"), "--threads", "1", "--idle", "3", NULL};
    start_target(&c, argv);
    struct profile *cpu = capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 99, 1500, 0.25});
    assert_untouched(c.pid);
    struct profile *wall =
        capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_WALL, 99, 1500, 0.25});
    assert_untouched(c.pid);
    cr_expect_eq(distinct_tids(cpu, "idle-"), 0, "cpu mode sampled sleeping threads");
    cr_expect_gt(cpu->idle_samples, 3 * cpu->nsamples / 2, "idle %llu of %zu samples",
                 (unsigned long long)cpu->idle_samples, cpu->nsamples);
    cr_expect_eq(distinct_tids(wall, "idle-"), 3, "wall mode sampled %zu of 3 idle threads",
                 distinct_tids(wall, "idle-"));
    cr_expect_eq(wall->type, PROFILE_TYPE_WALL);
    profile_free(cpu);
    profile_free(wall);
    child_stop(&c);
}

Test(sampler, governor_lowers_the_rate_and_says_so)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    struct profile *p =
        capture_ok(c.pid, (struct cap_args){PROFILE_TYPE_CPU, 1000, 2500, 0.00001});
    assert_untouched(c.pid);
    cr_expect(has_note(p, "rate lowered"), "no note about the lowered rate");
    cr_expect_lt(p->rate_achieved_hz, 500, "achieved %.1f Hz", p->rate_achieved_hz);
    cr_expect_eq(p->rate_hz, 1000, "the profile keeps the rate asked for");
    profile_free(p);
    child_stop(&c);
}

struct stopper {
    volatile sig_atomic_t *flag;
};

static void stop_after_300ms(void *ctx, int64_t elapsed_ns, uint64_t samples)
{
    (void)samples;
    struct stopper *s = ctx;
    if (elapsed_ns > 300000000LL)
        *s->flag = 1;
}

Test(sampler, stop_flag_ends_the_capture_early_with_a_note)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    volatile sig_atomic_t flag = 0;
    struct stopper s = {.flag = &flag};
    struct sampler_opts o = {.pid = c.pid, .mode = PROFILE_TYPE_CPU, .rate_hz = 99,
                             .duration_ns = 20000000000LL, .stop = &flag,
                             .progress = stop_after_300ms, .progress_ctx = &s};
    struct profile *p = NULL;
    char err[256];
    int64_t t0 = mono_ms();
    int rc = sampler_capture(&o, &p, err, sizeof err);
    skip_or_fail_eperm(rc, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_lt(mono_ms() - t0, 3000);
    cr_expect(p->aborted);
    cr_expect(has_note(p, "on request"));
    assert_untouched(c.pid);
    profile_free(p);
    child_stop(&c);
}

struct worker_capture {
    int pid;
    int rc;
    struct profile *p;
    char err[256];
};

static void *capture_on_worker(void *arg)
{
    struct worker_capture *w = arg;
    struct sampler_opts o = {.pid = w->pid, .mode = PROFILE_TYPE_CPU, .rate_hz = 99,
                             .duration_ns = 1500000000LL, .max_stopped = 0.25};
    w->rc = sampler_capture(&o, &w->p, w->err, sizeof w->err);
    return NULL;
}

Test(sampler, capture_on_a_worker_thread_detaches_everything)
{
    /* the daemon captures on a worker thread: the tracer is that thread
     * (TracerPid names its tid), and SIGCHLD may go to the main thread */
    struct child c;
    char *argv[] = {(char *)child_target("split"), "--threads", "2", NULL};
    start_target(&c, argv);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    struct worker_capture w = {.pid = c.pid};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, capture_on_worker, &w), 0);
    int64_t t0 = mono_ms();
    pthread_join(th, NULL);
    skip_or_fail_eperm(w.rc, w.err);
    cr_assert_eq(w.rc, 0, "%s", w.err);
    cr_expect_lt(mono_ms() - t0, 5000, "the capture and its detach were slow");
    cr_expect_eq(w.p->threads_skipped, 0, "our own threads counted as another tracer's");
    cr_expect(!w.p->aborted, "aborted: a tracer of our own taken for another");
    cr_expect_gt(w.p->nsamples, 50);
    assert_untouched(c.pid);
    profile_free(w.p);
    child_stop(&c);
}

Test(sampler, bad_options_and_missing_targets_are_errors)
{
    struct profile *p = NULL;
    char err[256];
    struct sampler_opts o = {.pid = 999999999, .mode = PROFILE_TYPE_CPU, .rate_hz = 99,
                             .duration_ns = 1000000000LL};
    cr_expect_eq(sampler_capture(&o, &p, err, sizeof err), -ESRCH, "pid beyond pid_max");
    o.pid = 4194304 - 1;
    int rc = sampler_capture(&o, &p, err, sizeof err);
    cr_expect(rc == -ESRCH, "a pid that does not exist: %d %s", rc, err);
    o.pid = getppid();
    o.rate_hz = 0;
    cr_expect_eq(sampler_capture(&o, &p, err, sizeof err), -EINVAL);
    o.rate_hz = SAMPLER_MAX_RATE_HZ + 1;
    cr_expect_eq(sampler_capture(&o, &p, err, sizeof err), -EINVAL);
    o.rate_hz = 99;
    o.mode = PROFILE_TYPE_MEMORY;
    cr_expect_eq(sampler_capture(&o, &p, err, sizeof err), -EINVAL);
    o.mode = PROFILE_TYPE_CPU;
    o.pid = getpid();
    cr_expect_eq(sampler_capture(&o, &p, err, sizeof err), -EINVAL, "itself");
    cr_expect_null(p);
}

Test(stackwalk, eh_encoding_sizes)
{
    cr_expect_eq(stackwalk_eh_enc_size(0x1b), 4); /* pcrel sdata4 */
    cr_expect_eq(stackwalk_eh_enc_size(0x03), 4); /* udata4 */
    cr_expect_eq(stackwalk_eh_enc_size(0x3b), 4); /* datarel sdata4 */
    cr_expect_eq(stackwalk_eh_enc_size(0x00), 8); /* absptr */
    cr_expect_eq(stackwalk_eh_enc_size(0x04), 8);
    cr_expect_eq(stackwalk_eh_enc_size(0x0a), 2);
    cr_expect_eq(stackwalk_eh_enc_size(0x01), 0); /* uleb128 */
    cr_expect_eq(stackwalk_eh_enc_size(0xff), 0); /* omit */
}

/* ---- stakeout record ---- */

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char path[160];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/stakeout-record-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

/* Start `stakeout record` in the background, stderr and stdout to files. */
static pid_t start_record(char *const args[])
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int out = open(tmp_path("record.out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out, 1);
        dup2(out, 2);
        execv(args[0], args);
        _exit(127);
    }
    return pid;
}

static void wait_traced(int pid)
{
    int64_t deadline = mono_ms() + 10000;
    for (;;) {
        int tracer;
        char state;
        cr_assert(thread_status(pid, pid, &tracer, &state));
        if (tracer > 0)
            return;
        cr_assert_lt(mono_ms(), deadline, "stakeout record never attached");
        sleep_ms(10);
    }
}

static uint64_t cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    cr_assert_not_null(p);
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt,
     * then utime stime */
    cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st),
                 2);
    return ut + st;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cr_assert_fail("stakeout record did not exit in time");
        }
        sleep_ms(10);
    }
}

TestSuite(record, .timeout = 90);

Test(record, sigkill_mid_capture_leaves_the_target_running)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", c.pid);
    char out[160];
    snprintf(out, sizeof out, "%s", tmp_path("killed.folded"));
    char *args[] = {(char *)spawn_stakeout_bin(), "record", "-p", pid, "-d", "30s", "-q", "-o",
                    out, NULL};
    pid_t rec = start_record(args);
    wait_traced(c.pid);
    sleep_ms(300);
    kill(rec, SIGKILL);
    int st = wait_exit(rec, 5000);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_untouched(c.pid);
    uint64_t t0 = cpu_ticks(c.pid);
    sleep_ms(500);
    uint64_t t1 = cpu_ticks(c.pid);
    cr_expect_gt(t1, t0 + 10, "the target stopped consuming CPU (%llu -> %llu ticks)",
                 (unsigned long long)t0, (unsigned long long)t1);
    child_stop(&c);
}

Test(record, sigterm_mid_capture_still_writes_the_profile)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", c.pid);
    char out[160];
    snprintf(out, sizeof out, "%s", tmp_path("term.folded"));
    unlink(out);
    char *args[] = {(char *)spawn_stakeout_bin(), "record", "-p", pid, "-d", "30s", "-o",
                    (char *)out, NULL};
    pid_t rec = start_record(args);
    wait_traced(c.pid);
    sleep_ms(1000);
    kill(rec, SIGTERM);
    int st = wait_exit(rec, 10000);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    assert_untouched(c.pid);
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f, "no profile written");
    char line[4096];
    bool leaf = false;
    while (fgets(line, sizeof line, f))
        leaf |= strstr(line, "path_a;step_a;leaf_a ") != NULL;
    fclose(f);
    cr_expect(leaf, "the folded profile has no path_a;step_a;leaf_a stack");
    child_stop(&c);
}

Test(record, pprof_output_parses_back_with_go_pprof)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", c.pid);
    const char *out = tmp_path("cpu.pb.gz");
    char out_copy[160];
    snprintf(out_copy, sizeof out_copy, "%s", out);
    char *args[] = {(char *)spawn_stakeout_bin(), "record", "-p", pid, "-d", "2s", "-r", "199",
                    "-o", out_copy, NULL};
    struct spawn_result r;
    cr_assert_eq(spawn_capture(args, NULL, 30000, &r), 0);
    cr_assert_eq(r.status, 0, "record failed: %s", r.err);
    cr_expect(strstr(r.out, "top functions") != NULL, "no summary: %s", r.out);
    cr_expect(strstr(r.out, "leaf_a") != NULL, "summary without leaf_a: %s", r.out);
    spawn_result_fini(&r);
    assert_untouched(c.pid);
    child_stop(&c);

    char *go[] = {"/usr/bin/go", "tool", "pprof", "-traces", out_copy, NULL};
    char *env[] = {"HOME=/tmp", "GOCACHE=/tmp/stakeout-gocache", "GOFLAGS=-mod=mod", NULL};
    cr_assert_eq(spawn_capture(go, env, 60000, &r), 0, "cannot run go tool pprof");
    cr_assert_eq(r.status, 0, "go tool pprof failed: %s", r.err);
    cr_expect(strstr(r.out, "Type: cpu") != NULL, "%s", r.out);
    const char *a = strstr(r.out, "leaf_a");
    cr_assert_not_null(a, "no leaf_a in the traces");
    /* -traces prints each stack leaf first, one frame per line */
    const char *s = strstr(a, "step_a"), *pa = s ? strstr(s, "path_a") : NULL;
    const char *rr = pa ? strstr(pa, "run_round") : NULL, *w = rr ? strstr(rr, "worker") : NULL;
    cr_expect_not_null(w, "no leaf_a -> step_a -> path_a -> run_round -> worker trace");
    spawn_result_fini(&r);
}

Test(record, command_is_profiled_for_its_life)
{
    const char *out = tmp_path("cmd.folded");
    char out_copy[160];
    snprintf(out_copy, sizeof out_copy, "%s", out);
    char *args[] = {(char *)spawn_stakeout_bin(), "record", "-r", "199", "-o", out_copy, "--",
                    (char *)child_target("split"), "--seconds", "2", NULL};
    struct spawn_result r;
    int64_t t0 = mono_ms();
    cr_assert_eq(spawn_capture(args, NULL, 30000, &r), 0);
    cr_expect_eq(r.status, 0, "record -- CMD failed: %s", r.err);
    cr_expect_lt(mono_ms() - t0, 10000);
    cr_expect(strstr(r.out, "exited") != NULL, "summary does not say the command ended: %s",
              r.out);
    spawn_result_fini(&r);
    FILE *f = fopen(out_copy, "r");
    cr_assert_not_null(f);
    char line[4096];
    bool leaf = false;
    while (fgets(line, sizeof line, f))
        leaf |= strstr(line, ";leaf_b ") != NULL;
    fclose(f);
    cr_expect(leaf);
}

Test(record, json_and_svg_follow_the_extension)
{
    struct child c;
    char *argv[] = {(char *)child_target("split"), NULL};
    start_target(&c, argv);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", c.pid);
    const char *names[] = {"p.json", "p.svg", "p.out"};
    const char *want[] = {"\"leaf_a\"", "<svg", "leaf_a"};
    const char *fmt[] = {NULL, NULL, "folded"};
    for (int i = 0; i < 3; i++) {
        char out[160];
        snprintf(out, sizeof out, "%s", tmp_path(names[i]));
        char *args[] = {(char *)spawn_stakeout_bin(), "record", "-p", pid, "-d", "500ms", "-q",
                        "-o", out, fmt[i] ? "-f" : NULL, (char *)fmt[i], NULL};
        struct spawn_result r;
        cr_assert_eq(spawn_capture(args, NULL, 30000, &r), 0);
        cr_expect_eq(r.status, 0, "%s: %s", names[i], r.err);
        spawn_result_fini(&r);
        FILE *f = fopen(out, "r");
        cr_assert_not_null(f, "%s not written", out);
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        cr_expect(strstr(buf, want[i]) != NULL, "%s lacks %s", names[i], want[i]);
    }
    assert_untouched(c.pid);
    child_stop(&c);
}

struct usage_case {
    const char *args[8];
    int status;
    const char *says;
};

static const struct usage_case usage_cases[] = {
    {{"-o", "x.folded"}, 2, "give -p PID"},
    {{"-p", "1"}, 2, "-o FILE"},
    {{"-p", "1", "-o", "x.txt"}, 2, "format"},
    {{"-p", "1", "-o", "x.folded", "-d", "5x"}, 2, "-d"},
    {{"-p", "1", "-o", "x.folded", "-r", "0"}, 2, "rate"},
    {{"-p", "1", "-o", "x.folded", "-r", "1001"}, 2, "rate"},
    {{"-p", "1", "-o", "x.folded", "--mode", "gpu"}, 2, "cpu, wall or memory"},
    {{"-p", "1", "-o", "x.folded", "--mode", "memory", "-r", "99"}, 2, "no rate"},
    {{"-p", "1", "-o", "x.folded", "--gross"}, 2, "--mode memory"},
    {{"-p", "1", "-o", "x.folded", "--mode", "memory", "--method", "bpf"}, 2, "tracepoint"},
    {{"-p", "abc", "-o", "x.folded"}, 2, "process id"},
    {{"-p", "1", "-o", "x.folded", "-f", "png"}, 2, "pprof, folded"},
    {{"-p", "1", "-o", "x.folded", "--", "true"}, 2, "not both"},
    {{"-p", "1", "-o", "x.folded", "--bogus"}, 2, "unknown"},
    {{"-p", "4194303", "-o", "/tmp/x.folded"}, 1, "does not exist"},
    {{"-p", "1", "-o", "/nonexistent-dir/x.folded"}, 1, "cannot write"},
};

Test(record, usage_errors_exit_2_failures_exit_1)
{
    for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++) {
        const struct usage_case *u = &usage_cases[i];
        char *args[12] = {(char *)spawn_stakeout_bin(), "record"};
        size_t n = 2;
        for (size_t k = 0; k < 8 && u->args[k]; k++)
            args[n++] = (char *)u->args[k];
        args[n] = NULL;
        struct spawn_result r;
        cr_assert_eq(spawn_capture(args, NULL, 10000, &r), 0);
        cr_expect_eq(r.status, u->status, "case %zu: status %d, want %d (%s)", i, r.status,
                     u->status, r.err);
        cr_expect(strstr(r.err, u->says) != NULL, "case %zu: '%s' not in: %s", i, u->says,
                  r.err);
        spawn_result_fini(&r);
    }
}
