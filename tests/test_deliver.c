/* tests/test_deliver.c - delivery of spooled bundles (sidecar/deliver) to a
 * real HTTP server: tests/targets/receiver on 127.0.0.1, a child process
 * scripted to answer 200, 500, 400, 429 with Retry-After, hang, close mid
 * request or redirect. What the receiver wrote to disk is the ground truth:
 * every request it saw, with its headers and body.
 *
 * Checked: exactly once per hook when the receiver behaves, at least once
 * with the same id (and webhook-id) when it fails and recovers; Retry-After
 * honoured; timeouts; redirects not followed; 4xx not retried; max_age; a
 * restart with pending deliveries; the Standard Webhooks signature,
 * recomputed here with OpenSSL; deliver_stop with a hanging receiver; the
 * Slack and Alertmanager bodies as those services document them. Waiting
 * is polling a condition against a deadline; every child is killed and
 * reaped by its pid. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "config.h"
#include "deliver.h"
#include "spool.h"
#include "support/child.h"
#include "support/spawn.h"

#define MS 1000000LL
#define S 1000000000LL
#define SECRET_KEY "0123456789abcdef0123456789abcdef" /* 32 bytes */

static char root[256];
static char spool_dir[512];
static char recv_dir[512];
static struct child receiver;
static unsigned port;
static struct config *cfg;
static struct spool *spool;
static struct deliver *dlv;
static char tls_cert[600], tls_key[600]; /* "" unless make_cert: the receiver serves HTTPS */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * S + ts.tv_nsec;
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

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/stakeout-deliver-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", root);
    snprintf(recv_dir, sizeof recv_dir, "%s/received", root);
    cr_assert_eq(mkdir(recv_dir, 0700), 0);
    memset(&receiver, 0, sizeof receiver);
    cfg = NULL;
    spool = NULL;
    dlv = NULL;
    tls_cert[0] = tls_key[0] = '\0';
}

static void teardown(void)
{
    deliver_free(dlv);
    spool_free(spool);
    config_free(cfg);
    if (receiver.pid > 0)
        child_stop(&receiver);
    rm_rf(root);
}

TestSuite(deliver, .init = setup, .fini = teardown, .timeout = 90);

/* Start the receiver with a script ("" for 200 always) and extra flags. */
static void start_receiver(const char *script, bool repeat)
{
    char *argv[12];
    int n = 0;
    argv[n++] = (char *)child_target("receiver");
    argv[n++] = "--dir";
    argv[n++] = recv_dir;
    if (script[0]) {
        argv[n++] = "--script";
        argv[n++] = (char *)script;
    }
    if (repeat)
        argv[n++] = "--repeat";
    if (tls_cert[0]) {
        argv[n++] = "--tls";
        argv[n++] = tls_cert;
        argv[n++] = tls_key;
    }
    argv[n] = NULL;
    cr_assert_eq(child_start(&receiver, argv), 0);
    char line[128];
    cr_assert_geq(child_readline(&receiver, line, sizeof line, 10000), 0, "receiver did not start");
    cr_assert_eq(sscanf(line, "listening %u", &port), 1, "receiver said '%s'", line);
}

/* Parse a config with hooks given as YAML flow maps, each with its {url}
 * placeholder as "URL/<path>". */
static void load_config(const char *const *hooks, size_t nhooks)
{
    char yaml[4096];
    size_t off = (size_t)snprintf(yaml, sizeof yaml,
                                  "version: 1\n"
                                  "targets: [{name: app, match: {process: app}}]\n"
                                  "rules:\n"
                                  "  - {name: cpu-hot, when: 'cpu > 90%%', severity: critical}\n"
                                  "alert:\n  spool_dir: %s\n  webhooks:\n",
                                  spool_dir);
    for (size_t i = 0; i < nhooks; i++) {
        char hook[512];
        const char *u = strstr(hooks[i], "URL");
        cr_assert_not_null(u);
        snprintf(hook, sizeof hook, "%.*s%s://127.0.0.1:%u%s", (int)(u - hooks[i]), hooks[i],
                 tls_cert[0] ? "https" : "http", port, u + 3);
        off += (size_t)snprintf(yaml + off, sizeof yaml - off, "    - %s\n", hook);
    }
    struct diag_list d;
    diag_init(&d);
    int rc = config_parse("test.yaml", yaml, strlen(yaml), NULL, NULL, &cfg, &d);
    if (rc != 0) {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "config: %s\n", d.items[i].msg);
    }
    diag_fini(&d);
    cr_assert_eq(rc, 0, "test config does not parse:\n%s", yaml);
}

