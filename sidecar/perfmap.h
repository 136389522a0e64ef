/* sidecar/perfmap.h - names of JIT-compiled code from a perf map file.
 *
 * Owns: struct perfmap (perfmap_free): its entries, their names and a
 * partial last line waiting for the rest. Pure: the caller reads
 * /tmp/perf-PID.map and feeds the bytes, in chunks of any size, as many
 * times as the file grows (JITs append to it). Lines are "START SIZE NAME"
 * with START and SIZE in hex (optionally 0x-prefixed), as Node's
 * --perf-basic-prof, perf-map-agent and other JITs write them; malformed
 * lines are skipped. When entries overlap, the later line wins: a JIT
 * reuses the memory of code it threw away.
 *
 * Memory: entries and names are taken from a byte budget (membudget.h)
 * before they are allocated, with room for sorting them. When the budget
 * refuses, or past PERFMAP_MAX_ENTRIES lines, the map stops keeping lines:
 * every later one is dropped, and only the address range the dropped lines
 * cover is remembered. A kept line is then always older than every dropped
 * one, so it names an address correctly unless a dropped line may cover
 * that address too: lookups inside the dropped range find nothing, those
 * outside it are as exact as with the whole file. */
#ifndef STAKEOUT_PERFMAP_H
#define STAKEOUT_PERFMAP_H

#include "membudget.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PERFMAP_MAX_ENTRIES (4u << 20) /* more lines are ignored */
#define PERFMAP_MAX_LINE 4096          /* longer lines are skipped */

struct perfmap;

/* b (borrowed, may be NULL for no limit) must outlive the map; what the map
 * took from it is given back by perfmap_free. */
struct perfmap *perfmap_new(struct membudget *b);
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

/* Well-formed lines not kept (see above), and in *by_budget (may be NULL)
 * whether the budget stopped the keeping (false: PERFMAP_MAX_ENTRIES). */
size_t perfmap_dropped(const struct perfmap *m, bool *by_budget);

/* The rest of the file will not be fed (it is too large to read): any
 * address may be covered by a line never seen, so from now on lookups find
 * nothing. The entries are freed and their bytes given back. */
void perfmap_drop_rest(struct perfmap *m);

/* Bytes the map has taken from its budget. */
uint64_t perfmap_bytes(const struct perfmap *m);

#endif
