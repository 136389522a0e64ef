/* sidecar/envsubst.c - ${VAR} expansion; see envsubst.h. */
#include "envsubst.h"

#include "xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVSUBST_MAX_NAME 128

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? 2 * b->cap : 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

const char *envsubst_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

int envsubst(const char *in, size_t n, envsubst_lookup_fn lookup, void *ctx, char **out,
             size_t *err_off, char *err, size_t errlen)
{
    struct buf b = {0};
    size_t i = 0;
    size_t bad = 0;

    put(&b, "", 0);
    while (i < n) {
        const char *dollar = memchr(in + i, '$', n - i);
        if (!dollar) {
            put(&b, in + i, n - i);
            break;
        }
        size_t d = (size_t)(dollar - in);
        put(&b, in + i, d - i);
        if (d + 1 < n && in[d + 1] == '$') {
            put(&b, "$", 1);
            i = d + 2;
            continue;
        }
        if (d + 1 >= n || in[d + 1] != '{') {
            put(&b, "$", 1);
            i = d + 1;
            continue;
        }
        /* ${NAME} or ${NAME:-default} */
        size_t s = d + 2, e = s;
        bad = d;
        while (e < n && name_char(in[e]))
            e++;
        if (e == s || !name_start(in[s])) {
            snprintf(err, errlen, "'${' must be followed by a variable name, such as ${APP_VERSION}");
            goto fail;
        }
        if (e - s > ENVSUBST_MAX_NAME) {
            snprintf(err, errlen, "variable name is too long");
            goto fail;
        }
        char name[ENVSUBST_MAX_NAME + 1];
        memcpy(name, in + s, e - s);
        name[e - s] = '\0';
        const char *val = lookup(name, ctx);
        if (e + 1 < n && in[e] == ':' && in[e + 1] == '-') {
            const char *close = memchr(in + e + 2, '}', n - (e + 2));
            if (!close) {
                snprintf(err, errlen, "unterminated '${%s:-' (missing '}')", name);
                goto fail;
            }
            if (val && *val)
                put(&b, val, strlen(val));
            else
                put(&b, in + e + 2, (size_t)(close - (in + e + 2)));
            i = (size_t)(close - in) + 1;
            continue;
        }
        if (e >= n || in[e] != '}') {
            if (e < n)
                snprintf(err, errlen,
                         "unexpected '%c' in '${%s'; write ${NAME} or ${NAME:-default}", in[e],
                         name);
            else
                snprintf(err, errlen, "unterminated '${%s' (missing '}')", name);
            goto fail;
        }
        if (!val) {
            snprintf(err, errlen,
                     "environment variable %s is not set (write ${%s:-default} for a default)",
                     name, name);
            goto fail;
        }
        put(&b, val, strlen(val));
        i = e + 1;
    }
    *out = b.p;
    return 0;
fail:
    free(b.p);
    if (err_off)
        *err_off = bad;
    return -EINVAL;
}