static void open_spool(void)
{
    char err[256] = "";
    cr_assert_eq(spool_open(spool_dir, 0, cfg->alert.nwebhooks, &spool, err, sizeof err), 0, "%s",
                 err);
}

static void start_deliver(void)
{
    char err[256] = "";
    cr_assert_eq(deliver_new(&cfg->alert, spool, &dlv, err, sizeof err), 0, "%s", err);
}

/* A real bundle (bundle_build) of the config's rule firing, with a profile
 * attachment of att_bytes bytes. id receives the new id. */
static void put_bundle(char id[BUNDLE_ID_LEN], size_t att_bytes)
{
    bundle_new_id(id);
    size_t n = att_bytes ? att_bytes : 1;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    struct alert_attachment att = {.name = "profile.pb.gz",
                                   .content_type = "application/vnd.google.protobuf+gzip",
                                   .size = att_bytes};
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, att_bytes, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(att.sha256 + 2 * i, 3, "%02x", md[i]);
    struct alert_input in;
    memset(&in, 0, sizeof in);
    in.kind = ALERT_RULE;
    in.state = ALERT_FIRING;
    memcpy(in.id, id, BUNDLE_ID_LEN);
    in.incident = "cpu-hot/app";
    in.created_wall_ns = wall_ns();
    in.created_mono_ns = mono_ns();
    in.hostname = "testhost";
    in.cfg = cfg;
    in.rule = &cfg->rules[0];
    in.target = &cfg->targets[0];
    in.attachments = att_bytes ? &att : NULL;
    in.nattachments = att_bytes ? 1 : 0;
    json_t *b = bundle_build(&in);
    cr_assert_not_null(b);
    struct spool_file f = {.name = "profile.pb.gz", .data = data, .len = att_bytes};
    char err[256] = "";
    int rc = spool_put(spool, id, b, &f, att_bytes ? 1 : 0, in.created_wall_ns, err, sizeof err);
    cr_assert_eq(rc, 0, "spool_put: %s", err);
    json_decref(b);
    free(data);
    if (dlv)
        deliver_kick(dlv);
}

/* ---- what the receiver saw ---------------------------------------------- */

struct got {
    char method[16];
    char path[256];
    char step[32];
    bool complete;
    size_t bytes;
    char *headers; /* owned: "name: value\n" lines */
    char *body;    /* owned, NULL when none */
    size_t body_len;
    int64_t mtime_ns; /* when the receiver finished reading it */
    unsigned seq;
};

static void got_fini(struct got *g)
{
    free(g->headers);
    free(g->body);
    memset(g, 0, sizeof *g);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The value of header name (case-insensitive) into out; false when absent. */
static bool header(const struct got *g, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = g->headers; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l > n + 1 && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            size_t v = l - n - 2;
            snprintf(out, len, "%.*s", (int)v, p + n + 2);
            return true;
        }
        p += l + (nl ? 1 : 0);
    }
    return false;
}

/* Requests received so far, in order (at most max). */
static size_t received(struct got *out, size_t max)
{
    size_t n = 0;
    for (unsigned seq = 0; n < max; seq++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%06u.head", recv_dir, seq);
        struct stat st;
        if (stat(p, &st) != 0)
            break;
        struct got *g = &out[n++];
        memset(g, 0, sizeof *g);
        g->seq = seq;
        g->mtime_ns = (int64_t)st.st_mtim.tv_sec * S + st.st_mtim.tv_nsec;
        char *text = slurp(p, NULL);
        cr_assert_not_null(text);
        size_t hcap = 4096, hn = 0;
        g->headers = calloc(1, hcap);
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            int c = 0;
            if (strncmp(line, "header ", 7) == 0) {
                size_t l = strlen(line + 7);
                if (hn + l + 2 > hcap) {
                    hcap = (hn + l + 2) * 2;
                    g->headers = realloc(g->headers, hcap);
                }
                memcpy(g->headers + hn, line + 7, l);
                hn += l;
                g->headers[hn++] = '\n';
                g->headers[hn] = '\0';
            } else if (sscanf(line, "method %15s", g->method) == 1 ||
                       sscanf(line, "path %255s", g->path) == 1 ||
                       sscanf(line, "step %31s", g->step) == 1) {
            } else if (sscanf(line, "complete %d", &c) == 1) {
                g->complete = c == 1;
            } else {
                sscanf(line, "bytes %zu", &g->bytes);
            }
        }
        free(text);
        snprintf(p, sizeof p, "%s/%06u.body", recv_dir, seq);
        g->body = slurp(p, &g->body_len);
    }
    return n;
}

