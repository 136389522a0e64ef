/* tests/test_daemon.c - `stakeout run` end to end, with real processes.
 *
 * Each test starts, in its own temporary directory, the webhook receiver
 * (tests/targets/receiver, port 0), the demo service (tests/targets/demo.c,
 * process name stakeout-demo, matched here by its command line so a demo
 * run elsewhere on the machine is never watched) and the daemon itself
 * (`stakeout run -c rules.yaml`, stderr into a file), with a rules file the
 * test writes (mode 0600): half-second polls and second-long rules so the
 * whole file runs in a couple of minutes. The ground truth is what the
 * receiver wrote to disk, the daemon's log lines, its HTTP endpoint and the
 * target's /proc/PID/status.
 *
 * Checked: each demo anomaly (CPU hot spot, error burst, leak) gives one
 * alert of the right rule with its context and, for the hot spot, a profile
 * whose top function is score_item; a normal phase gives none; a broken
 * file on SIGHUP or on disk keeps the old rules; a file renamed over the
 * rules file is loaded without SIGHUP; a rules file others can write is
 * refused at start, one another user owns at reload; log lines are logfmt,
 * or JSON with --log-format json; a restart gives one "restarted" alert
 * with the history before the death; a target OOM-killed in a pod, its
 * cgroup seen only through its own root, restarts for the reason
 * "oom-killed" with the cgroup's counters after the kill;
 * SIGTERM stops within seconds with exit 0, also in the middle of a
 * capture, leaving the target running and untraced; /metrics is valid
 * Prometheus text; POST /capture needs the token, answers 202 and an alert
 * follows, and the capture budget answers 429; every thread of the daemon
 * holds only CAP_SYS_PTRACE and blocks the signals the loop reads; under a
 * descriptor limit of 1,024 (soft, and hard too) a target of 1,100 threads
 * is captured whole, /healthz answering meanwhile, with no exit or restart
 * read into it, and the daemon raises its soft limit to the hard one; a
 * target in a root of its own (mount namespace, chroot) whose log is a
 * symlink to a file of stakeout's gets none of that file's lines into an
 * alert, while its own log and its container's log on the host side
 * (root: host, found by the container id in its cgroup) are in it.
 *
 * Waiting is polling a condition against a deadline (files in the receiver
 * directory, log lines, /metrics); every child is killed and reaped by its
 * pid, also when an assertion fails (support/child.h). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/cgroup.h"
#include "support/child.h"
#include "support/jail.h"
#include "support/spawn.h"
#include "support/tracefs.h"

#define TOKEN "daemon-test-token-0123456789"
#define POLL_MS 500 /* poll_interval of every rules file here */

/* The state of one test: the directory, the children and what they said. */
static char root[256];
static char recv_dir[512], spool_dir[512], app_log[512], rules_path[512], daemon_log[512];
static struct child receiver, daemon_proc, demo, demo2;
static unsigned recv_port, http_port;
static pid_t jailed; /* a target in a root of its own, 0: none */

/* ---- small helpers ----------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The pause between two looks at a condition polled against a deadline. */
static void pause_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4097 > cap) {
            cap = (len + 4097) * 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

/* The last lines of the daemon's log, for failure messages. Static buffer. */
static const char *log_tail(void)
{
    static char tail[3000];
    char *all = slurp(daemon_log);
    if (!all)
        return "(no daemon log)";
    size_t n = strlen(all);
    snprintf(tail, sizeof tail, "%s", n > sizeof tail - 1 ? all + n - (sizeof tail - 1) : all);
    free(all);
    return tail;
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/stakeout-daemon-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(recv_dir, sizeof recv_dir, "%s/received", root);
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", root);
    snprintf(app_log, sizeof app_log, "%s/app.log", root);
    snprintf(rules_path, sizeof rules_path, "%s/rules.yaml", root);
    snprintf(daemon_log, sizeof daemon_log, "%s/stakeout.log", root);
    cr_assert_eq(mkdir(recv_dir, 0700), 0);
    memset(&receiver, 0, sizeof receiver);
    memset(&daemon_proc, 0, sizeof daemon_proc);
    memset(&demo, 0, sizeof demo);
    memset(&demo2, 0, sizeof demo2);
    recv_port = http_port = 0;
    jailed = 0;
}

static void teardown(void)
{
    struct child *all[] = {&daemon_proc, &demo, &demo2, &receiver};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i]->pid > 0)
            child_stop(all[i]);
    }
    jail_stop(jailed);
    /* a daemon built with sanitizers reports into its log */
    char *log = slurp(daemon_log);
    bool sanitizer = log && (strstr(log, "AddressSanitizer") || strstr(log, "LeakSanitizer") ||
                             strstr(log, "runtime error:"));
    if (sanitizer)
        fprintf(stderr, "%s\n", log);
    free(log);
    rm_rf(root);
    cr_assert(!sanitizer, "the daemon's log has a sanitizer report (above)");
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 120);

/* ---- children ------------------------------------------------------------------ */

static void start_receiver(void)
{
    char *argv[] = {(char *)child_target("receiver"), "--port", "0", "--dir", recv_dir, NULL};
    cr_assert_eq(child_start(&receiver, argv), 0);
    char line[128];
    cr_assert_geq(child_readline(&receiver, line, sizeof line, 10000), 0,
                  "the receiver did not start");
    cr_assert_eq(sscanf(line, "listening %u", &recv_port), 1, "receiver said '%s'", line);
}

/* The demo service with its phases ("--normal", "2", "--hot", "5", ...,
 * NULL) at rate requests a second; returns its pid once it said "ready". */
static int start_demo_at(struct child *c, int rate, const char *const *phases)
{
    char *argv[24], ratebuf[16];
    int n = 0;
    snprintf(ratebuf, sizeof ratebuf, "%d", rate);
    argv[n++] = (char *)child_target("stakeout-demo");
    argv[n++] = "--log";
    argv[n++] = app_log;
    argv[n++] = "--rate";
    argv[n++] = ratebuf;
    for (size_t i = 0; phases[i] && n < 22; i++)
        argv[n++] = (char *)phases[i];
    argv[n] = NULL;
    cr_assert_eq(child_start(c, argv), 0);
    char line[128];
    int pid = 0;
    cr_assert_geq(child_readline(c, line, sizeof line, 10000), 0, "the demo did not start");
    cr_assert_eq(sscanf(line, "ready %d", &pid), 1, "demo said '%s'", line);
    return pid;
}

static int start_demo(const char *const *phases)
{
    return start_demo_at(&demo, 50, phases);
}

/* Wait for the demo to print "phase NAME". */
static void wait_phase(struct child *c, const char *name, int timeout_ms)
{
    char want[64], line[128];
    snprintf(want, sizeof want, "phase %s", name);
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        cr_assert_gt(left, 0, "the demo never reached phase %s", name);
        cr_assert_geq(child_readline(c, line, sizeof line, (int)left), 0,
                      "the demo never reached phase %s", name);
        if (strcmp(line, want) == 0)
            return;
    }
}

/* The rules file: targets_yaml under `targets:`, rules_yaml under
 * `rules:`, the receiver as webhook. Written to a temporary name, chmod and
 * chown, then renamed into place: the daemon never sees half a file, nor one
 * not yet as meant. */
static void write_config_to(const char *path, const char *targets_yaml, const char *rules_yaml,
                            unsigned budget, mode_t mode, uid_t owner, const char *spool)
{
    char tmp[600], yaml[8192];
    snprintf(yaml, sizeof yaml,
             "version: 1\n"
             "poll_interval: %dms\n"
             "history: 5m\n"
             "listen: 127.0.0.1:0\n"
             "capture_token: %s\n"
             "targets:\n%s"
             "rules:\n%s"
             "alert:\n"
             "  webhook: {url: 'http://127.0.0.1:%u/hook', format: json, timeout: 2s}\n"
             "  spool_dir: %s\n"
             "  max_captures_per_hour: %u\n",
             POLL_MS, TOKEN, targets_yaml, rules_yaml, recv_port, spool, budget);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(yaml, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(tmp, mode), 0);
    if (owner != geteuid())
        cr_assert_eq(chown(tmp, owner, (gid_t)-1), 0, "chown %u: %s", owner, strerror(errno));
    cr_assert_eq(rename(tmp, path), 0);
}

/* The same with the demo target, matched by its command line (which holds
 * this test's log path). */
static void write_rules_to(const char *path, const char *rules_yaml, unsigned budget, mode_t mode,
                           uid_t owner, const char *spool)
{
    char demo_target[1536];
    snprintf(demo_target, sizeof demo_target,
             "  - name: demo\n"
             "    match:\n"
             "      process: 'stakeout-demo --log %s '\n"
             "    labels: {service: stakeout-demo, env: test}\n"
             "    logs:\n"
             "      - path: %s\n"
             "        format: plain\n"
             "        error_pattern: '\\b(ERROR|FATAL|panic)\\b'\n",
             app_log, app_log);
    write_config_to(path, demo_target, rules_yaml, budget, mode, owner, spool);
}

static void write_rules(const char *rules_yaml, unsigned budget)
{
    write_rules_to(rules_path, rules_yaml, budget, 0600, geteuid(), spool_dir);
}

/* The rules of rules/demo.yaml with shorter timings; the leak rule asks for
 * a memory profile, as the demo's does. cpu-hot's threshold is half the
 * demo's: the machines here are shared, and a hot spot that wants a whole
 * core may get a third of one; the normal phase stays under 5%. */
static const char demo_rules[] = "  - name: cpu-hot\n"
                                 "    when: cpu > 30%\n"
                                 "    for: 2s\n"
                                 "    cooldown: 1m\n"
                                 "    severity: warning\n"
                                 "    capture: {profile: cpu, duration: 2s, rate: 99}\n"
                                 "    annotations: {summary: Demo is burning CPU}\n"
                                 "  - name: error-burst\n"
                                 "    when: errors > 30/min\n"
                                 "    window: 5s\n"
                                 "    cooldown: 1m\n"
                                 "    severity: warning\n"
                                 "    capture: {profile: cpu, duration: 1s}\n"
                                 "    annotations: {summary: Demo is logging errors}\n"
                                 "  - name: leak\n"
                                 "    when: rss_growth > 20MiB/min and rss > 40MiB\n"
                                 "    window: 4s\n"
                                 "    for: 1s\n"
                                 "    cooldown: 1m\n"
                                 "    severity: critical\n"
                                 "    capture: {profile: memory, duration: 2s}\n"
                                 "    annotations: {summary: Demo is leaking memory}\n";

static size_t count_in(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static size_t log_count(const char *needle)
{
    char *all = slurp(daemon_log);
    size_t n = count_in(all, needle);
    free(all);
    return n;
}

/* Wait until the daemon's log holds needle at least n times. */
static bool wait_log(const char *needle, size_t n, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (log_count(needle) >= n)
            return true;
        if (now_ms() > deadline)
            return false;
        pause_ms(50);
    }
}

/* stakeout run -c rules.yaml [extra], stderr appended to daemon_log. A
 * shell runs prefix (commands ending in "&& ", or "") and execs it, through
 * launcher when not "" (a command ending in a space that execs the rest in
 * the same process, as `unshare --cgroup ` does), so the child's pid is the
 * daemon's. */
static void spawn_daemon(const char *prefix, const char *launcher, const char *extra)
{
    char script[640];
    snprintf(script, sizeof script, "%sexec %s\"$0\" run -c \"$1\" %s 2>>\"$2\"", prefix,
             launcher, extra);
    char *argv[] = {"/bin/sh",  "-c",       script, (char *)spawn_stakeout_bin(),
                    rules_path, daemon_log, NULL};
    cr_assert_eq(child_start(&daemon_proc, argv), 0);
}

/* The port in the "listening" line (logfmt or JSON). */
static unsigned listening_port(void)
{
    char *all = slurp(daemon_log);
    unsigned port = 0;
    const char *p = all ? strstr(all, "listening") : NULL;
    const char *q = p ? strstr(p, "port") : NULL;
    while (q && *q && !isdigit((unsigned char)*q))
        q++;
    if (q && *q)
        port = (unsigned)strtoul(q, NULL, 10);
    free(all);
    return port;
}

/* Start the daemon and wait until it listens. */
static void start_daemon_with(const char *prefix, const char *launcher, const char *extra,
                              const char *listening_needle)
{
    spawn_daemon(prefix, launcher, extra);
    cr_assert(wait_log(listening_needle, 1, 20000), "the daemon did not start:\n%s", log_tail());
    http_port = listening_port();
    cr_assert_gt(http_port, 0, "no port in the listening line:\n%s", log_tail());
}

