/* sidecar/deliver.h - sends spooled bundles to the webhooks, on its own thread.
 *
 * Owns: the delivery thread, its libcurl multi handle and the transfers in
 * flight (deliver_free releases them). Borrows: the alert spec (webhooks)
 * and the spool, which must outlive it. Does network I/O, reads the wall
 * clock, logs; the retry policy below it (deliver_classify,
 * deliver_backoff_ns, deliver_next) is pure.
 *
 * One thread drives every transfer through curl_multi, at most one in
 * flight per hook, so a hanging receiver delays neither captures nor the
 * other hooks, and deliver_stop returns at once (curl_multi_wakeup).
 * Bodies stream from the bundle's files on disk (a read callback for a body
 * file, curl_mime_filedata for multipart parts): the backlog lives in the
 * spool, not in memory; the thread holds the requests in flight only.
 *
 * Semantics (Standard Webhooks): success is any 2xx; redirects are not
 * followed and count as failures; 408, 429, 5xx, 3xx and network errors
 * are retried with exponential backoff (1 s doubling to 10 min, equal
 * jitter), never sooner than Retry-After, until max_age after the bundle's
 * creation, then the delivery is marked failed; any other status is a
 * configuration error: marked failed at once. The same webhook-id (the
 * bundle id) goes with every attempt. Log lines name the hook by index and
 * host, never its URL path, secret or the body. */
#ifndef STAKEOUT_DELIVER_H
#define STAKEOUT_DELIVER_H

#include "config.h"
#include "spool.h"

#include <stdbool.h>
#include <stdint.h>

#define DELIVER_BACKOFF_MIN_NS (1LL * 1000000000LL)
#define DELIVER_BACKOFF_MAX_NS (600LL * 1000000000LL)
#define DELIVER_MAX_RETRY_AFTER_NS (3600LL * 1000000000LL)

enum deliver_verdict {
    DELIVER_OK,        /* 2xx */
    DELIVER_RETRY,     /* try again later */
    DELIVER_PERMANENT, /* the receiver refuses this request: a configuration error */
};

struct deliver_counters {
    uint64_t attempts;  /* requests started */
    uint64_t delivered; /* deliveries that got a 2xx */
    uint64_t failures;  /* attempts that did not get a 2xx */
    uint64_t retries;   /* attempts after a failed one */
    uint64_t dropped;   /* deliveries given up: rejected, expired, or bundle gone */
    uint64_t rejected;  /* ... of which rejected as a configuration error (4xx) */
    uint64_t expired;   /* ... of which still failing at max_age */
    uint64_t in_flight; /* requests under way now */
};

/* One attempt's outcome: an HTTP status (0 when no response came back). */
enum deliver_verdict deliver_classify(long status);

/* Delay before attempt attempts + 1, after attempts >= 1 failures: the base
 * doubles from DELIVER_BACKOFF_MIN_NS up to DELIVER_BACKOFF_MAX_NS; rnd
 * (uniform 64 bits) picks the delay in [base / 2, base]. */
int64_t deliver_backoff_ns(uint32_t attempts, uint64_t rnd);

/* When to try next after a failed attempt at now_ns: the backoff, or
 * retry_after_ns when longer (0: none given). Returns false when there is
 * no next time: the deadline (creation + max_age) has passed, or
 * Retry-After points beyond it. A backoff past the deadline is cut to it,
 * so the last attempt happens at max_age. */
bool deliver_next(int64_t now_ns, int64_t deadline_ns, uint32_t attempts, int64_t retry_after_ns,
                  uint64_t rnd, int64_t *next_ns);

struct deliver;

/* Start the delivery thread for alert->webhooks (hook n is the spool's
 * hook n) and resume what the spool holds pending. Returns 0 with *out
 * set, or a negative errno with a message in err. */
int deliver_new(const struct alert_spec *alert, struct spool *spool, struct deliver **out,
                char *err, size_t errlen) __attribute__((warn_unused_result));

/* New work in the spool (after spool_put): look now. Any thread. */
void deliver_kick(struct deliver *d);

/* Stop the thread within timeout_ns, aborting transfers in flight (they
 * stay pending in the spool, with the attempt not counted). Returns 0, or
 * -ETIMEDOUT (the thread is still running; deliver_free then waits). */
int deliver_stop(struct deliver *d, int64_t timeout_ns) __attribute__((warn_unused_result));

/* Stop (waiting as long as it takes) and free. NULL does nothing. */
void deliver_free(struct deliver *d);

/* A consistent copy of the counters. Any thread. */
void deliver_counters(struct deliver *d, struct deliver_counters *out);

#endif