static size_t count_received(void)
{
    size_t n = 0;
    for (;; n++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%06u.head", recv_dir, (unsigned)n);
        if (access(p, F_OK) != 0)
            return n;
    }
}

static void free_all(struct got *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        got_fini(&g[i]);
}

/* ---- waiting ------------------------------------------------------------ */

static void tick(void)
{
    struct timespec ts = {0, 5 * MS};
    nanosleep(&ts, NULL);
}

static bool wait_received(size_t n, int64_t timeout_ns)
{
    int64_t end = mono_ns() + timeout_ns;
    while (count_received() < n) {
        if (mono_ns() > end)
            return false;
        tick();
    }
    return true;
}

/* Until the record of (id, hook) is in state st. */
static bool wait_state(const char *id, size_t hook, enum spool_state st, int64_t timeout_ns,
                       struct spool_record *out)
{
    int64_t end = mono_ns() + timeout_ns;
    for (;;) {
        struct spool_record r;
        if (spool_record_read(spool, id, hook, &r) == 0 && r.state == st) {
            if (out)
                *out = r;
            return true;
        }
        if (mono_ns() > end)
            return false;
        tick();
    }
}

static bool wait_no_pending(int64_t timeout_ns)
{
    int64_t end = mono_ns() + timeout_ns;
    for (;;) {
        struct spool_counters c;
        spool_counters(spool, &c);
        struct deliver_counters dc;
        deliver_counters(dlv, &dc);
        if (c.pending == 0 && dc.in_flight == 0)
            return true;
        if (mono_ns() > end)
            return false;
        tick();
    }
}

/* ---- tests -------------------------------------------------------------- */

Test(deliver, healthy_receiver_gets_every_bundle_exactly_once_per_hook)
{
    start_receiver("", false);
    const char *hooks[] = {"{url: 'URL/a', format: json}", "{url: 'URL/b', format: multipart}"};
    load_config(hooks, 2);
    open_spool();
    start_deliver();
    enum { N = 20 };
    char ids[N][BUNDLE_ID_LEN];
    for (int i = 0; i < N; i++)
        put_bundle(ids[i], 1000 + (size_t)i);
    cr_assert(wait_no_pending(30 * S), "deliveries still pending");
    cr_assert(wait_received(2 * N, 5 * S));

    static struct got g[4 * N];
    size_t n = received(g, 4 * N);
    cr_expect_eq(n, 2 * N, "%zu requests for %d bundles x 2 hooks", n, N);
    int seen[N][2];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++) {
        int hook = strcmp(g[i].path, "/a") == 0 ? 0 : strcmp(g[i].path, "/b") == 0 ? 1 : -1;
        cr_assert_geq(hook, 0, "unexpected path %s", g[i].path);
        cr_expect_str_eq(g[i].method, "POST");
        cr_expect(g[i].complete);
        /* the id is in the body of both formats */
        for (int k = 0; k < N; k++) {
            if (g[i].body && strstr(g[i].body, ids[k]))
                seen[k][hook]++;
        }
    }
    for (int k = 0; k < N; k++) {
        cr_expect_eq(seen[k][0], 1, "bundle %d on hook 0: %d times", k, seen[k][0]);
        cr_expect_eq(seen[k][1], 1, "bundle %d on hook 1: %d times", k, seen[k][1]);
        struct spool_record r;
        cr_assert_eq(spool_record_read(spool, ids[k], 1, &r), 0);
        cr_expect_eq(r.state, SPOOL_DELIVERED);
        cr_expect_eq(r.attempts, 1);
        cr_expect_eq(r.last_status, 200);
    }
    struct deliver_counters c;
    deliver_counters(dlv, &c);
    cr_expect_eq(c.delivered, 2 * N);
    cr_expect_eq(c.failures, 0);
    cr_expect_eq(c.retries, 0);
    free_all(g, n);
}

