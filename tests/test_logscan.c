/* tests/test_logscan.c - the log line scanner (sidecar/logscan): line
 * splitting across chunks, CRLF, long lines, garbage, CRI, chunk-at-once
 * matching against line-by-line matching, the window, the kept matches and
 * their context, which stays within one source. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logscan.h"

#define S 1000000000LL
#define DEFAULT_RE "\\b(ERROR|FATAL|panic)\\b"

static struct logscan *scanner(enum log_format f, const char *re)
{
    struct logscan *s = NULL;
    char err[256] = "";
    cr_assert_eq(logscan_new(f, re, &s, err, sizeof err), 0, "%s: %s", re, err);
    return s;
}

static void feed(struct logscan *s, const char *text, int64_t t_s)
{
    logscan_feed(s, NULL, text, strlen(text), t_s * S, 1700000000LL * S + t_s * S);
}

/* Feed buf in chunks of size step (0: at once). */
static void feed_chunks(struct logscan *s, const char *buf, size_t n, size_t step)
{
    if (!step)
        step = n ? n : 1;
    for (size_t off = 0; off < n; off += step)
        logscan_feed(s, NULL, buf + off, n - off < step ? n - off : step, 5 * S, 7 * S);
}

static struct logscan_stats stats(const struct logscan *s)
{
    struct logscan_stats st;
    logscan_stats(s, &st);
    return st;
}

/* Compare two scanners' counters and kept matches exactly. */
static void assert_same(const struct logscan *a, const struct logscan *b, const char *what)
{
    struct logscan_stats x = stats(a), y = stats(b);
    cr_assert_eq(x.lines, y.lines, "%s: lines %llu vs %llu", what, (unsigned long long)x.lines,
                 (unsigned long long)y.lines);
    cr_assert_eq(x.matched, y.matched, "%s: matched %llu vs %llu", what,
                 (unsigned long long)x.matched, (unsigned long long)y.matched);
    cr_assert_eq(x.truncated, y.truncated, "%s: truncated", what);
    cr_assert_eq(logscan_nmatches(a), logscan_nmatches(b), "%s: kept", what);
    for (size_t i = 0; i < logscan_nmatches(a); i++) {
        const struct logscan_match *m = logscan_match_at(a, i), *n = logscan_match_at(b, i);
        cr_assert_eq(m->line.lineno, n->line.lineno, "%s: match %zu lineno", what, i);
        cr_assert_eq(m->line.len, n->line.len, "%s: match %zu len", what, i);
        cr_assert(memcmp(m->line.text, n->line.text, m->line.len) == 0, "%s: match %zu", what, i);
        cr_assert_eq(m->nbefore, n->nbefore, "%s: match %zu nbefore", what, i);
        cr_assert_eq(m->nafter, n->nafter, "%s: match %zu nafter", what, i);
        for (size_t k = 0; k < m->nbefore; k++)
            cr_assert_str_eq(m->before[k].text, n->before[k].text, "%s: match %zu before", what, i);
        for (size_t k = 0; k < m->nafter; k++)
            cr_assert_str_eq(m->after[k].text, n->after[k].text, "%s: match %zu after", what, i);
    }
}

Test(logscan, partial_line_is_held_until_its_newline)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, DEFAULT_RE);
    feed(s, "first line\nsecond ER", 1);
    cr_assert_eq(stats(s).lines, 1);
    cr_assert_eq(stats(s).matched, 0);
    feed(s, "ROR here", 2);
    cr_assert_eq(stats(s).lines, 1);
    cr_assert_eq(stats(s).matched, 0);
    feed(s, " and more\nthird", 3);
    cr_assert_eq(stats(s).lines, 2);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_str_eq(logscan_match_at(s, 0)->line.text, "second ERROR here and more");
    cr_assert_eq(logscan_match_at(s, 0)->line.lineno, 2);
    logscan_flush(s, NULL, 4 * S, 4 * S);
    cr_assert_eq(stats(s).lines, 3);
    cr_assert_eq(stats(s).bytes, strlen("first line\nsecond ERROR here and more\nthird"));
    logscan_free(s);
}

Test(logscan, every_split_point_gives_the_same_result)
{
    static const char text[] = "a ERROR\r\nb\n\nc FATAL x\r\n\rpanic\nd panicked\ne\r\r\n"
                               "ERROR\nf\ng\nh panic\n";
    struct logscan *whole = scanner(LOG_FORMAT_PLAIN, DEFAULT_RE);
    feed_chunks(whole, text, sizeof text - 1, 0);
    cr_assert_eq(stats(whole).lines, 11);
    cr_assert_eq(stats(whole).matched, 5);
    for (size_t step = 1; step < sizeof text; step++) {
        struct logscan *s = scanner(LOG_FORMAT_PLAIN, DEFAULT_RE);
        char what[32];
        snprintf(what, sizeof what, "step %zu", step);
        feed_chunks(s, text, sizeof text - 1, step);
        assert_same(whole, s, what);
        logscan_free(s);
    }
    logscan_free(whole);
}

