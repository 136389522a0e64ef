/* sidecar/perfmap.c - JIT names from perf map text; see perfmap.h. */
#include "perfmap.h"

#include "procparse.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PERFMAP_MAX_WALK 65536 /* overlapping entries looked through per lookup */

struct pm_entry {
    uint64_t start, end;
    uint32_t seq;  /* line number: the later line wins */
    uint32_t name; /* offset in perfmap.names */
};

/* What one entry slot costs the budget: the entry, its maxend, and the
 * scratch copy qsort allocates (glibc sorts by merging into a copy). */
#define PM_SLOT_BYTES (2 * sizeof(struct pm_entry) + sizeof(uint64_t))

struct perfmap {
    struct pm_entry *e; /* owned; [0, nsorted) sorted by start, then seq */
    size_t n, cap, nsorted;
    uint64_t *maxend; /* owned: largest end among e[0..i], for the walk back */
    char *names;      /* owned: NUL-terminated names back to back */
    size_t names_len, names_cap;
    uint32_t lines;
    char carry[PERFMAP_MAX_LINE]; /* the start of a line not yet ended */
    size_t carry_len;
    bool skipping;            /* inside an overlong line: drop until '\n' */
    struct membudget *budget; /* borrowed, may be NULL */
    uint64_t charged;         /* bytes taken from it: slots and names capacity */
    bool full;                /* no line is kept any more (see perfmap.h) */
    bool full_by_budget;
    size_t dropped;
    uint64_t drop_lo, drop_hi; /* the range the dropped lines cover */
};

struct perfmap *perfmap_new(struct membudget *b)
{
    struct perfmap *m = xcalloc(1, sizeof(struct perfmap));
    m->budget = b;
    return m;
}

void perfmap_free(struct perfmap *m)
{
    if (!m)
        return;
    membudget_give(m->budget, m->charged);
    free(m->e);
    free(m->maxend);
    free(m->names);
    free(m);
}

/* A line that is not kept: from now on none is. */
static void drop(struct perfmap *m, uint64_t start, uint64_t end, bool by_budget)
{
    if (!m->full)
        m->full_by_budget = by_budget;
    m->full = true;
    if (m->dropped == 0 || start < m->drop_lo)
        m->drop_lo = start;
    if (m->dropped == 0 || end > m->drop_hi)
        m->drop_hi = end;
    m->dropped++;
}

/* Room for one more entry and len + 1 bytes of name, taken from the budget
 * before anything grows; false when it refuses. */
static bool make_room(struct perfmap *m, size_t len)
{
    if (m->names_len + len + 1 > m->names_cap) {
        size_t old = m->names_cap;
        size_t cap = membudget_grow(m->budget, old, m->names_len + len + 1, 1, old);
        if (cap == 0)
            return false;
        m->charged += cap - old;
        m->names = xrealloc(m->names, cap);
        m->names_cap = cap;
        membudget_give(m->budget, old);
    }
    if (m->n == m->cap) {
        /* realloc's copy of the old entries fits in the sort scratch their
         * slots reserve: no sort runs meanwhile */
        size_t cap = membudget_grow(m->budget, m->cap, m->n + 1, PM_SLOT_BYTES, 0);
        if (cap == 0)
            return false;
        m->charged += (uint64_t)(cap - m->cap) * PM_SLOT_BYTES;
        m->e = xreallocarray(m->e, cap, sizeof *m->e);
        m->cap = cap;
    }
    return true;
}

/* Hex digits (optionally after 0x) at *s within [*s, end): the value, and *s
 * moved past them. False when there is none or it overflows 64 bits. */
