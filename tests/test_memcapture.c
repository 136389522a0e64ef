/* tests/test_memcapture.c - memory captures (memcapture.h) of real
 * processes from tests/targets, and `stakeout record --mode memory`.
 *
 * Ground truth: leaker leaks from leak_path() while churn_path() takes
 * twice as much and gives it back. Of the bytes still held at the end of a
 * capture (net growth), at least 80% must be charged to stacks through
 * leak_path and under 10% to stacks through churn_path, by either method
 * (tracepoints, ptrace). Every thread of the target must be running and
 * untraced after every capture. Every child is killed and reaped by its
 * pid. */
#include <criterion/criterion.h>

#include "memcapture.h"
#include "profile.h"
#include "symbols.h"
#include "support/child.h"
#include "support/spawn.h"
#include "support/tracefs.h"
#include "support/untraced.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(memcapture, .timeout = 120);

static void start_leaker(struct child *c, char *const argv[])
{
    cr_assert_eq(child_start(c, argv), 0, "cannot start %s", argv[0]);
    char line[128];
    cr_assert_gt(child_readline(c, line, sizeof line, 10000), 0, "leaker did not get ready");
    cr_assert_eq(strncmp(line, "ready ", 6), 0, "unexpected first line '%s'", line);
}

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

static struct profile *capture_budget(int pid, enum memcapture_method m, int64_t ms,
                                      double max_stopped)
{
    struct symcache *sc = symcache_new();
    struct memcapture_opts o = {.pid = pid, .duration_ns = ms * 1000000LL, .method = m,
                                .symbols = sc, .max_stopped = max_stopped};
    struct profile *p = NULL;
    char err[512] = "";
    int rc = memcapture_run(&o, &p, err, sizeof err);
    cr_assert_eq(rc, 0, "memory capture failed: %d %s", rc, err);
    symbols_resolve(sc, p);
    symcache_free(sc);
    return p;
}

static struct profile *capture_ok(int pid, enum memcapture_method m, int64_t ms)
{
    return capture_budget(pid, m, ms, 0);
}

static bool has_note(const struct profile *p, const char *text)
{
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strstr(p->notes[i], text))
            return true;
    }
    return false;
}

/* The leaker's counter name=N from its answer to "count". */
static unsigned long long leaker_count(struct child *c, const char *name)
{
    cr_assert(child_send(c, "count\n"), "cannot ask the leaker");
    char line[256];
    cr_assert_gt(child_readline(c, line, sizeof line, 5000), 0, "the leaker stopped answering");
    char key[32];
    snprintf(key, sizeof key, "%s=", name);
    const char *v = strstr(line, key);
    cr_assert_not_null(v, "no %s in '%s'", name, line);
    return strtoull(v + strlen(key), NULL, 10);
}

/* The leaker's counter grows within 5 s: it runs. */
static void assert_counting(struct child *c, const char *name)
{
    unsigned long long first = leaker_count(c, name), now = first;
    int64_t deadline = mono_ms() + 5000;
    while (now == first && mono_ms() < deadline) {
        sleep_ms(20);
        now = leaker_count(c, name);
    }
    cr_assert_gt(now, first, "the leaker's %s stayed at %llu", name, first);
}

static bool stack_has(const struct profile *p, const struct prof_stack *s, const char *name)
{
    for (uint32_t k = 0; k < s->nframes; k++) {
        const char *f = profile_frame_name(p, s->frames[k]);
        if (f && strcmp(f, name) == 0)
            return true;
    }
    return false;
}

/* Shares of the net growth through leak_path and churn_path, in percent. */
static void shares(const struct profile *p, double *leak, double *churn)
{
    uint64_t all = 0, l = 0, c = 0;
    for (uint32_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *s = &p->stacks[i];
        all += s->inuse;
        if (stack_has(p, s, "leak_path"))
            l += s->inuse;
        if (stack_has(p, s, "churn_path"))
            c += s->inuse;
    }
    cr_assert_gt(all, 1 << 20, "only %llu bytes held at the end", (unsigned long long)all);
    *leak = 100.0 * (double)l / (double)all;
    *churn = 100.0 * (double)c / (double)all;
}