Test(deliver, server_error_then_success_retries_with_the_same_id)
{
    start_receiver("500,503", false);
    const char *hooks[] = {"{url: 'URL/a', format: json, secret: "
                           "'whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY='}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    struct spool_record r;
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 20 * S, &r));
    cr_expect_eq(r.attempts, 3);
    cr_expect_eq(r.last_status, 200);
    struct got g[8];
    size_t n = received(g, 8);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        char wid[128];
        cr_assert(header(&g[i], "webhook-id", wid, sizeof wid), "request %zu has no webhook-id", i);
        cr_expect_str_eq(wid, id, "every attempt carries the bundle id");
        cr_expect_not_null(g[i].body);
        cr_expect(g[i].body && strstr(g[i].body, id));
    }
    /* exponential backoff: about 1 s, then about 2 s (with jitter: [half, full]) */
    int64_t gap1 = g[1].mtime_ns - g[0].mtime_ns, gap2 = g[2].mtime_ns - g[1].mtime_ns;
    cr_expect(gap1 >= 450 * MS && gap1 < 1500 * MS, "first retry after %lld ms",
              (long long)(gap1 / MS));
    cr_expect(gap2 >= 950 * MS && gap2 < 2500 * MS, "second retry after %lld ms",
              (long long)(gap2 / MS));
    struct deliver_counters c;
    deliver_counters(dlv, &c);
    cr_expect_eq(c.delivered, 1);
    cr_expect_eq(c.failures, 2);
    cr_expect_eq(c.retries, 2);
    free_all(g, n);
}

Test(deliver, too_many_requests_waits_for_retry_after)
{
    start_receiver("429:2", false);
    const char *hooks[] = {"{url: 'URL/a', format: json}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 20 * S, NULL));
    struct got g[4];
    size_t n = received(g, 4);
    cr_assert_eq(n, 2);
    int64_t gap = g[1].mtime_ns - g[0].mtime_ns;
    cr_expect(gap >= 1900 * MS && gap < 3500 * MS, "retried after %lld ms, Retry-After: 2",
              (long long)(gap / MS));
    free_all(g, n);
}

Test(deliver, hanging_receiver_times_out_and_is_retried)
{
    start_receiver("hang", false);
    const char *hooks[] = {"{url: 'URL/a', format: json, timeout: 1s, connect_timeout: 500ms}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    int64_t t0 = mono_ns();
    put_bundle(id, 100);
    struct spool_record r;
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 20 * S, &r));
    cr_expect_geq(mono_ns() - t0, 1 * S, "the timeout was waited for");
    cr_expect_eq(r.attempts, 2);
    cr_expect_eq(count_received(), 2);
    struct deliver_counters c;
    deliver_counters(dlv, &c);
    cr_expect_eq(c.failures, 1);
    cr_expect_eq(c.delivered, 1);
}

Test(deliver, connection_closed_mid_request_is_retried)
{
    start_receiver("close", false);
    const char *hooks[] = {"{url: 'URL/a', format: multipart}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    size_t big = 2 * 1024 * 1024; /* many reads: the close lands mid-body */
    put_bundle(id, big);
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 20 * S, NULL));
    struct got g[4];
    size_t n = received(g, 4);
    cr_assert_eq(n, 2);
    cr_expect_not(g[0].complete, "the first request was cut");
    cr_expect(g[1].complete);
    cr_expect_gt(g[1].bytes, big, "the second carried the whole attachment");
    /* the attachment part arrived intact */
    char p[1024];
    snprintf(p, sizeof p, "%s/%06u.part.profile.pb.gz", recv_dir, g[1].seq);
    struct stat st;
    if (stat(p, &st) != 0) {
        /* parts may be named otherwise by the format: find any part of the right size */
        DIR *d = opendir(recv_dir);
        struct dirent *de;
        bool found = false;
        while ((de = readdir(d)) != NULL) {
            char q[1024];
            snprintf(q, sizeof q, "%s/%s", recv_dir, de->d_name);
            if (strncmp(de->d_name, "000001.part.", 12) == 0 && stat(q, &st) == 0 &&
                (size_t)st.st_size == big)
                found = true;
        }
        closedir(d);
        cr_expect(found, "no part of %zu bytes in the second request", big);
    } else {
        cr_expect_eq((size_t)st.st_size, big);
    }
    free_all(g, n);
}

Test(deliver, redirect_is_not_followed)
{
    start_receiver("redirect", false);
    const char *hooks[] = {"{url: 'URL/a', format: json}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    struct spool_record r;
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 20 * S, &r));
    cr_expect_eq(r.attempts, 2, "the redirect counted as a failed attempt");
    struct got g[4];
    size_t n = received(g, 4);
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(g[i].path, "/a", "request %zu went to %s", i, g[i].path);
    free_all(g, n);
}

