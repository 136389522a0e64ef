/* tests/fuzz/fuzz_config.c - libFuzzer target: the whole rules-file parser
 * (libyaml tree, schema walker, expressions, regexes, ${VAR}) on any bytes.
 * Invariants: it returns, frees everything, and a failure always carries at
 * least one diagnostic; every diagnostic's position lies inside the input
 * (a line that exists, a column within that line or just past its end; a
 * line after the last only at the end of the text), or is 0:0 (the whole
 * file). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "SET") == 0 ? "value" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The length in bytes of a line break at p (YAML's: \r\n, \r, \n, and in
 * UTF-8 NEL, LS and PS, as libyaml counts lines), 0 when there is none. */
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

/* Whether line:col lies inside the text (1-based; a column counts bytes at
 * most, as libyaml counts characters): a line that exists, a column within
 * it or just past its end, or the line after the last at its start. */
static int inside(const uint8_t *text, size_t size, unsigned line, unsigned col)
{
    if (line == 0)
        return col == 0;
    const unsigned char *p = text, *end = text + size;
    unsigned at = 1;
    size_t len = 0;
    while (p < end && at < line) {
        size_t b = line_break(p, end);
        p += b ? b : 1;
        at += b != 0;
    }
    if (at < line)
        return 0;
    while (p < end && !line_break(p, end)) {
        p++;
        len++;
    }
    return col >= 1 && col <= len + 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag_list d;
    struct config *c = NULL;

    diag_init(&d);
    int rc = config_parse("fuzz.yaml", (const char *)data, size, fake_env, NULL, &c, &d);
    if (rc == 0) {
        if (!c || d.n != 0)
            abort();
    } else if (c || d.n == 0) {
        abort();
    }
    for (size_t i = 0; i < d.n; i++) {
        if (!inside(data, size, d.items[i].line, d.items[i].col)) {
            fprintf(stderr, "diagnostic at %u:%u outside the input: %s\n", d.items[i].line,
                    d.items[i].col, d.items[i].msg);
            abort();
        }
    }
    config_free(c);
    diag_fini(&d);
    return 0;
}
