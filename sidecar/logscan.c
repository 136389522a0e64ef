/* sidecar/logscan.c - line splitting, matching, the window and the kept
 * matches; see logscan.h. */
#include "logscan.h"

#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL
#define KEPT_PER_SLOT (1 + 2 * LOGSCAN_CONTEXT)

enum { CRI_STDOUT, CRI_STDERR, CRI_NSTREAMS };

/* A line being handed around: borrowed bytes, CR already stripped, at most
 * LOGSCAN_LINE_MAX long. */
struct span {
    const char *p;
    size_t len;
    bool cut;
    uint64_t lineno;
    int64_t wall_ns;
};

/* Storage behind one struct logscan_line; the capacity is reused. */
struct kept {
    char *buf; /* owned */
    size_t cap;
};

struct slot {
    struct logscan_match m;          /* text pointers point into bufs */
    struct kept bufs[KEPT_PER_SLOT]; /* line, before[], after[] */
    uint64_t ctx_id;                 /* the input it came from: its "after" comes from there */
};

/* The context of one input: its last lines, the "before" of its next match.
 * id tells its matches apart from other inputs' (and from its own before a
 * logscan_flush), so that their "after" lines come from it alone. */
struct logscan_ctx {
    uint64_t id; /* unique in its scanner; a new one at each logscan_flush */
    struct kept rkept[LOGSCAN_CONTEXT];
    struct logscan_line recent[LOGSCAN_CONTEXT];
    size_t rhead, nrecent;
};

struct cri_join {
    char *buf; /* owned, at most LOGSCAN_LINE_MAX */
    size_t len, cap;
    bool open;       /* a P line is waiting for its F */
    bool over;       /* the joined message was cut */
    int64_t wall_ns; /* timestamp of the first part */
};

struct bucket {
    int64_t sec;
    uint64_t n;
};

struct logscan {
    enum log_format format;
    size_t kept_max;           /* bytes kept of a line */
    pcre2_code *re;            /* owned */
    pcre2_match_data *md;      /* owned */
    pcre2_match_context *mctx; /* owned */
    pcre2_jit_stack *jstack;   /* owned, NULL without JIT */
    bool jit;                  /* pcre2_jit_compile succeeded */
    bool bulk;                 /* plain lines matched a chunk at a time */
    struct logscan_stats st;
    struct bucket win[LOGSCAN_WINDOW_S];
    struct slot ring[LOGSCAN_KEEP];
    size_t head, nring; /* oldest slot, slots used */
    uint64_t ctx_ids;   /* context ids handed out */
    struct logscan_src own;
    struct cri_join join[CRI_NSTREAMS];
};

static void *pcre2_need(void *p)
{
    if (!p) {
        fputs("stakeout: out of memory in PCRE2\n", stderr);
        abort();
    }
    return p;
}

/* ---- pattern analysis ---------------------------------------------------- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Index just past the character class opening at p[i] == '['. */
static size_t skip_class(const char *p, size_t i)
{
    size_t j = i + 1;

    if (p[j] == '^')
        j++;
    if (p[j] == ']')
        j++;
    while (p[j] && p[j] != ']') {
        if (p[j] == '\\' && p[j + 1]) {
            j += 2;
        } else if (p[j] == '[' && p[j + 1] == ':') {
            const char *e = strstr(p + j + 2, ":]");
            j = e ? (size_t)(e - p) + 2 : j + 1;
        } else {
            j++;
        }
    }
    return p[j] ? j + 1 : j;
}

/* Whether matching many lines at once finds exactly the lines that match on
 * their own (given that matches reaching past their line are checked again).
 * That holds for plain backtracking with ^ $ \b in multiline mode; it can
 * fail where the pattern looks beyond its match (lookarounds, \A \Z \z \G),
 * moves the start (\K), cannot backtrack out of a newline it consumed
 * (atomic groups, possessive quantifiers, verbs), or turns multiline off.
 * Conservative: a false answer only costs speed. */
