/* sidecar/promtext.h - Prometheus text exposition format 0.0.4.
 *
 * Owns nothing. Pure: appends to a strbuf. HELP and TYPE once per family,
 * label values escaped (backslash, double quote, newline), values printed
 * so Prometheus parses them (NaN, +Inf, -Inf). Serve with
 * PROMTEXT_CONTENT_TYPE: Prometheus 3 refuses a scrape without it. */
#ifndef STAKEOUT_PROMTEXT_H
#define STAKEOUT_PROMTEXT_H

#include "strbuf.h"

#define PROMTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum promtext_type { PROMTEXT_GAUGE, PROMTEXT_COUNTER, PROMTEXT_UNTYPED };

/* "# HELP name help\n# TYPE name type\n" */
void promtext_family(struct strbuf *b, const char *name, const char *help, enum promtext_type t);

/* One sample: labels is a NULL-terminated list of name, value pairs (may be
 * NULL). */
void promtext_sample(struct strbuf *b, const char *name, const char *const *labels, double value);

#endif
