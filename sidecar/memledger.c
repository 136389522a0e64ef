/* sidecar/memledger.c - charged and reserved ranges in a treap; see
 * memledger.h.
 *
 * The map holds disjoint ranges ordered by start, in a treap (a binary
 * search tree kept balanced by random priorities, with split and merge):
 * every operation on [a, b) first cuts the ranges that straddle a or b in
 * two, then splits out the subtree of the ranges inside, works on it, and
 * merges the tree back. O(log n) per call plus the ranges touched; a leak
 * of a million mappings stays fast. Neighbouring ranges are not coalesced:
 * they may belong to different owners. */
#include "memledger.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

#define RESERVED UINT32_MAX /* owner of a reserved range */

struct node {
    uint64_t start, end;
    uint32_t owner;
    uint32_t prio;
    struct node *left, *right;
};

struct memledger {
    uint64_t page;
    struct node *root;           /* owned, with every node */
    uint64_t brk;                /* page-aligned up; 0: unknown */
    uint64_t *held;              /* owned: held[owner], grown on demand */
    size_t nheld;
    uint64_t rng;
    struct memledger_stats st;
};

static uint32_t next_prio(struct memledger *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return (uint32_t)(l->rng >> 16);
}

static uint64_t page_up(const struct memledger *l, uint64_t x)
{
    return x > UINT64_MAX - (l->page - 1) ? UINT64_MAX & ~(l->page - 1)
                                           : (x + l->page - 1) & ~(l->page - 1);
}

static uint64_t page_down(const struct memledger *l, uint64_t x)
{
    return x & ~(l->page - 1);
}

/* [addr, addr + len) in whole pages, clamped to the address space. */
static void span(const struct memledger *l, uint64_t addr, uint64_t len, uint64_t *a, uint64_t *b)
{
    *a = page_down(l, addr);
    *b = len > UINT64_MAX - addr ? UINT64_MAX & ~(l->page - 1) : page_up(l, addr + len);
}

/* ---- the treap ---- */

/* t split into the ranges starting before key (*lo) and the rest (*hi). */
static void split(struct node *t, uint64_t key, struct node **lo, struct node **hi)
{
    if (!t) {
        *lo = *hi = NULL;
    } else if (t->start < key) {
        split(t->right, key, &t->right, hi);
        *lo = t;
    } else {
        split(t->left, key, lo, &t->left);
        *hi = t;
    }
}

/* Every range of a before every range of b. */
static struct node *merge(struct node *a, struct node *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (a->prio > b->prio) {
        a->right = merge(a->right, b);
        return a;
    }
    b->left = merge(a, b->left);
    return b;
}

static void free_tree(struct node *t)
{
    while (t) {
        free_tree(t->left);
        struct node *r = t->right;
        free(t);
        t = r;
    }
}

static size_t count_tree(const struct node *t)
{
    size_t n = 0;
    while (t) {
        n += 1 + count_tree(t->left);
        t = t->right;
    }
    return n;
}

static void insert(struct memledger *l, uint64_t start, uint64_t end, uint32_t owner)
{
    struct node *n = xcalloc(1, sizeof *n);
    n->start = start;
    n->end = end;
    n->owner = owner;
    n->prio = next_prio(l);
    struct node *lo, *hi;
    split(l->root, start, &lo, &hi);
    l->root = merge(merge(lo, n), hi);
}

/* The range holding x strictly inside is cut in two at x. */
static void cut(struct memledger *l, uint64_t x)
{
    struct node *cand = NULL;
    for (struct node *t = l->root; t;) {
        if (t->start < x) {
            cand = t;
            t = t->right;
        } else {
            t = t->left;
        }
    }
    if (!cand || cand->end <= x)
        return;
    uint64_t end = cand->end;
    cand->end = x;
    insert(l, x, end, cand->owner);
}

/* Take the ranges inside [a, b) out of the tree; *lo and *hi are the rest. */
static struct node *take(struct memledger *l, uint64_t a, uint64_t b, struct node **lo,
                         struct node **hi)
{
    cut(l, a);
    cut(l, b);
    struct node *mid, *rest;
    split(l->root, a, lo, &rest);
    split(rest, b, &mid, hi);
    l->root = NULL;
    return mid;
}

/* ---- owners ---- */

static void charge(struct memledger *l, uint32_t owner, uint64_t bytes)
{
    if (owner >= l->nheld) {
        size_t n = l->nheld ? l->nheld : 64;
        while (n <= owner)
            n *= 2;
        l->held = xreallocarray(l->held, n, sizeof *l->held);
        memset(l->held + l->nheld, 0, (n - l->nheld) * sizeof *l->held);
        l->nheld = n;
    }
    l->held[owner] += bytes;
    l->st.charged += bytes;
}

static void credit(struct memledger *l, uint32_t owner, uint64_t bytes)
{
    if (owner == RESERVED || owner >= l->nheld)
        return;
    uint64_t back = bytes < l->held[owner] ? bytes : l->held[owner];
    l->held[owner] -= back;
    l->st.credited += back;
}

/* Credit every range of t, free them; returns the bytes they covered. */
static uint64_t credit_tree(struct memledger *l, struct node *t)
{
    uint64_t covered = 0;
    while (t) {
        covered += credit_tree(l, t->left);
        credit(l, t->owner, t->end - t->start);
        covered += t->end - t->start;
        struct node *r = t->right;
        free(t);
        t = r;
    }
    return covered;
}

/* [a, b) is no longer mapped, or mapped anew: credit what it held. given:
 * the target gave it back (munmap and the like), so what the map did not
 * hold was memory from before the capture; else (a new mapping over it)
 * it may have been nothing. */