static void check_attribution(const char *const *extra, enum memcapture_method m)
{
    if (m != MEMCAPTURE_PTRACE)
        support_tracefs_require();
    char *argv[8] = {(char *)child_target("leaker")};
    size_t n = 1;
    for (size_t i = 0; extra[i] && n < 7; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    struct child c;
    start_leaker(&c, argv);
    struct profile *p = capture_ok(c.pid, m, 2500);
    support_assert_untraced(c.pid);
    double leak, churn;
    shares(p, &leak, &churn);
    cr_log_info("%s %s: leak %.1f%%, churn %.1f%% of %llu bytes held", argv[1] ? argv[1] : "",
                argv[2] ? argv[2] : "", leak, churn,
                (unsigned long long)profile_total_weight(p));
    cr_expect_geq(leak, 80.0, "leak_path holds %.1f%% of the net growth", leak);
    cr_expect_lt(churn, 10.0, "churn_path holds %.1f%% of the net growth", churn);
    cr_expect_gt(profile_total_value(p), 2 * profile_total_weight(p),
                 "the churn's gross growth is not there");
    cr_assert_not_null(p->mem);
    cr_expect_str_eq(p->mem->method, memcapture_method_name(m));
    cr_expect_eq(p->mem->lost, 0, "%llu calls lost", (unsigned long long)p->mem->lost);
    cr_expect(!p->aborted, "the capture ended early");
    if (m == MEMCAPTURE_PTRACE)
        cr_expect(p->mem->stopped_share > 0 && p->mem->stopped_share < 0.05,
                  "stopped %.3f%% of a window", p->mem->stopped_share * 100);
    else
        cr_expect_eq(p->mem->stopped_share, 0);
    /* every growing call came with its stack: a few KiB each */
    cr_expect_gt(p->mem->stack_bytes, (uint64_t)p->nsamples * 1024,
                 "%llu bytes of stack for %zu growths", (unsigned long long)p->mem->stack_bytes,
                 p->nsamples);
    profile_free(p);
    child_stop(&c);
}

Test(memcapture, large_allocations_by_tracepoints)
{
    const char *a[] = {"--size", "large", NULL};
    check_attribution(a, MEMCAPTURE_TRACEPOINT);
}

Test(memcapture, small_allocations_from_the_brk_heap_by_tracepoints)
{
    const char *a[] = {"--size", "small", NULL};
    check_attribution(a, MEMCAPTURE_TRACEPOINT);
}

Test(memcapture, growth_in_a_second_thread_by_tracepoints)
{
    const char *a[] = {"--size", "large", "--thread", NULL};
    check_attribution(a, MEMCAPTURE_TRACEPOINT);
}

Test(memcapture, growth_in_a_thread_started_during_the_capture_by_tracepoints)
{
    /* the thread starts 300 ms after "ready", inside the 2.5 s window */
    const char *a[] = {"--size", "large", "--late-thread", "300", NULL};
    check_attribution(a, MEMCAPTURE_TRACEPOINT);
}

Test(memcapture, large_allocations_by_ptrace)
{
    const char *a[] = {"--size", "large", NULL};
    check_attribution(a, MEMCAPTURE_PTRACE);
}

Test(memcapture, small_allocations_from_the_brk_heap_by_ptrace)
{
    /* 1 MiB/s: some 750 brk calls a second, 3000 stops, about 2% of the
     * time stopped here; at 2 MiB/s the 5% budget is near on a busy machine */
    const char *a[] = {"--size", "small", "--rate", "1024", NULL};
    check_attribution(a, MEMCAPTURE_PTRACE);
}

Test(memcapture, growth_in_a_second_thread_by_ptrace)
{
    const char *a[] = {"--size", "large", "--thread", NULL};
    check_attribution(a, MEMCAPTURE_PTRACE);
}

Test(memcapture, growth_in_a_thread_started_during_the_capture_by_ptrace)
{
    const char *a[] = {"--size", "large", "--late-thread", "300", NULL};
    check_attribution(a, MEMCAPTURE_PTRACE);
}

/* leaker --syscalls writes a byte at a time as fast as it can: under ptrace
 * each write stops it twice, and the capture spends its budget of stopped
 * time within the first window and ends, the window's share at the budget
 * (the last stop may pass it). */
Test(memcapture, syscall_heavy_target_ends_a_ptrace_capture_when_its_stop_budget_is_spent)
{
    static const double budgets[] = {0, 0.02}; /* 0: the default, 5% */
    char *argv[] = {(char *)child_target("leaker"), "--syscalls", NULL};
    struct child c;
    start_leaker(&c, argv);
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        double budget = budgets[i] > 0 ? budgets[i] : 0.05;
        int64_t t0 = mono_ms();
        struct profile *p = capture_budget(c.pid, MEMCAPTURE_PTRACE, 10000, budgets[i]);
        int64_t took = mono_ms() - t0;
        support_assert_untraced(c.pid);
        cr_assert_not_null(p->mem);
        cr_log_info("budget %.0f%%: ended after %lld ms, stopped %.2f%% of a window",
                    budget * 100, (long long)took, p->mem->stopped_share * 100);
        cr_expect_str_eq(p->mem->method, "ptrace");
        cr_expect(p->aborted, "the capture did not end early");
        cr_expect(has_note(p, "budget for stopping the target spent"), "no note of the budget");
        cr_expect_lt(took, 5000, "the capture went on for %lld ms", (long long)took);
        cr_expect_geq(p->mem->stopped_share, budget, "stopped %.2f%%",
                      p->mem->stopped_share * 100);
        cr_expect_lt(p->mem->stopped_share, budget * 1.5, "stopped %.2f%%, the budget %.0f%%",
                     p->mem->stopped_share * 100, budget * 100);
        profile_free(p);
        assert_counting(&c, "writes");
    }
    child_stop(&c);
}

