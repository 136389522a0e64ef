/* triggers/expr.c - lexer and recursive-descent parser of `when` expressions;
 * see expr.h for the grammar. */
#include "expr.h"

#include "units.h"
#include "xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum tok_kind { TOK_END, TOK_LPAREN, TOK_RPAREN, TOK_OP, TOK_NUM, TOK_WORD, TOK_UNIT };

struct token {
    enum tok_kind kind;
    size_t off, len;    /* whole token */
    enum expr_op op;    /* TOK_OP */
    double num;         /* TOK_NUM: the number */
    size_t uoff, ulen;  /* TOK_NUM: the glued unit, may be empty */
};

struct parser {
    const char *src;
    size_t n;
    size_t pos;
    struct token tok;   /* current, not yet consumed */
    unsigned depth;
    unsigned ncmp;
    struct expr_error *err;
    bool failed;
};

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_unit_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '%' || c == '/';
}

static void fail_at(struct parser *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(struct parser *p, size_t off, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return;
    p->failed = true;
    p->err->off = off;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
}

/* Quote at most 40 characters of a token for a message. */
static int quote_len(const struct token *t)
{
    return t->len > 40 ? 40 : (int)t->len;
}

static bool tok_is_word(const struct parser *p, const char *w)
{
    return p->tok.kind == TOK_WORD && strlen(w) == p->tok.len &&
           memcmp(p->src + p->tok.off, w, p->tok.len) == 0;
}

static void describe(const struct parser *p, char *buf, size_t len)
{
    if (p->tok.kind == TOK_END)
        snprintf(buf, len, "the end of the expression");
    else
        snprintf(buf, len, "'%.*s'", quote_len(&p->tok), p->src + p->tok.off);
}

/* Read the next token into p->tok. */
static void next(struct parser *p)
{
    const char *s = p->src;
    size_t i = p->pos;
    struct token t = {0};

    while (i < p->n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    t.off = i;
    if (i >= p->n) {
        t.kind = TOK_END;
    } else if (s[i] == '(' || s[i] == ')') {
        t.kind = s[i] == '(' ? TOK_LPAREN : TOK_RPAREN;
        i++;
    } else if (s[i] == '>' || s[i] == '<') {
        bool ge = i + 1 < p->n && s[i + 1] == '=';
        t.kind = TOK_OP;
        if (s[i] == '>')
            t.op = ge ? EXPR_OP_GE : EXPR_OP_GT;
        else
            t.op = ge ? EXPR_OP_LE : EXPR_OP_LT;
        i += ge ? 2 : 1;
    } else if (s[i] == '=' || s[i] == '!') {
        size_t len = (i + 1 < p->n && s[i + 1] == '=') ? 2 : 1;
        fail_at(p, i, "'%.*s' is not an operator; use >, >=, < or <=", (int)len, s + i);
        t.kind = TOK_END;
    } else if (is_digit(s[i]) || (s[i] == '.' && i + 1 < p->n && is_digit(s[i + 1]))) {
        /* never 0: the condition above guarantees a digit */
        i += units_parse_number(s + i, p->n - i, &t.num);
        t.kind = TOK_NUM;
        if (t.num > EXPR_MAX_NUMBER) {
            fail_at(p, t.off, "number is too large");
            t.kind = TOK_END;
        }
        t.uoff = i;
        while (i < p->n && is_unit_char(s[i]))
            i++;
        t.ulen = i - t.uoff;
    } else if (is_alpha(s[i])) {
        t.kind = TOK_WORD;
        while (i < p->n && (is_alpha(s[i]) || is_digit(s[i])))
            i++;
    } else if (s[i] == '%' || s[i] == '/') {
        t.kind = TOK_UNIT;
        i++;
        while (i < p->n && is_unit_char(s[i]))
            i++;
    } else {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            fail_at(p, i, "unexpected character '%c'", c);
        else
            fail_at(p, i, "unexpected byte 0x%02x", c);
        t.kind = TOK_END;
    }
    t.len = i - t.off;
    p->pos = i;
    p->tok = t;
}

static struct expr *node_new(enum expr_kind kind)
{
    struct expr *e = xcalloc(1, sizeof *e);
    e->kind = kind;
    return e;
}

/* Convert number + unit to the canonical unit of metric m. uoff/ulen locate
 * the unit in the source (for messages); whole/wn is the full quantity text
 * (durations are parsed from it). */
static bool convert(struct parser *p, enum metric m, double num, size_t uoff, size_t ulen,
                    size_t qoff, size_t qlen, double *out)
{
    const char *u = p->src + uoff;
    double f;

    switch (metric_unit(m)) {
    case METRIC_UNIT_PERCENT:
        if (ulen == 0 || (ulen == 1 && u[0] == '%')) {
            *out = num;
            return true;
        }
        break;
    case METRIC_UNIT_COUNT:
        if (ulen == 0) {
            *out = num;
            return true;
        }
        break;
    case METRIC_UNIT_BYTES:
        f = ulen ? units_size_factor(u, ulen) : 0.0;
        if (f > 0) {
            *out = num * f;
            return true;
        }
        break;
    case METRIC_UNIT_PER_MIN:
        if (ulen == 0) {
            *out = num;
            return true;
        }
        f = units_per_minute_factor(u, ulen);
        if (f > 0) {
            *out = num * f;
            return true;
        }
        break;
    case METRIC_UNIT_BYTES_PER_MIN: {
        const char *slash = memchr(u, '/', ulen);
        if (slash) {
            size_t sn = (size_t)(slash - u);
            double sf = units_size_factor(u, sn);
            double rf = units_per_minute_factor(slash, ulen - sn);
            if (sf > 0 && rf > 0) {
                *out = num * sf * rf;
                return true;
            }
        }
        break;
    }
    case METRIC_UNIT_SECONDS:
        if (ulen > 0) {
            int64_t ns;
            size_t bad = 0;
            char msg[120];
            if (units_parse_duration(p->src + qoff, qlen, &ns, &bad, msg, sizeof msg) == 0) {
                *out = (double)ns / 1e9;
                return true;
            }
            if (units_duration_factor(u, ulen) > 0 || bad < qlen) {
                fail_at(p, qoff + bad, "%s", msg);
                return false;
            }
        }
        break;
    }
    if (ulen == 0)
        fail_at(p, qoff, "'%s' needs a unit: %s", metric_name(m), metric_unit_hint(m));
    else
        fail_at(p, uoff, "unit '%.*s' does not fit metric '%s': expected %s",
                (int)(ulen > 40 ? 40 : ulen), u, metric_name(m), metric_unit_hint(m));
    return false;
}

/* The largest value a comparison may hold, in m's canonical unit. Sizes
 * print rounded to a tenth of a TiB: their limit is a whole number of TiB,
 * so no value under it prints as one above it. */
static double max_value(enum metric m)
{
    switch (metric_unit(m)) {
    case METRIC_UNIT_BYTES:
    case METRIC_UNIT_BYTES_PER_MIN:
        return EXPR_MAX_BYTES;
    default:
        return EXPR_MAX_NUMBER;
    }
}

static struct expr *parse_or(struct parser *p);

static struct expr *parse_cmp(struct parser *p)
{
    char what[64];
    enum metric m;

    if (p->tok.kind != TOK_WORD || tok_is_word(p, "and") || tok_is_word(p, "or")) {
        describe(p, what, sizeof what);
        fail_at(p, p->tok.off, "expected a metric name (cpu, rss, errors, ...), found %s", what);
        return NULL;
    }
    size_t start = p->tok.off;
    if (!metric_lookup(p->src + p->tok.off, p->tok.len, &m)) {
        const char *s = metric_suggest(p->src + p->tok.off, p->tok.len);
        if (s)
            fail_at(p, p->tok.off, "unknown metric '%.*s' (did you mean '%s'?)",
                    quote_len(&p->tok), p->src + p->tok.off, s);
        else
            fail_at(p, p->tok.off,
                    "unknown metric '%.*s'; metrics are cpu, cpu_limit, throttled, rss, "
                    "rss_growth, mem_limit, oom_eta, errors, threads, fds, psi_cpu, psi_memory",
                    quote_len(&p->tok), p->src + p->tok.off);
        return NULL;
    }
    next(p);
    if (p->tok.kind != TOK_OP) {
        describe(p, what, sizeof what);
        fail_at(p, p->tok.off, "expected an operator (>, >=, <, <=) after '%s', found %s",
                metric_name(m), what);
        return NULL;
    }
    enum expr_op op = p->tok.op;
    next(p);
    if (p->tok.kind != TOK_NUM) {
        describe(p, what, sizeof what);
        fail_at(p, p->tok.off, "expected a value after '%s', found %s", expr_op_name(op), what);
        return NULL;
    }
    struct token q = p->tok;
    next(p);

    enum expr_ref ref = EXPR_REF_ABS;
    double value = q.num;
    size_t uoff = q.uoff, ulen = q.ulen;
    bool glued_x = ulen == 1 && p->src[uoff] == 'x';
    bool glued_sigma = ulen == 5 && memcmp(p->src + uoff, "sigma", 5) == 0;

    if (glued_x || (ulen == 0 && tok_is_word(p, "x"))) {
        if (!glued_x)
            next(p);
        if (!tok_is_word(p, "baseline")) {
            describe(p, what, sizeof what);
            fail_at(p, p->tok.off, "expected 'baseline' after '%.*sx', found %s",
                    (int)(q.uoff - q.off), p->src + q.off, what);
            return NULL;
        }
        next(p);
        ref = EXPR_REF_BASELINE;
        /* the canonical form prints six decimals: a smaller factor would
         * print as 0, which is refused */
        if (!(value >= EXPR_MIN_FACTOR)) {
            fail_at(p, q.off, "a baseline factor must be at least 0.001");
            return NULL;
        }
    } else if (glued_sigma || (ulen == 0 && tok_is_word(p, "sigma"))) {
        if (!glued_sigma)
            next(p);
        ref = EXPR_REF_SIGMA;
    } else {
        size_t qlen = q.len;
        /* A unit written after a space ("256 MiB", "80 %"). */
        if (ulen == 0 && (p->tok.kind == TOK_UNIT ||
                          (p->tok.kind == TOK_WORD && !tok_is_word(p, "and") &&
                           !tok_is_word(p, "or")))) {
            uoff = p->tok.off;
            ulen = p->tok.len;
            qlen = 0; /* durations must be written glued: "10m" */
            if (metric_unit(m) == METRIC_UNIT_SECONDS) {
                fail_at(p, q.off, "write a duration without spaces, such as 10m");
                return NULL;
            }
            next(p);
        }
        if (!convert(p, m, q.num, uoff, ulen, q.off, qlen ? qlen : q.len, &value))
            return NULL;
        /* "25555555555555/s" passes the literal check but not once it is
         * per minute: the canonical form would not parse back. */
        double max = max_value(m);
        if (value > max) {
            char lim[64];
            metric_format(m, max, lim, sizeof lim);
            fail_at(p, q.off, "value is too large for '%s' (at most %s)", metric_name(m), lim);
            return NULL;
        }
        if (metric_unit(m) == METRIC_UNIT_SECONDS && value >= METRIC_MAX_SECONDS) {
            fail_at(p, q.off, "value is too large for '%s' (less than %.0fd)", metric_name(m),
                    METRIC_MAX_SECONDS / 86400.0);
            return NULL;
        }
    }
    if (p->ncmp >= EXPR_MAX_CMP) {
        fail_at(p, start, "too many comparisons in one expression (at most %d)", EXPR_MAX_CMP);
        return NULL;
    }
    struct expr *e = node_new(EXPR_CMP);
    e->metric = m;
    e->op = op;
    e->ref = ref;
    e->value = value;
    e->index = p->ncmp++;
    e->off = start;
    /* the span ends where the last token of the value ended */
    e->len = (p->tok.kind == TOK_END ? p->n : p->tok.off) - start;
    while (e->len > 0 && (p->src[start + e->len - 1] == ' ' || p->src[start + e->len - 1] == '\t'))
        e->len--;
    return e;
}

static struct expr *parse_primary(struct parser *p)
{
    if (p->tok.kind != TOK_LPAREN)
        return parse_cmp(p);
    size_t open = p->tok.off;
    if (++p->depth > EXPR_MAX_DEPTH) {
        fail_at(p, open, "expression nested too deeply (at most %d levels)", EXPR_MAX_DEPTH);
        return NULL;
    }
    next(p);
    struct expr *e = parse_or(p);
    if (!e)
        return NULL;
    if (p->tok.kind != TOK_RPAREN) {
        char what[64];
        describe(p, what, sizeof what);
        fail_at(p, p->tok.off,
                "expected ')' to close the '(' at character %zu of the expression, found %s",
                open + 1, what);
        expr_free(e);
        return NULL;
    }
    p->depth--;
    next(p);
    return e;
}

static struct expr *parse_chain(struct parser *p, const char *word, enum expr_kind kind,
                                struct expr *(*sub)(struct parser *))
{
    struct expr *lhs = sub(p);
    while (lhs && tok_is_word(p, word)) {
        next(p);
        struct expr *rhs = sub(p);
        if (!rhs) {
            expr_free(lhs);
            return NULL;
        }
        struct expr *e = node_new(kind);
        e->lhs = lhs;
        e->rhs = rhs;
        lhs = e;
    }
    return lhs;
}

static struct expr *parse_and(struct parser *p)
{
    return parse_chain(p, "and", EXPR_AND, parse_primary);
}

static struct expr *parse_or(struct parser *p)
{
    return parse_chain(p, "or", EXPR_OR, parse_and);
}

int expr_parse(const char *src, size_t n, struct expr **out, struct expr_error *err)
{
    struct parser p = {.src = src, .n = n, .err = err};
    struct expr *e = NULL;

    err->off = 0;
    err->msg[0] = '\0';
    if (n > EXPR_MAX_LEN) {
        fail_at(&p, EXPR_MAX_LEN, "expression is longer than %d characters", EXPR_MAX_LEN);
        return -EINVAL;
    }
    next(&p);
    if (p.tok.kind == TOK_END && !p.failed) {
        fail_at(&p, 0, "empty expression");
        return -EINVAL;
    }
    e = parse_or(&p);
    if (e && !p.failed && p.tok.kind != TOK_END) {
        char what[64];
        describe(&p, what, sizeof what);
        if (p.tok.kind == TOK_RPAREN)
            fail_at(&p, p.tok.off, "unmatched ')'");
        else
            fail_at(&p, p.tok.off, "expected 'and', 'or' or the end of the expression, found %s",
                    what);
    }
    if (p.failed) {
        expr_free(e);
        return -EINVAL;
    }
    *out = e;
    return 0;
}

void expr_free(struct expr *e)
{
    if (!e)
        return;
    expr_free(e->lhs);
    expr_free(e->rhs);
    free(e);
}

unsigned expr_count(const struct expr *e)
{
    if (!e)
        return 0;
    if (e->kind == EXPR_CMP)
        return 1;
    return expr_count(e->lhs) + expr_count(e->rhs);
}

const struct expr *expr_cmp_at(const struct expr *e, unsigned index)
{
    if (!e)
        return NULL;
    if (e->kind == EXPR_CMP)
        return e->index == index ? e : NULL;
    const struct expr *l = expr_cmp_at(e->lhs, index);
    return l ? l : expr_cmp_at(e->rhs, index);
}

bool expr_uses(const struct expr *e, enum metric m)
{
    if (!e)
        return false;
    if (e->kind == EXPR_CMP)
        return e->metric == m;
    return expr_uses(e->lhs, m) || expr_uses(e->rhs, m);
}

const char *expr_op_name(enum expr_op op)
{
    switch (op) {
    case EXPR_OP_GT:
        return ">";
    case EXPR_OP_GE:
        return ">=";
    case EXPR_OP_LT:
        return "<";
    case EXPR_OP_LE:
        return "<=";
    }
    return "?";
}

double expr_cmp_threshold(const struct expr *cmp, double median, double mean, double std)
{
    switch (cmp->ref) {
    case EXPR_REF_ABS:
        return cmp->value;
    case EXPR_REF_BASELINE:
        return cmp->value * median;
    case EXPR_REF_SIGMA:
        return mean + cmp->value * std;
    }
    return NAN;
}

bool expr_cmp_holds(const struct expr *cmp, double v, double median, double mean, double std)
{
    double t = expr_cmp_threshold(cmp, median, mean, std);

    if (isnan(v) || isnan(t))
        return false;
    switch (cmp->op) {
    case EXPR_OP_GT:
        return v > t;
    case EXPR_OP_GE:
        return v >= t;
    case EXPR_OP_LT:
        return v < t;
    case EXPR_OP_LE:
        return v <= t;
    }
    return false;
}

struct sbuf {
    char *buf;
    size_t len, used;
};

static void sput(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->used < b->len) {
        size_t room = b->len - b->used - 1;
        size_t k = n < room ? n : room;
        memcpy(b->buf + b->used, s, k);
        b->buf[b->used + k] = '\0';
    }
    b->used += n;
}

/* A number as the lexer reads it back: no exponent, trailing zeros trimmed,
 * at most 6 decimals and 15 significant digits: text of 15 digits or fewer
 * comes back from a double unchanged, so the form prints the same way once
 * parsed again. */
static void format_plain(double v, const char *suffix, char *buf, size_t len)
{
    char num[48];
    int whole = fabs(v) < 1 ? 1 : (int)floor(log10(fabs(v))) + 1;
    int decimals = whole >= 15 ? 0 : 15 - whole < 6 ? 15 - whole : 6;
    snprintf(num, sizeof num, "%.*f", decimals, v);
    char *end = num + strlen(num);
    while (end > num && end[-1] == '0')
        *--end = '\0';
    if (end > num && end[-1] == '.')
        *--end = '\0';
    snprintf(buf, len, "%s%s", num, suffix);
}

static void format_node(const struct expr *e, enum expr_kind parent, struct sbuf *b)
{
    char v[64];

    if (e->kind == EXPR_CMP) {
        sput(b, metric_name(e->metric));
        sput(b, " ");
        sput(b, expr_op_name(e->op));
        sput(b, " ");
        if (e->ref == EXPR_REF_BASELINE) {
            format_plain(e->value, "x baseline", v, sizeof v);
        } else if (e->ref == EXPR_REF_SIGMA) {
            format_plain(e->value, " sigma", v, sizeof v);
        } else {
            metric_format(e->metric, e->value, v, sizeof v);
        }
        sput(b, v);
        return;
    }
    /* "or" under "and" needs parentheses; the parser makes chains left-deep */
    bool paren = e->kind == EXPR_OR && parent == EXPR_AND;
    if (paren)
        sput(b, "(");
    format_node(e->lhs, e->kind, b);
    sput(b, e->kind == EXPR_AND ? " and " : " or ");
    format_node(e->rhs, e->kind, b);
    if (paren)
        sput(b, ")");
}

size_t expr_format(const struct expr *e, char *buf, size_t len)
{
    struct sbuf b = {buf, len, 0};

    if (len > 0)
        buf[0] = '\0';
    if (e)
        format_node(e, e->kind, &b);
    return b.used;
}