Test(deliver, client_error_is_a_configuration_error_not_retried)
{
    start_receiver("400,410", false);
    const char *hooks[] = {"{url: 'URL/a', format: json}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char a[BUNDLE_ID_LEN], b[BUNDLE_ID_LEN], c2[BUNDLE_ID_LEN];
    put_bundle(a, 100);
    struct spool_record r;
    cr_assert(wait_state(a, 0, SPOOL_FAILED, 10 * S, &r));
    cr_expect_eq(r.attempts, 1);
    cr_expect_eq(r.last_status, 400);
    cr_expect(strstr(r.last_error, "400") != NULL, "%s", r.last_error);
    put_bundle(b, 100);
    cr_assert(wait_state(b, 0, SPOOL_FAILED, 10 * S, &r));
    cr_expect_eq(r.last_status, 410);
    /* the next bundle goes through: the hook is not disabled */
    put_bundle(c2, 100);
    cr_assert(wait_state(c2, 0, SPOOL_DELIVERED, 10 * S, NULL));
    cr_expect_eq(count_received(), 3, "no retry of a rejected bundle");
    struct deliver_counters c;
    deliver_counters(dlv, &c);
    cr_expect_eq(c.rejected, 2);
    cr_expect_eq(c.dropped, 2);
    cr_expect_eq(c.delivered, 1);
}

Test(deliver, failing_receiver_is_given_up_at_max_age)
{
    start_receiver("500", true);
    const char *hooks[] = {"{url: 'URL/a', format: json}"};
    load_config(hooks, 1);
    cfg->alert.webhooks[0].max_age_ns = 3 * S; /* shorter than the config allows */
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    int64_t t0 = mono_ns();
    put_bundle(id, 100);
    struct spool_record r;
    cr_assert(wait_state(id, 0, SPOOL_FAILED, 20 * S, &r));
    int64_t took = mono_ns() - t0;
    cr_expect(took >= 2900 * MS && took < 6 * S, "given up after %lld ms, max_age 3 s",
              (long long)(took / MS));
    cr_expect_geq(r.attempts, 3, "1 s, 2 s, then the last try at max_age");
    cr_expect_eq(r.last_status, 500);
    cr_expect_eq(count_received(), r.attempts);
    struct deliver_counters c;
    deliver_counters(dlv, &c);
    cr_expect_eq(c.expired, 1);
    cr_expect_eq(c.dropped, 1);
    cr_expect_eq(c.delivered, 0);
}

Test(deliver, restart_with_pending_deliveries_delivers_them)
{
    start_receiver("hang", false);
    const char *hooks[] = {"{url: 'URL/a', format: json, timeout: 60s}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    enum { N = 5 };
    char ids[N][BUNDLE_ID_LEN];
    for (int i = 0; i < N; i++)
        put_bundle(ids[i], 100);
    cr_assert(wait_received(1, 10 * S), "the first request reached the receiver");
    int64_t t0 = mono_ns();
    cr_assert_eq(deliver_stop(dlv, 5 * S), 0);
    cr_expect_lt(mono_ns() - t0, 2 * S, "stop does not wait for the hanging request");
    deliver_free(dlv);
    dlv = NULL;
    struct spool_counters sc;
    spool_counters(spool, &sc);
    cr_expect_eq(sc.pending, N, "nothing delivered, nothing lost");
    spool_free(spool);
    spool = NULL;

    /* stakeout starts again: same spool, the receiver has recovered */
    open_spool();
    start_deliver();
    for (int i = 0; i < N; i++)
        cr_assert(wait_state(ids[i], 0, SPOOL_DELIVERED, 20 * S, NULL), "bundle %d", i);
    struct got g[2 * N];
    size_t n = received(g, 2 * N);
    cr_expect_eq(n, N + 1, "each bundle once, the hung one twice");
    for (int k = 0; k < N; k++) {
        int seen = 0;
        for (size_t i = 0; i < n; i++) {
            seen += g[i].body && strstr(g[i].body, ids[k]) != NULL;
        }
        cr_expect_geq(seen, 1, "bundle %d never arrived", k);
    }
    free_all(g, n);
}

/* A self-signed certificate for 127.0.0.1 (openssl req), for the receiver. */
static void make_cert(void)
{
    snprintf(tls_cert, sizeof tls_cert, "%s/cert.pem", root);
    snprintf(tls_key, sizeof tls_key, "%s/key.pem", root);
    char *argv[] = {"/usr/bin/openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    tls_key,
                    "-out",
                    tls_cert,
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    NULL};
    struct spawn_result res;
    cr_assert_eq(spawn_capture(argv, NULL, 30000, &res), 0);
    cr_assert_eq(res.status, 0, "openssl req failed: %s", res.err);
    spawn_result_fini(&res);
}

Test(deliver, tls_certificates_are_verified_by_default)
{
    make_cert();
    start_receiver("", false);
    const char *hooks[] = {"{url: 'URL/a', format: json}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    int64_t end = mono_ns() + 10 * S;
    struct spool_record r;
    memset(&r, 0, sizeof r);
    while (mono_ns() < end) {
        if (spool_record_read(spool, id, 0, &r) == 0 && r.attempts >= 1)
            break;
        tick();
    }
    cr_assert_geq(r.attempts, 1, "no attempt was made");
    cr_expect_eq(r.state, SPOOL_PENDING, "a TLS failure is retried");
    cr_expect_eq(r.last_status, 0);
    cr_expect(strstr(r.last_error, "SSL") || strstr(r.last_error, "certificate"), "error: %s",
              r.last_error);
    cr_expect_eq(count_received(), 0, "nothing was sent to an unverified server");
}

Test(deliver, tls_ca_file_trusts_a_private_certificate)
{
    make_cert();
    start_receiver("", false);
    char hook[1024];
    snprintf(hook, sizeof hook, "{url: 'URL/a', format: json, tls: {ca_file: '%s'}}", tls_cert);
    const char *hooks[] = {hook};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    struct spool_record r;
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 10 * S, &r));
    cr_expect_eq(r.attempts, 1);
    cr_expect_eq(count_received(), 1);
}

Test(deliver, tls_insecure_skip_verify_accepts_any_certificate)
{
    make_cert();
    start_receiver("", false);
    const char *hooks[] = {"{url: 'URL/a', format: json, tls: {insecure_skip_verify: true}}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 10 * S, NULL));
    cr_expect_eq(count_received(), 1);
}

Test(deliver, bundle_past_max_age_at_start_is_given_up_unsent)
{
    start_receiver("", false);
    const char *hooks[] = {"{url: 'URL/a', format: json}"};
    load_config(hooks, 1);
    open_spool();
    /* put while stakeout was "down": created 25 h ago, never attempted */
    char old[BUNDLE_ID_LEN], fresh[BUNDLE_ID_LEN];
    bundle_new_id(old);
    json_t *b = json_pack("{s:s, s:s}", "schema", BUNDLE_SCHEMA, "id", old);
    char err[256] = "";
    cr_assert_eq(spool_put(spool, old, b, NULL, 0, wall_ns() - 25 * 3600 * S, err, sizeof err), 0,
                 "%s", err);
    json_decref(b);
    start_deliver();
    put_bundle(fresh, 100);
    cr_assert(wait_state(fresh, 0, SPOOL_DELIVERED, 10 * S, NULL));
    struct spool_record r;
    cr_assert(wait_state(old, 0, SPOOL_FAILED, 10 * S, &r));
    cr_expect_eq(r.attempts, 0);
    cr_expect_eq(count_received(), 1, "only the fresh bundle was sent");
    struct deliver_counters c;
    deliver_counters(dlv, &c);
    cr_expect_eq(c.expired, 1);
    cr_expect_eq(c.attempts, 1);
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

Test(deliver, signature_verifies_with_the_standard_webhooks_scheme)
{
    start_receiver("", false);
    char secret[128] = "whsec_";
    b64((const unsigned char *)SECRET_KEY, strlen(SECRET_KEY), secret + 6);
    char hook[256];
    snprintf(hook, sizeof hook, "{url: 'URL/a', format: json, secret: '%s'}", secret);
    const char *hooks[] = {hook};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 5000);
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 10 * S, NULL));
    struct got g[2];
    size_t n = received(g, 2);
    cr_assert_eq(n, 1);
    char wid[128], wts[64], wsig[512];
    cr_assert(header(&g[0], "webhook-id", wid, sizeof wid));
    cr_assert(header(&g[0], "webhook-timestamp", wts, sizeof wts));
    cr_assert(header(&g[0], "webhook-signature", wsig, sizeof wsig));
    cr_expect_str_eq(wid, id);
    long long ts = atoll(wts);
    cr_expect(llabs(ts - wall_ns() / S) < 300, "timestamp %lld within 5 minutes", ts);

    /* HMAC-SHA256(key, id.timestamp.body), base64, "v1," */
    size_t blen = strlen(wid) + strlen(wts) + 2 + g[0].body_len;
    char *content = malloc(blen);
    int k = sprintf(content, "%s.%s.", wid, wts);
    memcpy(content + k, g[0].body, g[0].body_len);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), SECRET_KEY, (int)strlen(SECRET_KEY), (unsigned char *)content, blen, mac,
         &maclen);
    free(content);
    char want[128] = "v1,";
    b64(mac, maclen, want + 3);
    bool match = false;
    for (char *save = NULL, *sig = strtok_r(wsig, " ", &save); sig;
         sig = strtok_r(NULL, " ", &save))
        match = match || strcmp(sig, want) == 0;
    cr_expect(match, "signature '%s' is not '%s'", wsig, want);
    free_all(g, n);
}

