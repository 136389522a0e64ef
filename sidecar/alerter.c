/* sidecar/alerter.c - events to bundles to the spool to delivery; see alerter.h. */
#include "alerter.h"

#include "bundle.h"
#include "deliver.h"
#include "redact.h"
#include "slog.h"
#include "spool.h"
#include "xalloc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTEXT_BEFORE_NS (300LL * 1000000000LL) /* history before the event in an alert */

/* The last scheduled capture of a target, one per kind: a memory profile
 * is compared with a memory profile, a CPU one with a CPU one. */
struct baseline {
    char target[64];
    bool memory;
    struct profile *profile;       /* owned */
    char build_id[129];
};

struct alerter {
    const struct config *cfg;      /* borrowed: the config of the last call */
    struct spool *spool;           /* owned */
    struct deliver *deliver;       /* owned, NULL without webhooks */
    struct redactor *redact;       /* owned */
    const struct logwatch *logs;   /* borrowed, may be NULL */
    struct baseline *baselines;    /* owned */
    size_t nbaselines;
    char hostname[256];
    uint64_t alerts;
};

/* Start delivery of a->spool's bundles to cfg's webhooks (none: they stay
 * in the spool, where users find them). */
static int start_delivery(struct alerter *a, const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->alert.nwebhooks == 0)
        return 0;
    return deliver_new(&cfg->alert, a->spool, &a->deliver, err, errlen);
}

static void stop_delivery(struct alerter *a, int64_t timeout_ns)
{
    if (a->deliver && deliver_stop(a->deliver, timeout_ns) != 0)
        slog(SLOG_WARN, "delivery still busy at stop: what is pending stays in the spool", NULL);
    deliver_free(a->deliver);
    a->deliver = NULL;
}

static int open_spool(const struct config *cfg, struct spool **out, char *err, size_t errlen)
{
    return spool_open(cfg->alert.spool_dir, cfg->alert.spool_max_bytes, cfg->alert.nwebhooks,
                      out, err, errlen);
}

struct alerter *alerter_new(const struct config *cfg, char *err, size_t errlen)
{
    struct alerter *a = xcalloc(1, sizeof *a);
    a->cfg = cfg;
    if (gethostname(a->hostname, sizeof a->hostname - 1) != 0)
        snprintf(a->hostname, sizeof a->hostname, "unknown");
    a->redact = redactor_new((const char *const *)cfg->alert.redact, cfg->alert.nredact, err, errlen);
    if (!a->redact || open_spool(cfg, &a->spool, err, errlen) != 0 ||
        start_delivery(a, cfg, err, errlen) != 0) {
        alerter_free(a);
        return NULL;
    }
    return a;
}

void alerter_free(struct alerter *a)
{
    if (!a)
        return;
    stop_delivery(a, 2000000000LL);
    spool_free(a->spool);
    redactor_free(a->redact);
    for (size_t i = 0; i < a->nbaselines; i++)
        profile_free(a->baselines[i].profile);
    free(a->baselines);
    free(a);
}

void alerter_set_logs(struct alerter *a, const struct logwatch *lw)
{
    a->logs = lw;
}

/* True when paths a and b name one directory (a spool open on it holds its
 * lock: it cannot be opened a second time before it is closed). */
static bool same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int alerter_set_config(struct alerter *a, const struct config *cfg, char *err, size_t errlen)
{
    int rc = 0;
    struct spool *fresh = NULL;
    struct redactor *r = redactor_new((const char *const *)cfg->alert.redact, cfg->alert.nredact,
                                      err, errlen);
    if (!r)
        return -EINVAL;
    bool same = a->spool && same_dir(a->cfg->alert.spool_dir, cfg->alert.spool_dir);
    if (!same) {
        rc = open_spool(cfg, &fresh, err, errlen);
        if (rc != 0)
            goto out; /* nothing replaced yet */
    }
    /* delivery borrows the spool and the alert section: stop it, then
     * start it again on the new ones */
    stop_delivery(a, 2000000000LL);
    if (same) {
        /* caps or hooks change on the directory we hold: close, reopen */
        spool_free(a->spool);
        a->spool = NULL;
        rc = open_spool(cfg, &fresh, err, errlen);
        if (rc != 0) {
            char again[256];
            if (open_spool(a->cfg, &a->spool, again, sizeof again) != 0)
                slog(SLOG_ERROR, "cannot reopen the spool: the next alert tries again", "error",
                     again, NULL);
            else if (start_delivery(a, a->cfg, again, sizeof again) != 0)
                slog(SLOG_ERROR, "cannot restart delivery: bundles stay in the spool", "error",
                     again, NULL);
            goto out;
        }
    }
    spool_free(a->spool);
    a->spool = fresh;
    redactor_free(a->redact);
    a->redact = r;
    r = NULL;
    a->cfg = cfg;
    char derr[256];
    if (start_delivery(a, cfg, derr, sizeof derr) != 0)
        slog(SLOG_ERROR, "cannot restart delivery after the reload: bundles stay in the spool",
             "error", derr, NULL);
out:
    redactor_free(r);
    return rc;
}

