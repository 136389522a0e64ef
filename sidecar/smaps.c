/* sidecar/smaps.c - /proc/PID/smaps parsed, classified and compared; see
 * smaps.h. */
#include "smaps.h"

#include "errbuf.h"
#include "fsread.h"
#include "procparse.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_MAX (1u << 20) /* the largest guard below a thread's stack we take for one */

static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static enum smaps_kind classify(const struct proc_map *m)
{
    const char *p = m->path;
    size_t n = m->path_len;
    if (n == 6 && memcmp(p, "[heap]", 6) == 0)
        return SMAPS_HEAP;
    if ((n == 7 && memcmp(p, "[stack]", 7) == 0) || starts_with(p, n, "[stack:"))
        return SMAPS_STACK;
    if (starts_with(p, n, "[anon_shmem:") || m->perms[3] == 's')
        return SMAPS_SHARED;
    if (starts_with(p, n, "[anon:"))
        return SMAPS_ANON; /* named with PR_SET_VMA_ANON_NAME */
    if (n > 0 && p[0] == '[')
        return SMAPS_OTHER; /* [vdso], [vvar], [vsyscall] */
    if (m->inode != 0 || n > 0)
        return SMAPS_FILE;
    return SMAPS_ANON;
}

/* "Name:   1234 kB" at line: the value in bytes, for the names we keep. */
static void take_field(struct smaps_entry *e, const char *line, size_t n)
{
    uint64_t *slot = NULL;
    size_t skip = 0;
    if (starts_with(line, n, "Rss:"))
        slot = &e->rss, skip = 4;
    else if (starts_with(line, n, "Pss:"))
        slot = &e->pss, skip = 4;
    else if (starts_with(line, n, "Anonymous:"))
        slot = &e->anon, skip = 10;
    else if (starts_with(line, n, "Swap:"))
        slot = &e->swap, skip = 5;
    if (!slot)
        return;
    const char *p = line + skip, *end = line + n;
    while (p < end && *p == ' ')
        p++;
    uint64_t kb;
    if (procparse_dec(&p, end, &kb) && kb <= UINT64_MAX / 1024)
        *slot = kb * 1024;
}

/* Anonymous memory right above a small PROT_NONE anonymous mapping is a
 * thread's stack with its guard page: glibc, musl and Go's cgo threads lay
 * them out so. (A malloc arena has its PROT_NONE reserve above it.) */
static void find_thread_stacks(struct smaps *s)
{
    for (size_t i = 1; i < s->n; i++) {
        struct smaps_entry *e = &s->v[i], *g = &s->v[i - 1];
        if (e->kind == SMAPS_ANON && e->path[0] == '\0' && strcmp(e->perms, "rw-p") == 0 &&
            g->kind == SMAPS_ANON && g->path[0] == '\0' && strcmp(g->perms, "---p") == 0 &&
            g->end == e->start && g->end - g->start <= GUARD_MAX)
            e->kind = SMAPS_STACK;
    }
}

int smaps_parse(const char *buf, size_t n, struct smaps *out)
{
    struct smaps s = {0};
    size_t cap = 0;
    const char *p = buf, *end = buf + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            s.truncated = true; /* half a line: the read stopped in it */
            break;
        }
        size_t len = (size_t)(nl - p);
        struct proc_map m;
        if (len > 0 && p[0] >= 'A' && p[0] <= 'Z') {
            if (s.n > 0)
                take_field(&s.v[s.n - 1], p, len);
        } else if (procparse_maps_line(p, len, &m) == 0) {
            if (s.n == cap) {
                cap = cap ? cap * 2 : 64;
                s.v = xreallocarray(s.v, cap, sizeof *s.v);
            }
            struct smaps_entry *e = &s.v[s.n++];
            memset(e, 0, sizeof *e);
            e->start = m.start;
            e->end = m.end;
            memcpy(e->perms, m.perms, sizeof e->perms);
            e->inode = m.inode;
            e->path = xstrndup(m.path, m.path_len);
            e->kind = classify(&m);
        }
        p = nl + 1;
    }
    if (s.n == 0) {
        smaps_fini(&s);
        return -EINVAL;
    }
    find_thread_stacks(&s);
    *out = s;
    return 0;
}

void smaps_fini(struct smaps *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].path);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int smaps_read(int pid, size_t max_bytes, struct smaps *out, char *err, size_t errlen)
{
    char path[64], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/smaps", pid);
    int rc = fsread_alloc(path, max_bytes, &buf, &len);
    if (rc < 0) {
        errbuf_set(err, errlen, "cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    rc = smaps_parse(buf, len, out);
    if (rc < 0)
        errbuf_set(err, errlen, "%s has no mapping in it", path);
    else if (len + 1 >= max_bytes)
        out->truncated = true;
    free(buf);
    return rc;
}

const char *smaps_kind_name(enum smaps_kind k)
{
    static const char *const names[SMAPS_NKINDS] = {"heap", "anonymous", "stack",
                                                    "file", "shared", "other"};
    return (unsigned)k < SMAPS_NKINDS ? names[k] : "other";
}

void smaps_totals(const struct smaps *s, uint64_t rss[SMAPS_NKINDS])
{
    memset(rss, 0, SMAPS_NKINDS * sizeof rss[0]);
    for (size_t i = 0; i < s->n; i++)
        rss[s->v[i].kind] += s->v[i].rss;
}

static bool same_mapping(const struct smaps_entry *a, const struct smaps_entry *b)
{
    return a->start == b->start && a->inode == b->inode && a->kind == b->kind &&
           strcmp(a->path, b->path) == 0;
}

static int64_t growth(const struct smaps_change *c)
{
    return (int64_t)c->rss_after - (int64_t)c->rss_before;
}

static int by_growth_desc(const void *x, const void *y)
{
    const struct smaps_change *a = x, *b = y;
    int64_t ga = growth(a), gb = growth(b);
    if (ga != gb)
        return ga > gb ? -1 : 1;
    int64_t sa = (int64_t)a->size_after - (int64_t)a->size_before;
    int64_t sb = (int64_t)b->size_after - (int64_t)b->size_before;
    if (sa != sb)
        return sa > sb ? -1 : 1;
    return a->start < b->start ? -1 : a->start > b->start;
}

size_t smaps_diff(const struct smaps *before, const struct smaps *after,
                  struct smaps_change **out)
{
    struct smaps_change *v = xcalloc(before->n + after->n + 1, sizeof *v);
    size_t n = 0, i = 0, j = 0;
    /* both are ordered by start: walk them side by side */
    while (i < before->n || j < after->n) {
        const struct smaps_entry *b = i < before->n ? &before->v[i] : NULL;
        const struct smaps_entry *a = j < after->n ? &after->v[j] : NULL;
        struct smaps_change c = {0};
        if (a && b && same_mapping(b, a)) {
            c = (struct smaps_change){a->kind, a->path, a->start, b->end - b->start,
                                      a->end - a->start, b->rss, a->rss};
            i++;
            j++;
        } else if (a && (!b || a->start <= b->start)) {
            c = (struct smaps_change){a->kind, a->path, a->start, 0, a->end - a->start, 0, a->rss};
            j++;
        } else {
            c = (struct smaps_change){b->kind, b->path, b->start, b->end - b->start, 0, b->rss, 0};
            i++;
        }
        if (c.size_before != c.size_after || c.rss_before != c.rss_after)
            v[n++] = c;
    }
    qsort(v, n, sizeof *v, by_growth_desc);
    *out = v;
    return n;
}
