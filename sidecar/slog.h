/* sidecar/slog.h - stakeout's own log: one line per event on stderr.
 *
 * Owns: the process-wide log settings (level, format, sink). logfmt by
 * default (ts=... level=... msg=... key=value ...), or one JSON object per
 * line. Values are quoted and escaped as each format needs, so a key/value
 * pair never breaks a line. Thread-safe: one write(2) per line. */
#ifndef STAKEOUT_SLOG_H
#define STAKEOUT_SLOG_H

#include <stdbool.h>

enum slog_level { SLOG_DEBUG, SLOG_INFO, SLOG_WARN, SLOG_ERROR };
enum slog_format { SLOG_LOGFMT, SLOG_JSON };

/* Set where and how to log (default: stderr, info, logfmt). fd < 0 keeps
 * the current sink. */
void slog_setup(enum slog_level level, enum slog_format format, int fd);

/* Parse "debug|info|warn|error" / "logfmt|json"; false when unknown. */
bool slog_parse_level(const char *s, enum slog_level *out);
bool slog_parse_format(const char *s, enum slog_format *out);

bool slog_enabled(enum slog_level level);

/* Log msg with key/value string pairs, terminated by NULL:
 *   slog(SLOG_WARN, "cannot count fds", "pid", "1234", "error", strerror(e), NULL); */
void slog(enum slog_level level, const char *msg, ...) __attribute__((sentinel));

/* Like slog, but msg is a printf format and no key/value pairs follow. */
void slogf(enum slog_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
