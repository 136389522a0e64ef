/* sidecar/yamldoc.h - a YAML document as a small tree that keeps positions.
 *
 * Owns: the whole tree (every node and string), freed by ydoc_free. Pure: it
 * parses a buffer with libyaml; reading the file is the caller's business.
 * Every node knows its 1-based line and column so that later checks can name
 * the place of a mistake. Aliases and anchors are refused (no billion-laughs),
 * as is more than one document; duplicate mapping keys are reported. */
#ifndef STAKEOUT_YAMLDOC_H
#define STAKEOUT_YAMLDOC_H

#include "diag.h"

#include <stdbool.h>
#include <stddef.h>

#define YDOC_MAX_DEPTH 64
#define YDOC_MAX_NODES 200000

enum ynode_type { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

enum yscalar_style { YSTYLE_PLAIN, YSTYLE_SINGLE, YSTYLE_DOUBLE, YSTYLE_BLOCK };

struct ynode {
    enum ynode_type type;
    unsigned line, col;         /* start, 1-based */
    unsigned end_line;          /* line of the end mark */
    /* YNODE_SCALAR */
    char *str;                  /* owned, NUL-terminated */
    size_t len;
    enum yscalar_style style;
    char *raw;                  /* owned, may be NULL: the source text between the quotes of
                                 * a single-line quoted scalar, escapes not yet decoded */
    /* YNODE_MAP: kids[2i] is a key, kids[2i+1] its value; YNODE_SEQ: items */
    struct ynode **kids;        /* owned */
    size_t nkids;
};

struct ydoc {
    struct ynode *root;         /* NULL for an empty document */
};

/* Parse buf[0..len). Returns 0 with *out set, or -EINVAL with the reasons in
 * diags (libyaml's message and position for malformed YAML). */
int ydoc_parse(const char *buf, size_t len, struct ydoc **out, struct diag_list *diags)
    __attribute__((warn_unused_result));

void ydoc_free(struct ydoc *doc);

/* Number of pairs in a mapping (0 for other nodes). */
size_t ynode_map_size(const struct ynode *map);

/* Value of key in a mapping, or NULL. */
const struct ynode *ynode_map_get(const struct ynode *map, const char *key);

/* Whether a node is a YAML null (~, null, or nothing). */
bool ynode_is_null(const struct ynode *n);

/* "a mapping", "a list", "a string", "null": for messages. */
const char *ynode_kind(const struct ynode *n);

/* Position of the character at byte offset off of a scalar's value, when it can
 * be known (single-line plain or quoted scalars, through escapes such as \\ or
 * ''); otherwise the node's start. Columns count characters, as libyaml does. */
void ynode_scalar_pos(const struct ynode *n, size_t off, unsigned *line, unsigned *col);

#endif
