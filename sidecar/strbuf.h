/* sidecar/strbuf.h - a growable text buffer.
 *
 * Owns: its bytes (strbuf_fini, or strbuf_take to keep them). Pure. Always
 * NUL-terminated; allocation failure aborts (xalloc). */
#ifndef STAKEOUT_STRBUF_H
#define STAKEOUT_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *buf;
    size_t len, cap;
};

void strbuf_init(struct strbuf *b);
void strbuf_fini(struct strbuf *b);
void strbuf_add(struct strbuf *b, const char *s, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The bytes, now the caller's to free; the buffer is left empty. */
char *strbuf_take(struct strbuf *b);

#endif
