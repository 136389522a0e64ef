/* sidecar/diag.c - diagnostics list; see diag.h. */
#include "diag.h"

#include "xalloc.h"

#include <stdarg.h>
#include <string.h>

void diag_init(struct diag_list *d)
{
    memset(d, 0, sizeof *d);
}

void diag_fini(struct diag_list *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].msg);
    free(d->items);
    memset(d, 0, sizeof *d);
}

void diag_add(struct diag_list *d, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;

    if (d->n >= DIAG_MAX) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 8;
        d->items = xreallocarray(d->items, d->cap, sizeof *d->items);
    }
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = xmalloc(len > 0 ? (size_t)len + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(msg, len > 0 ? (size_t)len + 1 : 1, fmt, ap);
    va_end(ap);
    d->items[d->n++] = (struct diag){line, col, msg};
}

void diag_sort(struct diag_list *d)
{
    /* insertion sort: stable, and lists are short */
    for (size_t i = 1; i < d->n; i++) {
        struct diag x = d->items[i];
        size_t j = i;
        while (j > 0 && (d->items[j - 1].line > x.line ||
                         (d->items[j - 1].line == x.line && d->items[j - 1].col > x.col))) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = x;
    }
}

void diag_print(const struct diag_list *d, const char *file, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct diag *e = &d->items[i];
        if (e->line)
            fprintf(out, "%s:%u:%u: %s\n", file, e->line, e->col, e->msg);
        else
            fprintf(out, "%s: %s\n", file, e->msg);
    }
    if (d->dropped)
        fprintf(out, "%s: %zu more errors not shown\n", file, d->dropped);
}

const struct diag *diag_find(const struct diag_list *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strstr(d->items[i].msg, needle))
            return &d->items[i];
    }
    return NULL;
}