static void start_daemon(void)
{
    start_daemon_with("", "", "", "msg=listening");
}

/* Wait for the daemon to find pid of target (the "target found" line). */
static void wait_found_as(const char *target, int pid)
{
    char logfmt[128], json[128];
    snprintf(logfmt, sizeof logfmt, "msg=\"target found\" target=%s pid=%d ", target, pid);
    snprintf(json, sizeof json, "\"msg\":\"target found\",\"target\":\"%s\",\"pid\":\"%d\"",
             target, pid);
    long long deadline = now_ms() + 15000;
    while (log_count(logfmt) + log_count(json) == 0) {
        cr_assert_lt(now_ms(), deadline, "pid %d was never found:\n%s", pid, log_tail());
        pause_ms(50);
    }
}

static void wait_found(int pid)
{
    wait_found_as("demo", pid);
}

/* Wait for the child to exit, without reaping it (child_stop reaps and
 * returns the status). */
static bool wait_exit(struct child *c, int timeout_ms)
{
    int fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    cr_assert_geq(fd, 0, "pidfd_open: %s", strerror(errno));
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int r;
    do {
        r = poll(&pf, 1, timeout_ms);
    } while (r == -1 && errno == EINTR);
    close(fd);
    return r == 1;
}

/* ---- /proc of the target --------------------------------------------------------- */

/* A field of /proc/PID/status ("TracerPid", "State") into buf; false when gone. */
static bool proc_status(int pid, const char *field, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    char *all = slurp(path);
    bool ok = false;
    size_t flen = strlen(field);
    for (char *line = all; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            const char *v = line + flen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(buf, len, "%s", v);
            ok = true;
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(all);
    return ok;
}

static int tracer_of(int pid)
{
    char v[32];
    cr_assert(proc_status(pid, "TracerPid", v, sizeof v), "pid %d is gone", pid);
    return atoi(v);
}

/* utime + stime of pid in clock ticks. */
static long long cpu_ticks(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *all = slurp(path);
    cr_assert_not_null(all, "pid %d is gone", pid);
    const char *p = strrchr(all, ')');
    cr_assert_not_null(p);
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags, four fault counts, utime stime */
    int got = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
    free(all);
    cr_assert_eq(got, 2);
    return (long long)(ut + st);
}

/* The target is alive, untraced, not stopped, and its CPU time advances
 * (it burns CPU: the hot phase). */
static void assert_running_untraced(int pid)
{
    char state[32];
    cr_assert_eq(kill(pid, 0), 0, "the target %d is gone", pid);
    cr_assert_eq(tracer_of(pid), 0, "the target %d is still traced", pid);
    cr_assert(proc_status(pid, "State", state, sizeof state));
    cr_assert(state[0] != 't' && state[0] != 'T', "the target %d is stopped: %s", pid, state);
    long long before = cpu_ticks(pid), deadline = now_ms() + 5000;
    while (cpu_ticks(pid) < before + 5 && now_ms() < deadline)
        pause_ms(20);
    cr_assert_geq(cpu_ticks(pid), before + 5, "the target %d does not run", pid);
    cr_assert(proc_status(pid, "State", state, sizeof state));
    cr_assert(state[0] != 't' && state[0] != 'T', "the target %d is stopped: %s", pid, state);
}

/* ---- HTTP ---------------------------------------------------------------------------- */

struct http_result {
    int status;
    char *head; /* status line and headers, owned */
    char *body; /* owned */
};

static void http_result_fini(struct http_result *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}

/* One request to the daemon (HTTP/1.0: the answer ends at EOF). auth is
 * the whole Authorization value, or NULL. No assertion (threads use it):
 * returns 0, or a negative errno with what went wrong in res->head. */
static int http_fetch(const char *method, const char *path, const char *auth,
                      struct http_result *res)
{
    char *buf = NULL, req[1024];
    size_t len = 0, cap = 0;
    int rc = 0;
    memset(res, 0, sizeof *res);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
        rc = -errno;
        goto out;
    }
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s%s%s\r\n", method,
                     path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        rc = -EIO;
        goto out;
    }
    long long deadline = now_ms() + 10000;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            rc = -ETIMEDOUT;
            goto out;
        }
        if (poll(&pf, 1, left) <= 0)
            continue;
        if (len + 4097 > cap) {
            cap = (len + 4097) * 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        ssize_t got = read(fd, buf + len, 4096);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1) {
            rc = -errno;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    char *sep = buf ? (buf[len] = '\0', strstr(buf, "\r\n\r\n")) : NULL;
    if (!sep) {
        rc = -EPROTO;
        goto out;
    }
    *sep = '\0';
    res->head = strdup(buf);
    res->body = strdup(sep + 4);
    if (sscanf(res->head, "HTTP/1.%*d %d", &res->status) != 1)
        rc = -EPROTO;
out:
    if (fd != -1)
        close(fd);
    free(buf);
    return rc;
}

static void http_do(const char *method, const char *path, const char *auth, struct http_result *res)
{
    int rc = http_fetch(method, path, auth, res);
    cr_assert_eq(rc, 0, "%s %s: %s\n%s", method, path, strerror(-rc), log_tail());
}

/* A header's value (case-insensitive name) in static storage, or NULL. */
static const char *http_header(const struct http_result *r, const char *name)
{
    static char value[256];
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            snprintf(value, sizeof value, "%.*s", (int)k, v);
            return value;
        }
    }
    return NULL;
}

/* The value of the first sample line starting with series (name and labels,
 * as printed), NAN when there is none. */
static double metric_in(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return NAN;
}

static double metric(const char *series)
{
    struct http_result r;
    http_do("GET", "/metrics", NULL, &r);
    cr_assert_eq(r.status, 200);
    double v = metric_in(r.body, series);
    http_result_fini(&r);
    return v;
}

/* Wait until the daemon has polled n more times. */
static void wait_polls(int n)
{
    double start = metric("stakeout_polls_total");
    long long deadline = now_ms() + (long long)n * POLL_MS * 4 + 5000;
    while (metric("stakeout_polls_total") < start + n) {
        cr_assert_lt(now_ms(), deadline, "the daemon stopped polling:\n%s", log_tail());
        pause_ms(100);
    }
}

/* ---- what the receiver got ---------------------------------------------------------- */

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_head(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    return n > 5 && strcmp(de->d_name + n - 5, ".head") == 0;
}

/* Every alert the receiver got, in order, as a JSON array (new reference). */
static json_t *received(void)
{
    struct dirent **names = NULL;
    int n = scandir(recv_dir, &names, is_head, name_cmp);
    cr_assert_geq(n, 0);
    json_t *all = json_array();
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%.*s.body", recv_dir, (int)(strlen(names[i]->d_name) - 5),
                 names[i]->d_name);
        json_error_t e;
        json_t *b = json_load_file(path, 0, &e);
        cr_assert_not_null(b, "%s: %s", path, e.text);
        json_array_append_new(all, b);
        free(names[i]);
    }
    free(names);
    return all;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Does alert a match kind, rule name and state (NULL: any)? */
static bool alert_is(const json_t *a, const char *kind, const char *rule, const char *state)
{
    const char *r = jstr(json_object_get(a, "rule"), "name");
    return (!kind || (jstr(a, "kind") && strcmp(jstr(a, "kind"), kind) == 0)) &&
           (!rule || (r && strcmp(r, rule) == 0)) &&
           (!state || (jstr(a, "state") && strcmp(jstr(a, "state"), state) == 0));
}

static size_t count_alerts(const char *kind, const char *rule, const char *state)
{
    json_t *all = received();
    size_t i, n = 0;
    json_t *a;
    json_array_foreach (all, i, a) {
        n += alert_is(a, kind, rule, state);
    }
    json_decref(all);
    return n;
}

/* The first alert matching so far (new reference), or NULL. */
static json_t *first_alert(const char *kind, const char *rule, const char *state)
{
    json_t *all = received(), *a, *found = NULL;
    size_t i;
    json_array_foreach (all, i, a) {
        if (!found && alert_is(a, kind, rule, state))
            found = json_incref(a);
    }
    json_decref(all);
    return found;
}

/* The first alert matching, waiting up to timeout_ms (new reference). */
static json_t *wait_alert(const char *kind, const char *rule, const char *state, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        json_t *found = first_alert(kind, rule, state);
        if (found)
            return found;
        cr_assert_lt(now_ms(), deadline, "no %s alert of rule %s (%s) arrived:\n%s",
                     kind ? kind : "-", rule ? rule : "-", state ? state : "-", log_tail());
        pause_ms(100);
    }
}

static size_t nfiles(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Whether a name is among the first k entries of a profile summary list. */
/* A stack (an array of names, leaf first) holds a frame called name. */
static bool has_frame(const json_t *frames, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach (frames, i, e) {
        if (json_is_string(e) && strcmp(json_string_value(e), name) == 0)
            return true;
    }
    return false;
}

static bool in_top(const json_t *list, const char *name, size_t k)
{
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        if (i < k && strcmp(jstr(e, "name"), name) == 0)
            return true;
    }
    return false;
}

/* The inline attachments of a json-format alert decode to their size and
 * sha256; returns the decoded data of `name` (caller frees) or NULL. */
static char *check_attachments(const json_t *a, const char *name, size_t *len)
{
    char *want = NULL;
    size_t i;
    json_t *att;
    json_array_foreach (json_object_get(a, "attachments"), i, att) {
        cr_assert(json_is_true(json_object_get(att, "inline")), "%s not inline", jstr(att, "name"));
        cr_assert_str_eq(jstr(att, "encoding"), "base64");
        const char *b64 = jstr(att, "data");
        size_t n = strlen(b64);
        unsigned char *out = malloc(n / 4 * 3 + 4);
        int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
        cr_assert_geq(got, 0);
        size_t real = (size_t)got - (n >= 1 && b64[n - 1] == '=') - (n >= 2 && b64[n - 2] == '=');
        cr_assert_eq(real, (size_t)json_integer_value(json_object_get(att, "size")), "%s: size",
                     jstr(att, "name"));
        unsigned char md[32];
        unsigned mdlen = 0;
        EVP_Digest(out, real, md, &mdlen, EVP_sha256(), NULL);
        char hex[65];
        for (unsigned k = 0; k < mdlen; k++)
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        cr_assert_str_eq(hex, jstr(att, "sha256"), "%s: sha256", jstr(att, "name"));
        if (strcmp(jstr(att, "name"), name) == 0) {
            out[real] = '\0';
            want = (char *)out;
            *len = real;
        } else {
            free(out);
        }
    }
    return want;
}

/* What every alert of the demo target carries: schema, id (the spool has
 * it), the target's identity, labels, the metric history and the log. */
static void assert_context(const json_t *a, int pid)
{
    cr_assert_str_eq(jstr(a, "schema"), "stakeout.alert/v1");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/bundle.json", spool_dir, jstr(a, "id"));
    cr_assert_eq(access(path, R_OK), 0, "no %s", path);
    cr_assert_not_null(jstr(a, "created"));

    const json_t *t = json_object_get(a, "target");
    cr_assert_str_eq(jstr(t, "name"), "demo");
    cr_assert_eq(json_integer_value(json_object_get(t, "pid")), pid);
    cr_assert_str_eq(jstr(t, "comm"), "stakeout-demo");
    const char *exe = jstr(t, "exe");
    cr_assert(exe && strstr(exe, "/stakeout-demo"), "exe %s", exe ? exe : "null");
    const char *bid = jstr(t, "build_id");
    cr_assert(bid && strlen(bid) >= 16 && strspn(bid, "0123456789abcdef") == strlen(bid),
              "build_id %s", bid ? bid : "null");
    cr_assert(strstr(jstr(t, "cmdline"), app_log), "cmdline %s", jstr(t, "cmdline"));
    cr_assert_str_eq(jstr(json_object_get(t, "labels"), "service"), "stakeout-demo");
    cr_assert_not_null(jstr(t, "host"));

    const json_t *m = json_object_get(a, "metrics");
    cr_assert_gt(json_array_size(json_object_get(m, "before")), 0, "no history before");
    cr_assert(json_is_object(json_object_get(m, "detail")));

    const json_t *logs = json_object_get(a, "logs");
    cr_assert_eq(json_array_size(logs), 1);
    cr_assert_str_eq(jstr(json_array_get(logs, 0), "path"), app_log);
    cr_assert_gt(json_integer_value(json_object_get(json_array_get(logs, 0), "lines")), 0);
}

/* ---- the demo's anomalies -------------------------------------------------------------- */

