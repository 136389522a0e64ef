/* triggers/rule.c - rule_spec lifecycle and names; see rule.h. */
#include "rule.h"

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