Test(deliver, hanging_receiver_delays_neither_puts_nor_stop)
{
    start_receiver("hang", true);
    const char *hooks[] = {"{url: 'URL/a', format: json, timeout: 300s}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    cr_assert(wait_received(1, 10 * S));
    /* captures go on while the receiver hangs: a put does not wait for it */
    char id2[BUNDLE_ID_LEN];
    int64_t t0 = mono_ns();
    put_bundle(id2, 100000);
    int64_t put_took = mono_ns() - t0;
    cr_expect_lt(put_took, 1 * S, "a put took %lld ms", (long long)(put_took / MS));
    t0 = mono_ns();
    cr_assert_eq(deliver_stop(dlv, 3 * S), 0);
    int64_t took = mono_ns() - t0;
    cr_expect_lt(took, 1 * S, "stop took %lld ms", (long long)(took / MS));
    struct spool_record r;
    cr_assert_eq(spool_record_read(spool, id, 0, &r), 0);
    cr_expect_eq(r.state, SPOOL_PENDING, "an aborted attempt leaves the delivery pending");
}

Test(deliver, slack_body_is_an_incoming_webhook_message)
{
    start_receiver("", false);
    const char *hooks[] = {"{url: 'URL/slack', format: slack}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 10 * S, NULL));
    struct got g[2];
    size_t n = received(g, 2);
    cr_assert_eq(n, 1);
    char ct[128];
    cr_assert(header(&g[0], "Content-Type", ct, sizeof ct));
    cr_expect(strncmp(ct, "application/json", 16) == 0, "%s", ct);
    json_error_t je;
    json_t *m = json_loadb(g[0].body, g[0].body_len, 0, &je);
    cr_assert_not_null(m, "%s", je.text);
    /* api.slack.com/messaging/webhooks: "text" (the notification fallback),
     * optionally "blocks" (Block Kit); nothing a webhook may not set */
    const char *allowed[] = {"text",      "blocks",       "attachments", "mrkdwn",
                             "thread_ts", "unfurl_links", "unfurl_media"};
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok = ok || strcmp(key, allowed[i]) == 0;
        cr_expect(ok, "key '%s' is not part of an incoming webhook message", key);
    }
    json_t *text = json_object_get(m, "text");
    cr_expect(json_is_string(text) && json_string_length(text) > 0);
    cr_expect(strstr(json_string_value(text), "cpu-hot") != NULL, "the rule is named");
    json_t *blocks = json_object_get(m, "blocks");
    if (blocks) {
        cr_expect(json_is_array(blocks) && json_array_size(blocks) <= 50);
        size_t i;
        json_t *b;
        json_array_foreach(blocks, i, b)
        {
            const char *type = json_string_value(json_object_get(b, "type"));
            cr_expect_not_null(type, "block %zu has no type", i);
        }
    }
    json_decref(m);
    free_all(g, n);
}

static bool rfc3339(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    return end && (*end == 'Z' || *end == '.' || *end == '+' || *end == '-');
}

Test(deliver, alertmanager_body_is_a_postable_alerts_array)
{
    start_receiver("", false);
    const char *hooks[] = {"{url: 'URL/api/v2/alerts', format: alertmanager}"};
    load_config(hooks, 1);
    open_spool();
    start_deliver();
    char id[BUNDLE_ID_LEN];
    put_bundle(id, 100);
    cr_assert(wait_state(id, 0, SPOOL_DELIVERED, 10 * S, NULL));
    struct got g[2];
    size_t n = received(g, 2);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(g[0].path, "/api/v2/alerts");
    char ct[128];
    cr_assert(header(&g[0], "Content-Type", ct, sizeof ct));
    cr_expect(strncmp(ct, "application/json", 16) == 0, "%s", ct);
    json_error_t je;
    json_t *arr = json_loadb(g[0].body, g[0].body_len, 0, &je);
    cr_assert_not_null(arr, "%s", je.text);
    cr_assert(json_is_array(arr) && json_array_size(arr) >= 1);
    /* api/v2/openapi.yaml postableAlert: labels (required, string map),
     * annotations (string map), startsAt, endsAt (date-time), generatorURL */
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        const char *key;
        json_t *v;
        json_object_foreach(a, key, v)
        {
            bool ok = strcmp(key, "labels") == 0 || strcmp(key, "annotations") == 0 ||
                      strcmp(key, "startsAt") == 0 || strcmp(key, "endsAt") == 0 ||
                      strcmp(key, "generatorURL") == 0;
            cr_expect(ok, "key '%s' is not in postableAlert", key);
        }
        json_t *labels = json_object_get(a, "labels");
        cr_assert(json_is_object(labels) && json_object_size(labels) > 0, "labels required");
        json_object_foreach(labels, key, v)
        {
            cr_expect(json_is_string(v), "label %s is not a string", key);
        }
        cr_expect_str_eq(json_string_value(json_object_get(labels, "alertname")), "cpu-hot");
        json_t *ann = json_object_get(a, "annotations");
        if (ann) {
            json_object_foreach(ann, key, v)
            {
                cr_expect(json_is_string(v), "annotation %s is not a string", key);
            }
        }
        json_t *t = json_object_get(a, "startsAt");
        if (t)
            cr_expect(rfc3339(json_string_value(t)), "startsAt %s", json_string_value(t));
        t = json_object_get(a, "endsAt");
        if (t)
            cr_expect(rfc3339(json_string_value(t)), "endsAt %s", json_string_value(t));
        t = json_object_get(a, "generatorURL");
        if (t)
            cr_expect(json_is_string(t));
    }
    json_decref(arr);
    free_all(g, n);
}