Test(logscan, crlf_is_stripped_and_dollar_matches_before_it)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR$");
    feed(s, "x ERROR\r\ny ERROR z\r\n", 1);
    cr_assert_eq(stats(s).lines, 2);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_str_eq(logscan_match_at(s, 0)->line.text, "x ERROR");
    cr_assert_str_eq(logscan_match_at(s, 0)->after[0].text, "y ERROR z");
    logscan_free(s);

    /* a pattern that needs the CR does not see it, in either mode */
    s = scanner(LOG_FORMAT_PLAIN, "ERROR\\r");
    feed(s, "x ERROR\r\n", 1);
    feed(s, "x ERR", 1);
    feed(s, "OR\r\n", 1);
    cr_assert_eq(stats(s).matched, 0);
    logscan_free(s);
}

static char *long_line(size_t len, const char *at_start, const char *at_end, const char *eol)
{
    char *p = malloc(len + strlen(eol) + 1);
    cr_assert_not_null(p);
    memset(p, 'a', len);
    memcpy(p, at_start, strlen(at_start));
    memcpy(p + len - strlen(at_end), at_end, strlen(at_end));
    strcpy(p + len, eol);
    return p;
}

Test(logscan, line_over_64k_is_cut_counted_and_matched_on_its_start)
{
    size_t steps[] = {0, 4096, 65536, 65537, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct logscan *s = scanner(LOG_FORMAT_PLAIN, DEFAULT_RE);
        /* 64 KiB exactly, and with CRLF: not cut */
        char *a = long_line(LOGSCAN_LINE_MAX, "", " ERROR", "\n");
        char *b = long_line(LOGSCAN_LINE_MAX, "", "", "\r\n");
        /* one byte more: cut, and the ERROR past the cut does not count */
        char *c = long_line(LOGSCAN_LINE_MAX + 1, "", " ERROR", "\n");
        char *d = long_line(3 * LOGSCAN_LINE_MAX, "FATAL ", "", "\n");
        feed_chunks(s, a, strlen(a), steps[i]);
        feed_chunks(s, b, strlen(b), steps[i]);
        feed_chunks(s, c, strlen(c), steps[i]);
        feed_chunks(s, d, strlen(d), steps[i]);
        feed(s, "short ERROR\n", 1);
        struct logscan_stats st = stats(s);
        cr_assert_eq(st.lines, 5, "step %zu: %llu lines", steps[i], (unsigned long long)st.lines);
        cr_assert_eq(st.truncated, 2, "step %zu: %llu cut", steps[i],
                     (unsigned long long)st.truncated);
        cr_assert_eq(st.matched, 3, "step %zu: %llu matched", steps[i],
                     (unsigned long long)st.matched);
        const struct logscan_match *m = logscan_match_at(s, 0);
        cr_assert_eq(m->line.lineno, 1);
        cr_assert_eq(m->line.len, LOGSCAN_KEPT_MAX);
        cr_assert(m->line.cut);
        cr_assert_eq(logscan_match_at(s, 1)->line.lineno, 4);
        cr_assert_eq(logscan_match_at(s, 2)->before[2].lineno, 4);
        free(a);
        free(b);
        free(c);
        free(d);
        logscan_free(s);
    }
}

Test(logscan, binary_garbage_is_harmless)
{
    unsigned char buf[200000];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        unsigned char c = (unsigned char)(x >> 16);
        /* no '\n' and no E, F, p: garbage lines never match */
        buf[i] = (c == '\n' || c == 'E' || c == 'F' || c == 'p') ? 0xff : c;
        if (i % 997 == 0)
            buf[i] = '\n';
    }
    memcpy(buf + 5000, "\nERROR\xff\xfe\x00 x\n", 12);
    memcpy(buf + 9000, "\n\xc3\x28 FATAL \xe2\x82\n", 13);
    for (size_t step = 1; step <= 65536; step *= 16) {
        struct logscan *s = scanner(LOG_FORMAT_PLAIN, DEFAULT_RE);
        feed_chunks(s, (const char *)buf, sizeof buf, step);
        struct logscan_stats st = stats(s);
        cr_assert_eq(st.matched, 2, "step %zu: %llu", step, (unsigned long long)st.matched);
        cr_assert_eq(st.match_errors, 0);
        cr_assert_eq(logscan_match_at(s, 0)->line.len, 10);
        logscan_free(s);
    }
    /* a pattern with non-ASCII text still matches valid UTF-8 among garbage */
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "d\u00e9j\u00e0 vu");
    feed(s, "\xff\xfe d\xc3\xa9j\xc3\xa0 vu \xc3\n", 1);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_eq(stats(s).match_errors, 0);
    logscan_free(s);
}

