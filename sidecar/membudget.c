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

size_t membudget_grow(struct membudget *b, size_t cap, size_t need, size_t elem)
{
    size_t steps[3] = {cap ? 2 * cap : 64, cap + cap / 8, need};

    for (size_t i = 0; i < 3; i++) {
        size_t to = steps[i] < need ? need : steps[i];
        if (to <= cap || elem == 0 || to > SIZE_MAX / elem)
            continue;
        if (membudget_take(b, (uint64_t)(to - cap) * elem))
            return to;
    }
    return 0;
}
