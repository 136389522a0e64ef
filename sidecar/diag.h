/* sidecar/diag.h - diagnostics gathered while reading a file: FILE:LINE:COL: message.
 *
 * Owns: the list and every message in it. Pure. Lines and columns are 1-based;
 * 0 means "no position" (the message is about the whole file). Callers add all
 * the errors they find so that users see every mistake at once. */
#ifndef STAKEOUT_DIAG_H
#define STAKEOUT_DIAG_H

#include <stddef.h>
#include <stdio.h>

#define DIAG_MAX 200 /* beyond this, one "too many errors" entry */

struct diag {
    unsigned line, col;
    char *msg;          /* owned */
};

struct diag_list {
    struct diag *items; /* owned array */
    size_t n, cap;
    size_t dropped;     /* errors past DIAG_MAX */
};

void diag_init(struct diag_list *d);
void diag_fini(struct diag_list *d);

void diag_add(struct diag_list *d, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sort by position (stable), so output follows the file. */
void diag_sort(struct diag_list *d);

/* Print every entry as "file:line:col: message\n" ("file: message" without a
 * position). */
void diag_print(const struct diag_list *d, const char *file, FILE *out);

/* The first entry whose message contains needle, or NULL. For tests and callers
 * that look for one kind of problem. */
const struct diag *diag_find(const struct diag_list *d, const char *needle);

#endif
