/* tests/test_logwatch.c - all the logs of a rules file (sidecar/logwatch):
 * the one total that the lines every log keeps for alerts share, checked
 * on real files followed through logtail; and a target's logs read inside
 * its own root only, whatever it does to escape it.
 *
 * The escape tests set a target up as an attacker would: a process in its
 * own mount namespace, chrooted into a directory of the test (support/
 * jail.h: forked, never exec'ing, so the root needs no binary), whose rules
 * file names two logs, its own /var/log/app.log (a plain file) and
 * /var/log/evil.log, which the test makes an absolute symlink, a ".."
 * climb, a symlink renamed over the file once it is followed, a FIFO or a
 * device. A file outside the root gets error lines: none may be counted
 * or kept for an alert, nothing but a regular file may be opened, and the
 * target's own log must be counted before and after. Waiting is polling
 * against a deadline; the child is killed and reaped by its pid.
 *
 * A log on the host side (root: host) is tested with such a target put in
 * a cgroup named the way Kubernetes names a pod's container's, and the
 * kubelet's layout of /var/log/pods and /var/log/containers made under
 * the test's directory: the target's ids select its files, the newest of
 * several matches is followed, and neither another container's file nor a
 * file at the same path inside the target's root is read. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "logwatch.h"
#include "procmeta.h"
#include "support/cgroup.h"
#include "support/jail.h"

#define S 1000000000LL
#define MS 1000000LL

static char dir[256];
static pid_t jailed; /* the target in a root of its own, 0: none */

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_logwatch.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    jailed = 0;
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
    jail_stop(jailed);
    jailed = 0;
    remove_tree(dir);
}

TestSuite(logwatch, .init = setup, .fini = teardown, .timeout = 60);

Test(logwatch, kept_max_shares_the_total_among_logs)
{
    cr_assert_eq(logwatch_kept_max(0), LOGSCAN_KEPT_MAX);
    cr_assert_eq(logwatch_kept_max(1), LOGSCAN_KEPT_MAX);
    cr_assert_eq(logwatch_kept_max(28), LOGSCAN_KEPT_MAX);
    cr_assert_lt(logwatch_kept_max(29), LOGSCAN_KEPT_MAX);
    size_t prev = LOGSCAN_KEPT_MAX;
    for (size_t n = 1; n <= 4000; n++) {
        size_t k = logwatch_kept_max(n);
        cr_assert_leq(k, prev, "more logs, longer lines at %zu", n);
        cr_assert_geq(k, LOGWATCH_KEPT_MIN);
        if (k > LOGWATCH_KEPT_MIN)
            cr_assert_leq((unsigned long long)n * LOGSCAN_KEPT_LINES * (k + 1), LOGWATCH_KEPT_BYTES,
                          "%zu logs of %zu bytes a line", n, k);
        prev = k;
    }
    cr_assert_eq(logwatch_kept_max(4000), LOGWATCH_KEPT_MIN);
}

static struct config *parse(const char *text)
{
    struct diag_list d;
    struct config *c = NULL;
    diag_init(&d);
    int rc = config_parse("logs.yaml", text, strlen(text), NULL, NULL, &c, &d);
    cr_assert_eq(rc, 0, "%s", d.n ? d.items[0].msg : "");
    diag_fini(&d);
    return c;
}

/* A rules file with ntargets targets of nper logs each, DIR/T-L.log. */
static struct config *config_with_logs(size_t ntargets, size_t nper)
{
    size_t cap = 256 + ntargets * (64 + nper * 320), len = 0;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    len += (size_t)snprintf(text + len, cap - len, "version: 1\nrules: []\ntargets:\n");
    for (size_t t = 0; t < ntargets; t++) {
        len += (size_t)snprintf(text + len, cap - len,
                                "  - name: t%zu\n    match: {pid: 1}\n    logs:\n", t);
        for (size_t l = 0; l < nper; l++)
            len += (size_t)snprintf(text + len, cap - len, "      - path: %s/%zu-%zu.log\n", dir, t,
                                    l);
    }
    cr_assert_lt(len, cap);
    struct config *c = parse(text);
    free(text);
    return c;
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "ae");
    cr_assert_not_null(f, "%s", path);
    cr_assert_geq(fputs(text, f), 0);
    cr_assert_eq(fclose(f), 0);
}

