/* sidecar/redact.h - hide secrets in text that goes into alerts.
 *
 * Owns: the compiled patterns. Pure. Every match of a pattern is replaced by
 * "[REDACTED]" (or, when the pattern has a capture group named "secret",
 * only that group), so a bearer token, a password in a URL or a key=value
 * secret never leaves the host in an alert. Defaults cover those three; the
 * rules file may add its own (alert.redact). */
#ifndef STAKEOUT_REDACT_H
#define STAKEOUT_REDACT_H

#include <stddef.h>

#define REDACT_MARK "[REDACTED]"

struct redactor;

/* Compile the defaults plus n extra patterns. Returns NULL with a message
 * in err when an extra pattern does not compile; the message gives its
 * number (1 for extra[0]) and never its text. */
struct redactor *redactor_new(const char *const *extra, size_t n, char *err, size_t errlen);
void redactor_free(struct redactor *r);

/* A new string: text with every secret replaced. NULL redactor: a copy.
 * Matches of all patterns are found in the original text and merged, so
 * patterns never see each other's marks. When a pattern cannot finish
 * (PCRE2's match limit), the whole text becomes REDACT_MARK: fail closed.
 * Text need not be valid UTF-8. */
char *redact(const struct redactor *r, const char *text);

/* The default patterns (PCRE2, compiled with PCRE2_DUPNAMES): Authorization
 * headers, bearer tokens and bare JWTs, user:password@ in URLs, key=value and
 * key: value (bare or quoted) and --flag value where the key contains
 * password, passwd, secret, token, api_key or access_key in any case and
 * spelling (api-key, apikey). Returns how many; *out points at them. */
size_t redact_defaults(const char *const **out);

#endif
