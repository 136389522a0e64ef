/* tests/test_memledger.c - the ledger of address-space growth (memledger.h).
 *
 * Named cases for each call, then random sequences of calls checked against
 * a model that keeps one state per page: the treap must end with the same
 * bytes held by every owner and the same totals. */
#include <criterion/criterion.h>

#include "memledger.h"

#include <stdlib.h>
#include <string.h>

#define PG 4096ULL

TestSuite(memledger, .timeout = 30);

Test(memledger, churn_nets_to_zero_and_a_leak_keeps_its_bytes)
{
    struct memledger *l = memledger_new(PG);
    /* owner 1 maps and unmaps the same 1 MiB ten times; owner 2 keeps 64 KiB */
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(memledger_mmap(l, 0x7f0000000000, 1 << 20, false, true, 1), 1 << 20);
        memledger_munmap(l, 0x7f0000000000, 1 << 20);
        cr_expect_eq(memledger_mmap(l, 0x7e0000000000 + i * 0x10000ULL, 0x10000, false, true, 2),
                     0x10000);
    }
    cr_expect_eq(memledger_held(l, 1), 0);
    cr_expect_eq(memledger_held(l, 2), 10 * 0x10000);
    struct memledger_stats st;
    memledger_stats(l, &st);
    cr_expect_eq(st.charged, 10 * (1 << 20) + 10 * 0x10000);
    cr_expect_eq(st.credited, 10 * (1 << 20));
    cr_expect_eq(st.unseen_released, 0);
    cr_expect_eq(st.ranges, 10);
    memledger_free(l);
}

struct each_seen {
    size_t ranges;
    uint64_t bytes, first, last;
};

static void each_count(void *ctx, uint64_t start, uint64_t end, uint32_t owner)
{
    struct each_seen *s = ctx;
    (void)owner;
    if (s->ranges == 0)
        s->first = start;
    cr_expect_geq(start, s->last, "ranges out of order");
    s->last = end;
    s->ranges++;
    s->bytes += end - start;
}

Test(memledger, partial_unmap_credits_only_the_pages_given_back)
{
    struct memledger *l = memledger_new(PG);
    memledger_mmap(l, 0x10000, 8 * PG, false, true, 3);
    memledger_munmap(l, 0x10000 + 2 * PG, 3 * PG); /* a hole in the middle */
    cr_expect_eq(memledger_held(l, 3), 5 * PG);
    memledger_munmap(l, 0x10000 - PG, 2 * PG); /* one page before, one inside */
    cr_expect_eq(memledger_held(l, 3), 4 * PG);
    struct memledger_stats st;
    memledger_stats(l, &st);
    cr_expect_eq(st.unseen_released, PG, "the page before was never seen mapped");
    struct each_seen seen = {0};
    memledger_each(l, each_count, &seen);
    cr_expect_eq(seen.ranges, 2);
    cr_expect_eq(seen.bytes, 4 * PG, "what each lists is what is held");
    cr_expect_eq(seen.first, 0x10000 + PG, "in address order");
    cr_expect_eq(st.ranges, 2);
    memledger_free(l);
}

Test(memledger, lengths_round_up_to_whole_pages)
{
    struct memledger *l = memledger_new(PG);
    cr_expect_eq(memledger_mmap(l, 0x20000, 1, false, true, 0), PG);
    cr_expect_eq(memledger_mmap(l, 0x30000, PG + 1, false, true, 0), 2 * PG);
    memledger_munmap(l, 0x30000, 1);
    cr_expect_eq(memledger_held(l, 0), 2 * PG);
    memledger_free(l);
}

Test(memledger, map_fixed_over_a_charged_range_moves_the_charge)
{
    struct memledger *l = memledger_new(PG);
    memledger_mmap(l, 0x40000, 4 * PG, false, true, 1);
    cr_expect_eq(memledger_mmap(l, 0x41000, 2 * PG, false, true, 2), 2 * PG);
    cr_expect_eq(memledger_held(l, 1), 2 * PG);
    cr_expect_eq(memledger_held(l, 2), 2 * PG);
    /* a file mapped to be read over it: given back, charged to nobody */
    cr_expect_eq(memledger_mmap(l, 0x40000, 4 * PG, false, false, 3), 0);
    cr_expect_eq(memledger_held(l, 1) + memledger_held(l, 2) + memledger_held(l, 3), 0);
    memledger_free(l);
}

