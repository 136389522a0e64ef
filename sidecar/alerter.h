/* sidecar/alerter.h - from an event to a bundle on disk and on its way.
 *
 * Owns: the spool, the delivery thread, the redactor, the last baseline
 * profile of each target (for diffs and "the binary changed"). Borrows the
 * config given at each call. Every alert is built with bundle.h, written to
 * the spool (spool_dir/<id>/: the user finds it on disk whatever happens to
 * delivery) and handed to delivery. Scheduled baseline captures are kept as
 * the target's baseline and spooled, but not sent to webhooks. */
#ifndef STAKEOUT_ALERTER_H
#define STAKEOUT_ALERTER_H

#include "collector.h"
#include "config.h"
#include "engine.h"
#include "logwatch.h"
#include "profile.h"

#include <stddef.h>
#include <stdint.h>

/* What a finished capture hands over. Everything owned by the capture job
 * and borrowed by the alerter for the call. */
struct capture_output {
    struct profile *profile;       /* NULL when the capture failed */
    const char *failure;           /* why not, or NULL */
    int64_t start_mono_ns, end_mono_ns;
    const char *names[4];          /* attachment file names */
    const char *types[4];          /* their content types */
    const char *data[4];
    size_t lens[4];
    size_t nfiles;
    bool profile_taken;            /* set by the alerter: it keeps the profile (a baseline) */
};

struct alerter_stats {
    uint64_t alerts;               /* bundles written */
    uint64_t delivered, failures, pending;
    uint64_t spool_bytes;
};

struct alerter;

/* Open the spool and start delivery. NULL with a message in err on failure. */
struct alerter *alerter_new(const struct config *cfg, char *err, size_t errlen);

/* Stop delivery (bounded wait), close the spool. NULL does nothing. */
void alerter_free(struct alerter *a);

/* The log followers whose matches go into alerts (borrowed; NULL: none). */
void alerter_set_logs(struct alerter *a, const struct logwatch *lw);

/* A reload: new hooks, spool, caps and redaction patterns from now on.
 * The new spool is opened and the patterns compiled before anything is
 * replaced: on failure (a spool_dir that cannot be created, or that another
 * stakeout holds) returns a negative errno with the reason in err and goes
 * on with the old config, for the caller to reject the reload. */
int alerter_set_config(struct alerter *a, const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* An engine event for in: FIRING, RESOLVED, SCHEDULED (with its capture, or
 * why there is none), or an on-demand capture (e == NULL). */
void alerter_event(struct alerter *a, const struct config *cfg, const struct instance *in,
                   const struct event *e, struct capture_output *cap,
                   const char *capture_skipped, int64_t now_ns, int64_t wall_ns);

/* The watched process died and came back: the lead-up, the exit reason and
 * the memory.events counters. */
void alerter_restart(struct alerter *a, const struct config *cfg, const struct instance *in,
                     const struct coll_event *ce, int64_t now_ns, int64_t wall_ns);

void alerter_stats(struct alerter *a, struct alerter_stats *out);

/* Give pending deliveries up to timeout_ns to finish (stop). */
void alerter_flush(struct alerter *a, int64_t timeout_ns);

#endif
