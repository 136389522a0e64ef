/* triggers/rule.c - rule_spec lifecycle and names; see rule.h. */
#include "rule.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void label_free_array(struct label *l, size_t n)
{
    if (!l)
        return;
    for (size_t i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].value);
    }
    free(l);
}

void rule_spec_fini(struct rule_spec *r)
{
    free(r->name);
    free(r->when_src);
    expr_free(r->when);
    free(r->resolve_src);
    expr_free(r->resolve_when);
    label_free_array(r->labels, r->nlabels);
    label_free_array(r->annotations, r->nannotations);
    for (size_t i = 0; i < r->ntargets; i++)
        free(r->targets[i]);
    free(r->targets);
    memset(r, 0, sizeof *r);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    /* the terminating NUL separates fields */
    return fnv1a(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

uint64_t rule_fingerprint(const struct rule_spec *r)
{
    char buf[EXPR_MAX_LEN * 2];
    char nums[256];
    uint64_t h = 14695981039346656037ULL;

    h = fnv_str(h, r->name);
    expr_format(r->when, buf, sizeof buf);
    h = fnv_str(h, buf);
    expr_format(r->resolve_when, buf, sizeof buf);
    h = fnv_str(h, buf);
    snprintf(nums, sizeof nums,
             "%" PRId64 " %d %" PRId64 " %u %u %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
             " %d %d %" PRId64 " %u",
             r->every_ns, r->for_count, r->for_ns, r->for_n, r->for_m, r->resolve_after_ns,
             r->cooldown_ns, r->window_ns, r->baseline_window_ns, (int)r->severity,
             (int)r->capture.profile, r->capture.duration_ns, r->capture.rate_hz);
    h = fnv_str(h, nums);
    for (size_t i = 0; i < r->ntargets; i++)
        h = fnv_str(h, r->targets[i]);
    return h;
}

const char *severity_name(enum severity s)
{
    switch (s) {
    case SEVERITY_INFO:
        return "info";
    case SEVERITY_WARNING:
        return "warning";
    case SEVERITY_CRITICAL:
        return "critical";
    }
    return "?";
}

const char *profile_kind_name(enum profile_kind p)
{
    switch (p) {
    case PROFILE_NONE:
        return "none";
    case PROFILE_CPU:
        return "cpu";
    case PROFILE_MEMORY:
        return "memory";
    }
    return "?";
}
