/* sidecar/bundle.h - the alert bundle: schema "stakeout.alert/v1".
 *
 * Owns nothing: bundle_build returns a new jansson object the caller owns.
 * Borrows everything in struct alert_input. Pure: no I/O, no clock (times
 * come in); only bundle_new_id reads the kernel's random source. Top-level keys receivers may rely on: schema, id, incident,
 * created, severity, state, rule, target, metrics, logs, profile (with its
 * summary), baseline_diff, attachments. The target's environment is never
 * read; the command line and log lines pass through the redactor. */
#ifndef STAKEOUT_BUNDLE_H
#define STAKEOUT_BUNDLE_H

#include "collector.h"
#include "config.h"
#include "engine.h"
#include "logscan.h"
#include "profile.h"
#include "redact.h"

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define BUNDLE_SCHEMA "stakeout.alert/v1"
#define BUNDLE_ID_LEN 37 /* a UUID, 36 characters and the NUL */
#define BUNDLE_FILE "bundle.json"  /* the bundle, in its spool directory */
#define BUNDLE_TOP_FUNCTIONS 10    /* entries of profile.summary lists */
#define BUNDLE_DIFF_FUNCTIONS 10   /* entries of baseline_diff.functions */
#define BUNDLE_LOG_MATCHES 10      /* last matching lines per log */

/* Flags for json_dump* of a bundle: the values are rounded (2 decimals for
 * percents and rates, 4 for shares), and 15 significant digits print them
 * as rounded ("85.19", not jansson's default "85.189999999999998"). */
#define BUNDLE_JSON_FLAGS JSON_REAL_PRECISION(15)

enum alert_kind {
    ALERT_RULE,        /* a rule fired or resolved */
    ALERT_BASELINE,    /* a scheduled baseline capture (`every`) */
    ALERT_RESTARTED,   /* the watched process died and came back */
    ALERT_ON_DEMAND,   /* POST /capture */
};

enum alert_state { ALERT_FIRING, ALERT_RESOLVED };

struct alert_log {
    const char *path;              /* as followed (may be under /proc/PID/root) */
    const struct logscan *scan;    /* its matches and context */
};

struct alert_attachment {
    char name[64];                 /* file name in the bundle directory: "profile.pb.gz" */
    const char *content_type;      /* "application/vnd.google.protobuf+gzip", ... */
    uint64_t size;
    char sha256[65];               /* hex */
};

struct alert_input {
    enum alert_kind kind;
    enum alert_state state;
    char id[BUNDLE_ID_LEN];        /* unique, stable across retries: the idempotency key */
    const char *incident;          /* the engine's incident key (NULL: the event's, if any) */
    int64_t created_wall_ns;
    int64_t created_mono_ns;       /* the same instant on the monotonic clock: places samples
                                      (stamped monotonic) in wall time */
    const char *hostname;

    const struct config *cfg;
    const struct rule_spec *rule;  /* NULL for ALERT_RESTARTED and ALERT_ON_DEMAND */
    const struct event *event;     /* observed values, co-firing, suppressed counts; may be NULL */
    const struct target_spec *target;
    const struct instance *inst;   /* metadata, hot threads, details, restarts */

    /* metric history: before the event, and during the capture */
    const struct sample *before;
    size_t nbefore;
    const struct sample *during;
    size_t nduring;

    const struct alert_log *logs;
    size_t nlogs;

    const struct profile *profile;   /* NULL when nothing was captured */
    const char *capture_skipped;     /* why not ("budget", "target exited", ...), or NULL */
    const struct profile *baseline;  /* the last baseline of this target, or NULL */
    bool binary_changed;             /* the build-id differs from the baseline's: a deploy */

    const struct coll_event *restart; /* ALERT_RESTARTED: old and new pid, reason, events */

    const struct alert_attachment *attachments;
    size_t nattachments;

    const struct redactor *redact;   /* applied to the command line and log lines */
};

/* Build the bundle. Returns a new reference. Times are RFC 3339 UTC strings
 * with milliseconds; numbers are JSON numbers, NaN (not measured) is null.
 * Besides the top-level keys above: "kind" (rule, baseline, restarted,
 * on_demand) and "capture_skipped" (why no profile, or null). The README
 * ("Alert bundle") shows a complete example. */
json_t *bundle_build(const struct alert_input *in);

/* A new random UUID (version 4) as text. */
void bundle_new_id(char id[BUNDLE_ID_LEN]);

/* The functions whose share grew most from baseline to profile, as
 * [{function, baseline, now, delta}] (shares 0..1), at most max entries.
 * The share is the self share (samples with the function as leaf): the
 * callers of a function that got slower do not crowd it out. Only growth is
 * listed (delta > 0), largest first, ties by name. */
json_t *bundle_baseline_diff(const struct profile *now, const struct profile *baseline, size_t max);

/* Content type of an attachment by its file name: .pb.gz (pprof), .folded
 * and .txt (text/plain), .svg, .json; application/octet-stream otherwise. */
const char *bundle_content_type(const char *name);

/* kind and state as written in the bundle ("on_demand", "resolved"). */
const char *alert_kind_name(enum alert_kind k);
const char *alert_state_name(enum alert_state s);

#endif