static bool pattern_bulk_safe(const char *p)
{
    bool after_quant = false;

    for (size_t i = 0; p[i];) {
        char c = p[i];
        if (c == '\\') {
            char e = p[i + 1];
            if (!e)
                return false;
            if (strchr("AZzGK", e))
                return false;
            if (e == 'Q') {
                const char *q = strstr(p + i + 2, "\\E");
                if (!q)
                    return true;
                i = (size_t)(q - p) + 2;
            } else {
                i += 2;
            }
            after_quant = false;
            continue;
        }
        if (c == '[') {
            i = skip_class(p, i);
            after_quant = false;
            continue;
        }
        if (c == '+' && after_quant)
            return false; /* possessive */
        if (c == '(' && p[i + 1] == '*')
            return false; /* verbs, newline conventions, alpha assertions */
        if (c == '(' && p[i + 1] == '?') {
            char d = p[i + 2];
            size_t j = i + 2;
            if (d == '<' && !is_alpha(p[i + 3]) && p[i + 3] != '_')
                return false; /* lookbehind */
            if (d == '-' && !is_digit(p[i + 3]))
                return false; /* options turned off, maybe m */
            if (!strchr(":|#'P&R+-<", d) && !is_digit(d)) {
                while (is_alpha(p[j]))
                    j++;
                if (j == i + 2 || (p[j] != ')' && p[j] != ':'))
                    return false; /* = ! > ( ^ * and anything unknown */
            }
            i += 2;
            after_quant = false;
            continue;
        }
        after_quant = c == '*' || c == '+' || c == '?' || c == '}';
        i++;
    }
    return true;
}

/* ---- lifecycle ------------------------------------------------------------ */

int logscan_new(enum log_format format, const char *pattern, struct logscan **out, char *err,
                size_t errlen)
{
    int code = 0;
    PCRE2_SIZE off = 0;
    int rc = 0;
    pcre2_compile_context *cc = pcre2_need(pcre2_compile_context_create(NULL));
    struct logscan *s = NULL;
    pcre2_code *re;

    /* ANYCRLF: `$` also matches before the CR of a CRLF line, whether the
     * CR is still there (a chunk) or has been stripped (a single line). */
    if (pcre2_set_newline(cc, PCRE2_NEWLINE_ANYCRLF) != 0)
        abort();
    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE, &code, &off, cc);
    if (!re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        if (err && errlen)
            snprintf(err, errlen, "bad regular expression at offset %zu: %s", (size_t)off,
                     (const char *)msg);
        rc = -EINVAL;
        goto out;
    }
    s = xcalloc(1, sizeof *s);
    s->format = format;
    s->kept_max = LOGSCAN_KEPT_MAX;
    s->re = re;
    s->md = pcre2_need(pcre2_match_data_create_from_pattern(re, NULL));
    s->mctx = pcre2_need(pcre2_match_context_create(NULL));
    s->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    if (s->jit) {
        s->jstack = pcre2_need(pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL));
        pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
    }
    s->bulk = format == LOG_FORMAT_PLAIN && pattern_bulk_safe(pattern);
    for (size_t i = 0; i < LOGSCAN_WINDOW_S; i++)
        s->win[i].sec = INT64_MIN;
    logscan_src_init(&s->own);
    *out = s;
out:
    pcre2_compile_context_free(cc);
    return rc;
}

void logscan_free(struct logscan *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < LOGSCAN_KEEP; i++) {
        for (size_t k = 0; k < KEPT_PER_SLOT; k++)
            free(s->ring[i].bufs[k].buf);
    }
    for (size_t i = 0; i < CRI_NSTREAMS; i++)
        free(s->join[i].buf);
    logscan_src_fini(&s->own);
    pcre2_jit_stack_free(s->jstack);
    pcre2_match_context_free(s->mctx);
    pcre2_match_data_free(s->md);
    pcre2_code_free(s->re);
    free(s);
}

void logscan_src_init(struct logscan_src *src)
{
    memset(src, 0, sizeof *src);
}