Test(deliver, policy_classifies_and_backs_off)
{
    cr_expect_eq(deliver_classify(200), DELIVER_OK);
    cr_expect_eq(deliver_classify(204), DELIVER_OK);
    cr_expect_eq(deliver_classify(0), DELIVER_RETRY);
    cr_expect_eq(deliver_classify(302), DELIVER_RETRY);
    cr_expect_eq(deliver_classify(408), DELIVER_RETRY);
    cr_expect_eq(deliver_classify(429), DELIVER_RETRY);
    cr_expect_eq(deliver_classify(500), DELIVER_RETRY);
    cr_expect_eq(deliver_classify(504), DELIVER_RETRY);
    cr_expect_eq(deliver_classify(400), DELIVER_PERMANENT);
    cr_expect_eq(deliver_classify(401), DELIVER_PERMANENT);
    cr_expect_eq(deliver_classify(404), DELIVER_PERMANENT);
    cr_expect_eq(deliver_classify(410), DELIVER_PERMANENT);
    cr_expect_eq(deliver_classify(101), DELIVER_PERMANENT);

    /* base 1, 2, 4 ... 512, then 600 s; jitter within [base/2, base] */
    int64_t base = S;
    for (uint32_t a = 1; a <= 15; a++) {
        int64_t lo = deliver_backoff_ns(a, 0), hi = deliver_backoff_ns(a, UINT64_MAX - 1);
        int64_t want = base < DELIVER_BACKOFF_MAX_NS ? base : DELIVER_BACKOFF_MAX_NS;
        cr_expect_eq(lo, want / 2, "attempt %u", a);
        cr_expect_leq(hi, want);
        cr_expect_geq(hi, want / 2);
        base *= 2;
    }
    cr_expect_eq(deliver_backoff_ns(UINT32_MAX, 0), DELIVER_BACKOFF_MAX_NS / 2);

    int64_t next = 0;
    int64_t now = 1000 * S, deadline = now + 100 * S;
    cr_expect(deliver_next(now, deadline, 1, 0, 0, &next));
    cr_expect_eq(next, now + S / 2);
    cr_expect(deliver_next(now, deadline, 1, 30 * S, 0, &next), "Retry-After honoured");
    cr_expect_eq(next, now + 30 * S);
    cr_expect_not(deliver_next(now, deadline, 1, 101 * S, 0, &next),
                  "Retry-After beyond max_age: give up");
    cr_expect(deliver_next(now, deadline, 12, 0, 0, &next), "backoff cut to the deadline");
    cr_expect_eq(next, deadline);
    cr_expect_not(deliver_next(deadline, deadline, 1, 0, 0, &next));
}