Test(memledger, brk_growth_is_charged_and_shrinking_credits_the_newest_first)
{
    struct memledger *l = memledger_new(PG);
    cr_expect_eq(memledger_brk(l, 0x555000001234, 1), 0, "the first brk only sets the break");
    cr_expect_eq(memledger_brk(l, 0x555000021234, 1), 0x20000);
    cr_expect_eq(memledger_brk(l, 0x555000041234, 2), 0x20000);
    cr_expect_eq(memledger_brk(l, 0x555000031234, 2), 0, "shrinking charges nothing");
    cr_expect_eq(memledger_held(l, 1), 0x20000);
    cr_expect_eq(memledger_held(l, 2), 0x10000);
    memledger_set_brk(l, 0x555000021234); /* as if read again: no change of charges */
    cr_expect_eq(memledger_brk(l, 0x555000001000, 3), 0);
    cr_expect_eq(memledger_held(l, 1), 0);
    struct memledger_stats st;
    memledger_stats(l, &st);
    cr_expect_eq(st.unseen_released, 0x1000, "the page of the first break grew before");
    memledger_free(l);
}

Test(memledger, mremap_in_place_and_moved_keeps_owners_and_charges_growth)
{
    struct memledger *l = memledger_new(PG);
    memledger_mmap(l, 0x100000, 4 * PG, false, true, 1);
    /* grows in place: the new part is the realloc's */
    cr_expect_eq(memledger_mremap(l, 0x100000, 4 * PG, 0x100000, 6 * PG, 2), 2 * PG);
    /* moves and grows: what moved stays 1's and 2's */
    cr_expect_eq(memledger_mremap(l, 0x100000, 6 * PG, 0x900000, 10 * PG, 3), 4 * PG);
    cr_expect_eq(memledger_held(l, 1), 4 * PG);
    cr_expect_eq(memledger_held(l, 2), 2 * PG);
    cr_expect_eq(memledger_held(l, 3), 4 * PG);
    /* the old place is empty: unmapping it credits nothing */
    memledger_munmap(l, 0x100000, 6 * PG);
    cr_expect_eq(memledger_held(l, 1), 4 * PG);
    /* shrinks while moving: the tail is credited to its owner (3's pages) */
    cr_expect_eq(memledger_mremap(l, 0x900000, 10 * PG, 0x500000, 5 * PG, 4), 0);
    cr_expect_eq(memledger_held(l, 3), 0);
    cr_expect_eq(memledger_held(l, 2), PG);
    memledger_munmap(l, 0x500000, 5 * PG);
    cr_expect_eq(memledger_held(l, 1) + memledger_held(l, 2), 0);
    memledger_free(l);
}

Test(memledger, reserved_arena_is_charged_when_made_usable_and_credited_when_unmapped)
{
    struct memledger *l = memledger_new(PG);
    /* an arena reserved before the capture, and one during it */
    memledger_reserved(l, 0x7f1000000000, 0x7f1004000000);
    cr_expect_eq(memledger_mmap(l, 0x7f2000000000, 64 << 20, true, true, 9), 0);
    cr_expect_eq(memledger_mprotect(l, 0x7f1000000000, 33 * PG, 1), 33 * PG);
    cr_expect_eq(memledger_mprotect(l, 0x7f2000000000, 16 * PG, 2), 16 * PG);
    /* made usable again: already charged, not charged twice */
    cr_expect_eq(memledger_mprotect(l, 0x7f1000000000, 40 * PG, 3), 7 * PG);
    /* an unseen range made usable is not growth the ledger can know */
    cr_expect_eq(memledger_mprotect(l, 0x7f3000000000, 16 * PG, 4), 0);
    memledger_munmap(l, 0x7f1000000000 + 8 * PG, 32 * PG);
    cr_expect_eq(memledger_held(l, 1), 8 * PG);
    cr_expect_eq(memledger_held(l, 3), 0);
    cr_expect_eq(memledger_held(l, 2), 16 * PG);
    memledger_free(l);
}

Test(memledger, a_million_mappings_stay_fast)
{
    /* O(log n) per call: a linear map would take minutes here */
    struct memledger *l = memledger_new(PG);
    for (uint64_t i = 0; i < 1000000; i++)
        memledger_mmap(l, 0x100000000ULL + i * 2 * PG, PG, false, true, (uint32_t)(i % 7));
    for (uint64_t i = 0; i < 1000000; i += 2)
        memledger_munmap(l, 0x100000000ULL + i * 2 * PG, PG);
    uint64_t held = 0;
    for (uint32_t o = 0; o < 7; o++)
        held += memledger_held(l, o);
    cr_expect_eq(held, 500000 * PG);
    struct memledger_stats st;
    memledger_stats(l, &st);
    cr_expect_eq(st.ranges, 500000);
    memledger_free(l);
}

/* ---- against a model: one state per page ---- */

#define NPAGES 512
#define NONE_ST (-1)
#define RES_ST (-2)

struct model {
    int page[NPAGES];
    uint64_t held[16];
    uint64_t brk; /* in pages, 0 unknown */
    uint64_t charged, credited, unseen;
};

