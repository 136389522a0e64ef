/* triggers/units.h - the quantities of rules files: durations, sizes and rates.
 *
 * Owns nothing and allocates nothing. Pure: every function works on a
 * (pointer, length) span so the expression lexer can hand it a token in place.
 *
 * Durations follow Prometheus: integer parts in descending units, "1h30m",
 * "250ms", "0"; units ms s m h d. Sizes: a decimal number with B, KiB, MiB,
 * GiB (binary) or KB, MB, GB (decimal). Rates: "/s" or "/min" after a count
 * or a size. */
#ifndef STAKEOUT_UNITS_H
#define STAKEOUT_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define UNITS_NS_PER_MS 1000000LL
#define UNITS_NS_PER_S 1000000000LL

/* Parse a duration such as "1h30m" into nanoseconds. Returns 0, or -EINVAL with
 * a message in err (may be NULL). *off_out, when not NULL, receives the offset
 * of the offending character on failure. */
int units_parse_duration(const char *s, size_t n, int64_t *out_ns, size_t *off_out, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* Parse a leading decimal number ("12", "0.5", "1e3" is not accepted). Returns
 * the number of characters consumed, 0 if there is no number. */
size_t units_parse_number(const char *s, size_t n, double *out);

/* Factor of a size unit in bytes ("MiB" -> 1048576), or 0 when unknown. */
double units_size_factor(const char *u, size_t n);

/* Factor that turns "per <unit>" into "per minute" ("/s" -> 60), or 0 when
 * unknown. The leading '/' is part of the unit. */
double units_per_minute_factor(const char *u, size_t n);

/* Seconds in a single duration unit ("m" -> 60), or 0 when unknown. */
double units_duration_factor(const char *u, size_t n);

/* Format a duration in the same grammar the parser accepts ("1h30m", "250ms",
 * "0s"). Always NUL-terminates when len > 0. */
void units_format_duration(int64_t ns, char *buf, size_t len);

/* Format a byte count with a binary unit ("256MiB", "1.5GiB", "17B"). */
void units_format_size(double bytes, char *buf, size_t len);

#endif