Test(daemon, demo_anomalies_each_yield_one_alert_with_the_culprit, .timeout = 150)
{
    support_tracefs_require(); /* the leak's memory profile, by tracepoints */
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    /* 200 requests a second: the leak keeps 12.8 MiB a second */
    const char *phases[] = {"--normal", "2", "--hot", "5", "--errors", "4", "--leak", "6", NULL};
    int pid = start_demo_at(&demo, 200, phases);
    wait_found(pid);

    /* hot: one alert of cpu-hot, score_item on top of a full profile */
    json_t *hot = wait_alert("rule", "cpu-hot", "firing", 40000);
    assert_context(hot, pid);
    cr_assert_str_eq(jstr(hot, "severity"), "warning");
    cr_assert(strncmp(jstr(hot, "incident"), "cpu-hot/demo", 12) == 0, "%s", jstr(hot, "incident"));
    const json_t *rule = json_object_get(hot, "rule");
    cr_assert_str_eq(jstr(rule, "expression"), "cpu > 30%");
    cr_assert_str_eq(jstr(json_object_get(rule, "annotations"), "summary"), "Demo is burning CPU");
    const json_t *obs = json_array_get(json_object_get(rule, "observed"), 0);
    cr_assert_str_eq(jstr(obs, "metric"), "cpu");
    cr_assert_gt(json_number_value(json_object_get(obs, "value")), 30.0);
    cr_assert(json_is_true(json_object_get(obs, "holds")));
    const json_t *before = json_object_get(json_object_get(hot, "metrics"), "before");
    double last_cpu = json_number_value(
        json_object_get(json_array_get(before, json_array_size(before) - 1), "cpu"));
    cr_assert_gt(last_cpu, 30.0, "the history before does not show the hot spot");
    cr_assert_gt(json_array_size(json_object_get(json_object_get(hot, "metrics"), "during")), 0);
    cr_assert_gt(json_array_size(json_object_get(json_object_get(hot, "metrics"), "hot_threads")),
                 0);
    const json_t *prof = json_object_get(hot, "profile");
    cr_assert(json_is_object(prof), "no profile: %s", jstr(hot, "capture_skipped"));
    cr_assert_str_eq(jstr(prof, "type"), "cpu");
    cr_assert_eq(json_integer_value(json_object_get(prof, "pid")), pid);
    cr_assert_gt(json_integer_value(json_object_get(prof, "samples")), 20);
    cr_assert(json_is_false(json_object_get(prof, "aborted")));
    const json_t *sum = json_object_get(prof, "summary");
    const char *top = jstr(json_array_get(json_object_get(sum, "top_self"), 0), "name");
    cr_assert_str_eq(top, "score_item");
    cr_assert(in_top(json_object_get(sum, "top_total"), "score_recommendations", 10));
    size_t flen = 0;
    char *folded = check_attachments(hot, "profile.folded", &flen);
    cr_assert_not_null(folded, "no profile.folded attachment");
    cr_assert_not_null(strstr(folded, "recommend;score_recommendations;score_item"),
                       "the folded stacks miss the hot path");
    free(folded);
    cr_assert_eq(json_array_size(json_object_get(hot, "attachments")), 4);

    /* errors: one alert of error-burst; the culprit is in the log lines */
    json_t *err = wait_alert("rule", "error-burst", "firing", 30000);
    assert_context(err, pid);
    const json_t *elog = json_array_get(json_object_get(err, "logs"), 0);
    cr_assert_gt(json_integer_value(json_object_get(elog, "matched")), 0);
    const json_t *matches = json_object_get(elog, "matches");
    cr_assert_gt(json_array_size(matches), 0);
    size_t i;
    json_t *mt;
    json_array_foreach (matches, i, mt) {
        cr_assert(strstr(jstr(mt, "text"), "ERROR") &&
                      strstr(jstr(mt, "text"), "payment backend timeout"),
                  "not an error line: %s", jstr(mt, "text"));
        cr_assert(json_is_array(json_object_get(mt, "before")));
    }
    const json_t *eprof = json_object_get(err, "profile");
    cr_assert(json_is_object(eprof), "no profile: %s", jstr(err, "capture_skipped"));
    /* the process waits (on its "backend") rather than computes: mostly
     * idle samples, and the hot spot is over */
    cr_assert_gt(json_integer_value(json_object_get(eprof, "idle_samples")),
                 json_integer_value(json_object_get(eprof, "samples")));
    cr_assert(
        !in_top(json_object_get(json_object_get(eprof, "summary"), "top_self"), "score_item", 10));

    /* leak: one alert of leak, RSS growth in the observed values and the
     * history, and a memory profile whose heaviest stack runs through the
     * leaking function */
    json_t *leak = wait_alert("rule", "leak", "firing", 40000);
    assert_context(leak, pid);
    cr_assert_str_eq(jstr(leak, "severity"), "critical");
    const json_t *lobs = json_object_get(json_object_get(leak, "rule"), "observed");
    cr_assert_str_eq(jstr(json_array_get(lobs, 0), "metric"), "rss_growth");
    cr_assert_gt(json_number_value(json_object_get(json_array_get(lobs, 0), "value")),
                 20.0 * 1048576);
    const json_t *lb = json_object_get(json_object_get(leak, "metrics"), "before");
    double rss0 = json_number_value(json_object_get(json_array_get(lb, 0), "rss"));
    double rss1 =
        json_number_value(json_object_get(json_array_get(lb, json_array_size(lb) - 1), "rss"));
    cr_assert_gt(rss1, rss0 + 16.0 * 1048576, "the history does not show the growth");
    const json_t *lprof = json_object_get(leak, "profile");
    cr_assert(json_is_object(lprof), "no profile: %s", jstr(leak, "capture_skipped"));
    cr_assert_str_eq(jstr(lprof, "type"), "memory");
    const json_t *lsum = json_object_get(lprof, "summary");
    const json_t *top_stack = json_array_get(json_object_get(lsum, "top_stacks"), 0);
    cr_assert(has_frame(json_object_get(top_stack, "frames"), "cache_session"),
              "the heaviest stack does not run through cache_session");
    cr_assert_gt(json_number_value(json_object_get(top_stack, "share")), 0.8);
    const json_t *lmem = json_object_get(lsum, "memory");
    cr_assert_str_eq(jstr(lmem, "method"), "tracepoint");
    cr_assert_gt(json_integer_value(json_object_get(lmem, "bytes_net")), 1 << 20);

    /* exactly one firing alert per anomaly: cpu-hot has resolved since,
     * the others are in their cooldown, and the log agrees */
    json_decref(wait_alert("rule", "cpu-hot", "resolved", 20000));
    wait_phase(&demo, "steady", 20000);
    wait_polls(4);
    cr_assert_eq(count_alerts("rule", "cpu-hot", "firing"), 1);
    cr_assert_eq(count_alerts("rule", "error-burst", "firing"), 1);
    cr_assert_eq(count_alerts("rule", "leak", "firing"), 1);
    cr_assert_eq(count_alerts(NULL, NULL, NULL) - count_alerts("rule", NULL, NULL), 0);
    cr_assert_eq(log_count("msg=\"rule firing\" rule=cpu-hot"), 1);
    cr_assert_eq(log_count("msg=\"rule firing\" rule=error-burst"), 1);
    cr_assert_eq(log_count("msg=\"rule firing\" rule=leak"), 1);
    json_decref(hot);
    json_decref(err);
    json_decref(leak);
}

/* Scheduled captures of both kinds are each the baseline of their kind: a
 * CPU anomaly is compared with the CPU baseline and a leak with the memory
 * one. (One baseline per target let the later of the two replace the
 * other: one of the two alerts had no diff.) */
Test(daemon, cpu_and_memory_baselines_are_kept_apart, .timeout = 120)
{
    support_tracefs_require();
    start_receiver();
    write_rules("  - name: cpu-baseline\n"
                "    every: 20s\n"
                "    capture: {profile: cpu, duration: 1s}\n"
                "  - name: memory-baseline\n"
                "    every: 20s\n"
                "    capture: {profile: memory, duration: 1s}\n"
                "  - name: cpu-hot\n"
                "    when: cpu > 30%\n"
                "    for: 2s\n"
                "    cooldown: 1m\n"
                "    capture: {profile: cpu, duration: 1s}\n"
                "  - name: leak\n"
                "    when: rss_growth > 20MiB/min and rss > 40MiB\n"
                "    window: 4s\n"
                "    for: 1s\n"
                "    cooldown: 1m\n"
                "    capture: {profile: memory, duration: 1s}\n",
                60);
    start_daemon();
    const char *phases[] = {"--normal", "8", "--hot", "6", "--leak", "8", NULL};
    int pid = start_demo_at(&demo, 200, phases);
    wait_found(pid);
    /* the first scheduled captures come within a tenth of their period,
     * one after the other, before the normal phase ends */
    cr_assert(wait_log("rule=cpu-baseline", 1, 10000), "no CPU baseline:\n%s", log_tail());
    cr_assert(wait_log("rule=memory-baseline", 1, 10000), "no memory baseline:\n%s", log_tail());
    cr_assert(wait_log("msg=\"alert written\"", 2, 10000), "baselines not written:\n%s",
              log_tail());
    cr_assert_eq(log_count("rule firing"), 0, "the baselines came too late:\n%s", log_tail());
    wait_phase(&demo, "hot", 20000);

    json_t *hot = wait_alert("rule", "cpu-hot", "firing", 30000);
    json_t *leak = wait_alert("rule", "leak", "firing", 40000);
    cr_assert_str_eq(jstr(json_object_get(hot, "profile"), "type"), "cpu");
    cr_assert_str_eq(jstr(json_object_get(leak, "profile"), "type"), "memory");
    cr_assert(json_is_object(json_object_get(hot, "baseline_diff")),
              "the CPU alert has no baseline diff:\n%s", log_tail());
    cr_assert(json_is_object(json_object_get(leak, "baseline_diff")),
              "the memory alert has no baseline diff");
    json_decref(hot);
    json_decref(leak);
}

Test(daemon, normal_phase_yields_no_alert)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    const char *phases[] = {"--normal", "600", NULL};
    int pid = start_demo_at(&demo, 200, phases);
    wait_found(pid);
    wait_polls(12); /* six seconds: three times the longest `for` and `window` */

    cr_assert_eq(nfiles(recv_dir), 0, "the receiver got something:\n%s", log_tail());
    cr_assert_eq(nfiles(spool_dir), 0);
    cr_assert_eq(log_count("rule firing"), 0);
    cr_assert_eq(metric("stakeout_captures_total"), 0);
    struct http_result r;
    http_do("GET", "/rules", NULL, &r);
    cr_assert_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j, "/rules is not JSON: %s", r.body);
    size_t i, k, nstates = 0;
    json_t *rl, *st;
    json_array_foreach (json_object_get(j, "rules"), i, rl) {
        json_array_foreach (json_object_get(rl, "states"), k, st) {
            cr_assert_str_eq(jstr(st, "state"), "inactive", "%s is %s", jstr(rl, "name"),
                             jstr(st, "state"));
            nstates++;
        }
    }
    cr_assert_eq(nstates, 3);
    json_decref(j);
    http_result_fini(&r);
}

/* ---- reloads ------------------------------------------------------------------------------ */

Test(daemon, sighup_with_broken_file_keeps_old_rules)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    wait_polls(1);

    /* a rule renamed, and a mistake: the whole file is refused */
    write_rules("  - name: renamed-cpu-hot\n"
                "    when: cpu >> 60%\n"
                "    capture: {profile: cpu, duration: 1s}\n",
                60);
    cr_assert(wait_log("reload rejected", 1, 10000), "the edit was not noticed:\n%s", log_tail());
    cr_assert_eq(kill(daemon_proc.pid, SIGHUP), 0);
    cr_assert(wait_log("msg=\"SIGHUP: reloading\"", 1, 10000), "%s", log_tail());
    cr_assert(wait_log("reload rejected", 2, 10000), "%s", log_tail());
    cr_assert_eq(kill(daemon_proc.pid, 0), 0, "SIGHUP killed the daemon");
    cr_assert_eq(metric("stakeout_config_last_reload_successful"), 0);
    cr_assert_geq(metric("stakeout_config_reload_failures_total"), 2);

    /* the old rules still run: cpu-hot fires on the hot spot */
    const char *phases[] = {"--normal", "1", "--hot", "30", NULL};
    int pid = start_demo(phases);
    json_t *a = wait_alert("rule", NULL, "firing", 40000);
    cr_assert_str_eq(jstr(json_object_get(a, "rule"), "name"), "cpu-hot");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(a, "target"), "pid")), pid);
    json_decref(a);
    cr_assert_eq(log_count("rules reloaded"), 0);
}