void logscan_src_fini(struct logscan_src *src)
{
    free(src->part);
    if (src->ctx) {
        for (size_t i = 0; i < LOGSCAN_CONTEXT; i++)
            free(src->ctx->rkept[i].buf);
        free(src->ctx);
    }
    memset(src, 0, sizeof *src);
}

/* The context of src, made at its first feed. */
static struct logscan_ctx *ctx_of(struct logscan *s, struct logscan_src *src)
{
    if (!src->ctx) {
        src->ctx = xcalloc(1, sizeof *src->ctx);
        src->ctx->id = ++s->ctx_ids;
    }
    return src->ctx;
}

/* The input behind c has ended: forget its last lines, and take a new id so
 * that matches waiting for "after" lines get none of what comes next. */
static void ctx_end(struct logscan *s, struct logscan_ctx *c)
{
    c->rhead = 0;
    c->nrecent = 0;
    c->id = ++s->ctx_ids;
}

/* ---- queries --------------------------------------------------------------- */

void logscan_stats(const struct logscan *s, struct logscan_stats *out)
{
    *out = s->st;
}

size_t logscan_nmatches(const struct logscan *s)
{
    return s->nring;
}

const struct logscan_match *logscan_match_at(const struct logscan *s, size_t i)
{
    if (i >= s->nring)
        return NULL;
    return &s->ring[(s->head + i) % LOGSCAN_KEEP].m;
}

bool logscan_bulk(const struct logscan *s)
{
    return s->bulk;
}

void logscan_set_kept_max(struct logscan *s, size_t bytes)
{
    s->kept_max = bytes < 1 ? 1 : bytes > LOGSCAN_KEPT_MAX ? LOGSCAN_KEPT_MAX : bytes;
}

size_t logscan_kept_max(const struct logscan *s)
{
    return s->kept_max;
}

size_t logscan_kept_bytes(const struct logscan *s)
{
    size_t n = 0;
    for (size_t i = 0; i < LOGSCAN_KEEP; i++) {
        for (size_t k = 0; k < KEPT_PER_SLOT; k++)
            n += s->ring[i].bufs[k].cap;
    }
    for (size_t i = 0; s->own.ctx && i < LOGSCAN_CONTEXT; i++)
        n += s->own.ctx->rkept[i].cap;
    return n;
}

/* ---- the window ------------------------------------------------------------ */

static int64_t sec_of(int64_t ns)
{
    int64_t q = ns / NS_PER_S;
    return (ns % NS_PER_S < 0) ? q - 1 : q;
}

static size_t bucket_of(int64_t sec)
{
    int64_t r = sec % LOGSCAN_WINDOW_S;
    return (size_t)(r < 0 ? r + LOGSCAN_WINDOW_S : r);
}

static void window_add(struct logscan *s, int64_t mono_ns)
{
    int64_t sec = sec_of(mono_ns);
    struct bucket *b = &s->win[bucket_of(sec)];

    if (b->sec != sec) {
        b->sec = sec;
        b->n = 0;
    }
    b->n++;
}

uint64_t logscan_errors_per_min(const struct logscan *s, int64_t now_ns)
{
    int64_t now = sec_of(now_ns);
    uint64_t sum = 0;

    for (size_t i = 0; i < LOGSCAN_WINDOW_S; i++) {
        if (s->win[i].sec <= now && s->win[i].sec > now - LOGSCAN_WINDOW_S)
            sum += s->win[i].n;
    }
    return sum;
}

/* ---- kept lines ------------------------------------------------------------- */

/* Keeps sp's text in k, cut at max bytes. A buffer is never larger than
 * max + 1: at least 128 bytes (or max + 1) so that short lines reuse it. */
static void kept_set(struct kept *k, size_t max, struct logscan_line *out, const struct span *sp)
{
    size_t n = sp->len < max ? sp->len : max;
    size_t least = max + 1 < 128 ? max + 1 : 128;

    if (k->cap < n + 1) {
        free(k->buf);
        k->cap = n + 1 < least ? least : n + 1;
        k->buf = xmalloc(k->cap);
    }
    memcpy(k->buf, sp->p, n);
    k->buf[n] = '\0';
    out->text = k->buf;
    out->len = n;
    out->cut = sp->cut || sp->len > n;
    out->lineno = sp->lineno;
    out->wall_ns = sp->wall_ns;
}

