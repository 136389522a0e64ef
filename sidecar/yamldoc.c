/* sidecar/yamldoc.c - build a positioned tree from libyaml events; see yamldoc.h. */
#include "yamldoc.h"

#include "xalloc.h"

#include <errno.h>
#include <string.h>
#include <yaml.h>

struct builder {
    struct ynode *stack[YDOC_MAX_DEPTH + 1];
    size_t depth;
    size_t nodes;
    struct ynode *root;
    struct diag_list *diags;
    bool failed;
};

static void node_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->str);
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

int ydoc_parse(const char *buf, size_t len, struct ydoc **out, struct diag_list *diags)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct builder b = {.diags = diags};
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
            const yaml_mark_t *m = &parser.problem_mark;
            const char *problem = parser.problem ? parser.problem : "malformed YAML";
            if (parser.context)
                diag_add(diags, (unsigned)m->line + 1, (unsigned)m->column + 1, "%s (%s)",
                         problem, parser.context);
            else
                diag_add(diags, (unsigned)m->line + 1, (unsigned)m->column + 1, "%s", problem);
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

void ynode_scalar_pos(const struct ynode *n, size_t off, unsigned *line, unsigned *col)
{
    *line = n->line;
    *col = n->col;
    if (n->type != YNODE_SCALAR || n->style == YSTYLE_BLOCK || n->end_line != n->line ||
        off > n->len)
        return;
    *col = n->col + (unsigned)off + (n->style == YSTYLE_PLAIN ? 0 : 1);
}
