/* triggers/engine.h - decides when a capture happens: rules over metric history.
 *
 * Owns: per (rule, watched process) state machines, rolling baselines, the
 * capture budget and the events it returns. Borrows: the rules (which must
 * outlive the engine or the next engine_set_rules) and each slot's history.
 * Pure: no I/O, no clock, no logging. The caller passes monotonic time (all
 * decisions) and wall time (only to name incidents), and a seed for jitter.
 *
 * A "slot" is one watched process: a target of the rules file can match
 * several. Each poll the caller pushes a sample into the slot's history and
 * calls engine_step for that slot; the events it returns say what to do.
 *
 * Per rule and slot:  INACTIVE -> PENDING -> FIRING -> RESOLVED (-> PENDING ...)
 *  - `for: 30s` needs the condition on every poll for 30s; one false poll,
 *    a missing sample or a gap of more than two poll intervals resets it.
 *  - `for: N of M` needs it on N of the last M polls; a missed poll is false.
 *  - A firing rule resolves once its resolve condition (`resolve_when`, or
 *    `when` false) has held for `resolve_after` (default: its `for`, or 30s);
 *    a missing sample, a poll where none of its metrics was measured (NaN),
 *    or a gap starts that over: no data resolves nothing.
 *  - `cooldown`: a rule that fires again before its cooldown has passed is
 *    suppressed (counted, reported in its next alert), never silent.
 *  - One capture per slot at a time; rules that fire on the same poll make
 *    one alert (the highest severity, then the first in the file, leads);
 *    rules that fire while a capture runs wait for it to finish.
 *  - The global budget (`max_captures_per_hour`) suppresses captures beyond it.
 *  - `Nx baseline` / `N sigma` are false until the baseline has warmed up:
 *    ENGINE_WARMUP_FRACTION of baseline_window and ENGINE_WARMUP_MIN_SAMPLES
 *    samples. The baseline is kept in 60 buckets per window (exact median
 *    when a bucket is one poll; otherwise the median of bucket means), and
 *    excludes the bucket still being filled, so a spike does not raise its
 *    own threshold. */
#ifndef STAKEOUT_ENGINE_H
#define STAKEOUT_ENGINE_H

#include "expr.h"
#include "history.h"
#include "rule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENGINE_WARMUP_FRACTION 0.25
#define ENGINE_WARMUP_MIN_SAMPLES 10
#define ENGINE_BASELINE_BUCKETS 60
#define ENGINE_DEFAULT_RESOLVE_NS (30LL * 1000000000LL)
#define ENGINE_MAX_COFIRING 16
#define ENGINE_FIRST_SCHEDULE_MAX_NS (60LL * 1000000000LL)
/* Polls come from a timer and are read a little late, unevenly: `for: 2s`
 * at 1 s polls must fire on the third true poll even when the first was
 * read 1 ms later than the third. Durations measured between polls (`for`,
 * `resolve_after`) count as met this share of a poll interval early. */
#define ENGINE_POLL_SLACK_DIVISOR 10

enum rule_state { RULE_INACTIVE, RULE_PENDING, RULE_FIRING, RULE_RESOLVED };

enum event_kind {
    EVENT_FIRING,     /* deliver an alert; take a profile if capture_rule is set */
    EVENT_RESOLVED,   /* a firing episode that alerted has ended */
    EVENT_SCHEDULED,  /* an `every` rule is due: a baseline capture */
    EVENT_SUPPRESSED, /* a firing or a scheduled capture was suppressed: log, count */
    EVENT_RESTARTED,  /* the watched process restarted; its rule states were reset */
};

enum suppress_reason { SUPPRESS_NONE, SUPPRESS_COOLDOWN, SUPPRESS_BUDGET };

/* One comparison of an expression, as last evaluated. */
struct observed {
    enum metric metric;
    enum expr_op op;
    enum expr_ref ref;
    double value;      /* NaN: no data */
    double threshold;  /* NaN: baseline not warmed up */
    bool holds;
    bool warming_up;
};

struct cofiring {
    size_t rule;
    int64_t episode_start_ns;
    char incident[160];           /* that rule's own incident key (alerts group by it) */
};

struct event {
    enum event_kind kind;
    int slot;
    size_t rule;                  /* leading rule (SIZE_MAX for EVENT_RESTARTED) */
    int64_t t_ns;                 /* poll time */
    int64_t episode_start_ns;     /* when the condition first held (monotonic) */
    int64_t episode_start_wall_ns;
    int64_t true_for_ns;          /* how long it had held when it fired */
    char incident[160];           /* "rule/target/20261124T161203Z": one per episode */
    size_t capture_rule;          /* rule whose capture to take, SIZE_MAX: none */
    enum suppress_reason reason;  /* EVENT_SUPPRESSED */
    unsigned suppressed_cooldown; /* firings suppressed since the last alert */
    unsigned suppressed_budget;
    struct cofiring cofiring[ENGINE_MAX_COFIRING];
    size_t ncofiring;
    struct observed obs[EXPR_MAX_CMP];
    unsigned nobs;
};