static struct span span_of_line(const struct logscan_line *l)
{
    return (struct span){l->text, l->len, l->cut, l->lineno, l->wall_ns};
}

static void recent_push(struct logscan_ctx *c, size_t max, const struct span *sp)
{
    size_t i;

    if (c->nrecent < LOGSCAN_CONTEXT) {
        i = (c->rhead + c->nrecent) % LOGSCAN_CONTEXT;
        c->nrecent++;
    } else {
        i = c->rhead;
        c->rhead = (c->rhead + 1) % LOGSCAN_CONTEXT;
    }
    kept_set(&c->rkept[i], max, &c->recent[i], sp);
}

/* The newest up-to-want recent lines of c into out[], oldest first. */
static size_t recent_newest(const struct logscan_ctx *c, size_t want, struct span *out)
{
    size_t n = want < c->nrecent ? want : c->nrecent;

    for (size_t k = 0; k < n; k++) {
        size_t i = (c->rhead + c->nrecent - n + k) % LOGSCAN_CONTEXT;
        out[k] = span_of_line(&c->recent[i]);
    }
    return n;
}

static struct slot *newest_slot(struct logscan *s, size_t back)
{
    return &s->ring[(s->head + s->nring - 1 - back) % LOGSCAN_KEEP];
}

/* Whether a kept match still waits for line lineno of input c as "after"
 * context. Line numbers count every input of the scanner, so a line of
 * another input in between also ends a match's "after" lines. */
static bool after_wanted(struct logscan *s, const struct logscan_ctx *c, uint64_t lineno)
{
    if (!s->nring)
        return false;
    const struct slot *sl = newest_slot(s, 0);
    const struct logscan_match *m = &sl->m;
    return sl->ctx_id == c->id && m->line.lineno < lineno &&
           lineno - m->line.lineno <= LOGSCAN_CONTEXT;
}

static void after_fill(struct logscan *s, const struct logscan_ctx *c, const struct span *sp)
{
    size_t k = s->nring < LOGSCAN_CONTEXT ? s->nring : LOGSCAN_CONTEXT;

    for (size_t i = 0; i < k; i++) {
        struct slot *sl = newest_slot(s, i);
        struct logscan_match *m = &sl->m;
        if (sl->ctx_id == c->id && m->nafter < LOGSCAN_CONTEXT &&
            m->line.lineno + m->nafter + 1 == sp->lineno) {
            kept_set(&sl->bufs[1 + LOGSCAN_CONTEXT + m->nafter], s->kept_max, &m->after[m->nafter],
                     sp);
            m->nafter++;
        }
    }
}

static void record(struct logscan *s, const struct logscan_ctx *c, const struct span *line,
                   const struct span *before, size_t nbefore, int64_t mono_ns)
{
    struct slot *sl;

    if (s->nring < LOGSCAN_KEEP) {
        sl = &s->ring[(s->head + s->nring) % LOGSCAN_KEEP];
        s->nring++;
    } else {
        sl = &s->ring[s->head];
        s->head = (s->head + 1) % LOGSCAN_KEEP;
    }
    sl->ctx_id = c->id;
    sl->m.mono_ns = mono_ns;
    kept_set(&sl->bufs[0], s->kept_max, &sl->m.line, line);
    for (size_t i = 0; i < nbefore; i++)
        kept_set(&sl->bufs[1 + i], s->kept_max, &sl->m.before[i], &before[i]);
    sl->m.nbefore = nbefore;
    sl->m.nafter = 0;
    s->st.matched++;
    window_add(s, mono_ns);
}

/* ---- matching --------------------------------------------------------------- */

