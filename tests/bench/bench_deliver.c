/* tests/bench/bench_deliver.c - delivery throughput and memory with a backlog.
 *
 * 1,000 bundles with a 200 KB attachment each are put in a spool on disk,
 * then one multipart webhook (signed) delivers them to tests/targets/receiver
 * on 127.0.0.1 (run with --discard: it reads every byte and keeps none).
 * Twice: the receiver healthy, then failing the first request of every
 * bundle (half the requests fail, each bundle is retried once, about 1 s
 * later). Reported: puts and deliveries per second, and the peak RSS of this
 * process during delivery over its RSS before (VmHWM, reset through
 * /proc/self/clear_refs). The same runs with a backlog of 100 show that the
 * peak does not grow with the backlog: the bodies stream from disk.
 *
 * The reference, measured in the same run against the same receiver: a bare
 * libcurl loop posting the same multipart request (the attachment streamed
 * from its file), one at a time on one connection, each followed by what
 * marks a delivery done on disk (a small file written, fsync'd, renamed).
 * On a shared disk that fsync is most of the cost, and it varies: compare
 * ratios, not rates across runs. Goal: delivery within 2x of the bare loop
 * when healthy; peak RSS growth with 1,000 bundles within 1 MiB of the
 * growth with 100.
 *
 *   bench_deliver [BUNDLES [ATTACHMENT_BYTES]]   default 1000 204800 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "config.h"
#include "deliver.h"
#include "slog.h"
#include "spool.h"

#define S 1000000000LL

static pid_t receiver_pid;
static char work[256];

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

static void stop_receiver(void)
{
    if (receiver_pid > 0) {
        kill(receiver_pid, SIGKILL);
        while (waitpid(receiver_pid, NULL, 0) == -1 && errno == EINTR)
            ;
        receiver_pid = 0;
    }
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

static void cleanup(void)
{
    stop_receiver();
    if (work[0])
        rm_rf(work);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_receiver();
    _exit(1);
}

/* Start the receiver with extra arguments; returns its port, 0 on failure. */
static unsigned start_receiver(const char *path, const char *dir, const char *extra)
{
    int out[2];
    if (pipe(out) == -1)
        return 0;
    pid_t pid = fork();
    if (pid == -1)
        return 0;
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        /* stdin: a pipe whose write end it holds itself: no EOF, it runs until killed */
        int in[2];
        if (pipe(in) == 0)
            dup2(in[0], 0);
        if (extra[0])
            execl(path, path, "--discard", "--dir", dir, extra, "500", (char *)NULL);
        else
            execl(path, path, "--discard", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    receiver_pid = pid;
    char line[128];
    FILE *f = fdopen(out[0], "r");
    unsigned port = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "listening %u", &port) != 1)
        port = 0;
    fclose(f);
    return port;
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = atol(line + n + 1);
    }
    if (f)
        fclose(f);
    return kb;
}

static void reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

struct result {
    double puts_per_s;
    double delivered_per_s;
    long rss_before_kb;
    long hwm_kb;
    uint64_t attempts;
    uint64_t delivered;
};

static int run(unsigned port, size_t nbundles, size_t att_bytes, const unsigned char *att,
               struct result *res)
{
    char spool_dir[512], yaml[1024];
    snprintf(spool_dir, sizeof spool_dir, "%s/spool-%zu", work, nbundles);
    snprintf(yaml, sizeof yaml,
             "version: 1\n"
             "targets: [{name: app, match: {process: app}}]\n"
             "rules: [{name: cpu-hot, when: 'cpu > 90%%'}]\n"
             "alert:\n"
             "  spool_dir: %s\n"
             "  webhooks: [{url: 'http://127.0.0.1:%u/hook', format: multipart, timeout: 30s,\n"
             "              secret: 'whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY='}]\n",
             spool_dir, port);
    struct diag_list d;
    struct config *cfg = NULL;
    diag_init(&d);
    if (config_parse("bench.yaml", yaml, strlen(yaml), NULL, NULL, &cfg, &d) != 0) {
        fprintf(stderr, "bench_deliver: config does not parse\n");
        return -1;
    }
    diag_fini(&d);
    struct spool *spool = NULL;
    char err[256] = "";
    if (spool_open(spool_dir, 0, 1, &spool, err, sizeof err) != 0) {
        fprintf(stderr, "bench_deliver: %s\n", err);
        return -1;
    }

