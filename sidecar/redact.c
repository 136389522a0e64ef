/* sidecar/redact.c - hide secrets in text that goes into alerts; see redact.h.
 *
 * Every pattern is matched over the whole text; each match (or its "secret"
 * groups) becomes a byte range, the ranges of all patterns are merged, and
 * the output is built once. Patterns never see each other's "[REDACTED]", so
 * the order of patterns does not matter and nothing is redacted twice. A
 * pattern that fails to run to the end (PCRE2's match limit on a hostile
 * line) hides the whole text: failing closed is the only safe answer. */
#include "redact.h"

#include "xalloc.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys whose values are secrets, as in "password=...", "api_key: ...". */
#define SECRET_KEY "(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)"
#define KEY_CHARS "[A-Za-z0-9_.-]*"

static const char *const default_patterns[] = {
    /* Authorization / Proxy-Authorization headers, whatever the scheme */
    "(?i)\\b(?:proxy-)?authorization[\"']?[ \\t]*[:=][ \\t]*[\"']?"
    "(?:(?:bearer|basic|digest|token|negotiate)[ \\t]+)?(?<secret>[^\\s\"',;]+)",
    /* a bearer token anywhere ("Bearer abc.def") */
    "(?i)\\bbearer[ \\t]+(?<secret>[A-Za-z0-9._~+/-]+=*)",
    /* a bare JSON Web Token, the usual bearer token */
    "\\beyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]*",
    /* user:password@ in a URL */
    "(?i)\\b[a-z][a-z0-9+.-]*://[^\\s/?#@:]*:(?<secret>[^\\s/?#@]+)@",
    /* key=value and key: value, the value bare or quoted */
    "(?i)" KEY_CHARS SECRET_KEY KEY_CHARS "[\"']?[ \\t]*[:=][ \\t]*"
    "(?:\"(?<secret>[^\"]*)\"|'(?<secret>[^']*)'|(?<secret>[^\\s\"',;&}]+))",
    /* command-line flags: --password hunter2, -api-key abc */
    "(?i)(?<![A-Za-z0-9_-])--?[A-Za-z0-9_-]*" SECRET_KEY "[A-Za-z0-9_-]*[ \\t]+"
    "(?<secret>[^\\s-]\\S*)",
};

#define NDEFAULT (sizeof default_patterns / sizeof default_patterns[0])

struct pattern {
    pcre2_code *re;   /* owned */
    uint32_t *groups; /* owned: numbers of the groups named "secret" */
    size_t ngroups;
};

struct redactor {
    struct pattern *pats; /* owned */
    size_t n;
};

struct range {
    size_t start, end;
};

struct ranges {
    struct range *r; /* owned */
    size_t n, cap;
};

static void ranges_add(struct ranges *rs, size_t start, size_t end)
{
    if (start >= end)
        return;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 8;
        rs->r = xreallocarray(rs->r, rs->cap, sizeof *rs->r);
    }
    rs->r[rs->n++] = (struct range){start, end};
}

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Numbers of every group named "secret" (several with (?J) or DUPNAMES). */
static void find_secret_groups(struct pattern *p)
{
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;

    pcre2_pattern_info(p->re, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMETABLE, &table);
    p->groups = xcalloc(count ? count : 1, sizeof *p->groups);
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * entry;
        if (strcmp((const char *)e + 2, "secret") == 0)
            p->groups[p->ngroups++] = (uint32_t)(e[0] << 8 | e[1]);
    }
}

/* Compile src, the number-th pattern of alert.redact (0: a default). A
 * message names the pattern by number, never quotes it: it may hold a
 * secret, from the file or a ${VAR}. */
static bool compile(struct pattern *p, const char *src, size_t number, uint32_t extra_opts,
                    char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;

    p->re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | extra_opts, &code, &off, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        if (err && errlen)
            snprintf(err, errlen,
                     "alert.redact pattern %zu: bad regular expression at offset %zu: %s", number,
                     (size_t)off, (const char *)msg);
        return false;
    }
    find_secret_groups(p);
    return true;
}