static int match_at(struct logscan *s, const char *subj, size_t n, size_t start)
{
    if (!subj)
        subj = "";
    if (s->jit)
        return pcre2_jit_match(s->re, (PCRE2_SPTR)subj, n, start, 0, s->md, s->mctx);
    return pcre2_match(s->re, (PCRE2_SPTR)subj, n, start, 0, s->md, s->mctx);
}

/* Whether one line (no '\n', CR stripped) matches. */
static bool match_line(struct logscan *s, const char *p, size_t n)
{
    int rc = match_at(s, p, n, 0);

    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH)
        s->st.match_errors++;
    return false;
}

/* One complete line seen on its own (a line completed across chunks, a CRI
 * message): count, match, keep. */
static void line_one(struct logscan *s, struct logscan_ctx *c, const char *p, size_t n, bool cut,
                     int64_t mono_ns, int64_t wall_ns)
{
    struct span sp = {p, n, cut, ++s->st.lines, wall_ns};

    after_fill(s, c, &sp);
    if (match_line(s, p, n)) {
        struct span before[LOGSCAN_CONTEXT];
        size_t nb = recent_newest(c, LOGSCAN_CONTEXT, before);
        record(s, c, &sp, before, nb, mono_ns);
    }
    recent_push(c, s->kept_max, &sp);
}

/* The line buf[ls..le) (le: its '\n'), CR stripped and cut; counts the cut. */
static struct span span_at(struct logscan *s, const char *buf, size_t ls, size_t le,
                           uint64_t lineno, int64_t wall_ns, bool count)
{
    size_t end = le;

    if (end > ls && buf[end - 1] == '\r')
        end--;
    struct span sp = {buf + ls, end - ls, false, lineno, wall_ns};
    if (sp.len > LOGSCAN_LINE_MAX) {
        sp.len = LOGSCAN_LINE_MAX;
        sp.cut = true;
        if (count)
            s->st.truncated++;
    }
    return sp;
}

/* Lines in p[0..n) (which ends with '\n'), counting the long ones. */
static uint64_t count_lines(struct logscan *s, const char *p, size_t n)
{
    const char *end = p + n;
    uint64_t lines = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t len = (size_t)(nl - p);
        if (len > LOGSCAN_LINE_MAX && len - (p[len - 1] == '\r') > LOGSCAN_LINE_MAX)
            s->st.truncated++;
        lines++;
        p = nl + 1;
    }
    return lines;
}

/* Find the first line at or after pos (a line start) in buf[0..n) that
 * matches; *ls is its start and *le its '\n'. *bulk is cleared for the rest
 * of the chunk when PCRE2 gives up on a multi-line subject (so that only the
 * guilty line is lost) and after a match across lines that its own line does
 * not confirm. */