Test(logwatch, all_logs_together_keep_at_most_the_total)
{
    const size_t ntargets = 3, nper = 20, nlogs = ntargets * nper;
    struct config *cfg = config_with_logs(ntargets, nper);
    char err[256] = "", path[512];
    struct logwatch *lw = logwatch_new(cfg, err, sizeof err);
    cr_assert_not_null(lw, "%s", err);
    size_t each = logwatch_kept_max(nlogs);
    cr_assert_lt(each, LOGSCAN_KEPT_MAX, "%zu logs share the total", nlogs);

    for (size_t t = 0; t < ntargets; t++) {
        for (size_t l = 0; l < nper; l++) {
            snprintf(path, sizeof path, "%s/%zu-%zu.log", dir, t, l);
            append(path, "");
        }
    }
    logwatch_poll(lw, 1 * S, 1 * S); /* follows each file from its end */

    /* 40 lines of 3000 bytes in every log, every other one a match */
    char *line = malloc(3002);
    cr_assert_not_null(line);
    memset(line, 'x', 3000);
    line[3000] = '\n';
    line[3001] = '\0';
    for (size_t t = 0; t < ntargets; t++) {
        for (size_t l = 0; l < nper; l++) {
            snprintf(path, sizeof path, "%s/%zu-%zu.log", dir, t, l);
            for (int k = 0; k < 40; k++) {
                memcpy(line, k % 2 ? "ERROR " : "info  ", 6);
                append(path, line);
            }
        }
    }
    logwatch_poll(lw, 2 * S, 2 * S);

    size_t total = 0, seen = 0;
    for (size_t t = 0; t < ntargets; t++) {
        for (size_t i = 0;; i++) {
            const char *p = NULL;
            const struct logscan *s = logwatch_scanner(lw, t, i, &p);
            if (!s)
                break;
            struct logscan_stats st;
            logscan_stats(s, &st);
            cr_assert_eq(st.matched, 20, "%s: %llu matches", p, (unsigned long long)st.matched);
            cr_assert_eq(logscan_kept_max(s), each);
            cr_assert_eq(logscan_nmatches(s), LOGSCAN_KEEP);
            const struct logscan_match *m = logscan_match_at(s, LOGSCAN_KEEP - 3);
            cr_assert_eq(m->line.len, each);
            cr_assert(m->line.cut);
            cr_assert_eq(m->nbefore, LOGSCAN_CONTEXT);
            cr_assert_eq(m->nafter, LOGSCAN_CONTEXT);
            total += logscan_kept_bytes(s);
            seen++;
        }
    }
    cr_log_info("%zu logs keep %zu bytes of lines (%zu of each line)", seen, total, each);
    cr_assert_eq(seen, nlogs);
    cr_assert_leq(total, LOGWATCH_KEPT_BYTES);
    cr_assert_gt(total, LOGWATCH_KEPT_BYTES / 10 * 9, "the logs did keep their lines");

    free(line);
    logwatch_free(lw);
    config_free(cfg);
}