static struct baseline *baseline_of(struct alerter *a, const char *target, bool memory)
{
    for (size_t i = 0; i < a->nbaselines; i++) {
        if (strcmp(a->baselines[i].target, target) == 0 && a->baselines[i].memory == memory)
            return &a->baselines[i];
    }
    return NULL;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1)
        return;
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Samples of in's history in (from, to]. Returns a new array (caller frees). */
static struct sample *window(const struct instance *in, int64_t from, int64_t to, size_t *n)
{
    size_t cap = history_len(&in->hist);
    struct sample *all = xcalloc(cap ? cap : 1, sizeof *all);
    size_t got = history_copy(&in->hist, from, all, cap), k = 0;
    for (size_t i = 0; i < got; i++) {
        if (all[i].t_ns <= to)
            all[k++] = all[i];
    }
    *n = k;
    return all;
}

static void emit(struct alerter *a, struct alert_input *ai, const struct capture_output *cap,
                 const char *target)
{
    struct alert_attachment att[4];
    struct spool_file files[4];
    size_t n = 0;
    char err[256];

    for (size_t i = 0; cap && i < cap->nfiles && i < 4; i++) {
        memset(&att[n], 0, sizeof att[n]);
        snprintf(att[n].name, sizeof att[n].name, "%s", cap->names[i]);
        att[n].content_type = cap->types[i];
        att[n].size = cap->lens[i];
        sha256_hex(cap->data[i], cap->lens[i], att[n].sha256);
        files[n] = (struct spool_file){cap->names[i], NULL, cap->data[i], cap->lens[i]};
        n++;
    }
    ai->attachments = att;
    ai->nattachments = n;
    ai->hostname = a->hostname;
    ai->redact = a->redact;

    char oerr[256];
    if (!a->spool) {
        /* a reload lost it (see alerter_set_config): take it back, and delivery */
        if (open_spool(a->cfg, &a->spool, oerr, sizeof oerr) != 0) {
            slog(SLOG_ERROR, "no spool: the alert is lost", "id", ai->id, "target", target,
                 "error", oerr, NULL);
            return;
        }
        if (start_delivery(a, a->cfg, oerr, sizeof oerr) != 0)
            slog(SLOG_ERROR, "cannot start delivery: bundles stay in the spool", "error", oerr,
                 NULL);
    }
    json_t *b = bundle_build(ai);
    int rc = spool_put(a->spool, ai->id, b, files, n, ai->created_wall_ns, err, sizeof err);
    json_decref(b);
    if (rc != 0) {
        slog(SLOG_ERROR, "cannot spool the alert: it is lost", "id", ai->id, "target", target,
             "error", err, NULL);
        return;
    }
    a->alerts++;
    char dir[4096] = "";
    if (spool_bundle_dir(a->spool, ai->id, dir, sizeof dir) != 0)
        dir[0] = '\0';
    slog(SLOG_INFO, "alert written", "id", ai->id, "target", target, "dir", dir, NULL);
    if (a->deliver)
        deliver_kick(a->deliver);
}

static void fill_logs(struct alerter *a, struct alert_input *ai, size_t target,
                      struct alert_log *logs, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; a->logs && n < max; i++) {
        const char *path = NULL;
        const struct logscan *s = logwatch_scanner(a->logs, target, i, &path);
        if (!s)
            break;
        logs[n++] = (struct alert_log){path, s};
    }
    ai->logs = logs;
    ai->nlogs = n;
}