/* A reload whose spool cannot be opened (a spool_dir that cannot be
 * created; one another stakeout holds) is rejected before anything
 * changes: the old rules and the old spool go on, and the next alert lands
 * there. It used to be taken, with no spool at all: the next alert crashed
 * the daemon (a NULL spool). */
Test(daemon, reload_to_an_unusable_spool_is_rejected_and_alerts_go_on, .timeout = 90)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    wait_polls(1);

    char blocker[600], under_file[700], locked[600];
    snprintf(blocker, sizeof blocker, "%s/not-a-dir", root);
    snprintf(under_file, sizeof under_file, "%s/spool", blocker);
    snprintf(locked, sizeof locked, "%s/locked-spool", root);
    FILE *f = fopen(blocker, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(mkdir(locked, 0700), 0);
    int lockfd = open(locked, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(lockfd, 0);
    cr_assert_eq(flock(lockfd, LOCK_EX | LOCK_NB), 0, "as another stakeout would");

    /* each file is seen once when renamed into place, and again at SIGHUP */
    const char *bad[] = {under_file, locked};
    for (size_t i = 0; i < 2; i++) {
        write_rules_to(rules_path, demo_rules, 60, 0600, geteuid(), bad[i]);
        cr_assert(wait_log("reload rejected", 2 * i + 1, 10000), "%s", log_tail());
        cr_assert_eq(kill(daemon_proc.pid, SIGHUP), 0);
        cr_assert(wait_log("reload rejected", 2 * i + 2, 10000), "%s", log_tail());
        cr_assert_not_null(strstr(log_tail(), bad[i]), "the log does not name the spool:\n%s",
                           log_tail());
        cr_assert_eq(kill(daemon_proc.pid, 0), 0, "the reload killed the daemon");
        cr_assert_eq(metric("stakeout_config_last_reload_successful"), 0);
    }
    cr_assert_eq(log_count("rules reloaded"), 0);

    const char *phases[] = {"--normal", "1", "--hot", "30", NULL};
    int pid = start_demo(phases);
    json_t *a = wait_alert("rule", "cpu-hot", "firing", 40000);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(a, "target"), "pid")), pid);
    json_decref(a);
    cr_assert_eq(kill(daemon_proc.pid, 0), 0, "the alert killed the daemon");
    cr_assert_geq(nfiles(spool_dir), 1, "the alert is not in the old spool");
    cr_assert_eq(nfiles(locked), 0);

    /* freed, the directory is taken; the old one is let go */
    close(lockfd);
    write_rules_to(rules_path, demo_rules, 60, 0600, geteuid(), locked);
    cr_assert(wait_log("msg=\"rules reloaded\"", 1, 10000), "%s", log_tail());
    cr_assert_eq(metric("stakeout_config_last_reload_successful"), 1);
    int oldfd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(oldfd, 0);
    cr_expect_eq(flock(oldfd, LOCK_EX | LOCK_NB), 0, "the old spool is still held");
    close(oldfd);
}

Test(daemon, rules_file_renamed_over_is_loaded_without_sighup)
{
    start_receiver();
    /* at first a rule the hot spot does not trip */
    write_rules("  - name: many-threads\n"
                "    when: threads > 1000\n"
                "    capture: {profile: cpu, duration: 1s}\n",
                60);
    start_daemon();
    const char *phases[] = {"--normal", "0.5", "--hot", "60", NULL};
    int pid = start_demo(phases);
    wait_found(pid);
    wait_phase(&demo, "hot", 10000);
    wait_polls(6);
    cr_assert_eq(nfiles(recv_dir), 0);

    write_rules(demo_rules, 60); /* a new file renamed over the old one */
    cr_assert(wait_log("msg=\"rules reloaded\"", 1, 10000), "%s", log_tail());
    cr_assert_eq(log_count("SIGHUP"), 0);
    struct http_result r;
    http_do("GET", "/rules", NULL, &r);
    cr_assert_not_null(strstr(r.body, "\"cpu-hot\""), "%s", r.body);
    cr_assert_null(strstr(r.body, "many-threads"), "%s", r.body);
    http_result_fini(&r);
    cr_assert_eq(metric("stakeout_config_last_reload_successful"), 1);

    json_t *a = wait_alert("rule", "cpu-hot", "firing", 30000);
    const json_t *top = json_array_get(
        json_object_get(json_object_get(json_object_get(a, "profile"), "summary"), "top_self"), 0);
    cr_assert_str_eq(jstr(top, "name"), "score_item");
    json_decref(a);
    cr_assert_eq(count_alerts("rule", "many-threads", NULL), 0);
}

/* A reload checks who could have written the file on the descriptor it
 * reads: a valid file that another user owns is refused and the old rules
 * keep running; the same file, once root's, is loaded on SIGHUP. */
Test(daemon, reload_of_a_file_another_user_owns_is_refused_until_chowned)
{
    if (geteuid() != 0) {
        cr_assert_null(getenv("CI"), "changing a file's owner needs root");
        cr_skip_test("changing a file's owner needs root");
    }
    start_receiver();
    write_rules("  - name: many-threads\n"
                "    when: threads > 1000\n"
                "    capture: {profile: cpu, duration: 1s}\n",
                60);
    start_daemon();
    wait_polls(1);

    /* readable (the daemon has given up CAP_DAC_OVERRIDE by now), renamed
     * over the old file: a reload */
    write_rules_to(rules_path, demo_rules, 60, 0644, 65534, spool_dir);
    cr_assert(wait_log("reload rejected", 1, 10000), "%s", log_tail());
    cr_assert_eq(log_count("the rules file is owned by uid 65534"), 1, "%s", log_tail());
    cr_assert_eq(metric("stakeout_config_last_reload_successful"), 0);
    struct http_result r;
    http_do("GET", "/rules", NULL, &r);
    cr_assert_not_null(strstr(r.body, "\"many-threads\""), "%s", r.body);
    cr_assert_null(strstr(r.body, "cpu-hot"), "%s", r.body);
    http_result_fini(&r);

    cr_assert_eq(chown(rules_path, 0, 0), 0);
    cr_assert_eq(kill(daemon_proc.pid, SIGHUP), 0);
    cr_assert(wait_log("msg=\"rules reloaded\"", 1, 10000), "%s", log_tail());
    http_do("GET", "/rules", NULL, &r);
    cr_assert_not_null(strstr(r.body, "\"cpu-hot\""), "%s", r.body);
    http_result_fini(&r);
    cr_assert_eq(metric("stakeout_config_last_reload_successful"), 1);
}

/* A reload that changes a rule while it fires ends its incident: the
 * receiver gets a resolved alert under the firing alert's incident key, and
 * the changed rule, whose condition still holds, opens a new one. */
Test(daemon, reload_changing_a_firing_rule_resolves_its_incident, .timeout = 90)
{
    static const char hot[] = "  - name: cpu-hot\n"
                              "    when: cpu > 30%\n"
                              "    for: 1s\n"
                              "    cooldown: 1m\n"
                              "    capture: {profile: cpu, duration: 1s, rate: 49}\n";
    static const char changed[] = "  - name: cpu-hot\n"
                                  "    when: cpu > 25%\n"
                                  "    for: 1s\n"
                                  "    cooldown: 1m\n"
                                  "    capture: {profile: cpu, duration: 1s, rate: 49}\n";
    start_receiver();
    write_rules(hot, 60);
    start_daemon();
    const char *phases[] = {"--normal", "0.5", "--hot", "60", NULL};
    start_demo(phases);
    json_t *first = wait_alert("rule", "cpu-hot", "firing", 30000);
    char incident[256];
    snprintf(incident, sizeof incident, "%s", jstr(first, "incident"));
    json_decref(first);
    cr_assert_eq(count_alerts("rule", "cpu-hot", "resolved"), 0);

    write_rules(changed, 60);
    cr_assert(wait_log("msg=\"rules reloaded\"", 1, 10000), "%s", log_tail());
    json_t *res = wait_alert("rule", "cpu-hot", "resolved", 15000);
    cr_assert_str_eq(jstr(res, "incident"), incident, "resolved under its own incident key");
    json_decref(res);

    long long deadline = now_ms() + 30000;
    while (count_alerts("rule", "cpu-hot", "firing") < 2 && now_ms() < deadline)
        pause_ms(200);
    json_t *all = received(), *a;
    size_t i, firing = 0;
    json_array_foreach (all, i, a) {
        if (alert_is(a, "rule", "cpu-hot", "firing") && ++firing == 2)
            cr_assert_str_neq(jstr(a, "incident"), incident, "the changed rule: a new incident");
    }
    json_decref(all);
    cr_assert_eq(firing, 2, "%s", log_tail());
}

/* A reload lands while the capture of a firing rule runs and renames that
 * rule (cpu-hot becomes cpu-busy, moved after another). The incident of
 * cpu-hot is resolved under its key; the capture, collected after the
 * reload, still goes out, as an alert of a rule that no longer exists
 * (rule null), never as the alert of whatever rule took its index. */
Test(daemon, reload_during_a_capture_never_mislabels_its_alert, .timeout = 90)
{
    static const char before[] = "  - name: cpu-hot\n"
                                 "    when: cpu > 30%\n"
                                 "    for: 1s\n"
                                 "    capture: {profile: cpu, duration: 4s, rate: 49}\n"
                                 "  - name: many-fds\n"
                                 "    when: fds > 100000\n";
    static const char after[] = "  - name: many-fds\n"
                                "    when: fds > 100000\n"
                                "  - name: cpu-busy\n"
                                "    when: cpu > 1000%\n";
    start_receiver();
    write_rules(before, 60);
    start_daemon();
    const char *phases[] = {"--normal", "0", "--hot", "60", NULL};
    int pid = start_demo(phases);
    cr_assert(wait_log("msg=\"rule firing\" rule=cpu-hot", 1, 20000), "%s", log_tail());
    long long deadline = now_ms() + 10000;
    while (tracer_of(pid) == 0) {
        cr_assert_lt(now_ms(), deadline, "the capture never attached:\n%s", log_tail());
        pause_ms(20);
    }
    write_rules(after, 60);
    cr_assert(wait_log("msg=\"rules reloaded\"", 1, 10000), "%s", log_tail());
    cr_assert(wait_log("msg=\"capture done\"", 1, 15000), "%s", log_tail());

    json_t *res = wait_alert("rule", "cpu-hot", "resolved", 15000);
    json_decref(res);
    json_t *all = NULL, *a;
    size_t i, firing = 0;
    deadline = now_ms() + 15000;
    while (firing == 0 && now_ms() < deadline) {
        json_decref(all);
        all = received();
        json_array_foreach (all, i, a) {
            if (alert_is(a, "rule", NULL, "firing") && json_is_object(json_object_get(a, "profile")))
                firing++;
        }
        if (firing == 0)
            pause_ms(200);
    }
    cr_assert_eq(firing, 1, "the capture's alert never came:\n%s", log_tail());
    json_array_foreach (all, i, a) {
        if (!alert_is(a, "rule", NULL, "firing") || !json_is_object(json_object_get(a, "profile")))
            continue;
        const json_t *rule = json_object_get(a, "rule");
        cr_assert(json_is_null(rule) || strcmp(jstr(rule, "name"), "cpu-hot") == 0,
                  "the capture's alert names rule %s", jstr(rule, "name"));
    }
    json_decref(all);
    cr_assert_eq(count_alerts("rule", "many-fds", NULL), 0);
    cr_assert_eq(count_alerts("rule", "cpu-busy", NULL), 0);
    assert_running_untraced(pid);
}