Test(logscan, match_across_a_newline_is_checked_on_its_line_alone)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR\\s+x");
    cr_assert(logscan_bulk(s));
    feed(s, "a ERROR\nx b\nc ERROR  x\nd ERROR\n\n   x\n", 1);
    cr_assert_eq(stats(s).lines, 6);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_eq(logscan_match_at(s, 0)->line.lineno, 3);
    logscan_free(s);

    /* dot-all: a match may start on a line and only fit across lines */
    s = scanner(LOG_FORMAT_PLAIN, "(?s)ERROR.*end");
    feed(s, "ERROR\nend\nERROR end\n", 1);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_eq(logscan_match_at(s, 0)->line.lineno, 3);
    logscan_free(s);
}

Test(logscan, lookarounds_are_matched_line_by_line)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "(?<=\\s)ERROR");
    cr_assert_not(logscan_bulk(s));
    feed(s, "a\nERROR at start\nx ERROR\n", 1);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_eq(logscan_match_at(s, 0)->line.lineno, 3);
    logscan_free(s);

    s = scanner(LOG_FORMAT_PLAIN, "ERROR(?!\\s)");
    feed(s, "ERROR\nERROR x\n", 1);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_eq(logscan_match_at(s, 0)->line.lineno, 1);
    logscan_free(s);
}

/* Arrays, not pointers: Criterion may run each case in a fresh process. */
struct bulk_case {
    char re[40];
    bool bulk;
};

ParameterizedTestParameters(logscan, pattern_decides_bulk_matching)
{
    static struct bulk_case cases[] = {
        {DEFAULT_RE, true},
        {"(?i)error|timeout", true},
        {"(?<level>ERR)OR (?:x|y)+", true},
        {"^ERROR$", true},
        {"[(?<=*+]ERROR", true},
        {"\\(?<=x", true},
        {"\\Q(?<=\\E", true},
        {"a{2,3}?b*?", true},
        {"(?=ERROR)", false},
        {"(?!x)ERROR", false},
        {"(?<=a)b", false},
        {"(?<!a)b", false},
        {"(?>a+)b", false},
        {"a++b", false},
        {"a{2}+", false},
        {"\\AERROR", false},
        {"ERROR\\z", false},
        {"ERROR\\Z", false},
        {"\\Gx", false},
        {"a\\Kb", false},
        {"(*CR)a", false},
        {"(*positive_lookahead:a)", false},
        {"(?-m)^a", false},
        {"(?^)a", false},
        {"(a)?(?(1)b|c)", false},
    };
    return cr_make_param_array(struct bulk_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bulk_case *c, logscan, pattern_decides_bulk_matching)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, c->re);
    cr_assert_eq(logscan_bulk(s), c->bulk, "%s", c->re);
    logscan_free(s);
}

Test(logscan, bulk_and_line_by_line_agree_on_random_logs)
{
    static const char *const words[] = {
        "ERROR", "error", "FATAL", "panic", "panicked", "ERRORS", "_ERROR", "x", "\r",  "\n",
        "\n",    "\n",    " ",     "  ",    "\t",       "\xff",   "p",      "E", "\r\n"};
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    unsigned x = 7;
    cr_assert_not_null(text);
    while (n < cap - 16) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % (sizeof words / sizeof words[0])];
        memcpy(text + n, w, strlen(w));
        n += strlen(w);
    }
    /* The empty lookahead changes no match but forces line by line. */
    static const char *const pats[][2] = {
        {DEFAULT_RE, "(?=)" DEFAULT_RE},        {"^(ERROR|FATAL)", "(?=)^(ERROR|FATAL)"},
        {"panic\\s*$", "(?=)panic\\s*$"},       {"ERROR\\s+p", "(?=)ERROR\\s+p"},
        {"E[^\\n]*panic", "(?=)E[^\\n]*panic"},
    };
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        for (size_t step = 0; step <= 4096; step = step ? step * 8 : 1) {
            struct logscan *a = scanner(LOG_FORMAT_PLAIN, pats[i][0]);
            struct logscan *b = scanner(LOG_FORMAT_PLAIN, pats[i][1]);
            cr_assert(logscan_bulk(a));
            cr_assert_not(logscan_bulk(b));
            feed_chunks(a, text, n, step);
            feed_chunks(b, text, n, 0);
            cr_assert_gt(stats(a).matched, 10, "%s", pats[i][0]);
            assert_same(a, b, pats[i][0]);
            logscan_free(a);
            logscan_free(b);
        }
    }
    free(text);
}