static bool next_match(struct logscan *s, const char *buf, size_t n, size_t pos, bool *bulk,
                       size_t *ls, size_t *le)
{
    while (pos < n) {
        size_t start, nl;
        if (*bulk) {
            int rc = match_at(s, buf, n, pos);
            if (rc == PCRE2_ERROR_NOMATCH)
                return false;
            if (rc < 0) {
                *bulk = false;
                continue;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
            size_t ms = ov[0], me = ov[1];
            if (ms >= n)
                return false; /* after the last '\n': no line */
            const char *prev = ms > pos ? memrchr(buf + pos, '\n', ms - pos) : NULL;
            start = prev ? (size_t)(prev - buf) + 1 : pos;
            nl = (size_t)((const char *)memchr(buf + ms, '\n', n - ms) - buf);
            struct span sp = span_at(s, buf, start, nl, 0, 0, false);
            bool alone = me > start + sp.len || sp.cut;
            if (!alone || match_line(s, sp.p, sp.len)) {
                *ls = start;
                *le = nl;
                return true;
            }
            /* A match that only fits across lines may have cost a scan to
             * the end of the chunk, and the next attempt would repeat it
             * (`(?s)INFO.*x` goes quadratic): the rest of this chunk goes
             * line by line, which is linear. */
            *bulk = false;
        } else {
            start = pos;
            nl = (size_t)((const char *)memchr(buf + pos, '\n', n - pos) - buf);
            struct span sp = span_at(s, buf, start, nl, 0, 0, false);
            if (match_line(s, sp.p, sp.len)) {
                *ls = start;
                *le = nl;
                return true;
            }
        }
        pos = nl + 1;
    }
    return false;
}

/* Up to LOGSCAN_CONTEXT lines of buf[0..n) from offset off (a line start,
 * numbered lineno) given to the matches waiting for them. */
static void after_from(struct logscan *s, const struct logscan_ctx *c, const char *buf, size_t n,
                       size_t off, uint64_t lineno, int64_t wall_ns)
{
    for (size_t k = 0; k < LOGSCAN_CONTEXT && off < n; k++, lineno++) {
        if (!after_wanted(s, c, lineno))
            return;
        size_t nl = (size_t)((const char *)memchr(buf + off, '\n', n - off) - buf);
        struct span sp = span_at(s, buf, off, nl, lineno, wall_ns, false);
        after_fill(s, c, &sp);
        off = nl + 1;
    }
}

/* Up to want lines of buf ending just before end (a line start; the first
 * of them numbered lineno - 1 counting back), into out[] newest first. */
static size_t lines_before(const char *buf, size_t end, size_t want, uint64_t lineno,
                           int64_t wall_ns, struct logscan *s, struct span *out)
{
    size_t k = 0;

    while (k < want && end > 0) {
        size_t nl = end - 1;
        const char *prev = nl ? memrchr(buf, '\n', nl) : NULL;
        size_t start = prev ? (size_t)(prev - buf) + 1 : 0;
        out[k] = span_at(s, buf, start, nl, lineno - 1 - k, wall_ns, false);
        k++;
        end = start;
    }
    return k;
}

/* Complete plain lines buf[0..n), n > 0 and buf[n - 1] == '\n'. */
static void plain_lines(struct logscan *s, struct logscan_ctx *c, const char *buf, size_t n,
                        int64_t mono_ns, int64_t wall_ns)
{
    uint64_t counted = s->st.lines;
    size_t pos = 0, ls, le;
    bool bulk = s->bulk;

    after_from(s, c, buf, n, 0, counted + 1, wall_ns);
    while (pos < n && next_match(s, buf, n, pos, &bulk, &ls, &le)) {
        struct span back[LOGSCAN_CONTEXT], before[LOGSCAN_CONTEXT];
        counted += count_lines(s, buf + pos, ls - pos);
        uint64_t lineno = ++counted;
        struct span line = span_at(s, buf, ls, le, lineno, wall_ns, true);
        size_t k = lines_before(buf, ls, LOGSCAN_CONTEXT, lineno, wall_ns, s, back);
        size_t nb = recent_newest(c, LOGSCAN_CONTEXT - k, before);
        while (k > 0)
            before[nb++] = back[--k];
        record(s, c, &line, before, nb, mono_ns);
        after_from(s, c, buf, n, le + 1, lineno + 1, wall_ns);
        pos = le + 1;
    }
    counted += count_lines(s, buf + pos, n - pos);
    s->st.lines = counted;

    struct span last[LOGSCAN_CONTEXT];
    size_t k = lines_before(buf, n, LOGSCAN_CONTEXT, counted + 1, wall_ns, s, last);
    while (k > 0)
        recent_push(c, s->kept_max, &last[--k]);
}

/* ---- CRI -------------------------------------------------------------------- */

struct cri {
    int stream;
    bool partial;
    int64_t wall_ns;
    const char *msg;
    size_t msglen;
};

static bool digits(const char *p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* RFC 3339 (as CRI writes it: 2016-10-06T00:17:09.669794202Z or with an
 * offset) to nanoseconds since the epoch. */
static bool rfc3339_parse(const char *p, size_t n, int64_t *out)
{
    int Y, M, D, h, mi, sec, oh, om;
    int64_t frac = 0, off = 0;
    size_t i = 19;

    if (n < 20 || !digits(p, 4, &Y) || p[4] != '-' || !digits(p + 5, 2, &M) || p[7] != '-' ||
        !digits(p + 8, 2, &D) || (p[10] != 'T' && p[10] != 't') || !digits(p + 11, 2, &h) ||
        p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' || !digits(p + 17, 2, &sec))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || sec > 60)
        return false;
    if (p[i] == '.') {
        int nd = 0;
        for (i++; i < n && is_digit(p[i]); i++) {
            if (nd < 9) {
                frac = frac * 10 + (p[i] - '0');
                nd++;
            }
        }
        if (nd == 0)
            return false;
        for (; nd < 9; nd++)
            frac *= 10;
    }
    if (i < n && (p[i] == 'Z' || p[i] == 'z')) {
        i++;
    } else if (i + 6 <= n && (p[i] == '+' || p[i] == '-') && digits(p + i + 1, 2, &oh) &&
               p[i + 3] == ':' && digits(p + i + 4, 2, &om) && oh <= 23 && om <= 59) {
        off = (oh * 3600LL + om * 60LL) * (p[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != n)
        return false;
    int64_t secs = days_from_civil(Y, M, D) * 86400 + h * 3600LL + mi * 60LL + sec - off;
    *out = secs * NS_PER_S + frac;
    return true;
}

/* `TIMESTAMP STREAM TAG[:MORE] MESSAGE`; MESSAGE may be empty. */
static bool cri_parse(const char *p, size_t n, struct cri *out)
{
    const char *end = p + n;
    const char *sp = memchr(p, ' ', n);
    const char *q, *tag_end, *flag_end;

    if (!sp || !rfc3339_parse(p, (size_t)(sp - p), &out->wall_ns))
        return false;
    q = sp + 1;
    if (end - q < 7 || q[6] != ' ')
        return false;
    if (memcmp(q, "stdout", 6) == 0)
        out->stream = CRI_STDOUT;
    else if (memcmp(q, "stderr", 6) == 0)
        out->stream = CRI_STDERR;
    else
        return false;
    q += 7;
    tag_end = memchr(q, ' ', (size_t)(end - q));
    if (!tag_end)
        tag_end = end;
    flag_end = memchr(q, ':', (size_t)(tag_end - q));
    if (!flag_end)
        flag_end = tag_end;
    if (flag_end - q != 1 || (*q != 'P' && *q != 'F'))
        return false;
    out->partial = *q == 'P';
    out->msg = tag_end < end ? tag_end + 1 : end;
    out->msglen = (size_t)(end - out->msg);
    return true;
}

static void join_append(struct cri_join *j, const char *p, size_t n)
{
    size_t room = LOGSCAN_LINE_MAX - j->len;

    if (n > room) {
        n = room;
        j->over = true;
    }
    if (j->len + n > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n)
            cap *= 2;
        if (cap > LOGSCAN_LINE_MAX)
            cap = LOGSCAN_LINE_MAX;
        j->buf = xrealloc(j->buf, cap);
        j->cap = cap;
    }
    if (n) {
        memcpy(j->buf + j->len, p, n);
        j->len += n;
    }
}

/* One physical CRI line (CR stripped, at most LOGSCAN_LINE_MAX). */
static void cri_line(struct logscan *s, struct logscan_ctx *ctx, const char *p, size_t n, bool cut,
                     int64_t mono_ns, int64_t wall_ns)
{
    struct cri c;

    if (!cri_parse(p, n, &c)) {
        s->st.malformed++;
        line_one(s, ctx, p, n, cut, mono_ns, wall_ns);
        return;
    }
    struct cri_join *j = &s->join[c.stream];
    if (!j->open && !c.partial) {
        line_one(s, ctx, c.msg, c.msglen, cut, mono_ns, c.wall_ns);
        return;
    }
    if (!j->open) {
        j->open = true;
        j->len = 0;
        j->over = false;
        j->wall_ns = c.wall_ns;
    }
    join_append(j, c.msg, c.msglen);
    if (c.partial)
        return;
    if (j->over)
        s->st.truncated++;
    j->open = false;
    line_one(s, ctx, j->buf, j->len, j->over || cut, mono_ns, j->wall_ns);
    if (j->cap > LOGSCAN_HELD_MAX) {
        free(j->buf);
        j->buf = NULL;
        j->cap = 0;
    }
}

static void cri_lines(struct logscan *s, struct logscan_ctx *ctx, const char *buf, size_t n,
                      int64_t mono_ns, int64_t wall_ns)
{
    size_t off = 0;

    while (off < n) {
        size_t nl = (size_t)((const char *)memchr(buf + off, '\n', n - off) - buf);
        struct span sp = span_at(s, buf, off, nl, 0, wall_ns, true);
        cri_line(s, ctx, sp.p, sp.len, sp.cut, mono_ns, wall_ns);
        off = nl + 1;
    }
}

/* ---- feeding ---------------------------------------------------------------- */

static void part_append(struct logscan_src *src, const char *p, size_t n)
{
    size_t room = LOGSCAN_LINE_MAX + 1 - src->len;

    if (n > room) {
        n = room;
        src->over = true;
    }
    if (!n)
        return;
    if (src->len + n > src->cap) {
        size_t cap = src->cap ? src->cap : 256;
        while (cap < src->len + n)
            cap *= 2;
        if (cap > LOGSCAN_LINE_MAX + 1)
            cap = LOGSCAN_LINE_MAX + 1;
        src->part = xrealloc(src->part, cap);
        src->cap = cap;
    }
    memcpy(src->part + src->len, p, n);
    src->len += n;
}

/* The held line of src is complete: scan it and empty src. */
static void part_done(struct logscan *s, struct logscan_src *src, int64_t mono_ns, int64_t wall_ns)
{
    size_t len = src->len;
    bool cut = src->over;

    if (!cut && len > 0 && src->part[len - 1] == '\r')
        len--;
    if (len > LOGSCAN_LINE_MAX) {
        len = LOGSCAN_LINE_MAX;
        cut = true;
    }
    if (cut)
        s->st.truncated++;
    if (s->format == LOG_FORMAT_CRI)
        cri_line(s, ctx_of(s, src), src->part, len, cut, mono_ns, wall_ns);
    else
        line_one(s, ctx_of(s, src), src->part, len, cut, mono_ns, wall_ns);
    src->len = 0;
    src->over = false;
    if (src->cap > LOGSCAN_HELD_MAX) {
        free(src->part);
        src->part = NULL;
        src->cap = 0;
    }
}

void logscan_feed(struct logscan *s, struct logscan_src *src, const char *buf, size_t n,
                  int64_t mono_ns, int64_t wall_ns)
{
    size_t off = 0;

    if (!src)
        src = &s->own;
    s->st.bytes += n;
    if (!n)
        return;
    if (src->len || src->over) {
        const char *nl = memchr(buf, '\n', n);
        size_t take = nl ? (size_t)(nl - buf) : n;
        part_append(src, buf, take);
        if (!nl)
            return;
        part_done(s, src, mono_ns, wall_ns);
        off = take + 1;
    }
    if (off < n) {
        const char *last = memrchr(buf + off, '\n', n - off);
        if (last) {
            size_t end = (size_t)(last - buf) + 1;
            if (s->format == LOG_FORMAT_CRI)
                cri_lines(s, ctx_of(s, src), buf + off, end - off, mono_ns, wall_ns);
            else
                plain_lines(s, ctx_of(s, src), buf + off, end - off, mono_ns, wall_ns);
            off = end;
        }
        part_append(src, buf + off, n - off);
    }
}

void logscan_flush(struct logscan *s, struct logscan_src *src, int64_t mono_ns, int64_t wall_ns)
{
    if (!src)
        src = &s->own;
    if (src->len || src->over)
        part_done(s, src, mono_ns, wall_ns);
    if (src->ctx)
        ctx_end(s, src->ctx);
}
