/* sidecar/deliver.c - the delivery thread and its retry policy; see deliver.h. */
#include "deliver.h"

#include "clock.h"
#include "slog.h"
#include "webhook.h"
#include "xalloc.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL
#define WAIT_MAX_MS 1000 /* look at the clock at least this often (it may jump) */

/* ---- policy (pure) ------------------------------------------------------ */

enum deliver_verdict deliver_classify(long status)
{
    if (status >= 200 && status < 300)
        return DELIVER_OK;
    if (status == 0 || status == 408 || status == 429 || (status >= 300 && status < 400) ||
        status >= 500)
        return DELIVER_RETRY;
    return DELIVER_PERMANENT;
}

int64_t deliver_backoff_ns(uint32_t attempts, uint64_t rnd)
{
    int64_t base = DELIVER_BACKOFF_MIN_NS;
    for (uint32_t i = 1; i < attempts && base < DELIVER_BACKOFF_MAX_NS; i++)
        base *= 2;
    if (base > DELIVER_BACKOFF_MAX_NS)
        base = DELIVER_BACKOFF_MAX_NS;
    int64_t half = base / 2;
    return half + (int64_t)(rnd % (uint64_t)(base - half + 1));
}

bool deliver_next(int64_t now_ns, int64_t deadline_ns, uint32_t attempts, int64_t retry_after_ns,
                  uint64_t rnd, int64_t *next_ns)
{
    if (now_ns >= deadline_ns)
        return false;
    int64_t delay = deliver_backoff_ns(attempts, rnd);
    if (retry_after_ns > 0) {
        if (retry_after_ns > deadline_ns - now_ns)
            return false;
        if (retry_after_ns > delay)
            delay = retry_after_ns;
    }
    int64_t next = delay > deadline_ns - now_ns ? deadline_ns : now_ns + delay;
    *next_ns = next;
    return true;
}

/* ---- state -------------------------------------------------------------- */

struct xfer;

struct hook {
    const struct webhook_spec *spec; /* borrowed */
    size_t index;
    char host[256]; /* for log lines: never the path or query (tokens live there) */
    int64_t connect_timeout_ns;
    int64_t timeout_ns;
    int64_t max_age_ns;
    bool insecure;
    const char *ca_file;     /* borrowed, may be NULL */
    struct xfer *busy;       /* the transfer in flight, or NULL */
    int64_t next_due_ns;     /* earliest pending (cached); INT64_MIN: look again */
    int64_t paused_until_ns; /* 429/503 Retry-After holds the whole endpoint */
    bool failing;            /* the last attempt failed: log transitions only */
};

struct xfer {
    struct hook *hook; /* borrowed */
    struct spool_work w;
    struct webhook_request req;
    bool built;
    CURL *easy;                 /* owned */
    struct curl_slist *headers; /* owned */
    curl_mime *mime;            /* owned */
    FILE *body;                 /* owned: req.body_path, streamed */
    char errbuf[CURL_ERROR_SIZE];
};

struct deliver {
    const struct alert_spec *alert; /* borrowed */
    struct spool *spool;            /* borrowed */
    struct hook *hooks;             /* owned, alert->nwebhooks */
    size_t nhooks;
    CURLM *multi; /* owned */
    pthread_t thread;
    bool running; /* thread started and not joined */
    atomic_bool stop;
    atomic_bool kicked;
    uint64_t rng;       /* the thread's own */
    pthread_mutex_t mu; /* guards c */
    struct deliver_counters c;
};

static uint64_t next_rand(struct deliver *d)
{
    /* xorshift64*: jitter only, nothing secret */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 0x2545F4914F6CDD1DULL;
}

static void count(struct deliver *d, uint64_t *field, int64_t delta)
{
    pthread_mutex_lock(&d->mu);
    *field = (uint64_t)((int64_t)*field + delta);
    pthread_mutex_unlock(&d->mu);
}