Test(logscan, window_counts_the_last_minute_and_forgets_older_buckets)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
    logscan_feed(s, NULL, "ERROR\nERROR\nok\nERROR\n", 21, 0, 0);
    logscan_feed(s, NULL, "ERROR\nERROR\n", 12, 30 * S, 0);
    logscan_feed(s, NULL, "ERROR\n", 6, 59 * S + S / 2, 0);
    cr_assert_eq(logscan_errors_per_min(s, 59 * S + 900000000LL), 6);
    cr_assert_eq(logscan_errors_per_min(s, 60 * S), 3);
    cr_assert_eq(logscan_errors_per_min(s, 89 * S), 3);
    cr_assert_eq(logscan_errors_per_min(s, 90 * S), 1);
    cr_assert_eq(logscan_errors_per_min(s, 118 * S), 1);
    cr_assert_eq(logscan_errors_per_min(s, 119 * S), 0);
    cr_assert_eq(logscan_errors_per_min(s, 200 * S), 0);
    /* bucket 0 again, a minute later: the old count is gone, not added to */
    logscan_feed(s, NULL, "ERROR\n", 6, 120 * S, 0);
    cr_assert_eq(logscan_errors_per_min(s, 120 * S), 1);
    /* matches "from the future" of now are not counted yet */
    cr_assert_eq(logscan_errors_per_min(s, 119 * S), 0);
    cr_assert_eq(stats(s).matched, 7);
    logscan_free(s);
}

/* 400 lines "line N" with ERROR on every 4th (N = 4, 8, ...). */
static char *numbered_log(size_t nlines, size_t *len)
{
    char *buf = malloc(nlines * 32);
    size_t n = 0;
    cr_assert_not_null(buf);
    for (size_t i = 1; i <= nlines; i++)
        n += (size_t)sprintf(buf + n, "line %zu%s\n", i, i % 4 == 0 ? " ERROR" : "");
    *len = n;
    return buf;
}

Test(logscan, keeps_last_10_matches_with_3_lines_of_context)
{
    size_t len;
    char *log = numbered_log(400, &len);
    size_t steps[] = {0, 1, 7, 100, 4096};
    struct logscan *ref = NULL;
    for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++) {
        struct logscan *s = scanner(LOG_FORMAT_PLAIN, DEFAULT_RE);
        feed_chunks(s, log, len, steps[si]);
        cr_assert_eq(stats(s).matched, 100);
        cr_assert_eq(LOGSCAN_KEEP, 10);
        cr_assert_eq(logscan_nmatches(s), LOGSCAN_KEEP);
        for (size_t i = 0; i < LOGSCAN_KEEP; i++) {
            const struct logscan_match *m = logscan_match_at(s, i);
            size_t no = 4 * (91 + i);
            char want[64];
            snprintf(want, sizeof want, "line %zu ERROR", no);
            cr_assert_str_eq(m->line.text, want, "step %zu", steps[si]);
            cr_assert_eq(m->line.lineno, no);
            cr_assert_eq(m->nbefore, 3);
            for (size_t k = 0; k < 3; k++) {
                snprintf(want, sizeof want, "line %zu", no - 3 + k);
                cr_assert_str_eq(m->before[k].text, want);
                cr_assert_eq(m->before[k].lineno, no - 3 + k);
            }
            size_t nafter = no == 400 ? 0 : 3;
            cr_assert_eq(m->nafter, nafter, "step %zu match %zu", steps[si], i);
            for (size_t k = 0; k < nafter; k++) {
                snprintf(want, sizeof want, "line %zu", no + 1 + k);
                cr_assert_str_eq(m->after[k].text, want);
            }
        }
        /* the last match gets its "after" lines as they come */
        feed(s, "next 1\nnext", 9);
        cr_assert_eq(logscan_match_at(s, LOGSCAN_KEEP - 1)->nafter, 1);
        feed(s, " 2\nnext 3 ERROR\nnext 4\n", 9);
        cr_assert_eq(logscan_nmatches(s), LOGSCAN_KEEP);
        const struct logscan_match *m = logscan_match_at(s, LOGSCAN_KEEP - 2);
        cr_assert_eq(m->nafter, 3);
        cr_assert_str_eq(m->after[0].text, "next 1");
        cr_assert_str_eq(m->after[1].text, "next 2");
        cr_assert_str_eq(m->after[2].text, "next 3 ERROR");
        m = logscan_match_at(s, LOGSCAN_KEEP - 1);
        cr_assert_str_eq(m->line.text, "next 3 ERROR");
        cr_assert_str_eq(m->before[0].text, "line 400 ERROR");
        cr_assert_str_eq(m->before[2].text, "next 2");
        cr_assert_eq(m->nafter, 1);
        if (ref)
            assert_same(ref, s, "chunking");
        else
            ref = s;
        if (s != ref)
            logscan_free(s);
    }
    logscan_free(ref);
    free(log);
}

Test(logscan, adjacent_matches_are_each_others_context)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
    feed(s, "a\nERROR 1\nERROR 2\nb\n", 1);
    const struct logscan_match *m1 = logscan_match_at(s, 0), *m2 = logscan_match_at(s, 1);
    cr_assert_eq(m1->nbefore, 1);
    cr_assert_str_eq(m1->after[0].text, "ERROR 2");
    cr_assert_str_eq(m1->after[1].text, "b");
    cr_assert_eq(m2->nbefore, 2);
    cr_assert_str_eq(m2->before[1].text, "ERROR 1");
    cr_assert_eq(m2->nafter, 1);
    logscan_free(s);
}

