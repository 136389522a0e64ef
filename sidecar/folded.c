/* sidecar/folded.c - folded stacks; see folded.h.
 *
 * Every (thread,) stack becomes its line text; the lines are sorted, equal
 * texts merged (two stacks of different addresses in the same functions
 * read the same), and printed with their summed weight. */
#include "folded.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct folded_line {
    char *text; /* owned */
    uint64_t weight;
};

struct text {
    char *s;
    size_t len, cap;
};

static void text_add(struct text *t, const char *s, bool frame)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = xrealloc(t->s, t->cap);
    }
    for (size_t i = 0; i < n; i++)
        t->s[t->len + i] = frame && s[i] == ';' ? ':' : s[i];
    t->len += n;
    t->s[t->len] = '\0';
}

/* The line text of a stack, root first, under root when not NULL. */
static char *stack_text(const struct profile *p, uint32_t stack, const char *root)
{
    const struct prof_stack *s = &p->stacks[stack - 1];
    struct text t = {0};
    if (root) {
        text_add(&t, root, true);
        text_add(&t, ";", false);
    }
    if (s->nframes == 0)
        text_add(&t, PROFILE_NO_STACK, true);
    for (uint32_t k = s->nframes; k > 0; k--) {
        text_add(&t, profile_frame_name(p, s->frames[k - 1]), true);
        if (k > 1)
            text_add(&t, ";", false);
    }
    return t.s;
}

static int line_cmp(const void *a, const void *b)
{
    const struct folded_line *x = a, *y = b;
    return strcmp(x->text, y->text);
}

static const char *thread_name_of(const struct profile *p, int32_t tid)
{
    for (uint32_t i = 0; i < p->nthreads; i++) {
        if (p->threads[i].tid == tid)
            return p->threads[i].name;
    }
    return "";
}

/* The per-thread lines: raw samples sorted by (tid, stack) and merged. */
struct tid_stack {
    int32_t tid;
    uint32_t stack;
    uint64_t weight;
};

static int tid_stack_cmp(const void *a, const void *b)
{
    const struct tid_stack *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static size_t thread_lines(const struct profile *p, struct folded_line **out)
{
    struct tid_stack *ts = xcalloc(p->nsamples + 1, sizeof *ts);
    size_t nts = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct prof_sample *s = &p->samples[i];
        uint64_t w = profile_sample_weight(p, i);
        if (w > 0) /* memory given back in full weighs nothing */
            ts[nts++] = (struct tid_stack){s->tid, s->stack, w};
    }
    qsort(ts, nts, sizeof *ts, tid_stack_cmp);
    struct folded_line *lines = xcalloc(nts + 1, sizeof *lines);
    size_t n = 0;
    char *root = NULL;
    for (size_t i = 0; i < nts; i++) {
        if (i > 0 && ts[i].tid == ts[i - 1].tid && ts[i].stack == ts[i - 1].stack) {
            lines[n - 1].weight += ts[i].weight;
            continue;
        }
        if (i == 0 || ts[i].tid != ts[i - 1].tid) {
            free(root);
            const char *name = thread_name_of(p, ts[i].tid);
            root = name[0] ? xasprintf("%s [%d]", name, (int)ts[i].tid)
                           : xasprintf("[%d]", (int)ts[i].tid);
        }
        lines[n].text = stack_text(p, ts[i].stack, root);
        lines[n].weight = ts[i].weight;
        n++;
    }
    free(root);
    free(ts);
    *out = lines;
    return n;
}

static size_t stack_lines(const struct profile *p, struct folded_line **out)
{
    struct folded_line *lines = xcalloc(p->nstacks, sizeof *lines);
    size_t n = 0;
    for (uint32_t i = 0; i < p->nstacks; i++) {
        uint64_t w = profile_stack_weight(p, i);
        if (w == 0)
            continue; /* memory given back in full */
        lines[n].text = stack_text(p, i + 1, NULL);
        lines[n].weight = w;
        n++;
    }
    *out = lines;
    return n;
}

int folded_write(const struct profile *p, FILE *out, bool per_thread)
{
    struct folded_line *lines = NULL;
    size_t n = per_thread ? thread_lines(p, &lines) : stack_lines(p, &lines);
    qsort(lines, n, sizeof *lines, line_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = lines[i].weight;
        while (i + 1 < n && !strcmp(lines[i].text, lines[i + 1].text)) {
            free(lines[i].text);
            w += lines[++i].weight;
        }
        if (rc == 0 && fprintf(out, "%s %" PRIu64 "\n", lines[i].text, w) < 0)
            rc = -EIO;
        free(lines[i].text);
    }
    free(lines);
    if (rc == 0 && (fflush(out) == EOF || ferror(out)))
        rc = -EIO;
    return rc;
}
