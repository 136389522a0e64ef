/* sidecar/promtext.c - Prometheus text format; see promtext.h. */
#include "promtext.h"

#include <math.h>
#include <stdio.h>

void promtext_family(struct strbuf *b, const char *name, const char *help, enum promtext_type t)
{
    static const char *types[] = {"gauge", "counter", "untyped"};
    strbuf_printf(b, "# HELP %s ", name);
    /* HELP text escapes backslash and newline */
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            strbuf_puts(b, "\\\\");
        else if (*p == '\n')
            strbuf_puts(b, "\\n");
        else
            strbuf_add(b, p, 1);
    }
    strbuf_printf(b, "\n# TYPE %s %s\n", name, types[t]);
}

void promtext_sample(struct strbuf *b, const char *name, const char *const *labels, double value)
{
    strbuf_puts(b, name);
    if (labels && labels[0]) {
        strbuf_puts(b, "{");
        for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
            strbuf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            for (const char *p = labels[i + 1]; *p; p++) {
                if (*p == '\\')
                    strbuf_puts(b, "\\\\");
                else if (*p == '"')
                    strbuf_puts(b, "\\\"");
                else if (*p == '\n')
                    strbuf_puts(b, "\\n");
                else
                    strbuf_add(b, p, 1);
            }
            strbuf_puts(b, "\"");
        }
        strbuf_puts(b, "}");
    }
    if (isnan(value))
        strbuf_puts(b, " NaN\n");
    else if (isinf(value))
        strbuf_puts(b, value > 0 ? " +Inf\n" : " -Inf\n");
    else if (value == (double)(long long)value && fabs(value) < 1e15)
        strbuf_printf(b, " %lld\n", (long long)value);
    else
        strbuf_printf(b, " %.17g\n", value);
}