static void release(struct memledger *l, uint64_t a, uint64_t b, bool given)
{
    if (a >= b)
        return;
    struct node *lo, *hi;
    struct node *mid = take(l, a, b, &lo, &hi);
    uint64_t covered = credit_tree(l, mid);
    l->root = merge(lo, hi);
    if (given)
        l->st.unseen_released += (b - a) - covered;
}

/* Reserved ranges of t become owner's; returns the bytes. */
static uint64_t commit_tree(struct node *t, uint32_t owner)
{
    uint64_t bytes = 0;
    for (; t; t = t->right) {
        bytes += commit_tree(t->left, owner);
        if (t->owner == RESERVED) {
            t->owner = owner;
            bytes += t->end - t->start;
        }
    }
    return bytes;
}

static void shift_tree(struct node *t, uint64_t from, uint64_t to)
{
    for (; t; t = t->right) {
        shift_tree(t->left, from, to);
        t->start = t->start - from + to;
        t->end = t->end - from + to;
    }
}

/* ---- the calls ---- */

struct memledger *memledger_new(uint64_t page_size)
{
    struct memledger *l = xcalloc(1, sizeof *l);
    l->page = page_size && (page_size & (page_size - 1)) == 0 ? page_size : 4096;
    l->rng = 0x9e3779b97f4a7c15ULL;
    return l;
}

void memledger_free(struct memledger *l)
{
    if (!l)
        return;
    free_tree(l->root);
    free(l->held);
    free(l);
}

void memledger_reserved(struct memledger *l, uint64_t start, uint64_t end)
{
    uint64_t a, b;
    span(l, start, end > start ? end - start : 0, &a, &b);
    if (a >= b)
        return;
    release(l, a, b, false);
    insert(l, a, b, RESERVED);
}

void memledger_set_brk(struct memledger *l, uint64_t brk)
{
    l->brk = brk ? page_up(l, brk) : 0;
}

uint64_t memledger_mmap(struct memledger *l, uint64_t addr, uint64_t len, bool prot_none,
                        bool charge_it, uint32_t owner)
{
    uint64_t a, b;
    span(l, addr, len, &a, &b);
    if (a >= b)
        return 0;
    release(l, a, b, false); /* MAP_FIXED over what was there */
    if (prot_none) {
        insert(l, a, b, RESERVED);
        return 0;
    }
    if (!charge_it || owner == RESERVED)
        return 0;
    insert(l, a, b, owner);
    charge(l, owner, b - a);
    return b - a;
}

void memledger_munmap(struct memledger *l, uint64_t addr, uint64_t len)
{
    uint64_t a, b;
    span(l, addr, len, &a, &b);
    release(l, a, b, true);
}

uint64_t memledger_brk(struct memledger *l, uint64_t brk, uint32_t owner)
{
    uint64_t now = page_up(l, brk), was = l->brk;
    l->brk = now;
    if (was == 0 || now == was)
        return 0;
    if (now < was) {
        release(l, now, was, true);
        return 0;
    }
    release(l, was, now, false); /* nothing there, but be exact */
    if (owner == RESERVED)
        return 0;
    insert(l, was, now, owner);
    charge(l, owner, now - was);
    return now - was;
}

uint64_t memledger_mremap(struct memledger *l, uint64_t old_addr, uint64_t old_len,
                          uint64_t new_addr, uint64_t new_len, uint32_t owner)
{
    uint64_t oa, ob, na, nb;
    span(l, old_addr, old_len, &oa, &ob);
    span(l, new_addr, new_len, &na, &nb);
    uint64_t olen = ob - oa, nlen = nb - na;
    if (olen == 0 || nlen == 0)
        return 0; /* old_len 0 duplicates a shared mapping: no memory of its own */
    uint64_t keep = olen < nlen ? olen : nlen;
    if (olen > nlen)
        release(l, oa + nlen, ob, true); /* the tail given back */
    if (na != oa) {
        struct node *lo, *hi;
        struct node *moved = take(l, oa, oa + keep, &lo, &hi);
        l->root = merge(lo, hi);
        release(l, na, nb, false); /* MREMAP_FIXED over what was there */
        shift_tree(moved, oa, na);
        split(l->root, na, &lo, &hi);
        l->root = merge(merge(lo, moved), hi);
    }
    if (nlen <= olen || owner == RESERVED)
        return 0;
    release(l, na + olen, nb, false);
    insert(l, na + olen, nb, owner);
    charge(l, owner, nb - (na + olen));
    return nb - (na + olen);
}

uint64_t memledger_mprotect(struct memledger *l, uint64_t addr, uint64_t len, uint32_t owner)
{
    uint64_t a, b;
    span(l, addr, len, &a, &b);
    if (a >= b || owner == RESERVED)
        return 0;
    struct node *lo, *hi;
    struct node *mid = take(l, a, b, &lo, &hi);
    uint64_t bytes = commit_tree(mid, owner);
    if (bytes)
        charge(l, owner, bytes);
    l->root = merge(merge(lo, mid), hi);
    return bytes;
}

static void each_node(const struct node *t,
                      void (*fn)(void *ctx, uint64_t start, uint64_t end, uint32_t owner),
                      void *ctx)
{
    for (; t; t = t->right) {
        each_node(t->left, fn, ctx);
        if (t->owner != RESERVED)
            fn(ctx, t->start, t->end, t->owner);
    }
}

void memledger_each(const struct memledger *l,
                    void (*fn)(void *ctx, uint64_t start, uint64_t end, uint32_t owner),
                    void *ctx)
{
    each_node(l->root, fn, ctx);
}

uint64_t memledger_held(const struct memledger *l, uint32_t owner)
{
    return owner < l->nheld ? l->held[owner] : 0;
}

void memledger_stats(const struct memledger *l, struct memledger_stats *out)
{
    *out = l->st;
    out->ranges = count_tree(l->root);
}