Test(daemon, rules_file_writable_by_others_is_refused_at_start)
{
    /* no receiver: the daemon must not get that far */
    recv_port = 9;
    static const struct {
        mode_t mode;
        const char *who;
    } cases[] = {{0646, "other users"}, {0620, "its group"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_rules_to(rules_path, demo_rules, 60, cases[i].mode, geteuid(), spool_dir);
        char *argv[] = {(char *)spawn_stakeout_bin(), "run", "-c", rules_path, NULL};
        struct spawn_result res;
        cr_assert_eq(spawn_capture(argv, NULL, 20000, &res), 0);
        cr_assert(!res.timed_out, "the daemon started with a %o rules file", cases[i].mode);
        cr_assert_eq(res.status, 1, "exit %d:\n%s", res.status, res.err);
        cr_assert_not_null(strstr(res.err, "refusing to start"), "%s", res.err);
        cr_assert_not_null(strstr(res.err, rules_path), "%s", res.err);
        char want[64];
        snprintf(want, sizeof want, "writable by %s", cases[i].who);
        cr_assert_not_null(strstr(res.err, want), "%s", res.err);
        cr_assert_not_null(strstr(res.err, "chmod go-w"), "%s", res.err);
        cr_assert_eq(nfiles(spool_dir), 0);
        spawn_result_fini(&res);
    }
}

/* ---- log format -------------------------------------------------------------------------- */

/* One logfmt line: key=value pairs, values bare or quoted with escapes;
 * ts, level and msg first. Returns false with the reason in why. */
static bool logfmt_line_ok(const char *line, char *why, size_t len)
{
    const char *p = line;
    int npairs = 0;
    static const char *const first[] = {"ts", "level", "msg"};
    while (*p) {
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '"')
            p++;
        if (p == k || *p != '=') {
            snprintf(why, len, "no key=value at column %d", (int)(k - line));
            return false;
        }
        if (npairs < 3 && ((size_t)(p - k) != strlen(first[npairs]) ||
                           strncmp(k, first[npairs], (size_t)(p - k)) != 0)) {
            snprintf(why, len, "pair %d is not %s", npairs, first[npairs]);
            return false;
        }
        p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                    if (*p != '"' && *p != '\\' && *p != 'n' && *p != 'x') {
                        snprintf(why, len, "bad escape at column %d", (int)(p - line));
                        return false;
                    }
                } else if ((unsigned char)*p < 0x20) {
                    snprintf(why, len, "control character at column %d", (int)(p - line));
                    return false;
                }
            }
            if (*p != '"') {
                snprintf(why, len, "unterminated quote");
                return false;
            }
            p++;
        } else {
            const char *v = p;
            while (*p && *p != ' ') {
                if (*p == '=' || *p == '"') {
                    snprintf(why, len, "unquoted '%c' in a value at column %d", *p,
                             (int)(p - line));
                    return false;
                }
                p++;
            }
            if (p == v) {
                snprintf(why, len, "empty unquoted value");
                return false;
            }
        }
        npairs++;
        if (*p == ' ')
            p++;
        else if (*p) {
            snprintf(why, len, "no space after a value at column %d", (int)(p - line));
            return false;
        }
    }
    if (npairs < 3) {
        snprintf(why, len, "fewer than ts, level, msg");
        return false;
    }
    return true;
}

static bool ts_ok(const char *ts)
{
    int y, mo, d, h, mi, s, ms;
    char z;
    return ts && strlen(ts) == 24 &&
           sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) == 8 &&
           z == 'Z';
}

/* Run the daemon through a start, a found target and a stop. */
static void run_daemon_briefly(const char *extra, const char *listening)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon_with("", "", extra, listening);
    const char *phases[] = {"--normal", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);
    cr_assert_eq(kill(daemon_proc.pid, SIGTERM), 0);
    cr_assert(wait_exit(&daemon_proc, 10000), "no exit after SIGTERM");
    int st = child_stop(&daemon_proc);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
}

Test(daemon, log_lines_are_logfmt_by_default)
{
    run_daemon_briefly("", "msg=listening");
    char *all = slurp(daemon_log);
    cr_assert_not_null(all);
    size_t nlines = 0;
    for (char *save = NULL, *line = strtok_r(all, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char why[128] = "";
        cr_assert(logfmt_line_ok(line, why, sizeof why), "not logfmt (%s): %s", why, line);
        char ts[32];
        snprintf(ts, sizeof ts, "%.24s", line + 3);
        cr_assert(ts_ok(ts) && line[27] == ' ', "bad ts: %s", line);
        nlines++;
    }
    cr_assert_geq(nlines, 5); /* starting, listening, target found, stopping, stopped */
    free(all);
    cr_assert_eq(log_count("msg=\"target found\" target=demo"), 1);
    cr_assert_eq(log_count("level=info msg=stopped"), 1);
}

Test(daemon, log_lines_are_json_with_log_format_json)
{
    run_daemon_briefly("--log-format json", "\"msg\":\"listening\"");
    char *all = slurp(daemon_log);
    cr_assert_not_null(all);
    size_t nlines = 0;
    bool found = false, stopped = false;
    for (char *save = NULL, *line = strtok_r(all, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        cr_assert_not_null(o, "not JSON (%s): %s", e.text, line);
        cr_assert(json_is_object(o), "not an object: %s", line);
        cr_assert(ts_ok(jstr(o, "ts")), "bad ts: %s", line);
        const char *lv = jstr(o, "level");
        cr_assert(lv && (strcmp(lv, "debug") == 0 || strcmp(lv, "info") == 0 ||
                         strcmp(lv, "warn") == 0 || strcmp(lv, "error") == 0),
                  "bad level: %s", line);
        cr_assert_not_null(jstr(o, "msg"), "no msg: %s", line);
        const char *k;
        json_t *v;
        json_object_foreach (o, k, v) {
            cr_assert(json_is_string(v), "%s is not a string: %s", k, line);
        }
        found |= strcmp(jstr(o, "msg"), "target found") == 0 && jstr(o, "pid") &&
                 strcmp(jstr(o, "target"), "demo") == 0;
        stopped |= strcmp(jstr(o, "msg"), "stopped") == 0;
        json_decref(o);
        nlines++;
    }
    cr_assert_geq(nlines, 5);
    cr_assert(found, "no target found line");
    cr_assert(stopped, "no stopped line");
    free(all);
}

/* ---- restarts and signals ---------------------------------------------------------------- */

Test(daemon, target_restart_yields_one_restarted_alert_with_history)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    const char *phases[] = {"--normal", "600", NULL};
    int old_pid = start_demo(phases);
    wait_found(old_pid);
    wait_polls(6); /* a history to lose */

    child_stop(&demo);
    cr_assert(wait_log("msg=\"target exited\"", 1, 10000), "%s", log_tail());
    int new_pid = start_demo(phases);
    cr_assert(wait_log("msg=\"target restarted\"", 1, 15000), "%s", log_tail());

    json_t *a = wait_alert("restarted", NULL, NULL, 15000);
    cr_assert_str_eq(jstr(a, "state"), "firing");
    cr_assert_str_eq(jstr(a, "severity"), "warning");
    cr_assert(json_is_null(json_object_get(a, "rule")));
    char incident[64];
    snprintf(incident, sizeof incident, "restart/demo:%d", old_pid);
    cr_assert_str_eq(jstr(a, "incident"), incident);
    assert_context(a, new_pid);
    const json_t *t = json_object_get(a, "target");
    cr_assert_eq(json_integer_value(json_object_get(t, "restarts")), 1);
    const json_t *rs = json_object_get(t, "restart");
    cr_assert(json_is_object(rs));
    cr_assert_eq(json_integer_value(json_object_get(rs, "old_pid")), old_pid);
    cr_assert_eq(json_integer_value(json_object_get(rs, "new_pid")), new_pid);
    cr_assert_not_null(jstr(rs, "reason"));
    const char *died = jstr(rs, "died_at");
    cr_assert(ts_ok(died), "died_at %s", died ? died : "null");
    cr_assert_str_eq(jstr(rs, "old_comm"), "stakeout-demo");
    cr_assert(json_is_false(json_object_get(rs, "binary_changed")));
    /* the history before the death: several polls, all before it */
    const json_t *before = json_object_get(json_object_get(a, "metrics"), "before");
    cr_assert_geq(json_array_size(before), 5);
    size_t i;
    json_t *s;
    json_array_foreach (before, i, s) {
        cr_assert_leq(strcmp(jstr(s, "t"), died), 0, "sample at %s after the death at %s",
                      jstr(s, "t"), died);
        cr_assert(json_is_number(json_object_get(s, "rss")));
    }
    json_decref(a);

    wait_polls(6);
    cr_assert_eq(count_alerts("restarted", NULL, NULL), 1);
    cr_assert_eq(count_alerts(NULL, NULL, NULL), 1);
    cr_assert_eq(metric("stakeout_target_restarts_total{target=\"demo\"}"), 1);
}

/* ---- a target in a pod: its cgroup seen only through its own root -------------------------- */

/* The cgroups of the pod test, under one of the test's own: the daemon's,
 * where its cgroup namespace is rooted as a sidecar container's is, and the
 * app's beside it, memory-limited. From the daemon the app's cgroup is
 * "/../app", outside its view; only the app's own /sys/fs/cgroup[/memory]
 * shows it, where its cgroup is bind-mounted in a mount namespace of its
 * own, as a container runtime does. */
static char pod_dir[192], pod_daemon[256], pod_app[256];
static struct child app;

#define POD_LIMIT "50331648" /* 48 MiB */

static void pod_fini(void)
{
    /* the processes first: a cgroup that holds one cannot be removed */
    if (daemon_proc.pid > 0)
        child_stop(&daemon_proc);
    if (app.pid > 0)
        child_stop(&app);
    const char *dirs[] = {pod_app, pod_daemon, pod_dir};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (dirs[i][0])
            cgroup_remove(dirs[i]);
    }
}

/* The allocator as the pod's app, tagged tag: a shell joins pod_app,
 * unshare makes the mount namespace, a second shell mounts pod_app over the
 * cgroup hierarchy, each execs the next, so the child's pid is the
 * allocator's. Returns it once the allocator said "ready". */
static int start_app_in_pod(bool v2, const char *tag)
{
    const char *script = "echo $$ > \"$0/cgroup.procs\" && "
                         "exec unshare --mount --propagation private /bin/sh -c "
                         "'mount --bind \"$0\" \"$1\" && exec \"$2\" --tag \"$3\"' "
                         "\"$0\" \"$1\" \"$2\" \"$3\"";
    char *argv[] = {"/bin/sh",
                    "-c",
                    (char *)script,
                    pod_app,
                    v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory",
                    (char *)child_target("allocator"),
                    (char *)tag,
                    NULL};
    cr_assert_eq(child_start(&app, argv), 0);
    char line[128];
    int pid = 0;
    cr_assert_geq(child_readline(&app, line, sizeof line, 10000), 0, "the app did not start");
    cr_assert_eq(sscanf(line, "ready %d", &pid), 1, "the app said '%s'", line);
    cr_assert_eq(pid, app.pid);
    return pid;
}

/* The app of a pod is OOM-killed and comes back: by the time the daemon
 * sees it gone, /proc/PID/root is gone too, yet the restart alert names
 * the OOM kill and carries the cgroup's counters after it. */