Test(memcapture, mappings_that_grew_are_listed_with_the_resident_growth)
{
    support_tracefs_require();
    char *argv[] = {(char *)child_target("leaker"), "--size", "small", NULL};
    struct child c;
    start_leaker(&c, argv);
    struct profile *p = capture_ok(c.pid, MEMCAPTURE_AUTO, 1500);
    cr_assert_not_null(p->mem);
    cr_assert_gt(p->mem->nchanges, 0);
    const struct prof_map_change *top = &p->mem->changes[0];
    cr_expect_str_eq(top->kind, "heap", "the brk heap grew the most");
    cr_expect_gt(top->rss_after, top->rss_before + (1 << 20));
    cr_expect_gt(p->mem->rss_after, p->mem->rss_before);
    bool noted = false;
    for (size_t i = 0; i < p->nnotes; i++)
        noted |= strstr(p->notes[i], "before the capture") != NULL;
    cr_expect(noted, "no note that earlier allocations are not seen");
    profile_free(p);
    child_stop(&c);
}

static void check_exit_mid_capture(enum memcapture_method m)
{
    if (m != MEMCAPTURE_PTRACE)
        support_tracefs_require();
    char *argv[] = {(char *)child_target("leaker"), "--size", "large", NULL};
    struct child c;
    start_leaker(&c, argv);
    pid_t pid = c.pid;
    /* SIGTERM ends the leaker 500 ms into a 10 s capture */
    pid_t closer = fork();
    cr_assert_neq(closer, -1);
    if (closer == 0) {
        struct timespec ts = {0, 500000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGTERM);
        _exit(0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct profile *p = capture_ok(pid, m, 10000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(waitpid(closer, NULL, 0), closer, "the closer was reaped by someone else");
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 5, "the capture went on after the exit");
    cr_expect(p->aborted);
    cr_expect(has_note(p, "exited"), "no note that the target exited");
    profile_free(p);
    child_stop(&c);
}

Test(memcapture, target_exiting_mid_capture_ends_it_with_what_it_has)
{
    check_exit_mid_capture(MEMCAPTURE_TRACEPOINT);
}

Test(memcapture, target_exiting_mid_ptrace_capture_ends_it_with_what_it_has)
{
    check_exit_mid_capture(MEMCAPTURE_PTRACE);
}

/* Whether process pid has a perf_event descriptor open. */
static bool holds_perf_events(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        char path[320], target[128];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            found = strstr(target, "perf_event") != NULL;
        }
    }
    closedir(d);
    return found;
}

