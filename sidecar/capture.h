/* sidecar/capture.h - the daemon's captures, off the event loop.
 *
 * Owns: one worker thread, its queue of capture jobs, the symbol cache
 * shared by every capture, and an eventfd that wakes the loop when a job is
 * done. Borrows: the engine (to release a slot when its capture ends) and
 * the alerter (which turns a finished capture into an alert). The worker
 * runs one capture at a time: the sampler attaches, samples, detaches, the
 * symbolizer names the frames once the target runs again, and the outputs
 * (pprof, folded, flame graph, summary) are rendered into memory. The loop
 * collects finished jobs, so polling and log counting go on meanwhile and
 * the alert carries the metrics taken during the capture. */
#ifndef STAKEOUT_CAPTURE_H
#define STAKEOUT_CAPTURE_H

#include "alerter.h"
#include "collector.h"
#include "config.h"
#include "engine.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct capturer;

/* Start the worker. *efd receives the descriptor to wait on. lock is the
 * daemon's state lock: the worker takes it to release engine slots. */
struct capturer *capturer_new(struct engine *eng, struct alerter *al, pthread_mutex_t *lock,
                              int *efd, char *err, size_t errlen);

/* Abort what runs, drop what waits, join the worker. NULL does nothing. */
void capturer_free(struct capturer *c);

/* The engine was replaced (reload with new targets): captures under way
 * finish, but release no slot of the new engine. */
void capturer_set_engine(struct capturer *c, struct engine *eng);

/* Queue a capture of in's process for event e (copied), as the capture of
 * its rule e->capture_rule in cfg says. The engine already marked the slot
 * busy. Returns 0, or -EINVAL for an event without a capture rule. */
int capturer_start(struct capturer *c, struct instance *in, const struct event *e,
                   const struct config *cfg) __attribute__((warn_unused_result));

/* Once per poll: nothing to do today beyond bookkeeping. */
void capturer_tick(struct capturer *c, int64_t now_ns);

/* The eventfd fired: hand finished captures to the alerter and release their
 * engine slots. */
void capturer_collect(struct capturer *c, const struct config *cfg, struct collector *coll,
                      int64_t now_ns, int64_t wall_ns);

/* End early, keeping what was sampled: the capture of pid (it exited), or
 * every capture (stop, reload). */
void capturer_abort_pid(struct capturer *c, int pid);
void capturer_abort_all(struct capturer *c);

/* Wait up to timeout_ns for the queue to drain. */
void capturer_wait(struct capturer *c, int64_t timeout_ns);

/* POST /capture?target=NAME&profile=cpu&duration=5s: queue an on-demand
 * capture, subject to the capture budget. Returns the HTTP status and a
 * message for the body. Called with the daemon's lock held. */
int capturer_on_demand(struct capturer *c, const struct config *cfg, struct collector *coll,
                       const char *target, const char *profile, const char *duration,
                       int64_t now_ns, int64_t wall_ns, char *msg, size_t len);

#endif
