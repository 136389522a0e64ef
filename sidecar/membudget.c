/* sidecar/membudget.c - a byte budget; see membudget.h. */
#include "membudget.h"

void membudget_init(struct membudget *b, uint64_t limit, membudget_reclaim_fn reclaim, void *ctx)
{
    *b = (struct membudget){.limit = limit, .reclaim = reclaim, .ctx = ctx};
}

bool membudget_take(struct membudget *b, uint64_t n)
{
    if (!b)
        return true;
    if (n > b->limit)
        return false; /* no eviction can make room: keep the cache */
    if (b->used > b->limit - n && !(b->reclaim && b->reclaim(b->ctx, n)))
        return false;
    if (b->used > b->limit - n)
        return false; /* the hook said yes but did not free enough */
    b->used += n;
    if (b->used > b->peak)
        b->peak = b->used;
    return true;
}

void membudget_give(struct membudget *b, uint64_t n)
{
    if (!b)
        return;
    b->used = n > b->used ? 0 : b->used - n;
}

size_t membudget_grow(struct membudget *b, size_t cap, size_t need, size_t elem, uint64_t copy)
{
    /* Never a step under an eighth: growing by a few elements at a time
     * near the limit would copy the array over and over. */
    size_t steps[2] = {cap ? 2 * cap : 64, cap + (cap / 8 > 16 ? cap / 8 : 16)};

    for (size_t i = 0; i < 2; i++) {
        size_t to = steps[i] < need ? need : steps[i];
        if (to <= cap || elem == 0 || to > SIZE_MAX / elem)
            continue;
        uint64_t growth = (uint64_t)(to - cap) * elem;
        if (growth <= UINT64_MAX - copy && membudget_take(b, growth + copy))
            return to;
    }
    return 0;
}