Test(memcapture, sigkill_of_stakeout_mid_capture_leaves_the_target_running)
{
    support_tracefs_require();
    char *argv[] = {(char *)child_target("leaker"), "--size", "large", NULL};
    struct child c;
    start_leaker(&c, argv);
    char pidtext[16];
    snprintf(pidtext, sizeof pidtext, "%d", c.pid);
    pid_t rec = fork();
    cr_assert_neq(rec, -1);
    if (rec == 0) {
        execl(spawn_stakeout_bin(), "stakeout", "record", "--mode", "memory", "-p", pidtext,
              "-d", "30s", "-q", "-o", "/dev/null", "-f", "folded", (char *)NULL);
        _exit(127);
    }
    /* wait until stakeout holds its perf events on the target */
    bool armed = false;
    for (int i = 0; i < 500 && !armed; i++) {
        armed = holds_perf_events(rec);
        if (!armed) {
            struct timespec ts = {0, 10000000L};
            nanosleep(&ts, NULL);
        }
    }
    cr_assert(armed, "stakeout record never opened its events");
    cr_assert_eq(kill(rec, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(rec, &st, 0), rec);
    support_assert_untraced(c.pid);
    /* and it goes on leaking: its answers keep coming */
    cr_assert(child_send(&c, "count\n"));
    char line[128];
    cr_assert_gt(child_readline(&c, line, sizeof line, 5000), 0, "the target stopped answering");
    child_stop(&c);
}

/* TracerPid of every thread of pid is set (false when one is not, or none
 * can be read). */
static bool all_traced(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    int traced = 0, untraced = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        int tracer;
        char state;
        if (e->d_name[0] == '.' || !support_thread_status(pid, atoi(e->d_name), &tracer, &state))
            continue;
        if (tracer > 0)
            traced++;
        else
            untraced++;
    }
    closedir(d);
    return traced > 0 && untraced == 0;
}

Test(memcapture, sigkill_of_stakeout_mid_ptrace_capture_leaves_the_target_running)
{
    /* three threads: main asleep, the rounds, the one that answers */
    char *argv[] = {(char *)child_target("leaker"), "--size", "large", "--thread", NULL};
    struct child c;
    start_leaker(&c, argv);
    char pidtext[16];
    snprintf(pidtext, sizeof pidtext, "%d", c.pid);
    pid_t rec = fork();
    cr_assert_neq(rec, -1);
    if (rec == 0) {
        execl(spawn_stakeout_bin(), "stakeout", "record", "--mode", "memory", "--method", "ptrace",
              "-p", pidtext, "-d", "30s", "-q", "-o", "/dev/null", "-f", "folded", (char *)NULL);
        _exit(127);
    }
    /* wait until stakeout traces every thread, then until a call of the
     * answering thread has gone through its stops (an answer comes) */
    int64_t deadline = mono_ms() + 10000;
    while (!all_traced(c.pid) && mono_ms() < deadline)
        sleep_ms(10);
    if (!all_traced(c.pid)) {
        kill(rec, SIGKILL);
        waitpid(rec, NULL, 0);
        cr_assert_fail("stakeout record never traced every thread");
    }
    unsigned long long rounds = leaker_count(&c, "rounds");
    cr_assert_eq(kill(rec, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(rec, &st, 0), rec);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "stakeout record ended before the kill");
    support_assert_untraced(c.pid);
    /* and it goes on leaking */
    int64_t until = mono_ms() + 5000;
    unsigned long long now = rounds;
    while (now == rounds && mono_ms() < until) {
        sleep_ms(20);
        now = leaker_count(&c, "rounds");
    }
    cr_assert_gt(now, rounds, "the leaker's rounds stopped at %llu", rounds);
    child_stop(&c);
}

/* capsh, to run stakeout without CAP_PERFMON and CAP_SYS_ADMIN: NULL when
 * it is not installed (deploy/setup.sh installs it: libcap2-bin). */
static const char *find_capsh(void)
{
    static const char *const paths[] = {"/usr/sbin/capsh", "/sbin/capsh", "/usr/bin/capsh"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    }
    return NULL;
}