    struct alert_attachment a = {.name = "profile.pb.gz",
                                 .content_type = "application/vnd.google.protobuf+gzip",
                                 .size = att_bytes};
    memset(a.sha256, '0', 64);
    sync(); /* the previous run's writeback and deletions do not count here */
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    for (size_t i = 0; i < nbundles; i++) {
        struct alert_input in;
        memset(&in, 0, sizeof in);
        in.kind = ALERT_RULE;
        bundle_new_id(in.id);
        in.created_wall_ns = clock_ns(CLOCK_REALTIME);
        in.created_mono_ns = clock_ns(CLOCK_MONOTONIC);
        in.hostname = "bench";
        in.cfg = cfg;
        in.rule = &cfg->rules[0];
        in.target = &cfg->targets[0];
        in.attachments = &a;
        in.nattachments = 1;
        json_t *b = bundle_build(&in);
        struct spool_file f = {.name = "profile.pb.gz", .data = att, .len = att_bytes};
        int rc = spool_put(spool, in.id, b, &f, 1, in.created_wall_ns, err, sizeof err);
        json_decref(b);
        if (rc != 0) {
            fprintf(stderr, "bench_deliver: spool_put: %s\n", err);
            return -1;
        }
    }
    int64_t t1 = clock_ns(CLOCK_MONOTONIC);
    res->puts_per_s = (double)nbundles * S / (double)(t1 - t0);
    sync(); /* nor the puts' writeback in the deliveries */