/* The options of one hook, defaults filled in. */
static void hook_init(struct hook *h, const struct webhook_spec *spec, size_t index)
{
    memset(h, 0, sizeof *h);
    h->spec = spec;
    h->index = index;
    /* zero (a spec not from config_parse) means the configuration's default */
    h->timeout_ns = spec->timeout_ns > 0 ? spec->timeout_ns : CONFIG_DEFAULT_WEBHOOK_TIMEOUT_NS;
    h->connect_timeout_ns =
        spec->connect_timeout_ns > 0 ? spec->connect_timeout_ns : CONFIG_DEFAULT_CONNECT_TIMEOUT_NS;
    if (h->connect_timeout_ns > h->timeout_ns)
        h->connect_timeout_ns = h->timeout_ns;
    h->max_age_ns = spec->max_age_ns > 0 ? spec->max_age_ns : CONFIG_DEFAULT_MAX_AGE_NS;
    h->insecure = spec->tls.insecure_skip_verify;
    h->ca_file = spec->tls.ca_file;
    h->next_due_ns = INT64_MIN;
    snprintf(h->host, sizeof h->host, "?");
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, spec->url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(h->host, sizeof h->host, "%s", host);
    curl_free(host);
    curl_url_cleanup(u);
}

static void hook_log(enum slog_level level, const struct hook *h, const char *msg, const char *id,
                     long status, const char *error)
{
    char idx[24], st[24];
    snprintf(idx, sizeof idx, "%zu", h->index);
    snprintf(st, sizeof st, "%ld", status);
    slog(level, msg, "hook", idx, "host", h->host, "format", webhook_format_name(h->spec->format),
         "id", id, "status", st, "error", error ? error : "", NULL);
}

/* ---- one transfer ------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static size_t read_body(char *buf, size_t size, size_t nitems, void *userdata)
{
    FILE *f = userdata;
    size_t n = fread(buf, 1, size * nitems, f);
    if (n == 0 && ferror(f))
        return CURL_READFUNC_ABORT;
    return n;
}

static void xfer_free(struct xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_mime_free(x->mime);
    curl_slist_free_all(x->headers);
    if (x->body)
        fclose(x->body);
    if (x->built)
        webhook_request_fini(&x->req);
    free(x);
}

static bool has_header(const struct webhook_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return true;
    }
    return false;
}

static int add_parts(struct xfer *x)
{
    x->mime = curl_mime_init(x->easy);
    for (size_t i = 0; i < x->req.nparts; i++) {
        const struct webhook_part *p = &x->req.parts[i];
        curl_mimepart *mp = curl_mime_addpart(x->mime);
        CURLcode rc = curl_mime_name(mp, p->name);
        if (rc == CURLE_OK && p->path[0])
            rc = curl_mime_filedata(mp, p->path);
        else if (rc == CURLE_OK)
            rc = curl_mime_data(mp, p->data ? p->data : "", p->len);
        /* filedata names the part after the file: the spec's name wins, "" is none */
        if (rc == CURLE_OK)
            rc = curl_mime_filename(mp, p->filename[0] ? p->filename : NULL);
        if (rc == CURLE_OK && p->content_type[0])
            rc = curl_mime_type(mp, p->content_type);
        if (rc != CURLE_OK)
            return rc == CURLE_READ_ERROR ? -ENOENT : -EINVAL;
    }
    return curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime) == CURLE_OK ? 0 : -EINVAL;
}