Test(daemon, oom_kill_in_a_pod_is_the_restart_reason_through_the_target_root, .timeout = 120,
     .fini = pod_fini)
{
    bool v2 = cgroup_make("memory", pod_dir, sizeof pod_dir);
    if (v2)
        cgroup_set(pod_dir, "cgroup.subtree_control", "+memory");
    snprintf(pod_daemon, sizeof pod_daemon, "%s/daemon", pod_dir);
    snprintf(pod_app, sizeof pod_app, "%s/app", pod_dir);
    cr_assert_eq(mkdir(pod_daemon, 0755), 0, "%s: %s", pod_daemon, strerror(errno));
    cr_assert_eq(mkdir(pod_app, 0755), 0, "%s: %s", pod_app, strerror(errno));
    cgroup_set(pod_app, v2 ? "memory.max" : "memory.limit_in_bytes", POD_LIMIT);
    /* killed, not swapped out, where there is swap */
    char swap[320];
    snprintf(swap, sizeof swap, "%s/%s", pod_app,
             v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes");
    if (access(swap, W_OK) == 0)
        cgroup_set(pod_app, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes",
                   v2 ? "0" : POD_LIMIT);

    start_receiver();
    char tag[64], target[256], prefix[320];
    snprintf(tag, sizeof tag, "pod-%d-%lld", (int)getpid(), now_ms());
    snprintf(target, sizeof target,
             "  - name: app\n"
             "    match:\n"
             "      process: 'allocator --tag %s$'\n",
             tag);
    write_config_to(rules_path, target,
                    "  - name: cpu-hot\n"
                    "    when: cpu > 95%\n"
                    "    for: 10m\n",
                    60, 0600, geteuid(), spool_dir);
    snprintf(prefix, sizeof prefix, "echo $$ > %s/cgroup.procs && ", pod_daemon);
    start_daemon_with(prefix, "unshare --cgroup ", "", "msg=listening");

    int old_pid = start_app_in_pod(v2, tag);
    wait_found_as("app", old_pid);
    wait_polls(4); /* a history, and the cgroup read while the app lives */

    cr_assert(child_send(&app, "grow 200\n"));
    char line[128];
    cr_assert_lt(child_readline(&app, line, sizeof line, 30000), 0, "the app survived: %s", line);
    int st = child_stop(&app); /* reaped: its /proc entry goes */
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the app was not killed (status %#x)",
              st);
    cr_assert_geq(cgroup_value(pod_app, v2 ? "memory.events" : "memory.oom_control", "oom_kill"),
                  1, "the kernel counted no OOM kill");
    cr_assert(wait_log("msg=\"target exited\"", 1, 10000), "%s", log_tail());
    int new_pid = start_app_in_pod(v2, tag);

    json_t *a = wait_alert("restarted", NULL, NULL, 15000);
    const json_t *t = json_object_get(a, "target");
    /* the premise: outside the daemon's view, so read through the app's root */
    cr_assert_str_eq(jstr(t, "cgroup"), "/../app");
    const json_t *rs = json_object_get(t, "restart");
    cr_assert_eq(json_integer_value(json_object_get(rs, "old_pid")), old_pid);
    cr_assert_eq(json_integer_value(json_object_get(rs, "new_pid")), new_pid);
    cr_assert_str_eq(jstr(rs, "reason"), "oom-killed", "reason %s:\n%s", jstr(rs, "reason"),
                     log_tail());
    const json_t *ev = json_object_get(rs, "memory_events");
    cr_assert(json_is_object(ev), "no memory_events in the restart");
    cr_assert_geq(json_integer_value(json_object_get(ev, "oom_kill")), 1);
    const json_t *cg = json_object_get(json_object_get(json_object_get(a, "metrics"), "detail"),
                                       "cgroup");
    cr_assert_eq(json_integer_value(json_object_get(cg, "limit")), strtoll(POD_LIMIT, NULL, 10),
                 "the app's limit, read through its root");
    json_decref(a);
    /* the old app's OOM kill is not taken for one of the new app's */
    wait_polls(2);
    char event[64];
    snprintf(event, sizeof event, "msg=\"cgroup memory event\" target=app pid=%d ", new_pid);
    cr_assert_eq(log_count(event), 0, "%s", log_tail());
}

/* ---- a target in a root of its own ---------------------------------------------- */

#define JAIL_CID "3f4c1b2a9e8d7c6b5a493827161504f3e2d1c0b9a8978685746352413021f0e1"
#define JAIL_POD_UID "7c3a41a6-5d3e-4b8e-9a1f-0c2d4e6f8a9b"

static void write_file(const char *path, const char *text, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    cr_assert_neq(fd, -1, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(close(fd), 0);
}

static void make_dirs(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Issue 11 as an attacker tried it: the target, chrooted in a mount
 * namespace of its own, makes its log a symlink to a file in stakeout's
 * root, and lines appended there fired the errors rule with their text in
 * the alert. Its own log and its container's CRI log on the node (the
 * kubelet's layout, made under the test's directory) are what counts. */
Test(daemon, a_jailed_targets_symlink_out_never_reaches_an_alert, .timeout = 60)
{
    char jail[600], outside[600], host[600], pods[900], containers[900], cri[1000], link[1000];
    char parent[320], container[700];
    snprintf(jail, sizeof jail, "%s/jail", root);
    snprintf(outside, sizeof outside, "%s/outside.log", root);
    snprintf(host, sizeof host, "%s/host", root);
    snprintf(pods, sizeof pods, "%s/var/log/pods/shop_app-0_" JAIL_POD_UID "/app", host);
    snprintf(containers, sizeof containers, "%s/var/log/containers", host);
    snprintf(cri, sizeof cri, "%s/0.log", pods);
    snprintf(link, sizeof link, "%s/app-0_shop_app-" JAIL_CID ".log", containers);
    char jail_logs[700], own[800], evil[800];
    snprintf(jail_logs, sizeof jail_logs, "%s/var/log", jail);
    snprintf(own, sizeof own, "%s/app.log", jail_logs);
    snprintf(evil, sizeof evil, "%s/evil.log", jail_logs);
    make_dirs(jail_logs);
    make_dirs(pods);
    make_dirs(containers);
    write_file(own, "", O_TRUNC);
    write_file(outside, "", O_TRUNC);
    write_file(cri, "", O_TRUNC);
    cr_assert_eq(symlink(outside, evil), 0);
    cr_assert_eq(symlink(cri, link), 0);

    cgroup_make("memory", parent, sizeof parent);
    cgroup_make_container(parent, JAIL_POD_UID, JAIL_CID, container, sizeof container);
    jailed = jail_start(jail, true);
    cgroup_join(container, jailed);

    start_receiver();
    char yaml[4096], tmp[600];
    snprintf(yaml, sizeof yaml,
             "version: 1\n"
             "poll_interval: %dms\n"
             "listen: 127.0.0.1:0\n"
             "targets:\n"
             "  - name: jailed\n"
             "    match: {pid: %d}\n"
             "    logs:\n"
             "      - path: /var/log/app.log\n"
             "      - path: /var/log/evil.log\n"
             "      - path: '%s/*-${container_id}.log'\n"
             "        root: host\n"
             "        format: cri\n"
             "rules:\n"
             "  - name: errors\n"
             "    when: errors > 4/min\n"
             "    window: 5s\n"
             "    cooldown: 1m\n"
             "alert:\n"
             "  webhook: {url: 'http://127.0.0.1:%u/hook', format: json, timeout: 2s}\n"
             "  spool_dir: %s\n",
             POLL_MS, (int)jailed, containers, recv_port, spool_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", rules_path);
    write_file(tmp, yaml, O_TRUNC);
    cr_assert_eq(chmod(tmp, 0600), 0);
    cr_assert_eq(rename(tmp, rules_path), 0);
    start_daemon();
    char found[96];
    snprintf(found, sizeof found, "msg=\"target found\" target=jailed pid=%d ", (int)jailed);
    cr_assert(wait_log(found, 1, 15000), "the jailed target was never found:\n%s", log_tail());

    /* enough to fire the rule on its own, had it been read */
    write_file(outside, "SECRET-1 ERROR\nSECRET-2 ERROR\nSECRET-3 ERROR\nSECRET-4 ERROR\n"
                        "SECRET-5 ERROR\nSECRET-6 ERROR\n",
               O_APPEND);
    write_file(own, "own ERROR 1\nown ERROR 2\nown ERROR 3\n", O_APPEND);
    write_file(cri, "2024-05-01T10:00:00.000000000Z stderr F host ERROR 1\n"
                    "2024-05-01T10:00:00.000000001Z stderr F host ERROR 2\n"
                    "2024-05-01T10:00:00.000000002Z stderr F host ERROR 3\n",
               O_APPEND);
    json_t *a = wait_alert("rule", "errors", "firing", 20000);
    char *text = json_dumps(a, 0);
    cr_assert_not_null(text);
    cr_expect_null(strstr(text, "SECRET"), "a line of stakeout's own file is in the alert");
    const json_t *logs = json_object_get(a, "logs");
    cr_assert_eq(json_array_size(logs), 3, "%s", text);
    const json_t *l0 = json_array_get(logs, 0), *l1 = json_array_get(logs, 1),
                 *l2 = json_array_get(logs, 2);
    cr_expect_str_eq(jstr(l0, "path"), "/var/log/app.log");
    cr_expect_gt(json_integer_value(json_object_get(l0, "matched")), 0, "%s", text);
    cr_expect_str_eq(jstr(l1, "path"), "/var/log/evil.log");
    cr_expect_eq(json_integer_value(json_object_get(l1, "matched")), 0, "%s", text);
    cr_expect_str_eq(jstr(l2, "path"), link, "the container's log on the host side");
    cr_expect_gt(json_integer_value(json_object_get(l2, "matched")), 0, "%s", text);
    cr_expect(strstr(text, "own ERROR") && strstr(text, "host ERROR"), "%s", text);
    free(text);
    json_decref(a);
}

Test(daemon, sigterm_exits_zero_within_seconds)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    wait_polls(1);
    long long t0 = now_ms();
    cr_assert_eq(kill(daemon_proc.pid, SIGTERM), 0);
    cr_assert(wait_exit(&daemon_proc, 5000), "still running 5 s after SIGTERM");
    long long took = now_ms() - t0;
    int st = child_stop(&daemon_proc);
    cr_assert(WIFEXITED(st), "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0);
    cr_assert_lt(took, 3000, "took %lld ms", took);
    cr_assert_eq(log_count("msg=stopping signal=SIGTERM"), 1);
    cr_assert_eq(log_count("msg=stopped"), 1);
}

Test(daemon, sigterm_during_capture_leaves_target_running_untraced)
{
    start_receiver();
    write_rules("  - name: cpu-hot\n"
                "    when: cpu > 30%\n"
                "    for: 1s\n"
                "    capture: {profile: cpu, duration: 60s, rate: 99}\n",
                60);
    start_daemon();
    const char *phases[] = {"--normal", "0", "--hot", "600", NULL};
    int pid = start_demo(phases);
    cr_assert(wait_log("msg=\"rule firing\" rule=cpu-hot", 1, 20000), "%s", log_tail());
    long long deadline = now_ms() + 10000;
    while (tracer_of(pid) == 0) {
        cr_assert_lt(now_ms(), deadline, "the capture never attached:\n%s", log_tail());
        pause_ms(20);
    }

    long long t0 = now_ms();
    cr_assert_eq(kill(daemon_proc.pid, SIGTERM), 0);
    cr_assert(wait_exit(&daemon_proc, 8000), "still running 8 s after SIGTERM");
    long long took = now_ms() - t0;
    int st = child_stop(&daemon_proc);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x:\n%s", st, log_tail());
    cr_assert_lt(took, 5000, "took %lld ms", took);
    assert_running_untraced(pid);

    /* what was sampled is kept: the spool has the alert with its aborted profile */
    cr_assert(wait_log("msg=\"alert written\"", 1, 1000), "%s", log_tail());
    DIR *d = opendir(spool_dir);
    cr_assert_not_null(d);
    bool seen = false;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/bundle.json", spool_dir, de->d_name);
        json_t *b = json_load_file(path, 0, NULL);
        if (!b)
            continue;
        const json_t *p = json_object_get(b, "profile");
        cr_assert(json_is_object(p), "no profile: %s", jstr(b, "capture_skipped"));
        cr_assert(json_is_true(json_object_get(p, "aborted")));
        seen = true;
        json_decref(b);
    }
    closedir(d);
    cr_assert(seen, "no bundle in the spool");
}

/* The one capture worker is busy with another process when a target fires,
 * dies and comes back: the capture it queued ends without running, and the
 * slot must be free again for the new process (captures, POST /capture). */
Test(daemon, restart_while_its_capture_waits_frees_the_capture_slot)
{
    start_receiver();
    write_rules("  - name: cpu-hot\n"
                "    when: cpu > 30%\n"
                "    for: 1s\n"
                "    cooldown: 1m\n"
                "    capture: {profile: cpu, duration: 60s, rate: 49}\n",
                60);
    start_daemon();
    const char *phases[] = {"--normal", "0", "--hot", "600", NULL};
    int busy = start_demo_at(&demo2, 50, phases);
    long long deadline = now_ms() + 20000;
    while (tracer_of(busy) == 0) {
        cr_assert_lt(now_ms(), deadline, "the capture never attached:\n%s", log_tail());
        pause_ms(20);
    }
    int old_pid = start_demo(phases);
    char firing[96];
    snprintf(firing, sizeof firing, "msg=\"rule firing\" rule=cpu-hot target=demo pid=%d ",
             old_pid);
    cr_assert(wait_log(firing, 1, 20000), "%s", log_tail());

    child_stop(&demo);
    const char *normal[] = {"--normal", "600", NULL};
    int new_pid = start_demo(normal);
    char restarted[96];
    snprintf(restarted, sizeof restarted, "old_pid=%d new_pid=%d ", old_pid, new_pid);
    cr_assert(wait_log(restarted, 1, 15000), "%s", log_tail());
    child_stop(&demo2); /* the busy capture ends, the queued one is dropped */
    char dropped[96];
    snprintf(dropped, sizeof dropped, "msg=\"capture failed\" pid=%d ", old_pid);
    cr_assert(wait_log(dropped, 1, 15000), "%s", log_tail());
    wait_polls(2);

    struct http_result r;
    http_do("POST", "/capture?target=demo&duration=500ms", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 202, "the slot of pid %d stayed busy: %d %s", new_pid, r.status, r.body);
    http_result_fini(&r);
    json_t *a = wait_alert("on_demand", NULL, NULL, 20000);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(a, "profile"), "pid")),
                 new_pid);
    json_decref(a);
}

/* ---- the HTTP endpoint --------------------------------------------------------------------- */