void alerter_event(struct alerter *a, const struct config *cfg, const struct instance *in,
                   const struct event *e, struct capture_output *cap,
                   const char *capture_skipped, int64_t now_ns, int64_t wall_ns)
{
    struct alert_input ai = {0};
    struct alert_log logs[16];
    const struct target_spec *t = &cfg->targets[in->target];
    a->cfg = cfg;

    bundle_new_id(ai.id);
    ai.kind = !e ? ALERT_ON_DEMAND : e->kind == EVENT_SCHEDULED ? ALERT_BASELINE : ALERT_RULE;
    ai.state = e && e->kind == EVENT_RESOLVED ? ALERT_RESOLVED : ALERT_FIRING;
    ai.incident = e ? e->incident : "on-demand";
    ai.created_wall_ns = wall_ns;
    ai.created_mono_ns = now_ns; /* maps sample times to wall time */
    ai.cfg = cfg;
    ai.rule = e && e->rule < cfg->nrules ? &cfg->rules[e->rule] : NULL;
    ai.event = e;
    ai.target = t;
    ai.inst = in;
    ai.profile = cap ? cap->profile : NULL;
    ai.capture_skipped = capture_skipped;

    /* the history before the event, and during the capture */
    int64_t mark = cap && cap->start_mono_ns ? cap->start_mono_ns : now_ns;
    struct sample *before = window(in, mark - CONTEXT_BEFORE_NS, mark, &ai.nbefore);
    struct sample *during = NULL;
    if (cap && cap->end_mono_ns > cap->start_mono_ns)
        during = window(in, cap->start_mono_ns, cap->end_mono_ns, &ai.nduring);
    ai.before = before;
    ai.during = during;
    fill_logs(a, &ai, in->target, logs, 16);

    bool memory = ai.profile && ai.profile->type == PROFILE_TYPE_MEMORY;
    struct baseline *base = baseline_of(a, t->name, memory);
    if (base && ai.kind != ALERT_BASELINE) {
        ai.baseline = base->profile;
        ai.binary_changed = base->build_id[0] && in->meta.build_id[0] &&
                            strcmp(base->build_id, in->meta.build_id) != 0;
    }
    emit(a, &ai, cap, t->name);

    /* a scheduled capture becomes the target's baseline */
    if (ai.kind == ALERT_BASELINE && cap && cap->profile) {
        if (!base) {
            a->baselines = xreallocarray(a->baselines, a->nbaselines + 1, sizeof *a->baselines);
            base = &a->baselines[a->nbaselines++];
            memset(base, 0, sizeof *base);
            snprintf(base->target, sizeof base->target, "%s", t->name);
            base->memory = memory;
        }
        profile_free(base->profile);
        base->profile = cap->profile;
        cap->profile_taken = true; /* kept: the capture job must not free it */
        snprintf(base->build_id, sizeof base->build_id, "%s", in->meta.build_id);
    }
    free(before);
    free(during);
}

void alerter_restart(struct alerter *a, const struct config *cfg, const struct instance *in,
                     const struct coll_event *ce, int64_t now_ns, int64_t wall_ns)
{
    struct alert_input ai = {0};
    struct alert_log logs[16];
    char incident[160];
    a->cfg = cfg;
    bundle_new_id(ai.id);
    snprintf(incident, sizeof incident, "restart/%s:%d", cfg->targets[in->target].name, ce->old_pid);
    ai.kind = ALERT_RESTARTED;
    ai.state = ALERT_FIRING;
    ai.incident = incident;
    ai.created_wall_ns = wall_ns;
    ai.created_mono_ns = now_ns;
    ai.cfg = cfg;
    ai.target = &cfg->targets[in->target];
    ai.inst = in;
    ai.restart = ce;
    ai.before = ce->window;     /* the lead-up to the end */
    ai.nbefore = ce->nwindow;
    fill_logs(a, &ai, in->target, logs, 16);
    emit(a, &ai, NULL, ai.target->name);
}

void alerter_stats(struct alerter *a, struct alerter_stats *out)
{
    memset(out, 0, sizeof *out);
    out->alerts = a->alerts;
    if (a->spool) {
        struct spool_counters sc;
        spool_counters(a->spool, &sc);
        out->pending = sc.pending;
        out->spool_bytes = sc.bytes;
    }
    if (a->deliver) {
        struct deliver_counters dc;
        deliver_counters(a->deliver, &dc);
        out->delivered = dc.delivered;
        out->failures = dc.failures;
    }
}

void alerter_flush(struct alerter *a, int64_t timeout_ns)
{
    /* deliveries in flight get what is left of the grace period; the rest
     * stays pending in the spool and resumes at the next start */
    if (a->deliver && deliver_stop(a->deliver, timeout_ns > 0 ? timeout_ns : 0) != 0)
        slog(SLOG_WARN, "stopping with deliveries in flight: they resume at the next start", NULL);
}