    reset_hwm();
    res->rss_before_kb = status_kb("VmRSS");
    struct deliver *dlv = NULL;
    t0 = clock_ns(CLOCK_MONOTONIC);
    if (deliver_new(&cfg->alert, spool, &dlv, err, sizeof err) != 0) {
        fprintf(stderr, "bench_deliver: %s\n", err);
        return -1;
    }
    int64_t deadline = t0 + 600 * S;
    for (;;) {
        struct spool_counters sc;
        struct deliver_counters dc;
        spool_counters(spool, &sc);
        deliver_counters(dlv, &dc);
        if (sc.pending == 0 && dc.in_flight == 0)
            break;
        if (clock_ns(CLOCK_MONOTONIC) > deadline) {
            fprintf(stderr, "bench_deliver: %llu deliveries still pending after 600 s\n",
                    (unsigned long long)sc.pending);
            return -1;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    t1 = clock_ns(CLOCK_MONOTONIC);
    res->hwm_kb = status_kb("VmHWM");
    struct deliver_counters dc;
    deliver_counters(dlv, &dc);
    res->attempts = dc.attempts;
    res->delivered = dc.delivered;
    res->delivered_per_s = (double)dc.delivered * S / (double)(t1 - t0);
    deliver_free(dlv);
    spool_free(spool);
    config_free(cfg);
    rm_rf(spool_dir);
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
    (void)p;
    (void)u;
    return size * n;
}

/* A delivery record's worth of durability: a small file written, fsync'd
 * and renamed into place. */
static int write_record(const char *dir, size_t i)
{
    char tmp[700], final[700];
    snprintf(tmp, sizeof tmp, "%s/.r%zu.tmp", dir, i);
    snprintf(final, sizeof final, "%s/r%zu.json", dir, i);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    static const char rec[] = "{\"hook\":0,\"state\":\"delivered\",\"attempts\":1,"
                              "\"next_attempt_ms\":1700000000000,\"updated_ms\":1700000000000,"
                              "\"last_status\":200,\"last_error\":\"\"}\n";
    int rc = write(fd, rec, sizeof rec - 1) == (ssize_t)(sizeof rec - 1) && fsync(fd) == 0 ? 0 : -1;
    close(fd);
    return rc == 0 ? rename(tmp, final) : -1;
}

/* The reference: the same multipart POST from a bare libcurl loop, each
 * followed by what marks a delivery done (write_record). */
static double bare_per_s(unsigned port, size_t n, const char *att_path, const char *json_path,
                         const char *record_dir)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/bare", port);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        curl_mime *m = curl_mime_init(e);
        curl_mimepart *p = curl_mime_addpart(m);
        curl_mime_name(p, "alert");
        curl_mime_filedata(p, json_path);
        curl_mime_type(p, "application/json");
        p = curl_mime_addpart(m);
        curl_mime_name(p, "profile.pb.gz");
        curl_mime_filedata(p, att_path);
        curl_mime_type(p, "application/vnd.google.protobuf+gzip");
        curl_easy_setopt(e, CURLOPT_MIMEPOST, m);
        long code = 0;
        if (curl_easy_perform(e) == CURLE_OK &&
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 &&
            write_record(record_dir, i) == 0)
            ok++;
        curl_mime_free(m);
    }
    int64_t t1 = clock_ns(CLOCK_MONOTONIC);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return ok == n ? (double)n * S / (double)(t1 - t0) : -1;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    size_t nbundles = argc > 1 ? (size_t)atol(argv[1]) : 1000;
    size_t att_bytes = argc > 2 ? (size_t)atol(argv[2]) : 200 * 1024;
    size_t small = nbundles / 10 ? nbundles / 10 : 1;
    char self[PATH_MAX], receiver[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    snprintf(receiver, sizeof receiver, "%s/../targets/receiver", dirname(self));
    if (access(receiver, X_OK) != 0) {
        fprintf(stderr, "bench_deliver: %s not built\n", receiver);
        return 1;
    }
    snprintf(work, sizeof work, "/var/tmp/stakeout-bench-deliver-XXXXXX");
    if (!mkdtemp(work)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    atexit(cleanup);
    slog_setup(SLOG_ERROR, SLOG_LOGFMT, -1); /* a failing receiver logs every bundle */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    /* attachment: incompressible bytes, as a gzipped profile is */
    unsigned char *att = malloc(att_bytes);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < att_bytes; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        att[i] = (unsigned char)x;
    }
    char recv_dir[512], att_path[512], json_path[512];
    snprintf(recv_dir, sizeof recv_dir, "%s/received", work);
    snprintf(att_path, sizeof att_path, "%s/profile.pb.gz", work);
    snprintf(json_path, sizeof json_path, "%s/alert.json", work);
    mkdir(recv_dir, 0700);
    static const char alert_json[] = "{\"schema\":\"stakeout.alert/v1\",\"padding\":"
                                     "\"about the size of a real bundle's summary\"}";
    if (write_file(att_path, att, att_bytes) != 0 ||
        write_file(json_path, alert_json, strlen(alert_json)) != 0) {
        perror("write");
        return 1;
    }

    int rc = 0;
    for (int failing = 0; failing < 2 && rc == 0; failing++) {
        unsigned port = start_receiver(receiver, recv_dir, failing ? "--fail-first" : "");
        if (!port) {
            fprintf(stderr, "bench_deliver: receiver did not start\n");
            return 2;
        }
        char record_dir[600];
        snprintf(record_dir, sizeof record_dir, "%s/records-%d", work, failing);
        mkdir(record_dir, 0700);
        sync();
        double bare = bare_per_s(port, small, att_path, json_path, record_dir);
        struct result few, all;
        if (run(port, small, att_bytes, att, &few) != 0 ||
            run(port, nbundles, att_bytes, att, &all) != 0) {
            rc = 2;
            break;
        }
        const char *mode = failing ? "receiver failing half" : "receiver healthy     ";
        printf("bench_deliver: %s: %zu bundles x %zu KB: put %.0f/s; delivered %.0f/s "
               "(%llu requests), bare libcurl loop + record fsync %.0f/s%s, ratio %.2f (goal <= 2 "
               "when healthy)\n",
               mode, nbundles, att_bytes / 1024, all.puts_per_s, all.delivered_per_s,
               (unsigned long long)all.attempts, bare, failing ? " (all 200)" : "",
               bare / all.delivered_per_s);
        printf("bench_deliver: %s: peak RSS during delivery %ld KiB over %ld KiB before "
               "with %zu queued, %ld KiB over %ld KiB with %zu queued: growth %+ld KiB "
               "(goal: within 1024)\n",
               mode, few.hwm_kb - few.rss_before_kb, few.rss_before_kb, small,
               all.hwm_kb - all.rss_before_kb, all.rss_before_kb, nbundles,
               (all.hwm_kb - all.rss_before_kb) - (few.hwm_kb - few.rss_before_kb));
        if (all.delivered != nbundles || few.delivered != small) {
            fprintf(stderr, "bench_deliver: delivered %llu of %zu\n",
                    (unsigned long long)all.delivered, nbundles);
            rc = 1;
        }
        stop_receiver();
    }
    free(att);
    curl_global_cleanup();
    return rc;
}
