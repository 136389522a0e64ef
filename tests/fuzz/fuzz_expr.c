/* tests/fuzz/fuzz_expr.c - libFuzzer target: the `when` expression parser.
 * Invariants: errors point inside the input; an accepted expression prints to
 * a canonical form that parses again and prints the same way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct expr *e = NULL, *again = NULL;
    struct expr_error err;
    static char a[EXPR_MAX_LEN * 4], b[EXPR_MAX_LEN * 4];

    if (expr_parse((const char *)data, size, &e, &err) != 0) {
        if (e || err.msg[0] == '\0' || (err.off > size && size <= EXPR_MAX_LEN))
            abort();
        return 0;
    }
    size_t n = expr_format(e, a, sizeof a);
    if (n >= sizeof a)
        abort();
    if (expr_parse(a, n, &again, &err) != 0) {
        fprintf(stderr, "canonical form '%s' does not parse: %s\n", a, err.msg);
        abort();
    }
    if (expr_count(again) != expr_count(e))
        abort();
    expr_format(again, b, sizeof b);
    expr_free(again);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "canonical form '%s' prints as '%s' once parsed again\n", a, b);
        abort();
    }
    expr_free(e);
    return 0;
}