/* Prometheus text format 0.0.4, as strictly as stakeout promises: every
 * family has HELP and TYPE before its samples and its samples together;
 * metric and label names valid; label values escaped; numeric values; no
 * series twice; counters end in _total. Returns false with why. */
static bool name_ok(const char *s, size_t n, bool metric_name)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = isalpha((unsigned char)c) || c == '_' || (metric_name && c == ':') ||
                  (i > 0 && isdigit((unsigned char)c));
        if (!ok)
            return false;
    }
    return true;
}

struct family {
    char name[128];
    bool help, type, done;
    char kind[16];
};

static bool value_ok(const char *v)
{
    if (strcmp(v, "NaN") == 0 || strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0)
        return true;
    char *end;
    double d = strtod(v, &end);
    return end != v && *end == '\0' && isfinite(d);
}

static bool prom_text_ok(const char *text, char *why, size_t len)
{
    struct family fam[128];
    size_t nfam = 0, cur = SIZE_MAX;
    char *series[1024];
    size_t nseries = 0;
    bool ok = true;
    char *copy = strdup(text);
    size_t tl = strlen(text);

    if (tl == 0 || text[tl - 1] != '\n') {
        snprintf(why, len, "does not end with a newline");
        free(copy);
        return false;
    }
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && ok;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool help = line[2] == 'H';
            char *name = line + 7, *sp = strchr(name, ' ');
            size_t n = sp ? (size_t)(sp - name) : strlen(name);
            if (!name_ok(name, n, true) || n >= sizeof fam[0].name || !sp) {
                snprintf(why, len, "bad family line: %s", line);
                ok = false;
                break;
            }
            size_t f;
            for (f = 0; f < nfam && !(strlen(fam[f].name) == n && !strncmp(fam[f].name, name, n));
                 f++)
                ;
            if (f == nfam) {
                if (nfam == 128) {
                    snprintf(why, len, "too many families");
                    ok = false;
                    break;
                }
                memset(&fam[f], 0, sizeof fam[f]);
                memcpy(fam[f].name, name, n);
                nfam++;
            }
            if (fam[f].done || (help ? fam[f].help : fam[f].type)) {
                snprintf(why, len, "%s again after its samples or twice: %s",
                         help ? "HELP" : "TYPE", line);
                ok = false;
                break;
            }
            if (cur != SIZE_MAX && cur != f)
                fam[cur].done = true;
            cur = f;
            if (help) {
                fam[f].help = true;
                for (const char *p = sp + 1; *p; p++) {
                    if (*p == '\\' && p[1] != '\\' && p[1] != 'n') {
                        snprintf(why, len, "bad escape in HELP: %s", line);
                        ok = false;
                    }
                    if (*p == '\\')
                        p++;
                }
            } else {
                fam[f].type = true;
                const char *t = sp + 1;
                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "untyped") &&
                    strcmp(t, "summary") && strcmp(t, "histogram")) {
                    snprintf(why, len, "bad type: %s", line);
                    ok = false;
                }
                snprintf(fam[f].kind, sizeof fam[f].kind, "%s", t);
            }
            continue;
        }
        if (line[0] == '#')
            continue; /* a comment */
        /* a sample: name{labels} value */
        const char *p = line;
        while (*p && *p != '{' && *p != ' ')
            p++;
        size_t n = (size_t)(p - line);
        size_t f;
        for (f = 0; f < nfam && !(strlen(fam[f].name) == n && !strncmp(fam[f].name, line, n)); f++)
            ;
        if (!name_ok(line, n, true) || f == nfam || !fam[f].help || !fam[f].type) {
            snprintf(why, len, "sample without HELP and TYPE before it: %s", line);
            ok = false;
            break;
        }
        if (cur != f) {
            if (fam[f].done) {
                snprintf(why, len, "samples of %s not together: %s", fam[f].name, line);
                ok = false;
                break;
            }
            if (cur != SIZE_MAX)
                fam[cur].done = true;
            cur = f;
        }
        if (strcmp(fam[f].kind, "counter") == 0 &&
            (n < 6 || strncmp(line + n - 6, "_total", 6) != 0)) {
            snprintf(why, len, "counter without _total: %s", line);
            ok = false;
            break;
        }
        /* labels, normalised into key for the duplicate check */
        char key[1024], labels[16][64];
        size_t nl = 0;
        snprintf(key, sizeof key, "%.*s", (int)n, line);
        if (*p == '{') {
            p++;
            while (ok && *p != '}') {
                const char *ln = p;
                while (*p && *p != '=')
                    p++;
                size_t lnl = (size_t)(p - ln);
                if (!name_ok(ln, lnl, false) || (lnl >= 2 && ln[0] == '_' && ln[1] == '_') ||
                    p[0] != '=' || p[1] != '"' || lnl >= sizeof labels[0] || nl == 16) {
                    snprintf(why, len, "bad label name: %s", line);
                    ok = false;
                    break;
                }
                for (size_t k = 0; k < nl; k++) {
                    if (strlen(labels[k]) == lnl && strncmp(labels[k], ln, lnl) == 0) {
                        snprintf(why, len, "label twice: %s", line);
                        ok = false;
                    }
                }
                snprintf(labels[nl++], sizeof labels[0], "%.*s", (int)lnl, ln);
                p += 2;
                const char *vs = p;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
                            snprintf(why, len, "bad escape in a label value: %s", line);
                            ok = false;
                            break;
                        }
                        p++;
                    }
                    p++;
                }
                if (!ok)
                    break;
                if (*p != '"') {
                    snprintf(why, len, "unterminated label value: %s", line);
                    ok = false;
                    break;
                }
                size_t kl = strlen(key);
                snprintf(key + kl, sizeof key - kl, "|%.*s=%.*s", (int)lnl, ln, (int)(p - vs), vs);
                p++;
                if (*p == ',')
                    p++;
                else if (*p != '}') {
                    snprintf(why, len, "bad label list: %s", line);
                    ok = false;
                }
            }
            if (!ok)
                break;
            p++;
        }
        if (*p != ' ' || !value_ok(p + 1)) {
            snprintf(why, len, "bad value: %s", line);
            ok = false;
            break;
        }
        for (size_t k = 0; k < nseries; k++) {
            if (strcmp(series[k], key) == 0) {
                snprintf(why, len, "series twice: %s", line);
                ok = false;
            }
        }
        if (nseries < 1024)
            series[nseries++] = strdup(key);
    }
    for (size_t k = 0; k < nseries; k++)
        free(series[k]);
    free(copy);
    return ok;
}

/* The checker itself: it must refuse what Prometheus refuses. */
Test(daemon, metrics_checker_refuses_malformed_text)
{
    static const char good[] = "# HELP a_total A thing \\\\ with\\nescapes\n"
                               "# TYPE a_total counter\n"
                               "a_total{x=\"q\\\"\\\\\\n\",y=\"\"} 1.5e3\n"
                               "a_total{x=\"r\"} NaN\n";
    static const char *const bad[] = {
        "a 1\n",                                                    /* no HELP/TYPE */
        "# HELP a A\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n", /* series twice */
        "# HELP a A\n# TYPE a gauge\na{x=\"\\t\"} 1\n",             /* bad escape */
        "# HELP a A\n# TYPE a gauge\na{1x=\"1\"} 1\n",              /* label name */
        "# HELP a A\n# TYPE a gauge\na{x=\"1\"} one\n",             /* value */
        "# HELP a A\n# TYPE a counter\na 1\n",                      /* _total */
        "# HELP a A\n# TYPE a gauge\na 1\n# HELP b B\n# TYPE b gauge\nb 1\na 2\n", /* apart */
        "# HELP a A\n# TYPE a gauge\na 1",                                         /* no newline */
        "# HELP a A\n# TYPE a gauge\na{x=\"1} 1\n", /* unterminated */
    };
    char why[256];
    cr_assert(prom_text_ok(good, why, sizeof why), "%s", why);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!prom_text_ok(bad[i], why, sizeof why), "accepted: %s", bad[i]);
}

/* promtool, when it is on PATH. */
static const char *find_promtool(void)
{
    static char path[1024];
    const char *env = getenv("PATH");
    char *dirs = strdup(env ? env : "/usr/bin:/bin");
    const char *found = NULL;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/promtool", d);
        if (access(path, X_OK) == 0)
            found = path;
    }
    free(dirs);
    return found;
}

Test(daemon, metrics_parse_as_prometheus_text)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    /* two processes of one target: per-target series must not repeat */
    const char *phases[] = {"--normal", "600", NULL};
    int pid1 = start_demo_at(&demo, 50, phases);
    int pid2 = start_demo_at(&demo2, 50, phases);
    wait_found(pid1);
    wait_found(pid2);
    wait_polls(2);

    struct http_result r;
    http_do("GET", "/metrics", NULL, &r);
    cr_assert_eq(r.status, 200);
    const char *ct = http_header(&r, "Content-Type");
    cr_assert(ct && strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s",
              ct ? ct : "(none)");
    char why[512] = "";
    cr_assert(prom_text_ok(r.body, why, sizeof why), "%s\n%s", why, r.body);

    /* what it says is true */
    char series[128];
    cr_assert_eq(metric_in(r.body, "stakeout_target_up{target=\"demo\"}"), 1);
    snprintf(series, sizeof series, "stakeout_target_threads{target=\"demo\",pid=\"%d\"}", pid1);
    cr_assert_eq(metric_in(r.body, series), 1, "%s", r.body);
    snprintf(series, sizeof series, "stakeout_target_rss_bytes{target=\"demo\",pid=\"%d\"}", pid2);
    cr_assert_gt(metric_in(r.body, series), 100000);
    snprintf(series, sizeof series,
             "stakeout_rule_state{rule=\"cpu-hot\",target=\"demo\",pid=\"%d\"}", pid1);
    cr_assert_eq(metric_in(r.body, series), 0);
    cr_assert_eq(metric_in(r.body, "stakeout_target_restarts_total{target=\"demo\"}"), 0);
    cr_assert_geq(metric_in(r.body, "stakeout_polls_total"), 2);
    cr_assert_eq(metric_in(r.body, "stakeout_config_last_reload_successful"), 1);
    double start = metric_in(r.body, "stakeout_process_start_time_seconds");
    cr_assert(fabs(start - (double)time(NULL)) < 120, "start time %f", start);
    cr_assert_gt(metric_in(r.body, "stakeout_process_resident_memory_bytes"), 0);

    const char *promtool = find_promtool();
    if (promtool) {
        char file[600];
        snprintf(file, sizeof file, "%s/metrics.txt", root);
        FILE *f = fopen(file, "we");
        cr_assert_not_null(f);
        fputs(r.body, f);
        fclose(f);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "exec \"%s\" check metrics < \"%s\"", promtool, file);
        char *argv[] = {"/bin/sh", "-c", cmd, NULL};
        struct spawn_result res;
        cr_assert_eq(spawn_capture(argv, NULL, 30000, &res), 0);
        cr_assert_eq(res.status, 0, "promtool check metrics:\n%s%s", res.out, res.err);
        spawn_result_fini(&res);
    } else {
        cr_log_info("promtool is not on PATH: the checker above is the only check");
    }
    http_result_fini(&r);
}

Test(daemon, capture_endpoint_refuses_without_the_token)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    const char *phases[] = {"--normal", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);
    wait_polls(1);

    static const char *const refused[] = {
        NULL,                                /* no Authorization */
        "Bearer wrong-token-wrong-token-00", /* wrong */
        "Bearer daemon-test-token",          /* a prefix of it */
        "Bearer " TOKEN "x",                 /* longer */
        "Basic " TOKEN,                      /* another scheme */
        "Bearer ",                           /* empty */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct http_result r;
        http_do("POST", "/capture?target=demo&duration=1s", refused[i], &r);
        cr_assert_eq(r.status, 401, "%s: %d %s", refused[i] ? refused[i] : "(none)", r.status,
                     r.body);
        const char *www = http_header(&r, "WWW-Authenticate");
        cr_assert(www && strncmp(www, "Bearer", 6) == 0, "WWW-Authenticate %s", www ? www : "-");
        http_result_fini(&r);
    }
    struct http_result r;
    http_do("GET", "/capture?target=demo", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 405);
    http_result_fini(&r);

    wait_polls(2);
    cr_assert_eq(log_count("on-demand capture"), 0);
    cr_assert_eq(metric("stakeout_captures_total"), 0);
    cr_assert_eq(tracer_of(pid), 0);
    cr_assert_eq(nfiles(recv_dir), 0);
}

