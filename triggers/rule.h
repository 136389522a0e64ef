/* triggers/rule.h - one rule of a rules file, as the trigger engine reads it.
 *
 * Owns: every pointer field of struct rule_spec (freed by rule_spec_fini).
 * Pure data; the rules file parser (sidecar/config) fills it in. */
#ifndef STAKEOUT_RULE_H
#define STAKEOUT_RULE_H

#include "expr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum severity { SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_CRITICAL };

enum profile_kind {
    PROFILE_NONE,   /* alert with context, no profile */
    PROFILE_CPU,
    PROFILE_MEMORY,
};

/* A name = value pair: labels and annotations. Both strings owned. */
struct label {
    char *key;
    char *value;
};

struct capture_spec {
    enum profile_kind profile;
    int64_t duration_ns;
    unsigned rate_hz;
};

#define RULE_DEFAULT_WINDOW_NS (120LL * 1000000000LL)
#define RULE_DEFAULT_BASELINE_WINDOW_NS (3600LL * 1000000000LL)
#define RULE_DEFAULT_CAPTURE_NS (5LL * 1000000000LL)
#define RULE_DEFAULT_RATE_HZ 99u
#define RULE_MAX_RATE_HZ 1000u

struct rule_spec {
    char *name;
    char *when_src;             /* `when` text after ${VAR} expansion, or NULL */
    struct expr *when;          /* parsed `when`, or NULL for a scheduled rule */
    char *resolve_src;          /* `resolve_when` text, or NULL */
    struct expr *resolve_when;  /* NULL: resolves when `when` is false */
    int64_t every_ns;           /* > 0: scheduled capture, no condition */
    bool for_count;             /* true: `for: N of M`; false: for_ns */
    int64_t for_ns;
    unsigned for_n, for_m;
    int64_t resolve_after_ns;   /* < 0: default (one `for`, or 30s) */
    int64_t cooldown_ns;
    int64_t window_ns;          /* growth and rate window */
    int64_t baseline_window_ns; /* window of the rolling median / mean */
    enum severity severity;
    struct capture_spec capture;
    struct label *labels;
    size_t nlabels;
    struct label *annotations;
    size_t nannotations;
    char **targets;             /* names this rule applies to; none: all */
    size_t ntargets;
    unsigned line, col;         /* where the rule starts in its file */
};

/* Free what a rule_spec owns and zero it. */
void rule_spec_fini(struct rule_spec *r);

/* Free an array of labels. NULL does nothing. */
void label_free_array(struct label *l, size_t n);

/* A hash of everything that defines a rule's behaviour (not its labels or
 * annotations): equal fingerprints mean a reload may keep the rule's state. */
uint64_t rule_fingerprint(const struct rule_spec *r);

const char *severity_name(enum severity s);
const char *profile_kind_name(enum profile_kind p);

#endif