struct redactor *redactor_new(const char *const *extra, size_t n, char *err, size_t errlen)
{
    struct redactor *r = xcalloc(1, sizeof *r);

    r->pats = xcalloc(NDEFAULT + n, sizeof *r->pats);
    for (size_t i = 0; i < NDEFAULT; i++) {
        if (!compile(&r->pats[r->n], default_patterns[i], 0, PCRE2_DUPNAMES, err, errlen))
            abort(); /* a default that does not compile is a bug caught by every test */
        r->n++;
    }
    for (size_t i = 0; i < n; i++) {
        if (!compile(&r->pats[r->n], extra[i], i + 1, 0, err, errlen)) {
            redactor_free(r);
            return NULL;
        }
        r->n++;
    }
    return r;
}

void redactor_free(struct redactor *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        pcre2_code_free(r->pats[i].re);
        free(r->pats[i].groups);
    }
    free(r->pats);
    free(r);
}

/* Add the ranges one pattern hides in text. False when matching failed. */
static bool match_all(const struct pattern *p, const char *text, size_t len, struct ranges *rs)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    size_t start = 0;
    bool ok = true;

    if (!md) {
        fprintf(stderr, "stakeout: out of memory\n");
        abort();
    }
    while (start <= len) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)text, len, start, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            ok = false;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t nov = pcre2_get_ovector_count(md);
        bool grouped = false;
        for (size_t g = 0; g < p->ngroups; g++) {
            uint32_t k = p->groups[g];
            if (k < nov && ov[2 * k] != PCRE2_UNSET) {
                ranges_add(rs, ov[2 * k], ov[2 * k + 1]);
                grouped = true;
            }
        }
        if (!grouped && p->ngroups == 0)
            ranges_add(rs, ov[0], ov[1]);
        if (ov[1] > ov[0]) {
            start = ov[1];
        } else {
            /* empty match: step over one character, not into its middle */
            start = ov[1] + 1;
            while (start < len && ((unsigned char)text[start] & 0xC0) == 0x80)
                start++;
        }
    }
    pcre2_match_data_free(md);
    return ok;
}

char *redact(const struct redactor *r, const char *text)
{
    struct ranges rs = {0};
    size_t len = strlen(text);
    char *out;

    if (!r)
        return xstrdup(text);
    for (size_t i = 0; i < r->n; i++) {
        if (!match_all(&r->pats[i], text, len, &rs)) {
            free(rs.r);
            return xstrdup(REDACT_MARK);
        }
    }
    if (rs.n == 0)
        return xstrdup(text);
    qsort(rs.r, rs.n, sizeof *rs.r, range_cmp);

    /* merge overlapping and touching ranges, then copy around them */
    size_t m = 0;
    for (size_t i = 1; i < rs.n; i++) {
        if (rs.r[i].start <= rs.r[m].end) {
            if (rs.r[i].end > rs.r[m].end)
                rs.r[m].end = rs.r[i].end;
        } else {
            rs.r[++m] = rs.r[i];
        }
    }
    rs.n = m + 1;
    out = xmalloc(len + rs.n * strlen(REDACT_MARK) + 1);
    size_t o = 0, from = 0;
    for (size_t i = 0; i < rs.n; i++) {
        memcpy(out + o, text + from, rs.r[i].start - from);
        o += rs.r[i].start - from;
        memcpy(out + o, REDACT_MARK, strlen(REDACT_MARK));
        o += strlen(REDACT_MARK);
        from = rs.r[i].end;
    }
    memcpy(out + o, text + from, len - from);
    o += len - from;
    out[o] = '\0';
    free(rs.r);
    return out;
}

size_t redact_defaults(const char *const **out)
{
    *out = default_patterns;
    return NDEFAULT;
}