Test(logscan, lines_carry_the_wall_time_of_their_chunk)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
    logscan_feed(s, NULL, "one\ntwo\n", 8, 1 * S, 1000 * S);
    logscan_feed(s, NULL, "ERROR\nthree\n", 12, 2 * S, 2000 * S);
    logscan_feed(s, NULL, "four\n", 5, 3 * S, 3000 * S);
    const struct logscan_match *m = logscan_match_at(s, 0);
    cr_assert_eq(m->mono_ns, 2 * S);
    cr_assert_eq(m->line.wall_ns, 2000 * S);
    cr_assert_eq(m->before[0].wall_ns, 1000 * S);
    cr_assert_eq(m->before[1].wall_ns, 1000 * S);
    cr_assert_eq(m->after[0].wall_ns, 2000 * S);
    cr_assert_eq(m->after[1].wall_ns, 3000 * S);
    logscan_free(s);
}

Test(logscan, kept_line_is_cut_at_kept_max)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
    char *a = long_line(10000, "ERROR", "", "\n");
    feed(s, a, 1);
    const struct logscan_match *m = logscan_match_at(s, 0);
    cr_assert_eq(m->line.len, LOGSCAN_KEPT_MAX);
    cr_assert_eq(strlen(m->line.text), LOGSCAN_KEPT_MAX);
    cr_assert(m->line.cut);
    cr_assert_eq(stats(s).truncated, 0);
    free(a);
    logscan_free(s);
}

Test(logscan, kept_lines_are_cut_at_the_scanner_kept_max_and_bounded_in_bytes)
{
    struct logscan *small = scanner(LOG_FORMAT_PLAIN, "ERROR");
    struct logscan *dflt = scanner(LOG_FORMAT_PLAIN, "ERROR");
    char *a = long_line(10000, "ERROR", "", "\n"), *b = long_line(10000, "", "", "\n");

    logscan_set_kept_max(small, 100);
    cr_assert_eq(logscan_kept_max(small), 100);
    cr_assert_eq(logscan_kept_max(dflt), LOGSCAN_KEPT_MAX);
    for (int i = 0; i < 100; i++) {
        /* a match, then a context line, each 10000 bytes */
        feed(small, i % 2 ? b : a, i);
        feed(dflt, i % 2 ? b : a, i);
        cr_assert_leq(logscan_kept_bytes(small), LOGSCAN_KEPT_LINES * 101);
        cr_assert_leq(logscan_kept_bytes(dflt), LOGSCAN_KEPT_LINES * (LOGSCAN_KEPT_MAX + 1));
    }
    cr_assert_gt(logscan_kept_bytes(dflt), LOGSCAN_KEPT_LINES * 4000, "the lines were kept");
    cr_assert_eq(stats(small).matched, 50, "cutting what is kept changes no count");
    cr_assert_eq(logscan_nmatches(small), LOGSCAN_KEEP);
    for (size_t i = 0; i < LOGSCAN_KEEP; i++) {
        const struct logscan_match *m = logscan_match_at(small, i);
        cr_assert_eq(m->line.len, 100);
        cr_assert_eq(strlen(m->line.text), 100);
        cr_assert(m->line.cut);
        cr_assert_eq(strncmp(m->line.text, a, 100), 0);
        cr_assert_eq(m->before[m->nbefore - 1].len, 100);
    }
    logscan_set_kept_max(small, 0);
    cr_assert_eq(logscan_kept_max(small), 1, "clamped");
    logscan_set_kept_max(small, 1 << 20);
    cr_assert_eq(logscan_kept_max(small), LOGSCAN_KEPT_MAX, "clamped");
    free(a);
    free(b);
    logscan_free(small);
    logscan_free(dflt);
}

Test(logscan, long_partial_line_buffers_are_freed_once_the_line_ends)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
    struct logscan *cri = scanner(LOG_FORMAT_CRI, "ERROR");
    struct logscan_src src;
    char *a = long_line(50000, "ERROR", "", "");

    logscan_src_init(&src);
    logscan_feed(s, &src, a, strlen(a), 1 * S, 1 * S);
    cr_assert_geq(src.cap, 50000, "the partial line is held");
    logscan_feed(s, &src, "\n", 1, 1 * S, 1 * S);
    cr_assert_eq(src.cap, 0, "a 50 KB buffer outlived its line");
    cr_assert_eq(stats(s).matched, 1);
    logscan_feed(s, &src, "short", 5, 1 * S, 1 * S);
    logscan_feed(s, &src, " line\n", 6, 1 * S, 1 * S);
    cr_assert_eq(src.len, 0);
    cr_assert(src.cap > 0 && src.cap <= LOGSCAN_HELD_MAX, "short lines keep a small buffer");
    cr_assert_eq(stats(s).lines, 2);

    /* CRI: messages joined from partial lines, one after the other (the
     * join buffer of the first is freed, the second gets a new one) */
    char *part = long_line(30000, "2024-01-01T00:00:00Z stdout P ERROR ", "", "\n");
    for (int k = 0; k < 2; k++) {
        feed(cri, part, 1);
        feed(cri, part, 1);
        feed(cri, k ? "2024-01-01T00:00:01Z stdout F two\n" : "2024-01-01T00:00:01Z stdout F one\n",
             1);
    }
    cr_assert_eq(stats(cri).matched, 2);
    cr_assert_eq(stats(cri).lines, 2);
    const struct logscan_match *m = logscan_match_at(cri, 1);
    cr_assert_eq(strncmp(m->line.text, "ERROR aaa", 9), 0, "%.20s", m->line.text);
    cr_assert(m->line.cut);
    free(part);
    free(a);
    logscan_src_fini(&src);
    logscan_free(s);
    logscan_free(cri);
}

