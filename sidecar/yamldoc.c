/* sidecar/yamldoc.c - build a positioned tree from libyaml events; see yamldoc.h. */
#include "yamldoc.h"

#include "xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

struct builder {
    struct ynode *stack[YDOC_MAX_DEPTH + 1];
    size_t depth;
    size_t nodes;
    struct ynode *root;
    struct diag_list *diags;
    bool failed;
    const char *buf;            /* the source, borrowed */
    size_t len;
    size_t cur_line, cur_off;   /* a known line start (0-based line, byte offset) */
};

static void node_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n->raw);
    free(n);
}

void ydoc_free(struct ydoc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc);
}

static struct ynode *node_new(enum ynode_type type, const yaml_event_t *ev)
{
    struct ynode *n = xcalloc(1, sizeof *n);
    n->type = type;
    n->line = (unsigned)ev->start_mark.line + 1; /* libyaml marks are 0-based */
    n->col = (unsigned)ev->start_mark.column + 1;
    n->end_line = (unsigned)ev->end_mark.line + 1;
    return n;
}

static void add_kid(struct ynode *parent, struct ynode *kid)
{
    /* grow by doubling; nkids is the count, capacity is the next power of two */
    size_t n = parent->nkids;
    if ((n & (n - 1)) == 0)
        parent->kids = xreallocarray(parent->kids, n ? 2 * n : 1, sizeof *parent->kids);
    parent->kids[parent->nkids++] = kid;
}

static bool scalar_eq(const struct ynode *a, const struct ynode *b)
{
    return a->type == YNODE_SCALAR && b->type == YNODE_SCALAR && a->len == b->len &&
           memcmp(a->str, b->str, a->len) == 0;
}

/* Attach a finished node to its parent (or make it the root). */
static void attach(struct builder *b, struct ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct ynode *parent = b->stack[b->depth - 1];
    if (parent->type == YNODE_MAP && parent->nkids % 2 == 0) {
        /* n is a key: complain about a duplicate now, while both are known */
        for (size_t i = 0; i < parent->nkids; i += 2) {
            if (scalar_eq(parent->kids[i], n)) {
                diag_add(b->diags, n->line, n->col, "duplicate key '%s' (first at line %u)",
                         n->str, parent->kids[i]->line);
                break;
            }
        }
        if (n->type != YNODE_SCALAR)
            diag_add(b->diags, n->line, n->col, "mapping keys must be plain strings");
    }
    add_kid(parent, n);
}

/* Byte offset in the source of a libyaml mark (0-based line; column in
 * characters, not bytes), or SIZE_MAX when it cannot be found. Marks mostly
 * arrive in file order, so the cursor keeps the whole walk linear. */
