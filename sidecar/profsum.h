/* sidecar/profsum.h - a profile's summary as JSON, for alerts and logs.
 *
 * Owns nothing; the JSON returned belongs to the caller (json_decref).
 * Borrows the profile, only for the call. Pure: builds a jansson value.
 *
 * {"type": "cpu"|"wall"|"memory", "pid", "comm", "duration_ns",
 *  "rate_hz": {"asked", "achieved"}, "unit": "samples"|"bytes",
 *  "samples" (count), "total" (ns or bytes), "idle_samples",
 *  "failed_unwinds", "threads_skipped", "stopped_ns",
 *  "stopped_share" (of duration, 0..1; 0 when the duration is 0),
 *  "threads": [{"tid", "name", "samples", "percent"}] hottest first,
 *  "top_self": [{"name", "self_percent", "total_percent", "self", "total"}]
 *      by self then total, "top_total": the same by total then self,
 *  "notes": [...], "aborted": bool}
 * Memory profiles add
 *  "top_stacks": [{"bytes" (held at the end), "gross_bytes" (grown),
 *      "share" (of all bytes weighed, 0..1), "samples", "frames": [leaf
 *      first]}] the heaviest first, and, when the capture said how it went,
 *  "memory": {"method", "weighed_by": "net"|"gross", "held_counts":
 *      "resident"|"mapped" (what "bytes" of a stack counts), "calls", "lost_calls",
 *      "stopped_share" (ptrace: the largest share of a governor window a thread
 *      of the target spent stopped, 0..1; 0 for tracepoints),
 *      "stack_bytes_copied" (user stack copied for the calls that can grow
 *      memory: with tracepoints, by the kernel in the target's context),
 *      "bytes_grown", "bytes_given_back", "bytes_net",
 *      "bytes_released_from_before", "rss_before", "rss_after",
 *      "mappings": [{"kind", "path", "start", "size_before", "size_after",
 *      "rss_before", "rss_after", "rss_growth"}] largest growth first,
 *      "mappings_omitted", "mappings_omitted_rss_growth"}.
 * Memory is weighed by bytes still held at the end (net), or grown
 * (p->gross). Percentages are of all samples (of all bytes for memory),
 * rounded to hundredths; top lists and threads hold at most top_n
 * entries. */
#ifndef STAKEOUT_PROFSUM_H
#define STAKEOUT_PROFSUM_H

#include "profile.h"

#include <jansson.h>
#include <stddef.h>

#define PROFSUM_STACK_FRAMES 16 /* frames listed per memory stack */

json_t *profsum_json(const struct profile *p, size_t top_n);

#endif