Test(logscan, sources_hold_their_partial_lines_apart)
{
    struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
    struct logscan_src a, b;
    logscan_src_init(&a);
    logscan_src_init(&b);
    logscan_feed(s, &a, "old ER", 6, 0, 0);
    logscan_feed(s, &b, "new line\nnew ", 13, 0, 0);
    logscan_feed(s, &a, "ROR\n", 4, 0, 0);
    logscan_feed(s, &b, "ROR\n", 4, 0, 0);
    cr_assert_eq(stats(s).lines, 3);
    cr_assert_eq(stats(s).matched, 1);
    cr_assert_str_eq(logscan_match_at(s, 0)->line.text, "old ERROR");
    /* flush: an unterminated last line counts, and is not glued to more */
    logscan_feed(s, &a, "tail ERROR", 10, 0, 0);
    logscan_flush(s, &a, 0, 0);
    logscan_feed(s, &a, " more\n", 6, 0, 0);
    cr_assert_eq(stats(s).lines, 5);
    cr_assert_eq(stats(s).matched, 2);
    cr_assert_str_eq(logscan_match_at(s, 1)->line.text, "tail ERROR");
    logscan_src_fini(&a);
    logscan_src_fini(&b);
    logscan_free(s);
}

/* Feed text through src, all at once (step 0) or step bytes at a time: one
 * way goes through the chunk matcher, the other through lines completed
 * across chunks. */
static void feed_src(struct logscan *s, struct logscan_src *src, const char *text, size_t step)
{
    size_t n = strlen(text);
    if (!step)
        step = n ? n : 1;
    for (size_t off = 0; off < n; off += step)
        logscan_feed(s, src, text + off, n - off < step ? n - off : step, 0, 0);
}

static void assert_lines(const struct logscan_line *l, size_t n, const char *const *want,
                         size_t nwant, const char *what)
{
    cr_assert_eq(n, nwant, "%s: %zu lines, expected %zu", what, n, nwant);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(l[i].text, want[i], "%s: line %zu", what, i);
}

/* Two files read in turn by one scanner (a rotated file still being
 * written, and the new one): the lines around a match are its own file's. */
Test(logscan, context_stays_with_its_source)
{
    static const char *const a3[] = {"a1", "a2", "a3"}, *const b1[] = {"b2"};
    for (size_t step = 0; step <= 1; step++) {
        struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
        struct logscan_src a, b;
        logscan_src_init(&a);
        logscan_src_init(&b);
        feed_src(s, &a, "a1\na2\na3\n", step);
        feed_src(s, &b, "b ERROR\nb2\n", step);
        feed_src(s, &a, "a ERROR\n", step);
        feed_src(s, &b, "b3\n", step);
        feed_src(s, &a, "a4\n", step);
        cr_assert_eq(logscan_nmatches(s), 2);
        const struct logscan_match *mb = logscan_match_at(s, 0), *ma = logscan_match_at(s, 1);
        cr_assert_str_eq(mb->line.text, "b ERROR");
        assert_lines(mb->before, mb->nbefore, NULL, 0, "b before");
        assert_lines(mb->after, mb->nafter, b1, 1, "b after");
        cr_assert_str_eq(ma->line.text, "a ERROR");
        assert_lines(ma->before, ma->nbefore, a3, 3, "a before");
        /* b3 came in between: a4 is not the line right after the match */
        assert_lines(ma->after, ma->nafter, NULL, 0, "a after");
        logscan_src_fini(&a);
        logscan_src_fini(&b);
        logscan_free(s);
    }
}

/* A flush (the file was truncated or let go) ends the context: nothing read
 * before it surrounds a match after it, nor the other way round. */
