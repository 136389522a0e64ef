/* sidecar/perfmap.h - names of JIT-compiled code from a perf map file.
 *
 * Owns: struct perfmap (perfmap_free): its entries, their names and a
 * partial last line waiting for the rest. Pure: the caller reads
 * /tmp/perf-PID.map and feeds the bytes, in chunks of any size, as many
 * times as the file grows (JITs append to it). Lines are "START SIZE NAME"
 * with START and SIZE in hex (optionally 0x-prefixed), as Node's
 * --perf-basic-prof, perf-map-agent and other JITs write them; malformed
 * lines are skipped. When entries overlap, the later line wins: a JIT
 * reuses the memory of code it threw away. */
#ifndef STAKEOUT_PERFMAP_H
#define STAKEOUT_PERFMAP_H

#include <stddef.h>
#include <stdint.h>

#define PERFMAP_MAX_ENTRIES (4u << 20) /* more lines are ignored */
#define PERFMAP_MAX_LINE 4096          /* longer lines are skipped */

struct perfmap;

struct perfmap *perfmap_new(void);
void perfmap_free(struct perfmap *m);

/* Parse the complete lines in buf[n]; a line left without its '\n' is kept
 * until the next call completes it. Call perfmap_sort before lookups. */
void perfmap_feed(struct perfmap *m, const char *buf, size_t n);

/* Index what was fed (again after more feeding). */
void perfmap_sort(struct perfmap *m);

/* The name of the code holding addr, NULL when none. Borrowed: valid until
 * the next perfmap_feed or perfmap_free. */
const char *perfmap_lookup(const struct perfmap *m, uint64_t addr);

/* Entries held. */
size_t perfmap_count(const struct perfmap *m);

#endif
