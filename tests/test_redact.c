/* tests/test_redact.c - the redactor (sidecar/redact): each default pattern
 * on the text it is for, text it must leave alone, extra patterns from the
 * rules file, and failing closed. */
#include "redact.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

/* arrays, not pointers: Criterion hands parameters to a new process */
struct redact_case {
    char in[96];
    char want[96];
};

static void check(const struct redactor *r, const char *in, const char *want)
{
    char *out = redact(r, in);
    cr_assert_str_eq(out, want, "redact(\"%s\")", in);
    free(out);
}

ParameterizedTestParameters(redact, defaults_hide_the_secret_and_keep_the_rest)
{
    static struct redact_case cases[] = {
        /* Authorization headers and bearer tokens */
        {"Authorization: Bearer abc.DEF-123_x", "Authorization: Bearer [REDACTED]"},
        {"authorization=bearer abc", "authorization=bearer [REDACTED]"},
        {"Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: Basic [REDACTED]"},
        {"curl -H 'Authorization: token ghp_abc' x", "curl -H 'Authorization: token [REDACTED]' x"},
        {"sent Bearer Zm9vYmFy== to upstream", "sent Bearer [REDACTED] to upstream"},
        {"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl ok", "jwt [REDACTED] ok"},
        /* passwords in URLs */
        {"dsn=postgres://app:s3cr3t@db:5432/x", "dsn=postgres://app:[REDACTED]@db:5432/x"},
        {"GET https://bob:p%40ss@example.com/a", "GET https://bob:[REDACTED]@example.com/a"},
        /* key=value and key: value */
        {"password=hunter2 user=bob", "password=[REDACTED] user=bob"},
        {"DB_PASSWORD: hunter2", "DB_PASSWORD: [REDACTED]"},
        {"passwd=x1;next", "passwd=[REDACTED];next"},
        {"client_secret=abc&grant=x", "client_secret=[REDACTED]&grant=x"},
        {"X-Api-Key: k-123", "X-Api-Key: [REDACTED]"},
        {"apikey=k1 APIKEY=k2 api_key=k3",
         "apikey=[REDACTED] APIKEY=[REDACTED] api_key=[REDACTED]"},
        {"aws access_key=AKIA123 AccessKey: z", "aws access_key=[REDACTED] AccessKey: [REDACTED]"},
        {"{\"token\": \"two words\", \"n\": 1}", "{\"token\": \"[REDACTED]\", \"n\": 1}"},
        {"secret='a b' rest", "secret='[REDACTED]' rest"},
        {"refresh_token=\"\" empty", "refresh_token=\"\" empty"},
        /* command-line flags */
        {"/bin/app --password hunter2 --user bob", "/bin/app --password [REDACTED] --user bob"},
        {"app -api-key k --token=t", "app -api-key [REDACTED] --token=[REDACTED]"},
        /* several secrets, overlapping patterns */
        {"token=a password=b", "token=[REDACTED] password=[REDACTED]"},
        {"Authorization: Bearer token=abc", "Authorization: Bearer [REDACTED]"},
        /* nothing to hide */
        {"GET /api/users 200 in 12ms", "GET /api/users 200 in 12ms"},
        {"http://example.com:8080/path@v2", "http://example.com:8080/path@v2"},
        {"mail bob@example.com keyboard=qwerty", "mail bob@example.com keyboard=qwerty"},
        {"token expired, retrying", "token expired, retrying"},
        {"", ""},
    };
    return cr_make_param_array(struct redact_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct redact_case *c, redact, defaults_hide_the_secret_and_keep_the_rest)
{
    char err[256] = "";
    struct redactor *r = redactor_new(NULL, 0, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    check(r, c->in, c->want);
    redactor_free(r);
}

Test(redact, extra_pattern_hides_whole_match_or_its_secret_group)
{
    static const char *const extra[] = {"corp-[0-9]+", "pin (?<secret>[0-9]{4})"};
    char err[256] = "";
    struct redactor *r = redactor_new(extra, 2, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    check(r, "tenant corp-991 pin 1234 ok", "tenant [REDACTED] pin [REDACTED] ok");
    check(r, "password=x corp-1", "password=[REDACTED] [REDACTED]");
    redactor_free(r);
}

Test(redact, extra_pattern_that_does_not_compile_is_refused_with_offset)
{
    static const char *const extra[] = {"ok", "(unclosed"};
    char err[256] = "";
    struct redactor *r = redactor_new(extra, 2, err, sizeof err);
    cr_assert_null(r);
    cr_assert(strstr(err, "alert.redact pattern 2:"), "%s", err);
    cr_assert_null(strstr(err, "unclosed"), "the pattern is quoted: %s", err);
    cr_assert(strstr(err, "offset 9"), "%s", err);
    cr_assert(strstr(err, "missing closing parenthesis"), "%s", err);
}

Test(redact, null_redactor_copies)
{
    char *out = redact(NULL, "password=x");
    cr_assert_str_eq(out, "password=x");
    free(out);
}

Test(redact, invalid_utf8_is_matched_around_not_refused)
{
    struct redactor *r = redactor_new(NULL, 0, NULL, 0);
    check(r, "\xff\xfe password=abc \xc3", "\xff\xfe password=[REDACTED] \xc3");
    redactor_free(r);
}

Test(redact, pattern_that_cannot_finish_hides_everything)
{
    /* catastrophic backtracking: PCRE2 gives up at its match limit */
    static const char *const extra[] = {"^(\\w+\\s?)*$"};
    char line[200];
    struct redactor *r = redactor_new(extra, 1, NULL, 0);
    memset(line, 'a', sizeof line - 2);
    line[sizeof line - 2] = '!';
    line[sizeof line - 1] = '\0';
    cr_assert_not_null(r);
    check(r, line, REDACT_MARK);
    redactor_free(r);
}

Test(redact, defaults_are_listed)
{
    const char *const *pats;
    size_t n = redact_defaults(&pats);
    cr_assert_geq(n, 5);
    for (size_t i = 0; i < n; i++)
        cr_assert(strlen(pats[i]) > 0);
}