Test(logscan, flush_ends_the_context_of_its_source)
{
    static const char *const old2[] = {"secret 1", "secret 2"}, *const new1[] = {"next"};
    for (size_t step = 0; step <= 1; step++) {
        struct logscan *s = scanner(LOG_FORMAT_PLAIN, "ERROR");
        struct logscan_src a;
        logscan_src_init(&a);
        feed_src(s, &a, "secret 1\nsecret 2\nold ERROR\n", step);
        logscan_flush(s, &a, 0, 0);
        feed_src(s, &a, "new ERROR\nnext\n", step);
        cr_assert_eq(logscan_nmatches(s), 2);
        const struct logscan_match *mo = logscan_match_at(s, 0), *mn = logscan_match_at(s, 1);
        assert_lines(mo->before, mo->nbefore, old2, 2, "old before");
        assert_lines(mo->after, mo->nafter, NULL, 0, "old after");
        assert_lines(mn->before, mn->nbefore, NULL, 0, "new before");
        assert_lines(mn->after, mn->nafter, new1, 1, "new after");
        logscan_src_fini(&a);
        logscan_free(s);
    }
}

Test(logscan, bad_pattern_is_reported)
{
    struct logscan *s = NULL;
    char err[256] = "";
    cr_assert_eq(logscan_new(LOG_FORMAT_PLAIN, "(ERROR", &s, err, sizeof err), -EINVAL);
    cr_assert_null(s);
    cr_assert(strstr(err, "offset 6"), "%s", err);
}

/* ---- CRI ---- */

#define TS1 "2024-01-02T03:04:05.123456789Z"
#define TS1_NS (1704164645LL * S + 123456789LL)

Test(logscan, cri_message_is_matched_with_its_own_timestamp)
{
    struct logscan *s = scanner(LOG_FORMAT_CRI, "^ERROR");
    cr_assert_not(logscan_bulk(s));
    feed(s, TS1 " stdout F ERROR at start\n" TS1 " stderr F x ERROR\n", 1);
    struct logscan_stats st = stats(s);
    cr_assert_eq(st.lines, 2);
    cr_assert_eq(st.matched, 1);
    cr_assert_eq(st.malformed, 0);
    const struct logscan_match *m = logscan_match_at(s, 0);
    cr_assert_str_eq(m->line.text, "ERROR at start");
    cr_assert_eq(m->line.wall_ns, TS1_NS);
    logscan_free(s);
}

Test(logscan, cri_partial_lines_are_joined_per_stream)
{
    struct logscan *s = scanner(LOG_FORMAT_CRI, DEFAULT_RE);
    feed(s,
         TS1 " stdout P hello ER\n"
             "2024-01-02T03:04:06Z stderr F other stream\n"
             "2024-01-02T03:04:07Z stdout P RO\n",
         1);
    cr_assert_eq(stats(s).lines, 1);
    cr_assert_eq(stats(s).matched, 0);
    feed(s, "2024-01-02T03:04:08Z stdout F R world\r\n", 2);
    cr_assert_eq(stats(s).lines, 2);
    cr_assert_eq(stats(s).matched, 1);
    const struct logscan_match *m = logscan_match_at(s, 0);
    cr_assert_str_eq(m->line.text, "hello ERROR world");
    cr_assert_eq(m->line.wall_ns, TS1_NS);
    cr_assert_str_eq(m->before[0].text, "other stream");
    cr_assert_eq(m->before[0].wall_ns, 1704164646LL * S);
    logscan_free(s);
}

Test(logscan, cri_joined_line_over_64k_is_cut_once)
{
    struct logscan *s = scanner(LOG_FORMAT_CRI, "ERROR");
    char *part = long_line(16 * 1024, TS1 " stdout P ", "", "\n");
    for (int i = 0; i < 5; i++)
        feed(s, part, 1);
    feed(s, TS1 " stdout F ERROR\n", 1);
    struct logscan_stats st = stats(s);
    cr_assert_eq(st.lines, 1);
    cr_assert_eq(st.truncated, 1);
    cr_assert_eq(st.matched, 0); /* ERROR came after the cut */
    free(part);
    logscan_free(s);
}

struct cri_case {
    char line[80];
    bool malformed;
    int64_t wall_ns; /* when well formed */
};