/* ---- a target's logs stay inside its root ---- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * S + ts.tv_nsec;
}

static void write_at(const char *path, const char *text, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    cr_assert_neq(fd, -1, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(close(fd), 0);
}

/* Let the followers work: their inotify descriptors, then the poll. */
static void drive(struct logwatch *lw)
{
    int fds[16];
    struct pollfd pf[16];
    size_t n = logwatch_fds(lw, fds, 16);
    for (size_t i = 0; i < n; i++)
        pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    int r = poll(pf, n, 20);
    cr_assert(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
    for (size_t i = 0; r > 0 && i < n; i++) {
        if (pf[i].revents & POLLIN)
            logwatch_ready(lw, pf[i].fd, mono_ns(), mono_ns());
    }
    logwatch_poll(lw, mono_ns(), mono_ns());
}

static struct logscan_stats log_stats(struct logwatch *lw, size_t i)
{
    struct logscan_stats st;
    const struct logscan *s = logwatch_scanner(lw, 0, i, NULL);
    cr_assert_not_null(s);
    logscan_stats(s, &st);
    return st;
}

/* Drive lw until log i has matched n lines; fail after 10 s. */
static void wait_matched(struct logwatch *lw, size_t i, uint64_t n)
{
    int64_t deadline = mono_ns() + 10 * S;
    while (log_stats(lw, i).matched < n) {
        cr_assert_lt(mono_ns(), deadline, "log %zu matched %llu lines, not %llu", i,
                     (unsigned long long)log_stats(lw, i).matched, (unsigned long long)n);
        drive(lw);
    }
}

/* Whether any line log i keeps for alerts (matches and their context)
 * holds text. */
static bool kept(struct logwatch *lw, size_t i, const char *text)
{
    const struct logscan *s = logwatch_scanner(lw, 0, i, NULL);
    for (size_t k = 0; k < logscan_nmatches(s); k++) {
        const struct logscan_match *m = logscan_match_at(s, k);
        bool in = strstr(m->line.text, text) != NULL;
        for (size_t j = 0; j < m->nbefore; j++)
            in = in || strstr(m->before[j].text, text) != NULL;
        for (size_t j = 0; j < m->nafter; j++)
            in = in || strstr(m->after[j].text, text) != NULL;
        if (in)
            return true;
    }
    return false;
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

enum attack { ATTACK_ABSOLUTE, ATTACK_DOTDOT, ATTACK_SWAP, ATTACK_FIFO, ATTACK_DEVICE };

/* DIR/root/var/log, the target's log directory; root and logdir set. */
static void make_root(char *root, size_t rlen, char *logdir, size_t llen)
{
    snprintf(root, rlen, "%s/root", dir);
    snprintf(logdir, llen, "%s/var", root);
    cr_assert_eq(mkdir(root, 0755), 0);
    cr_assert_eq(mkdir(logdir, 0755), 0);
    snprintf(logdir, llen, "%s/var/log", root);
    cr_assert_eq(mkdir(logdir, 0755), 0);
}

static void escape(enum attack how)
{
    char root[300], logdir[320], good[400], evil[400], outside[300], link[600], tmp[400];
    make_root(root, sizeof root, logdir, sizeof logdir);
    snprintf(good, sizeof good, "%s/app.log", logdir);
    snprintf(evil, sizeof evil, "%s/evil.log", logdir);
    snprintf(tmp, sizeof tmp, "%s/evil.tmp", logdir);
    /* a file of stakeout's, outside the target's root */
    snprintf(outside, sizeof outside, "%s/outside.log", dir);
    write_at(outside, "secret history ERROR\n", O_TRUNC);
    write_at(good, "", O_TRUNC);

    switch (how) {
    case ATTACK_ABSOLUTE:
        cr_assert_eq(symlink(outside, evil), 0);
        break;
    case ATTACK_DOTDOT: /* more ".." than there are directories above */
        snprintf(link, sizeof link, "../../../../../../../../../../../../../../..%s", outside);
        cr_assert_eq(symlink(link, evil), 0);
        break;
    case ATTACK_SWAP: /* a plain file first */
        write_at(evil, "", O_TRUNC);
        break;
    case ATTACK_FIFO:
        cr_assert_eq(mkfifo(evil, 0600), 0);
        break;
    case ATTACK_DEVICE:
        cr_assert_eq(mknod(evil, S_IFCHR | 0600, makedev(1, 3)), 0, "mknod: %s", strerror(errno));
        break;
    }
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    cr_assert_geq(ifd, 0);
    if (how == ATTACK_FIFO || how == ATTACK_DEVICE)
        cr_assert_geq(inotify_add_watch(ifd, evil, IN_OPEN | IN_DONT_FOLLOW), 0);

    struct config *cfg = parse("version: 1\nrules: []\ntargets:\n"
                               "  - name: app\n    match: {pid: 1}\n    logs:\n"
                               "      - path: /var/log/app.log\n"
                               "      - path: /var/log/evil.log\n");
    char err[256] = "";
    struct logwatch *lw = logwatch_new(cfg, err, sizeof err);
    cr_assert_not_null(lw, "%s", err);
    jailed = jail_start(root, true);
    logwatch_target_pid(lw, 0, jailed, NULL);
    const char *path = NULL;
    cr_assert_not_null(logwatch_scanner(lw, 0, 1, &path));
    cr_expect_str_eq(path, "/var/log/evil.log", "alerts name the log as the target does");
    drive(lw);

    write_at(good, "before ERROR\n", O_APPEND);
    wait_matched(lw, 0, 1);
    if (how == ATTACK_SWAP) {
        /* the target's own file is followed, then a symlink out replaces it */
        write_at(evil, "own ERROR\n", O_APPEND);
        wait_matched(lw, 1, 1);
        cr_assert_eq(symlink(outside, tmp), 0);
        cr_assert_eq(rename(tmp, evil), 0);
        drive(lw);
    }
    write_at(outside, "secret 1\nsecret 2 ERROR\nsecret 3\n", O_APPEND);
    write_at(good, "after ERROR\n", O_APPEND);
    wait_matched(lw, 0, 2);
    /* every log is polled after the good one: evil.log's follower has
     * looked at its path since the secret lines were written */
    drive(lw);

    struct logscan_stats gs = log_stats(lw, 0), es = log_stats(lw, 1);
    cr_expect_eq(gs.matched, 2, "the target's own log: %llu matches",
                 (unsigned long long)gs.matched);
    cr_expect(kept(lw, 0, "before ERROR") && kept(lw, 0, "after ERROR"));
    cr_expect_eq(es.matched, how == ATTACK_SWAP ? 1 : 0,
                 "%llu lines matched in evil.log: a file outside the root was read",
                 (unsigned long long)es.matched);
    cr_expect_not(kept(lw, 1, "secret"), "a line of a file outside the root is kept for alerts");
    cr_expect_not(kept(lw, 0, "secret"));
    if (how == ATTACK_FIFO || how == ATTACK_DEVICE)
        cr_expect_not(opened(ifd), "the %s in the log's place was opened",
                      how == ATTACK_FIFO ? "FIFO" : "device");
    close(ifd);
    logwatch_free(lw);
    config_free(cfg);
}

Test(logwatch, an_absolute_symlink_out_of_the_targets_root_is_not_followed)
{
    escape(ATTACK_ABSOLUTE);
}

Test(logwatch, a_dot_dot_climb_out_of_the_targets_root_is_not_followed)
{
    escape(ATTACK_DOTDOT);
}

Test(logwatch, a_symlink_out_renamed_over_a_followed_log_is_not_followed)
{
    escape(ATTACK_SWAP);
}

Test(logwatch, a_fifo_as_the_log_is_never_opened_nor_waited_on)
{
    escape(ATTACK_FIFO);
}

Test(logwatch, a_device_as_the_log_is_never_opened)
{
    escape(ATTACK_DEVICE);
}

/* Chrooted without a mount namespace of its own, the target's path is in
 * its root all the same (not the file of that name in ours). */
Test(logwatch, a_chrooted_target_in_our_namespace_is_read_in_its_root)
{
    char root[300], logdir[320], good[400];
    make_root(root, sizeof root, logdir, sizeof logdir);
    snprintf(good, sizeof good, "%s/app.log", logdir);
    write_at(good, "", O_TRUNC);
    struct config *cfg = parse("version: 1\nrules: []\ntargets:\n"
                               "  - name: app\n    match: {pid: 1}\n    logs:\n"
                               "      - path: /var/log/app.log\n");
    char err[256] = "";
    struct logwatch *lw = logwatch_new(cfg, err, sizeof err);
    cr_assert_not_null(lw, "%s", err);
    jailed = jail_start(root, false);
    logwatch_target_pid(lw, 0, jailed, NULL);
    drive(lw);
    write_at(good, "inside ERROR\n", O_APPEND);
    wait_matched(lw, 0, 1);
    cr_expect(kept(lw, 0, "inside ERROR"));
    logwatch_free(lw);
    config_free(cfg);
}

/* ---- logs on the host side ---- */

#define CID "3f4c1b2a9e8d7c6b5a493827161504f3e2d1c0b9a8978685746352413021f0e1"
#define OTHER_CID "aaaabbbbccccddddeeeeffff00001111222233334444555566667777888899990"
#define POD_UID "7c3a41a6-5d3e-4b8e-9a1f-0c2d4e6f8a9b"
#define CRI "2024-05-01T10:00:00.000000000Z stdout F "

/* pid's cgroup path, as the daemon reads it (procmeta), which must name
 * the container. */
static void cgroup_of(int pid, char *cgroup, size_t len)
{
    struct proc_meta meta;
    cr_assert_eq(procmeta_read(pid, &meta), 0);
    cr_assert_str_eq(meta.container_id, CID, "cgroup path %s", meta.cgroup);
    snprintf(cgroup, len, "%s", meta.cgroup);
    procmeta_fini(&meta);
}

static void mkdirs(const char *path)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(logwatch, host_logs_are_found_by_the_targets_ids_the_newest_match_followed)
{
    char root[300], logdir[320], host[300], pods[600], containers[400], p[900], q[900];
    char cgroup[512];
    make_root(root, sizeof root, logdir, sizeof logdir);
    snprintf(host, sizeof host, "%s/host", dir);
    /* the kubelet's layout: the container's runs in the pod's directory,
     * 0.log the previous one, and a symlink named after the container id */
    snprintf(pods, sizeof pods, "%s/var/log/pods/shop_app-0_" POD_UID "/app", host);
    snprintf(containers, sizeof containers, "%s/var/log/containers", host);
    mkdirs(pods);
    mkdirs(containers);
    snprintf(p, sizeof p, "%s/0.log", pods);
    write_at(p, CRI "previous run ERROR\n", O_TRUNC);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, p, old, 0), 0);
    char current[700];
    snprintf(current, sizeof current, "%s/1.log", pods);
    write_at(current, "", O_TRUNC);
    /* another container's log, with errors */
    char other[700];
    snprintf(other, sizeof other, "%s/shop_db-0_other-" OTHER_CID ".log", containers);
    write_at(other, "", O_TRUNC);
    /* the same host path inside the target's root, with errors */
    snprintf(q, sizeof q, "%s%s", root, containers);
    mkdirs(q);
    snprintf(q, sizeof q, "%s%s/app-0_shop_app-" CID ".log", root, containers);
    write_at(q, "", O_TRUNC);

    char text[2048];
    snprintf(text, sizeof text,
             "version: 1\nrules: []\ntargets:\n"
             "  - name: app\n    match: {pid: 1}\n    logs:\n"
             "      - path: '%s/*-${container_id}.log'\n        root: host\n"
             "        format: cri\n"
             "      - path: '%s/var/log/pods/*_${pod_uid}/app/*.log'\n        root: host\n"
             "        format: cri\n",
             containers, host);
    struct config *cfg = parse(text);
    char err[256] = "";
    struct logwatch *lw = logwatch_new(cfg, err, sizeof err);
    cr_assert_not_null(lw, "%s", err);
    drive(lw); /* no process yet: no ids, nothing followed */

    /* the cgroups first: the jail is killed before they are removed */
    char parent[320], container[700];
    cgroup_make("memory", parent, sizeof parent);
    cgroup_make_container(parent, POD_UID, CID, container, sizeof container);
    jailed = jail_start(root, true);
    cgroup_join(container, jailed);
    cgroup_of(jailed, cgroup, sizeof cgroup);
    logwatch_target_pid(lw, 0, jailed, cgroup);
    drive(lw);
    /* the kubelet makes the symlink once the container has started */
    char link[700];
    snprintf(link, sizeof link, "%s/app-0_shop_app-" CID ".log", containers);
    cr_assert_eq(symlink(current, link), 0);
    const char *path = NULL;
    int64_t deadline = mono_ns() + 10 * S;
    while (!logwatch_scanner(lw, 0, 0, &path) || strcmp(path, link) != 0) {
        cr_assert_lt(mono_ns(), deadline, "the symlink was never followed (following '%s')",
                     path ? path : "");
        drive(lw);
    }
    cr_assert_not_null(logwatch_scanner(lw, 0, 1, &path));
    cr_expect_str_eq(path, current, "the newest run's log, not %s", path);

    write_at(other, CRI "other container ERROR\n", O_APPEND);
    write_at(q, CRI "inside the target ERROR\n", O_APPEND);
    write_at(current, CRI "host ERROR\n", O_APPEND);
    wait_matched(lw, 0, 1);
    wait_matched(lw, 1, 1);
    drive(lw);
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(log_stats(lw, i).matched, 1, "log %zu: %llu matches", i,
                     (unsigned long long)log_stats(lw, i).matched);
        cr_expect(kept(lw, i, "host ERROR"));
        cr_expect_not(kept(lw, i, "other container"));
        cr_expect_not(kept(lw, i, "inside the target"));
        cr_expect_not(kept(lw, i, "previous run"));
    }
    logwatch_free(lw);
    config_free(cfg);
}