static size_t mark_offset(struct builder *b, size_t line, size_t column)
{
    if (line < b->cur_line) {
        b->cur_line = 0;
        b->cur_off = 0;
    }
    while (b->cur_line < line) {
        const char *nl = memchr(b->buf + b->cur_off, '\n', b->len - b->cur_off);
        if (!nl)
            return SIZE_MAX;
        b->cur_off = (size_t)(nl - b->buf) + 1;
        b->cur_line++;
    }
    size_t i = b->cur_off;
    for (size_t c = 0; c < column; c++) {
        if (i >= b->len || b->buf[i] == '\n')
            return SIZE_MAX;
        i++;
        while (i < b->len && ((unsigned char)b->buf[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

/* Keep the source text of a one-line quoted scalar, so that an offset in its
 * value can later be mapped to a column through escapes ("\\d", 'it''s'). */
static void keep_raw(struct builder *b, struct ynode *n, const yaml_event_t *ev)
{
    char quote = n->style == YSTYLE_SINGLE ? '\'' : '"';
    size_t start = mark_offset(b, ev->start_mark.line, ev->start_mark.column);
    size_t end = mark_offset(b, ev->end_mark.line, ev->end_mark.column);

    if (start == SIZE_MAX || end == SIZE_MAX || end < start + 2 || b->buf[start] != quote ||
        b->buf[end - 1] != quote)
        return; /* positions then fall back to the node's start */
    n->raw = xstrndup(b->buf + start + 1, end - start - 2);
}

static void fail(struct builder *b, const yaml_event_t *ev, const char *msg)
{
    if (!b->failed)
        diag_add(b->diags, (unsigned)ev->start_mark.line + 1,
                 (unsigned)ev->start_mark.column + 1, "%s", msg);
    b->failed = true;
}

static void on_event(struct builder *b, const yaml_event_t *ev, int *docs)
{
    struct ynode *n;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1)
            fail(b, ev, "a rules file holds one YAML document; found a second '---'");
        break;
    case YAML_ALIAS_EVENT:
        fail(b, ev, "YAML aliases (*name) are not supported in rules files");
        break;
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor) {
            fail(b, ev, "YAML anchors (&name) are not supported in rules files");
            break;
        }
        n = node_new(YNODE_SCALAR, ev);
        n->len = ev->data.scalar.length;
        n->str = xstrndup((const char *)ev->data.scalar.value, n->len);
        switch (ev->data.scalar.style) {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE:
            n->style = YSTYLE_SINGLE;
            break;
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
            n->style = YSTYLE_DOUBLE;
            break;
        case YAML_LITERAL_SCALAR_STYLE:
        case YAML_FOLDED_SCALAR_STYLE:
            n->style = YSTYLE_BLOCK;
            break;
        default:
            n->style = YSTYLE_PLAIN;
        }
        if ((n->style == YSTYLE_SINGLE || n->style == YSTYLE_DOUBLE) && n->line == n->end_line)
            keep_raw(b, n, ev);
        b->nodes++;
        attach(b, n);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        const yaml_char_t *anchor =
            seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
        if (anchor) {
            fail(b, ev, "YAML anchors (&name) are not supported in rules files");
            break;
        }
        if (b->depth >= YDOC_MAX_DEPTH) {
            fail(b, ev, "nesting is too deep");
            break;
        }
        n = node_new(seq ? YNODE_SEQ : YNODE_MAP, ev);
        b->nodes++;
        attach(b, n);
        b->stack[b->depth++] = n;
        break;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0) {
            b->stack[b->depth - 1]->end_line = (unsigned)ev->end_mark.line + 1;
            b->depth--;
        }
        break;
    default:
        break;
    }
    if (b->nodes > YDOC_MAX_NODES)
        fail(b, ev, "document is too large");
}

/* The length of a YAML line break at p (\r\n, \r, \n, and in UTF-8 NEL, LS
 * and PS, as libyaml counts lines), 0 when there is none. */
static size_t line_break(const unsigned char *p, const unsigned char *end)
{
    if (*p == '\r')
        return p + 1 < end && p[1] == '\n' ? 2 : 1;
    if (*p == '\n')
        return 1;
    if (p + 1 < end && p[0] == 0xc2 && p[1] == 0x85)
        return 2;
    if (p + 2 < end && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
        return 3;
    return 0;
}

/* The position just past the last character of the text (1-based). */
static void end_position(const struct builder *b, unsigned *line, unsigned *col)
{
    const unsigned char *p = (const unsigned char *)b->buf, *end = p + b->len;
    unsigned l = 1, c = 1;
    while (p < end) {
        size_t n = line_break(p, end);
        if (n) {
            l++;
            c = 1;
            p += n;
            continue;
        }
        c += (*p & 0xC0) != 0x80; /* characters, as libyaml counts */
        p++;
    }
    *line = l;
    *col = c;
}

/* libyaml's message at libyaml's position. The context mark says where the
 * construct being read began (an unclosed quote or '{' is found missing only
 * at the end of the file), and a tab where a token should start is named. */
static void report_yaml_error(struct builder *b, const yaml_parser_t *parser)
{
    const yaml_mark_t *m = &parser->problem_mark;
    const yaml_mark_t *cm = &parser->context_mark;
    const char *problem = parser->problem ? parser->problem : "malformed YAML";
    unsigned line = (unsigned)m->line + 1, col = (unsigned)m->column + 1;
    size_t at = mark_offset(b, m->line, m->column);
    /* at the end of a text whose last line has no break, libyaml may name a
     * line after it: say the end of the text instead */
    unsigned end_line, end_col;
    end_position(b, &end_line, &end_col);
    if (line > end_line || (line == end_line && col > end_col)) {
        line = end_line;
        col = end_col;
    }

    if (at < b->len && b->buf[at] == '\t' && strstr(problem, "cannot start any token"))
        diag_add(b->diags, line, col, "found a tab character; YAML indentation must use spaces");
    else if (parser->context && (cm->line != m->line || cm->column != m->column))
        diag_add(b->diags, line, col, "%s (%s that starts at line %u column %u)", problem,
                 parser->context, (unsigned)cm->line + 1, (unsigned)cm->column + 1);
    else if (parser->context)
        diag_add(b->diags, line, col, "%s (%s)", problem, parser->context);
    else
        diag_add(b->diags, line, col, "%s", problem);
}

int ydoc_parse(const char *buf, size_t len, struct ydoc **out, struct diag_list *diags)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct builder b = {.diags = diags, .buf = buf, .len = len};
    size_t errors_before = diags->n;
    int docs = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser)) {
        diag_add(diags, 0, 0, "cannot initialise the YAML parser");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done && !b.failed) {
        if (!yaml_parser_parse(&parser, &ev)) {
            report_yaml_error(&b, &parser);
            b.failed = true;
            break;
        }
        on_event(&b, &ev, &docs);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);

    if (b.failed || diags->n > errors_before) {
        node_free(b.root);
        return -EINVAL;
    }
    struct ydoc *doc = xcalloc(1, sizeof *doc);
    doc->root = b.root;
    *out = doc;
    return 0;
}