ParameterizedTestParameters(logscan, cri_lines_parse_or_count_as_malformed)
{
    static struct cri_case cases[] = {
        {TS1 " stdout F ERROR", false, TS1_NS},
        {TS1 " stderr F:x ERROR", false, TS1_NS},
        {"2024-01-02T05:04:05+02:00 stdout F ERROR", false, 1704164645LL * S},
        {"2024-01-02T01:04:05.5-02:00 stdout F ERROR", false, 1704164645LL * S + S / 2},
        {"2024-02-29T00:00:00Z stdout F ERROR", false, 1709164800LL * S},
        {"1970-01-01T00:00:00.000000001Z stdout F ERROR", false, 1},
        {"ERROR plain text", true, 0},
        {"2023-02-29T00:00:00Z stdout F ERROR", true, 0},
        {"2024-13-02T03:04:05Z stdout F ERROR", true, 0},
        {"2024-01-02T03:04:05 stdout F ERROR", true, 0},
        {"2024-01-02T03:04:05.Z stdout F ERROR", true, 0},
        {TS1 " stdfoo F ERROR", true, 0},
        {TS1 " stdout X ERROR", true, 0},
        {TS1 " stdout FP ERROR", true, 0},
        {TS1 " stdout ERROR", true, 0},
    };
    return cr_make_param_array(struct cri_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct cri_case *c, logscan, cri_lines_parse_or_count_as_malformed)
{
    struct logscan *s = scanner(LOG_FORMAT_CRI, "ERROR");
    logscan_feed(s, NULL, c->line, strlen(c->line), 0, 42);
    logscan_feed(s, NULL, "\n", 1, 0, 42);
    struct logscan_stats st = stats(s);
    cr_assert_eq(st.lines, 1, "%s", c->line);
    cr_assert_eq(st.matched, 1, "%s", c->line);
    cr_assert_eq(st.malformed, c->malformed ? 1 : 0, "%s", c->line);
    const struct logscan_match *m = logscan_match_at(s, 0);
    if (c->malformed) {
        cr_assert_str_eq(m->line.text, c->line);
        cr_assert_eq(m->line.wall_ns, 42);
    } else {
        cr_assert_eq(m->line.wall_ns, c->wall_ns, "%s: %lld", c->line, (long long)m->line.wall_ns);
        cr_assert(strncmp(m->line.text, "ERROR", 5) == 0);
    }
    logscan_free(s);
}

Test(logscan, cri_empty_message_is_a_line)
{
    struct logscan *s = scanner(LOG_FORMAT_CRI, "^$");
    feed(s, TS1 " stdout F \n" TS1 " stdout F\n" TS1 " stdout F x\n", 1);
    cr_assert_eq(stats(s).lines, 3);
    cr_assert_eq(stats(s).matched, 2);
    cr_assert_eq(stats(s).malformed, 0);
    logscan_free(s);
}

Test(logscan, cri_any_chunking_gives_the_same_result)
{
    static const char *const pieces[] = {TS1 " stdout F ERROR a\n",
                                         TS1 " stdout P ER",
                                         "2024-01-02T03:04:06Z stdout P RO\n",
                                         TS1 " stdout P ERR",
                                         TS1 " stderr F panic b\n",
                                         "2024-01-02T03:04:07Z stdout F R c\n",
                                         "garbage \xff\x00 FATAL\n",
                                         TS1 " stdout F\n",
                                         TS1 " stdout F x\r\n",
                                         "\n",
                                         TS1,
                                         " stderr P p",
                                         "anic\n",
                                         TS1 " stderr F  d\n"};
    char text[8192];
    size_t n = 0;
    unsigned x = 99;
    while (n < sizeof text - 64) {
        x = x * 1103515245u + 12345u;
        const char *p = pieces[(x >> 16) % (sizeof pieces / sizeof pieces[0])];
        memcpy(text + n, p, strlen(p));
        n += strlen(p);
    }
    struct logscan *whole = scanner(LOG_FORMAT_CRI, DEFAULT_RE);
    feed_chunks(whole, text, n, 0);
    cr_assert_gt(stats(whole).matched, 20);
    cr_assert_gt(stats(whole).malformed, 20);
    for (size_t step = 1; step < 600; step += 37) {
        struct logscan *s = scanner(LOG_FORMAT_CRI, DEFAULT_RE);
        feed_chunks(s, text, n, step);
        cr_assert_eq(stats(s).malformed, stats(whole).malformed);
        assert_same(whole, s, "cri chunking");
        logscan_free(s);
    }
    logscan_free(whole);
}

Test(logscan, cri_context_stays_with_its_source)
{
    struct logscan *s = scanner(LOG_FORMAT_CRI, DEFAULT_RE);
    struct logscan_src a, b;
    logscan_src_init(&a);
    logscan_src_init(&b);
    feed_src(s, &a, TS1 " stdout F secret\n" TS1 " stdout F ERROR a\n", 0);
    feed_src(s, &b, TS1 " stdout F ERROR b\n" TS1 " stdout F b2\n", 0);
    logscan_flush(s, &a, 0, 0);
    feed_src(s, &a, TS1 " stdout F ERROR c\n", 0);
    cr_assert_eq(logscan_nmatches(s), 3);
    const struct logscan_match *ma = logscan_match_at(s, 0), *mb = logscan_match_at(s, 1),
                               *mc = logscan_match_at(s, 2);
    cr_assert_eq(ma->nbefore, 1);
    cr_assert_str_eq(ma->before[0].text, "secret");
    cr_assert_eq(ma->nafter, 0);
    cr_assert_eq(mb->nbefore, 0);
    cr_assert_eq(mb->nafter, 1);
    cr_assert_eq(mc->nbefore, 0);
    logscan_src_fini(&a);
    logscan_src_fini(&b);
    logscan_free(s);
}