Test(daemon, capture_endpoint_with_token_answers_202_and_an_alert_follows)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    const char *phases[] = {"--normal", "0", "--hot", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);

    struct http_result r;
    http_do("POST", "/capture?target=demo&duration=1s", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
    char want[64];
    snprintf(want, sizeof want, "(pid %d)", pid);
    cr_assert_not_null(strstr(r.body, want), "%s", r.body);
    http_result_fini(&r);

    json_t *a = wait_alert("on_demand", NULL, NULL, 20000);
    assert_context(a, pid);
    cr_assert_str_eq(jstr(a, "severity"), "info");
    cr_assert(json_is_null(json_object_get(a, "rule")));
    const json_t *p = json_object_get(a, "profile");
    cr_assert(json_is_object(p), "no profile: %s", jstr(a, "capture_skipped"));
    cr_assert_eq(json_integer_value(json_object_get(p, "pid")), pid);
    double dur = json_number_value(json_object_get(p, "duration_s"));
    cr_assert(dur > 0.8 && dur < 2.0, "duration %f", dur);
    cr_assert_gt(json_integer_value(json_object_get(p, "samples")), 10);
    cr_assert_str_eq(
        jstr(json_array_get(json_object_get(json_object_get(p, "summary"), "top_self"), 0), "name"),
        "score_item");
    size_t n = 0;
    free(check_attachments(a, "profile.pb.gz", &n));
    cr_assert_gt(n, 0);
    json_decref(a);
    cr_assert_eq(metric("stakeout_captures_total"), 0); /* that counter is for rules */
}

Test(daemon, capture_leaves_target_untraced_and_not_stopped)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    const char *phases[] = {"--normal", "0", "--hot", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);
    struct http_result r;
    http_do("POST", "/capture?target=demo&duration=2s", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
    http_result_fini(&r);
    long long deadline = now_ms() + 10000;
    while (tracer_of(pid) == 0) {
        cr_assert_lt(now_ms(), deadline, "the capture never attached:\n%s", log_tail());
        pause_ms(10);
    }
    cr_assert(wait_log("msg=\"capture done\"", 1, 15000), "%s", log_tail());
    assert_running_untraced(pid);
    cr_assert_eq(kill(daemon_proc.pid, 0), 0);
}

Test(daemon, capture_budget_spent_answers_429)
{
    start_receiver();
    write_rules(demo_rules, 1); /* one capture an hour */
    start_daemon();
    const char *phases[] = {"--normal", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);

    struct http_result r;
    http_do("POST", "/capture?target=demo&duration=500ms", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
    http_result_fini(&r);
    json_decref(wait_alert("on_demand", NULL, NULL, 20000));

    http_do("POST", "/capture?target=demo&duration=500ms", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 429, "%d %s", r.status, r.body);
    cr_assert_not_null(strstr(r.body, "max_captures_per_hour"), "%s", r.body);
    http_result_fini(&r);
    wait_polls(2);
    cr_assert_eq(log_count("on-demand capture"), 1);
    cr_assert_eq(count_alerts(NULL, NULL, NULL), 1);
}

/* GET /metrics and /rules from another thread, without pause. */
static volatile int hammering;
static unsigned long hammered, hammer_failed;

static void *hammer(void *arg)
{
    (void)arg;
    while (hammering) {
        struct http_result r;
        if (http_fetch("GET", hammered % 2 ? "/rules" : "/metrics", NULL, &r) != 0 ||
            r.status != 200)
            hammer_failed++;
        http_result_fini(&r);
        hammered++;
    }
    return NULL;
}

#define CROWD 40
static struct child crowd[CROWD];

static void stop_crowd(void)
{
    for (size_t i = 0; i < CROWD; i++) {
        if (crowd[i].pid > 0)
            child_stop(&crowd[i]);
    }
}

/* Processes appear while the endpoint is read: the engine grows its slots
 * then, and the HTTP thread reads them. Under ASan a read of the old array
 * is a crash. */
Test(daemon, metrics_scraped_while_targets_appear_stays_valid, .fini = stop_crowd)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon();
    wait_polls(1);
    pthread_t thr;
    hammering = 1;
    cr_assert_eq(pthread_create(&thr, NULL, hammer, NULL), 0);
    /* all at once: the next discovery finds them together */
    char *argv[] = {(char *)child_target("stakeout-demo"),
                    "--log",
                    app_log,
                    "--rate",
                    "1",
                    "--normal",
                    "600",
                    NULL};
    for (size_t i = 0; i < CROWD; i++)
        cr_assert_eq(child_start(&crowd[i], argv), 0);
    for (size_t i = 0; i < CROWD; i++) {
        char line[64];
        cr_assert_geq(child_readline(&crowd[i], line, sizeof line, 10000), 0);
    }
    /* a process seen between fork and exec is looked at again only every
     * DISCOVER_FULL_EVERY scans (a minute here): half of them will do */
    cr_assert(wait_log("msg=\"target found\"", CROWD / 2, 20000), "%s", log_tail());
    wait_polls(4);
    hammering = 0;
    pthread_join(thr, NULL);
    cr_assert_gt(hammered, 10);
    cr_assert_eq(hammer_failed, 0, "%lu of %lu requests failed:\n%s", hammer_failed, hammered,
                 log_tail());
    cr_assert_eq(kill(daemon_proc.pid, 0), 0, "the daemon died:\n%s", log_tail());
    struct http_result r;
    http_do("GET", "/metrics", NULL, &r);
    char why[512] = "";
    cr_assert(prom_text_ok(r.body, why, sizeof why), "%s", why);
    size_t found = log_count("msg=\"target found\"");
    cr_assert_eq(count_in(r.body, "stakeout_rule_state{rule=\"cpu-hot\""), found);
    http_result_fini(&r);
}

/* ---- descriptors ---------------------------------------------------------------------------- */

/* Past systemd's default soft limit of 1,024 descriptors, with room for the
 * daemon's own. */
#define MANY_THREADS "1100"

/* The descriptor limits of pid, from /proc/PID/limits. */
static void nofile_of(int pid, unsigned long *soft, unsigned long *hard)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/limits", pid);
    char *all = slurp(path);
    cr_assert_not_null(all, "pid %d is gone", pid);
    const char *line = strstr(all, "Max open files");
    cr_assert_not_null(line, "no descriptor limit in %s", path);
    int got = sscanf(line + strlen("Max open files"), "%lu %lu", soft, hard);
    free(all);
    cr_assert_eq(got, 2, "cannot read the descriptor limit in %s", path);
}

/* The number of descriptors pid holds. */
static size_t fds_of(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "%s: %s", path, strerror(errno));
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The daemon started under a descriptor limit of soft/hard (the shell sets
 * it before the exec; soft first, which may never exceed hard) watches a
 * target of 1,100 threads, and a CPU rule captures it: the capture keeps
 * few descriptors, completes with a profile, /healthz answers meanwhile,
 * and nothing reads as the target exiting or restarting. Returns the
 * daemon's soft limit as it ran. */
static unsigned long many_threads_capture(unsigned soft, unsigned hard)
{
    start_receiver();
    write_rules("  - name: cpu-hot\n"
                "    when: cpu > 30%\n"
                "    for: 1s\n"
                "    cooldown: 1m\n"
                "    capture: {profile: cpu, duration: 5s, rate: 49}\n",
                60);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "ulimit -S -n %u && ulimit -H -n %u && ", soft, hard);
    start_daemon_with(prefix, "", "", "msg=listening");
    unsigned long run_soft = 0, run_hard = 0;
    nofile_of(daemon_proc.pid, &run_soft, &run_hard);
    cr_assert_eq(run_hard, hard, "the daemon runs with a hard limit of %lu", run_hard);

    const char *phases[] = {"--threads", MANY_THREADS, "--normal", "1", "--hot", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);

    /* while the target is traced: the listener answers, and the daemon
     * holds far fewer descriptors than the limit it started with */
    long long deadline = now_ms() + 60000;
    size_t answered = 0, most_fds = 0;
    json_t *a = NULL;
    for (;;) {
        a = first_alert("rule", "cpu-hot", "firing");
        if (a)
            break;
        cr_assert_lt(now_ms(), deadline, "no alert of cpu-hot:\n%s", log_tail());
        if (tracer_of(pid) != 0) {
            size_t n = fds_of(daemon_proc.pid);
            most_fds = n > most_fds ? n : most_fds;
            struct http_result r;
            int rc = http_fetch("GET", "/healthz", NULL, &r);
            cr_assert_eq(rc, 0, "/healthz during the capture: %s\n%s", strerror(-rc), log_tail());
            cr_assert_eq(r.status, 200, "/healthz during the capture: %d %s", r.status, r.body);
            http_result_fini(&r);
            answered++;
        }
        pause_ms(20);
    }
    cr_assert_gt(answered, 0, "the capture was never seen under way:\n%s", log_tail());
    cr_assert_lt(most_fds, soft / 2, "the daemon held %zu descriptors during the capture",
                 most_fds);

    const json_t *prof = json_object_get(a, "profile");
    cr_assert(json_is_object(prof), "no profile: %s", jstr(a, "capture_skipped"));
    cr_assert_eq(json_integer_value(json_object_get(prof, "pid")), pid);
    char *notes = json_dumps(json_object_get(prof, "notes"), 0);
    cr_assert(json_is_false(json_object_get(prof, "aborted")), "the capture was aborted: %s",
              notes);
    free(notes);
    cr_assert_gt(json_integer_value(json_object_get(prof, "samples")), 0);
    cr_assert(
        in_top(json_object_get(json_object_get(prof, "summary"), "top_self"), "score_item", 3),
        "the profile misses the hot spot");
    json_decref(a);

    wait_polls(4);
    cr_assert_eq(log_count("msg=\"target exited\""), 0, "%s", log_tail());
    cr_assert_eq(log_count("msg=\"target restarted\""), 0, "%s", log_tail());
    cr_assert_eq(count_alerts("restarted", NULL, NULL), 0);
    cr_assert_eq(log_count("msg=\"target found\""), 1, "%s", log_tail());
    cr_assert_eq(kill(pid, 0), 0, "the target died");
    return run_soft;
}

/* systemd's default soft limit under a higher hard one: stakeout raises
 * its soft limit to the hard one at start. */
Test(daemon, many_threaded_target_under_soft_limit_1024_is_captured_whole, .timeout = 150)
{
    unsigned long soft = many_threads_capture(1024, 4096);
    cr_assert_eq(soft, 4096, "the daemon kept a soft limit of %lu (hard 4096)", soft);
}

/* No room to raise: the bound on the capture's descriptors alone keeps the
 * daemon working. */
Test(daemon, many_threaded_target_under_hard_limit_1024_is_captured_whole, .timeout = 150)
{
    unsigned long soft = many_threads_capture(1024, 1024);
    cr_assert_eq(soft, 1024);
}

/* ---- least privilege ------------------------------------------------------------------------ */

Test(daemon, every_thread_drops_privileges_and_blocks_signals)
{
    start_receiver();
    write_rules(demo_rules, 60);
    start_daemon(); /* without --keep-privileges */
    const char *phases[] = {"--normal", "600", NULL};
    int pid = start_demo(phases);
    wait_found(pid);
    wait_polls(1);

    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", daemon_proc.pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t nthreads = 0;
    /* CAP_SYS_PTRACE (19) and CAP_PERFMON (38): captures, nothing else */
    const unsigned long long capture_caps = 1ULL << 19 | 1ULL << 38;
    const unsigned long long sigs =
        (1ULL << (SIGHUP - 1)) | (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        int tid = atoi(de->d_name);
        char v[64];
        /* /proc/TID/status is the thread's own */
        cr_assert(proc_status(tid, "CapEff", v, sizeof v));
        unsigned long long eff = strtoull(v, NULL, 16);
        cr_assert_eq(eff & ~capture_caps, 0, "thread %d holds capabilities %s", tid, v);
        cr_assert(proc_status(tid, "CapPrm", v, sizeof v));
        cr_assert_eq(strtoull(v, NULL, 16) & ~capture_caps, 0, "thread %d may raise %s", tid, v);
        cr_assert(proc_status(tid, "NoNewPrivs", v, sizeof v));
        cr_assert_str_eq(v, "1", "thread %d without no_new_privs", tid);
        cr_assert(proc_status(tid, "SigBlk", v, sizeof v));
        cr_assert_eq(strtoull(v, NULL, 16) & sigs, sigs,
                     "thread %d takes SIGHUP/SIGINT/SIGTERM (SigBlk %s): their default action "
                     "would kill the daemon",
                     tid, v);
        nthreads++;
    }
    closedir(d);
    cr_assert_geq(nthreads, 3); /* loop, delivery, capture worker, listener */
}
