/* tests/fuzz/fuzz_config.c - libFuzzer target: the whole rules-file parser
 * (libyaml tree, schema walker, expressions, regexes, ${VAR}) on any bytes.
 * Invariant: it returns, frees everything, and a failure always carries at
 * least one diagnostic with a position inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "SET") == 0 ? "value" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    config_free(c);
    diag_fini(&d);
    return 0;
}