Test(memcapture, auto_takes_ptrace_where_tracepoints_are_refused_and_says_why)
{
    support_tracefs_require(); /* so that only the capabilities refuse them */
    const char *capsh = find_capsh();
    if (!capsh || geteuid() != 0) {
        if (getenv("CI"))
            cr_assert_fail("this test needs capsh (libcap2-bin) and root to drop capabilities");
        cr_skip_test("needs capsh (libcap2-bin) and root");
    }
    char paranoid[16] = "";
    FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
    if (f) {
        if (!fgets(paranoid, sizeof paranoid, f))
            paranoid[0] = '\0';
        fclose(f);
    }
    if (atoi(paranoid) < 0)
        cr_skip_test("perf_event_paranoid is %d: tracepoints are allowed without capabilities",
                     atoi(paranoid));
    char *argv[] = {(char *)child_target("leaker"), "--size", "large", NULL};
    struct child c;
    start_leaker(&c, argv);
    char dir[] = "/tmp/stakeout-memauto-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char pidtext[16], out[128];
    snprintf(pidtext, sizeof pidtext, "%d", c.pid);
    snprintf(out, sizeof out, "%s/leak.json", dir);
    /* without CAP_PERFMON and CAP_SYS_ADMIN in its bounding set, stakeout
     * (root, CAP_SYS_PTRACE kept) is refused the raw tracepoint records */
    char *args[] = {(char *)capsh, "--drop=cap_perfmon,cap_sys_admin", "--", "-c",
                    "exec \"$0\" \"$@\"", (char *)spawn_stakeout_bin(), "record", "--mode",
                    "memory", "-p", pidtext, "-d", "1500ms", "-o", out, NULL};
    struct spawn_result r;
    cr_assert_eq(spawn_capture(args, NULL, 30000, &r), 0);
    cr_expect_eq(r.status, 0, "record: %s", r.err);
    cr_expect(strstr(r.out, "by ptrace") != NULL, "%s", r.out);
    spawn_result_fini(&r);
    support_assert_untraced(c.pid);

    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s: %s", out, je.text);
    json_t *mem = json_object_get(j, "memory");
    cr_expect_str_eq(json_string_value(json_object_get(mem, "method")), "ptrace");
    json_t *notes = json_object_get(j, "notes");
    bool why = false;
    for (size_t i = 0; i < json_array_size(notes); i++) {
        const char *n = json_string_value(json_array_get(notes, i));
        why |= strstr(n, "syscall tracepoints not used") && strstr(n, "perf_event_open");
    }
    cr_expect(why, "no note of why the tracepoints were not used");
    json_t *frames = json_object_get(json_array_get(json_object_get(j, "top_stacks"), 0), "frames");
    bool leak = false;
    for (size_t i = 0; i < json_array_size(frames); i++)
        leak |= strcmp(json_string_value(json_array_get(frames, i)), "leak_path") == 0;
    cr_expect(leak, "the heaviest stack does not run through leak_path");
    json_decref(j);
    cr_expect_eq(unlink(out), 0);
    cr_expect_eq(rmdir(dir), 0);
    child_stop(&c);
}

Test(memcapture, record_writes_every_format_led_by_the_leak)
{
    support_tracefs_require();
    char *argv[] = {(char *)child_target("leaker"), "--size", "large", NULL};
    struct child c;
    start_leaker(&c, argv);
    char dir[] = "/tmp/stakeout-memrec-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char pidtext[16], out[128];
    snprintf(pidtext, sizeof pidtext, "%d", c.pid);
    static const char *const exts[] = {"json", "folded", "svg", "pb.gz"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(out, sizeof out, "%s/leak.%s", dir, exts[i]);
        char *args[] = {(char *)spawn_stakeout_bin(), "record", "--mode", "memory", "-p",
                        pidtext, "-d", "1500ms", "-o", out, NULL};
        struct spawn_result r;
        cr_assert_eq(spawn_capture(args, NULL, 30000, &r), 0);
        cr_assert_eq(r.status, 0, "record %s: %s", exts[i], r.err);
        if (i == 0) {
            cr_expect(strstr(r.out, "by tracepoint") != NULL, "%s", r.out);
            cr_expect(strstr(r.out, "still held") != NULL, "%s", r.out);
        }
        spawn_result_fini(&r);
        cr_assert_eq(access(out, R_OK), 0, "%s not written", out);
    }
    snprintf(out, sizeof out, "%s/leak.json", dir);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "%s: %s", out, je.text);
    cr_expect_str_eq(json_string_value(json_object_get(j, "type")), "memory");
    json_t *frames = json_object_get(json_array_get(json_object_get(j, "top_stacks"), 0), "frames");
    bool leak = false;
    for (size_t i = 0; i < json_array_size(frames); i++)
        leak |= strcmp(json_string_value(json_array_get(frames, i)), "leak_path") == 0;
    cr_expect(leak, "the heaviest stack does not run through leak_path");
    json_t *mem = json_object_get(j, "memory");
    cr_expect_str_eq(json_string_value(json_object_get(mem, "method")), "tracepoint");
    cr_expect_gt(json_array_size(json_object_get(mem, "mappings")), 0);
    json_decref(j);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    child_stop(&c);
}
