/* sidecar/membudget.h - a byte budget that a cache allocates against.
 *
 * Owns nothing: the budget is a counter in its owner's storage (the symbol
 * cache's), and each holder of charged memory (a symbol table, a perf map)
 * remembers what it took and gives it back when it frees it. Pure: no I/O,
 * no allocation. Not thread-safe: one thread at a time, as its cache.
 *
 * Bytes are taken before the allocation they pay for, never after, so the
 * bytes in use never exceed the limit: a parser asks before it grows and
 * stops when refused, rather than allocating and then noticing. When a take
 * would go over the limit, the owner's reclaim hook is asked to free cached
 * data first (evicting what nothing uses, least recently used first); the
 * take is refused only when that cannot make room. A NULL budget is no
 * limit at all (pure parsers in tests). */
#ifndef STAKEOUT_MEMBUDGET_H
#define STAKEOUT_MEMBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Frees cached data until need more bytes fit under the limit; returns
 * whether they do now. Must not take from the budget itself. */
typedef bool (*membudget_reclaim_fn)(void *ctx, uint64_t need);

struct membudget {
    uint64_t limit;
    uint64_t used;                /* never above limit */
    uint64_t peak;                /* the most used at any time */
    membudget_reclaim_fn reclaim; /* may be NULL: nothing to evict */
    void *ctx;                    /* borrowed, for reclaim */
};

void membudget_init(struct membudget *b, uint64_t limit, membudget_reclaim_fn reclaim, void *ctx);

/* Take n bytes, reclaiming first if need be. False (nothing taken) when they
 * do not fit even then. Always true for a NULL budget. */
bool membudget_take(struct membudget *b, uint64_t n) __attribute__((warn_unused_result));

/* Give back n bytes taken before. Nothing for a NULL budget. */
void membudget_give(struct membudget *b, uint64_t n);

/* The capacity an array of elements of elem bytes should grow to from cap
 * so that it holds need of them, with the growth taken from b: twice cap,
 * or when that does not fit, an eighth more (at least 16, at least need).
 * Besides the growth it takes copy bytes: the old array, which realloc may
 * hold beside the new one while it copies (glibc does for arrays in its
 * heap); the caller gives them back once realloc has returned. Returns the
 * new capacity, or 0 when neither fits (nothing taken). need > cap. */
size_t membudget_grow(struct membudget *b, size_t cap, size_t need, size_t elem, uint64_t copy)
    __attribute__((warn_unused_result));

#endif
