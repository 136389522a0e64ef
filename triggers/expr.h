/* triggers/expr.h - the `when` expression language of rules files.
 *
 *   expr       := and_expr ( "or" and_expr )*
 *   and_expr   := primary ( "and" primary )*
 *   primary    := "(" expr ")" | METRIC OP value
 *   OP         := ">" | ">=" | "<" | "<="
 *   value      := QUANTITY            absolute, in a unit that fits the metric
 *               | NUMBER "x baseline" times the rolling median of the metric
 *               | NUMBER "sigma"      above the rolling mean by that many std devs
 *
 * Owns the parsed tree (struct expr, freed with expr_free). Pure: no I/O. */
#ifndef STAKEOUT_EXPR_H
#define STAKEOUT_EXPR_H

#include "metric.h"

#include <stdbool.h>
#include <stddef.h>

#define EXPR_MAX_LEN 4096
#define EXPR_MAX_DEPTH 32
#define EXPR_MAX_CMP 64
#define EXPR_MIN_FACTOR 0.001 /* smallest "Nx baseline" */
#define EXPR_MAX_BYTES 562949953421312.0 /* 512TiB, the limit of sizes */
#define EXPR_MAX_NUMBER 1e15 /* larger literals or values (in the metric's canonical
                               * unit) are mistakes, and would not print back */

enum expr_kind { EXPR_CMP, EXPR_AND, EXPR_OR };
enum expr_op { EXPR_OP_GT, EXPR_OP_GE, EXPR_OP_LT, EXPR_OP_LE };
enum expr_ref {
    EXPR_REF_ABS,      /* value in the metric's canonical unit */
    EXPR_REF_BASELINE, /* value is a factor of the rolling median */
    EXPR_REF_SIGMA,    /* value is a number of standard deviations above the mean */
};

/* One node. AND/OR own lhs and rhs; CMP nodes are leaves. */
struct expr {
    enum expr_kind kind;
    struct expr *lhs, *rhs;
    enum metric metric;
    enum expr_op op;
    enum expr_ref ref;
    double value;
    unsigned index;    /* CMP: position among the comparisons, left to right */
    size_t off, len;   /* CMP: span of the comparison in the source text */
};

struct expr_error {
    size_t off;        /* offset in the source of the offending token */
    char msg[200];
};

/* Parse src[0..n). On success *out owns a new tree and 0 is returned; on
 * failure returns -EINVAL and fills *err (never NULL). */
int expr_parse(const char *src, size_t n, struct expr **out, struct expr_error *err)
    __attribute__((warn_unused_result));

/* Free a tree; NULL does nothing. */
void expr_free(struct expr *e);

/* Number of comparisons in the tree. */
unsigned expr_count(const struct expr *e);

/* The comparison with the given index, or NULL. */
const struct expr *expr_cmp_at(const struct expr *e, unsigned index);

/* Whether a comparison on metric m appears in the tree. */
bool expr_uses(const struct expr *e, enum metric m);

/* Whether the comparison holds for an observed value v and, for relative
 * references, the reference statistics (median for baseline; mean and std
 * for sigma). A NaN operand makes it false. */
bool expr_cmp_holds(const struct expr *cmp, double v, double median, double mean, double std);

/* The threshold a comparison tests against, in the metric's unit. */
double expr_cmp_threshold(const struct expr *cmp, double median, double mean, double std);

/* Canonical text of the tree ("cpu > 80% and rss > 256MiB"). Returns the
 * length it needed; always NUL-terminates when len > 0. */
size_t expr_format(const struct expr *e, char *buf, size_t len);

/* Symbol of an operator (">="). */
const char *expr_op_name(enum expr_op op);

#endif