enum explain_reason {
    EXPLAIN_NO_DATA,       /* no sample at the last poll */
    EXPLAIN_FALSE,         /* the condition is false (see obs) */
    EXPLAIN_WARMING_UP,    /* a baseline is not ready: the condition counts as false */
    EXPLAIN_PENDING,       /* true, waiting for `for` */
    EXPLAIN_FIRING,
    EXPLAIN_COOLING_DOWN,  /* firing, but suppressed by cooldown */
    EXPLAIN_OVER_BUDGET,   /* firing, but the capture budget is spent */
    EXPLAIN_WAITING_CAPTURE, /* firing, waiting for the running capture */
    EXPLAIN_SCHEDULED,     /* an `every` rule: next capture in remaining_ns */
    EXPLAIN_NOT_APPLICABLE, /* the rule does not apply to this target */
};

struct explain {
    enum rule_state state;
    enum explain_reason reason;
    int64_t remaining_ns;  /* pending: until it fires; cooling: until cooldown ends;
                              scheduled: until the next capture; warming: until ready */
    unsigned n_true, m;    /* `N of M`: polls true among the last m */
    struct observed obs[EXPR_MAX_CMP];
    unsigned nobs;
};

struct engine_params {
    const struct rule_spec *rules; /* borrowed */
    size_t nrules;
    int64_t poll_interval_ns;
    unsigned max_captures_per_hour;
    uint64_t seed;                 /* jitter of scheduled captures */
};

struct engine;

struct engine *engine_new(const struct engine_params *p);
void engine_free(struct engine *e);

/* Replace the rules (hot reload). A rule whose name and definition are
 * unchanged keeps its state in every slot; the others start afresh. An
 * episode that had alerted and whose rule changed or went away ends with
 * EVENT_RESOLVED at now_ns. Those events index the OLD rules: handle them
 * before the old rules are freed. Valid until the next call into the engine. */
size_t engine_set_rules(struct engine *e, const struct rule_spec *rules, size_t nrules,
                        int64_t now_ns, const struct event **events);

/* Register a watched process of the named target; returns its slot (>= 0).
 * label names it in incident keys ("api" or "api:1234"). Both copied. */
int engine_slot_add(struct engine *e, const char *target, const char *label);

/* Forget a slot (the target is gone for good). Its id may be reused. */
void engine_slot_remove(struct engine *e, int slot);

/* The process behind a slot restarted: states and baselines reset, cooldowns
 * and schedules kept (a crash loop must not become an alert or capture storm). Emits EVENT_RESOLVED for
 * episodes that alerted and one EVENT_RESTARTED. Events valid until the next
 * call into the engine. */
size_t engine_slot_restarted(struct engine *e, int slot, int64_t now_ns, int64_t wall_ns,
                             const struct event **events);

/* An on-demand capture on a slot: granted when no capture runs there and the
 * budget has room, in which case the slot is busy until engine_capture_done.
 * Returns SUPPRESS_NONE when granted, else why not (SUPPRESS_BUDGET, or
 * SUPPRESS_COOLDOWN standing for "a capture is already running"). */
enum suppress_reason engine_try_capture(struct engine *e, int slot, int64_t now_ns);

/* A capture the engine asked for on this slot has finished (or failed). */
void engine_capture_done(struct engine *e, int slot);

/* Evaluate every rule for a slot at poll time now_ns. h holds the slot's
 * samples; a sample stamped now_ns is this poll's (none: no data). Returns
 * the number of events, *events points into the engine (valid until the next
 * call into the engine). */
size_t engine_step(struct engine *e, int slot, const struct history *h, int64_t now_ns,
                   int64_t wall_ns, const struct event **events);

/* Why a rule is (not) firing for a slot, evaluated against h at now_ns. */
void engine_explain(const struct engine *e, int slot, size_t rule, const struct history *h,
                    int64_t now_ns, struct explain *out);

/* Captures granted in the last hour, and whether a slot is capturing. */
unsigned engine_captures_last_hour(const struct engine *e, int64_t now_ns);
bool engine_slot_busy(const struct engine *e, int slot);

/* Current state of a rule for a slot. */
enum rule_state engine_rule_state(const struct engine *e, int slot, size_t rule);

const char *rule_state_name(enum rule_state s);
const char *event_kind_name(enum event_kind k);
const char *suppress_reason_name(enum suppress_reason r);
const char *explain_reason_name(enum explain_reason r);

#endif