size_t ynode_map_size(const struct ynode *map)
{
    return map && map->type == YNODE_MAP ? map->nkids / 2 : 0;
}

const struct ynode *ynode_map_get(const struct ynode *map, const char *key)
{
    size_t klen = strlen(key);

    if (!map || map->type != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct ynode *k = map->kids[i];
        if (k->type == YNODE_SCALAR && k->len == klen && memcmp(k->str, key, klen) == 0)
            return map->kids[i + 1];
    }
    return NULL;
}

bool ynode_is_null(const struct ynode *n)
{
    if (!n)
        return true;
    if (n->type != YNODE_SCALAR || n->style != YSTYLE_PLAIN)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *ynode_kind(const struct ynode *n)
{
    if (ynode_is_null(n))
        return "nothing (null)";
    switch (n->type) {
    case YNODE_MAP:
        return "a mapping";
    case YNODE_SEQ:
        return "a list";
    case YNODE_SCALAR:
        return "a scalar";
    }
    return "?";
}

/* One source character, escape or '' of a quoted scalar's raw text. */
struct quoted_step {
    size_t src;    /* bytes of raw text */
    unsigned cols; /* columns (characters) of raw text */
    size_t value;  /* bytes it decodes to */
};

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_bytes(unsigned long cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* s points into NUL-terminated raw text, at a non-NUL byte. Escapes follow
 * libyaml's scanner: \xXX, \uXXXX and \UXXXXXXXX decode to UTF-8, \N and \_
 * to two bytes, \L and \P to three, the others to one. */
static struct quoted_step quoted_step(const char *s, enum yscalar_style style)
{
    struct quoted_step st = {1, 1, 1};

    if (style == YSTYLE_SINGLE && s[0] == '\'' && s[1] == '\'') {
        st.src = st.cols = 2;
    } else if (style == YSTYLE_DOUBLE && s[0] == '\\' && s[1] != '\0') {
        size_t hex = s[1] == 'x' ? 2 : s[1] == 'u' ? 4 : s[1] == 'U' ? 8 : 0;
        unsigned long cp = 0;
        size_t k;
        for (k = 0; k < hex && hex_digit(s[2 + k]) >= 0; k++)
            cp = cp * 16 + (unsigned long)hex_digit(s[2 + k]);
        st.src = 2 + k;
        st.cols = (unsigned)st.src;
        if (hex)
            st.value = utf8_bytes(cp);
        else if (s[1] == 'N' || s[1] == '_')
            st.value = 2;
        else if (s[1] == 'L' || s[1] == 'P')
            st.value = 3;
    } else {
        /* one UTF-8 character: several bytes, one column */
        while (s[st.src] != '\0' && ((unsigned char)s[st.src] & 0xC0) == 0x80)
            st.src++;
        st.value = st.src;
    }
    return st;
}

void ynode_scalar_pos(const struct ynode *n, size_t off, unsigned *line, unsigned *col)
{
    unsigned cols = 0;

    *line = n->line;
    *col = n->col;
    if (n->type != YNODE_SCALAR || n->style == YSTYLE_BLOCK || n->end_line != n->line ||
        off > n->len)
        return;
    if (n->style == YSTYLE_PLAIN) {
        /* a one-line plain scalar is its own source text */
        for (size_t i = 0; i < off; i++)
            cols += ((unsigned char)n->str[i] & 0xC0) != 0x80;
        *col = n->col + cols;
        return;
    }
    if (!n->raw)
        return;
    size_t i = 0, v = 0;
    while (n->raw[i] != '\0') {
        struct quoted_step st = quoted_step(n->raw + i, n->style);
        if (v + st.value > off)
            break;
        i += st.src;
        v += st.value;
        cols += st.cols;
    }
    *col = n->col + 1 + cols; /* + 1: the opening quote */
}