static bool parse_hex(const char **s, const char *end, uint64_t *out)
{
    const char *p = *s;

    if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    if (!procparse_hex(&p, end, out))
        return false;
    *s = p;
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One line without its '\n'. */
static void parse_line(struct perfmap *m, const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    uint64_t start, size;

    m->lines++;
    while (end > p && (end[-1] == '\r' || is_blank(end[-1])))
        end--;
    if (!parse_hex(&p, end, &start) || p == end || !is_blank(*p))
        return;
    while (p < end && is_blank(*p))
        p++;
    if (!parse_hex(&p, end, &size) || p == end || !is_blank(*p))
        return;
    while (p < end && is_blank(*p))
        p++;
    if (p == end || size == 0 || size > UINT64_MAX - start)
        return;
    size_t len = (size_t)(end - p);
    if (m->full || m->n >= PERFMAP_MAX_ENTRIES || m->names_len + len + 1 > UINT32_MAX) {
        drop(m, start, start + size, false);
        return;
    }
    if (!make_room(m, len)) {
        drop(m, start, start + size, true);
        return;
    }
    m->e[m->n++] = (struct pm_entry){start, start + size, m->lines, (uint32_t)m->names_len};
    memcpy(m->names + m->names_len, p, len);
    m->names[m->names_len + len] = '\0';
    m->names_len += len + 1;
}

void perfmap_feed(struct perfmap *m, const char *buf, size_t n)
{
    const char *p = buf, *end = buf + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t chunk = (size_t)((nl ? nl : end) - p);

        if (m->skipping) {
            if (nl)
                m->skipping = false;
        } else if (m->carry_len + chunk > sizeof m->carry) {
            m->carry_len = 0;
            m->skipping = !nl;
            if (nl)
                m->lines++;
        } else if (nl && m->carry_len == 0) {
            parse_line(m, p, chunk);
        } else {
            memcpy(m->carry + m->carry_len, p, chunk);
            m->carry_len += chunk;
            if (nl) {
                parse_line(m, m->carry, m->carry_len);
                m->carry_len = 0;
            }
        }
        p += chunk + (nl ? 1 : 0);
    }
}

static int cmp_entry(const void *pa, const void *pb)
{
    const struct pm_entry *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void perfmap_sort(struct perfmap *m)
{
    if (m->nsorted == m->n)
        return;
    /* qsort's scratch is in PM_SLOT_BYTES, and once it is freed, so is
     * realloc's copy of the old maxend */
    qsort(m->e, m->n, sizeof *m->e, cmp_entry);
    m->maxend = xreallocarray(m->maxend, m->n ? m->n : 1, sizeof *m->maxend);
    for (size_t i = 0; i < m->n; i++) {
        uint64_t prev = i ? m->maxend[i - 1] : 0;
        m->maxend[i] = m->e[i].end > prev ? m->e[i].end : prev;
    }
    m->nsorted = m->n;
}

const char *perfmap_lookup(const struct perfmap *m, uint64_t addr)
{
    size_t lo = 0, hi = m->nsorted;
    const struct pm_entry *best = NULL;

    if (m->dropped > 0 && addr >= m->drop_lo && addr < m->drop_hi)
        return NULL; /* a dropped line, later than any kept, may cover it */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->e[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Every entry before lo starts at or below addr; walk back while one of
     * them may still reach past it. */
    for (size_t j = lo, steps = 0; j > 0 && steps < PERFMAP_MAX_WALK; j--, steps++) {
        const struct pm_entry *x = &m->e[j - 1];
        if (m->maxend[j - 1] <= addr)
            break;
        if (addr < x->end && (!best || x->seq > best->seq))
            best = x;
    }
    return best ? m->names + best->name : NULL;
}

size_t perfmap_count(const struct perfmap *m)
{
    return m->n;
}

size_t perfmap_dropped(const struct perfmap *m, bool *by_budget)
{
    if (by_budget)
        *by_budget = m->dropped > 0 && m->full_by_budget;
    return m->dropped;
}

void perfmap_drop_rest(struct perfmap *m)
{
    drop(m, 0, UINT64_MAX, false);
    free(m->e);
    free(m->maxend);
    free(m->names);
    m->e = NULL;
    m->maxend = NULL;
    m->names = NULL;
    m->n = m->cap = m->nsorted = m->names_len = m->names_cap = 0;
    membudget_give(m->budget, m->charged);
    m->charged = 0;
}

uint64_t perfmap_bytes(const struct perfmap *m)
{
    return m->charged;
}
