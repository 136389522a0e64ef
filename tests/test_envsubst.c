/* tests/test_envsubst.c - ${VAR} expansion (sidecar/envsubst). */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "envsubst.h"

/* A fixed environment: APP_VERSION=1.2.3, EMPTY="" and nothing else. */
static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "APP_VERSION") == 0)
        return "1.2.3";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    return NULL;
}

static char *expand_ok(const char *in)
{
    char *out = NULL;
    char err[160] = "";
    size_t off = 0;
    int rc = envsubst(in, strlen(in), fake_env, NULL, &out, &off, err, sizeof err);
    cr_assert_eq(rc, 0, "'%s' failed: %s", in, err);
    return out;
}

static void expect_fail(const char *in, size_t want_off, const char *want_msg)
{
    char *out = NULL;
    char err[160] = "";
    size_t off = 999;
    int rc = envsubst(in, strlen(in), fake_env, NULL, &out, &off, err, sizeof err);
    cr_assert_neq(rc, 0, "'%s' expanded to '%s'", in, out ? out : "");
    cr_assert_null(out);
    cr_assert_eq(off, want_off, "'%s': offset %zu, want %zu", in, off, want_off);
    cr_assert(strstr(err, want_msg), "'%s': '%s' lacks '%s'", in, err, want_msg);
}

Test(envsubst, set_variable_is_replaced)
{
    char *s = expand_ok("v${APP_VERSION}-x");
    cr_assert_str_eq(s, "v1.2.3-x");
    free(s);
}

Test(envsubst, default_used_when_unset_or_empty)
{
    char *a = expand_ok("${NOPE:-fallback}");
    char *b = expand_ok("${EMPTY:-fallback}");
    char *c = expand_ok("${APP_VERSION:-fallback}");
    char *d = expand_ok("${NOPE:-}");
    cr_assert_str_eq(a, "fallback");
    cr_assert_str_eq(b, "fallback");
    cr_assert_str_eq(c, "1.2.3");
    cr_assert_str_eq(d, "");
    free(a);
    free(b);
    free(c);
    free(d);
}

Test(envsubst, dollar_without_brace_is_literal)
{
    char *s = expand_ok("^my-api( |$)$x");
    cr_assert_str_eq(s, "^my-api( |$)$x");
    free(s);
    s = expand_ok("cost: $$5 and $");
    cr_assert_str_eq(s, "cost: $5 and $");
    free(s);
}

Test(envsubst, unset_variable_without_default_fails_at_dollar)
{
    expect_fail("abc ${MISSING} def", 4, "MISSING is not set");
}

Test(envsubst, bad_syntax_fails_with_reason)
{
    expect_fail("${}", 0, "variable name");
    expect_fail("x${1A}", 1, "variable name");
    expect_fail("${APP_VERSION", 0, "unterminated");
    expect_fail("${APP-VERSION}", 0, "unexpected '-'");
    expect_fail("${NOPE:-abc", 0, "unterminated");
}

Test(envsubst, no_dollar_copies_input)
{
    char *s = expand_ok("");
    cr_assert_str_eq(s, "");
    free(s);
    s = expand_ok("plain text");
    cr_assert_str_eq(s, "plain text");
    free(s);
}