static void m_release(struct model *m, uint64_t a, uint64_t b, bool given)
{
    for (uint64_t p = a; p < b && p < NPAGES; p++) {
        if (m->page[p] >= 0) {
            m->held[m->page[p]] -= PG;
            m->credited += PG;
        } else if (m->page[p] == NONE_ST && given) {
            m->unseen += PG;
        }
        m->page[p] = NONE_ST;
    }
}

static void m_own(struct model *m, uint64_t a, uint64_t b, int owner)
{
    for (uint64_t p = a; p < b; p++) {
        m->page[p] = owner;
        m->held[owner] += PG;
        m->charged += PG;
    }
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_run(uint64_t seed, int steps)
{
    struct memledger *l = memledger_new(PG);
    struct model m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < NPAGES; i++)
        m.page[i] = NONE_ST;
    uint64_t s = seed;
    for (int step = 0; step < steps; step++) {
        int op = (int)(rnd(&s) % 7);
        uint64_t a = rnd(&s) % (NPAGES - 64), n = 1 + rnd(&s) % 32;
        int owner = (int)(rnd(&s) % 16);
        switch (op) {
        case 0: { /* mmap: usable, reserved or a read-only file */
            int kind = (int)(rnd(&s) % 3);
            memledger_mmap(l, a * PG, n * PG, kind == 1, kind == 0, (uint32_t)owner);
            m_release(&m, a, a + n, false);
            if (kind == 1)
                for (uint64_t p = a; p < a + n; p++)
                    m.page[p] = RES_ST;
            else if (kind == 0)
                m_own(&m, a, a + n, owner);
            break;
        }
        case 1:
            memledger_munmap(l, a * PG, n * PG);
            m_release(&m, a, a + n, true);
            break;
        case 2: /* a reserve over part of the space */
            memledger_reserved(l, a * PG, (a + n) * PG);
            m_release(&m, a, a + n, false);
            for (uint64_t p = a; p < a + n; p++)
                m.page[p] = RES_ST;
            break;
        case 3:
            memledger_mprotect(l, a * PG, n * PG, (uint32_t)owner);
            for (uint64_t p = a; p < a + n; p++) {
                if (m.page[p] == RES_ST)
                    m_own(&m, p, p + 1, owner);
            }
            break;
        case 4: { /* brk within the upper half, aligned or not */
            uint64_t bytes = (NPAGES / 2 + rnd(&s) % (NPAGES / 2 - 1)) * PG + rnd(&s) % PG;
            uint64_t now = (bytes + PG - 1) / PG;
            memledger_brk(l, bytes, (uint32_t)owner);
            if (m.brk && now < m.brk)
                m_release(&m, now, m.brk, true);
            else if (m.brk && now > m.brk) {
                m_release(&m, m.brk, now, false);
                m_own(&m, m.brk, now, owner);
            }
            m.brk = now;
            break;
        }
        case 5:
        case 6: { /* mremap, in place or moved, growing or shrinking */
            uint64_t nn = 1 + rnd(&s) % 32;
            uint64_t na = op == 5 ? a : rnd(&s) % (NPAGES - 64);
            if (na != a && na < a + n + 32 && a < na + nn + 32)
                break; /* the kernel refuses overlapping moves; so do we */
            if (na == a && a + nn > NPAGES)
                break;
            memledger_mremap(l, a * PG, n * PG, na * PG, nn * PG, (uint32_t)owner);
            uint64_t keep = n < nn ? n : nn;
            if (n > nn)
                m_release(&m, a + nn, a + n, true);
            if (na != a) {
                int moved[64];
                for (uint64_t p = 0; p < keep; p++) {
                    moved[p] = m.page[a + p];
                    m.page[a + p] = NONE_ST;
                }
                m_release(&m, na, na + nn, false);
                for (uint64_t p = 0; p < keep; p++)
                    m.page[na + p] = moved[p];
            }
            if (nn > n) {
                m_release(&m, na + n, na + nn, false);
                m_own(&m, na + n, na + nn, owner);
            }
            break;
        }
        }
    }
    for (int o = 0; o < 16; o++)
        cr_assert_eq(memledger_held(l, (uint32_t)o), m.held[o], "seed %llu owner %d",
                     (unsigned long long)seed, o);
    struct memledger_stats st;
    memledger_stats(l, &st);
    cr_assert_eq(st.charged, m.charged, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(st.credited, m.credited, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(st.unseen_released, m.unseen, "seed %llu", (unsigned long long)seed);
    memledger_free(l);
}

Test(memledger, random_calls_agree_with_a_page_model)
{
    for (uint64_t seed = 1; seed <= 300; seed++)
        random_run(seed * 0x9e3779b97f4a7c15ULL, 400);
}
