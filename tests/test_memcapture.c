/* tests/test_memcapture.c - memory captures (memcapture.h) of real
 * processes from tests/targets, and `stakeout record --mode memory`.
 *
 * Ground truth: leaker leaks from leak_path() while churn_path() takes
 * twice as much and gives it back. Of the bytes still held at the end of a
 * capture (net growth), at least 80% must be charged to stacks through
 * leak_path and under 10% to stacks through churn_path. The target must be
 * running and untraced after every capture. Every child is killed and
 * reaped by its pid. */
#include <criterion/criterion.h>

#include "memcapture.h"
#include "profile.h"
#include "symbols.h"
#include "support/child.h"
#include "support/spawn.h"
#include "support/tracefs.h"

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

static struct profile *capture_ok(int pid, enum memcapture_method m, int64_t ms)
{
    struct symcache *sc = symcache_new();
    struct memcapture_opts o = {.pid = pid, .duration_ns = ms * 1000000LL, .method = m,
                                .symbols = sc};
    struct profile *p = NULL;
    char err[512] = "";
    int rc = memcapture_run(&o, &p, err, sizeof err);
    cr_assert_eq(rc, 0, "memory capture failed: %d %s", rc, err);
    symbols_resolve(sc, p);
    symcache_free(sc);
    return p;
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

/* Every thread of pid: not traced, not stopped. */
static void assert_running_untraced(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "target %d is gone", pid);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *t = strstr(buf, "TracerPid:");
    cr_assert(t && atoi(t + 10) == 0, "target %d is traced", pid);
    const char *s = strstr(buf, "State:");
    cr_assert(s && s[7] != 't' && s[7] != 'T', "target %d is stopped", pid);
}

static void check_attribution(const char *const *extra, enum memcapture_method m)
{
    support_tracefs_require();
    char *argv[8] = {(char *)child_target("leaker")};
    size_t n = 1;
    for (size_t i = 0; extra[i] && n < 7; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    struct child c;
    start_leaker(&c, argv);
    struct profile *p = capture_ok(c.pid, m, 2500);
    assert_running_untraced(c.pid);
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

Test(memcapture, target_exiting_mid_capture_ends_it_with_what_it_has)
{
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
    struct profile *p = capture_ok(pid, MEMCAPTURE_TRACEPOINT, 10000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waitpid(closer, NULL, 0);
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 5, "the capture went on after the exit");
    cr_expect(p->aborted);
    bool noted = false;
    for (size_t i = 0; i < p->nnotes; i++)
        noted |= strstr(p->notes[i], "exited") != NULL;
    cr_expect(noted, "no note that the target exited");
    profile_free(p);
    child_stop(&c);
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
    assert_running_untraced(c.pid);
    /* and it goes on leaking: its answers keep coming */
    cr_assert(child_send(&c, "count\n"));
    char line[128];
    cr_assert_gt(child_readline(&c, line, sizeof line, 5000), 0, "the target stopped answering");
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