static int set_body(struct xfer *x)
{
    const struct webhook_request *r = &x->req;
    CURL *e = x->easy;
    if (r->nparts > 0 || r->parts)
        return add_parts(x);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    if (r->body_path[0]) {
        x->body = fopen(r->body_path, "rbe");
        if (!x->body)
            return -errno;
        if (fseeko(x->body, 0, SEEK_END) == -1)
            return -errno;
        off_t size = ftello(x->body);
        rewind(x->body);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(e, CURLOPT_READDATA, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    }
    return 0;
}

/* Build the request and its easy handle. Returns 0 or a negative errno
 * with a reason in why. */
static int xfer_setup(struct deliver *d, struct xfer *x, int64_t now_ns, char *why, size_t len)
{
    struct hook *h = x->hook;
    char dir[4096];
    int rc = spool_bundle_dir(d->spool, x->w.id, dir, sizeof dir);
    if (rc == 0)
        rc = webhook_request_build(h->spec, dir, x->w.id, now_ns / NS_PER_S, &x->req);
    if (rc != 0) {
        snprintf(why, len, "cannot build the request: %s", strerror(-rc));
        return rc;
    }
    x->built = true;
    x->easy = curl_easy_init();
    if (!x->easy) {
        snprintf(why, len, "curl_easy_init failed");
        return -ENOMEM;
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, h->spec->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(h->connect_timeout_ns / NS_PER_MS));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(h->timeout_ns / NS_PER_MS));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "stakeout/" STAKEOUT_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    for (size_t i = 0; i < x->req.nheaders; i++)
        x->headers = curl_slist_append(x->headers, x->req.headers[i]);
    /* no "Expect: 100-continue" round trip before large bodies */
    x->headers = curl_slist_append(x->headers, "Expect:");
    if (!x->req.nparts && !x->req.parts && x->req.content_type[0] &&
        !has_header(&x->req, "Content-Type")) {
        char ct[160];
        snprintf(ct, sizeof ct, "Content-Type: %s", x->req.content_type);
        x->headers = curl_slist_append(x->headers, ct);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    rc = set_body(x);
    if (rc != 0) {
        snprintf(why, len, "cannot read the bundle: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

/* Record the outcome of an attempt and release the transfer. status: the
 * HTTP status, 0 when none came back (error says why). */
static void finish(struct deliver *d, struct xfer *x, long status, int64_t retry_after_ns,
                   const char *error)
{
    struct hook *h = x->hook;
    int64_t now = clock_wall_ns();
    struct spool_record rec = x->w.rec;
    rec.attempts++;
    rec.updated_ns = now;
    rec.last_status = (int)status;
    rec.last_error[0] = '\0';
    enum deliver_verdict v = deliver_classify(status);
    int64_t deadline = x->w.created_ns + h->max_age_ns;

    pthread_mutex_lock(&d->mu);
    d->c.in_flight--;
    if (v == DELIVER_OK)
        d->c.delivered++;
    else
        d->c.failures++;
    pthread_mutex_unlock(&d->mu);

    if (v == DELIVER_OK) {
        rec.state = SPOOL_DELIVERED;
        if (h->failing)
            hook_log(SLOG_INFO, h, "webhook delivers again", x->w.id, status, NULL);
        h->failing = false;
    } else {
        if (status > 0)
            snprintf(rec.last_error, sizeof rec.last_error, "HTTP %ld%s", status,
                     status >= 300 && status < 400 ? " (redirects are not followed)" : "");
        else
            snprintf(rec.last_error, sizeof rec.last_error, "%s", error ? error : "failed");
        int64_t next = 0;
        if (v == DELIVER_PERMANENT) {
            rec.state = SPOOL_FAILED;
            hook_log(SLOG_ERROR, h, "webhook rejected the bundle: configuration error, not retried",
                     x->w.id, status, rec.last_error);
            count(d, &d->c.dropped, 1);
            count(d, &d->c.rejected, 1);
        } else if (deliver_next(now, deadline, rec.attempts, retry_after_ns, next_rand(d), &next)) {
            rec.state = SPOOL_PENDING;
            rec.next_attempt_ns = next;
            if (!h->failing)
                hook_log(SLOG_WARN, h, "webhook delivery failed, will retry", x->w.id, status,
                         rec.last_error);
            h->failing = true;
        } else {
            rec.state = SPOOL_FAILED;
            hook_log(SLOG_ERROR, h, "webhook delivery given up at max_age", x->w.id, status,
                     rec.last_error);
            count(d, &d->c.dropped, 1);
            count(d, &d->c.expired, 1);
        }
        if (retry_after_ns > 0 && (status == 429 || status == 503))
            h->paused_until_ns = now + retry_after_ns;
    }
    int rc = spool_update(d->spool, x->w.id, x->w.hook, &rec);
    if (rc == -ENOENT) {
        hook_log(SLOG_WARN, h, "bundle gone from the spool", x->w.id, status, NULL);
        if (rec.state == SPOOL_PENDING)
            count(d, &d->c.dropped, 1);
    } else if (rc != 0) {
        hook_log(SLOG_ERROR, h, "cannot write the delivery record", x->w.id, status, strerror(-rc));
    }
    h->busy = NULL;
    h->next_due_ns = INT64_MIN;
    xfer_free(x);
}

/* Start the claimed delivery w on hook h. */
static void start(struct deliver *d, struct hook *h, const struct spool_work *w, int64_t now)
{
    struct xfer *x = xcalloc(1, sizeof *x);
    x->hook = h;
    x->w = *w;
    h->busy = x;
    pthread_mutex_lock(&d->mu);
    d->c.in_flight++;
    d->c.attempts++;
    if (w->rec.attempts > 0)
        d->c.retries++;
    pthread_mutex_unlock(&d->mu);

    int64_t deadline = w->created_ns + h->max_age_ns;
    if (now >= deadline && w->rec.next_attempt_ns < deadline) {
        /* due before max_age but only looked at after it (stakeout was down) */
        struct spool_record rec = w->rec;
        rec.state = SPOOL_FAILED;
        rec.updated_ns = now;
        snprintf(rec.last_error, sizeof rec.last_error, "expired before it could be retried");
        hook_log(SLOG_ERROR, h, "webhook delivery given up at max_age", w->id, 0, rec.last_error);
        pthread_mutex_lock(&d->mu);
        d->c.in_flight--;
        d->c.attempts--;
        if (w->rec.attempts > 0)
            d->c.retries--;
        d->c.dropped++;
        d->c.expired++;
        pthread_mutex_unlock(&d->mu);
        if (spool_update(d->spool, w->id, w->hook, &rec) != 0)
            hook_log(SLOG_ERROR, h, "cannot write the delivery record", w->id, 0, NULL);
        h->busy = NULL;
        h->next_due_ns = INT64_MIN;
        xfer_free(x);
        return;
    }

    char why[256] = "";
    int rc = xfer_setup(d, x, now, why, sizeof why);
    if (rc == 0 && curl_multi_add_handle(d->multi, x->easy) != CURLM_OK) {
        snprintf(why, sizeof why, "curl_multi_add_handle failed");
        rc = -EIO;
    }
    if (rc != 0)
        finish(d, x, 0, 0, why);
}

/* Handle finished transfers. Returns true when one finished. */
static bool reap(struct deliver *d)
{
    bool any = false;
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode res = m->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(d->multi, e);
        long status = 0;
        curl_off_t retry_after = 0;
        const char *error = NULL;
        if (res == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK)
                retry_after = 0;
        } else {
            /* the error buffer names the host at most, never the path or query */
            error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
        }
        int64_t ra_ns = 0;
        if (retry_after > 0) {
            ra_ns = retry_after > DELIVER_MAX_RETRY_AFTER_NS / NS_PER_S
                        ? DELIVER_MAX_RETRY_AFTER_NS
                        : (int64_t)retry_after * NS_PER_S;
        }
        finish(d, x, status, ra_ns, error);
        any = true;
    }
    return any;
}

static void abort_all(struct deliver *d)
{
    for (size_t i = 0; i < d->nhooks; i++) {
        struct xfer *x = d->hooks[i].busy;
        if (!x)
            continue;
        curl_multi_remove_handle(d->multi, x->easy);
        spool_unclaim(d->spool, x->w.id, x->w.hook);
        count(d, &d->c.in_flight, -1);
        d->hooks[i].busy = NULL;
        xfer_free(x);
    }
}

static void *run(void *arg)
{
    struct deliver *d = arg;
    while (!atomic_load(&d->stop)) {
        int64_t now = clock_wall_ns();
        bool kicked = atomic_exchange(&d->kicked, false);
        int64_t wait_ns = WAIT_MAX_MS * NS_PER_MS;
        for (size_t i = 0; i < d->nhooks; i++) {
            struct hook *h = &d->hooks[i];
            if (h->busy)
                continue;
            if (now < h->paused_until_ns) {
                if (h->paused_until_ns - now < wait_ns)
                    wait_ns = h->paused_until_ns - now;
                continue;
            }
            if (kicked || now >= h->next_due_ns) {
                struct spool_work w;
                int64_t next = INT64_MAX;
                if (spool_claim(d->spool, i, now, &w, &next)) {
                    start(d, h, &w, now);
                    if (!h->busy)
                        wait_ns = 0; /* finished at once: look for more */
                    continue;
                }
                h->next_due_ns = next;
            }
            if (h->next_due_ns != INT64_MAX && h->next_due_ns - now < wait_ns)
                wait_ns = h->next_due_ns - now;
        }
        int running = 0;
        curl_multi_perform(d->multi, &running);
        if (reap(d) || wait_ns <= 0)
            continue;
        int ms = (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
        curl_multi_poll(d->multi, NULL, 0, ms, NULL);
    }
    abort_all(d);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

int deliver_new(const struct alert_spec *alert, struct spool *spool, struct deliver **out,
                char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "curl_global_init failed");
        return -EIO;
    }
    struct deliver *d = xcalloc(1, sizeof *d);
    d->alert = alert;
    d->spool = spool;
    d->nhooks = alert->nwebhooks;
    d->hooks = xcalloc(d->nhooks ? d->nhooks : 1, sizeof *d->hooks);
    for (size_t i = 0; i < d->nhooks; i++) {
        hook_init(&d->hooks[i], &alert->webhooks[i], i);
        if (d->hooks[i].insecure) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            slog(SLOG_WARN,
                 "TLS certificate verification is off for this webhook (tls.insecure_skip_verify)",
                 "hook", idx, "host", d->hooks[i].host, NULL);
        }
    }
    if (getrandom(&d->rng, sizeof d->rng, GRND_NONBLOCK) != (ssize_t)sizeof d->rng)
        d->rng = (uint64_t)clock_wall_ns();
    d->rng |= 1;
    pthread_mutex_init(&d->mu, NULL);
    atomic_init(&d->stop, false);
    atomic_init(&d->kicked, true);
    int rc = 0;
    d->multi = curl_multi_init();
    if (!d->multi) {
        rc = -ENOMEM;
        if (err && errlen)
            snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    rc = -pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot start the delivery thread: %s", strerror(-rc));
        goto fail;
    }
    d->running = true;
    *out = d;
    return 0;
fail:
    deliver_free(d);
    return rc;
}

void deliver_kick(struct deliver *d)
{
    atomic_store(&d->kicked, true);
    curl_multi_wakeup(d->multi);
}

int deliver_stop(struct deliver *d, int64_t timeout_ns)
{
    if (!d->running)
        return 0;
    atomic_store(&d->stop, true);
    curl_multi_wakeup(d->multi);
    /* pthread_timedjoin_np measures its deadline on CLOCK_REALTIME */
    struct timespec ts;
    int64_t at = clock_wall_ns() + timeout_ns;
    ts.tv_sec = at / NS_PER_S;
    ts.tv_nsec = at % NS_PER_S;
    int rc = pthread_timedjoin_np(d->thread, NULL, &ts);
    if (rc != 0)
        return -rc;
    d->running = false;
    return 0;
}

void deliver_free(struct deliver *d)
{
    if (!d)
        return;
    if (d->running) {
        atomic_store(&d->stop, true);
        curl_multi_wakeup(d->multi);
        pthread_join(d->thread, NULL);
        d->running = false;
    }
    if (d->multi)
        curl_multi_cleanup(d->multi);
    pthread_mutex_destroy(&d->mu);
    free(d->hooks);
    free(d);
    curl_global_cleanup();
}

void deliver_counters(struct deliver *d, struct deliver_counters *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->c;
    pthread_mutex_unlock(&d->mu);
}
