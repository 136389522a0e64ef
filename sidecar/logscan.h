/* sidecar/logscan.h - counts the log lines that match a target's error pattern.
 *
 * Owns: struct logscan (the compiled pattern, the errors-per-minute window,
 * the ring of the last LOGSCAN_KEEP matching lines with their context, the
 * joining of partial CRI lines) and, in each struct logscan_src, the held
 * partial line and the last lines read (the context of its next match).
 * Borrows: the chunks it is fed, only for the call.
 * Pure: no I/O, no clock; every chunk comes with the monotonic time (for the
 * window) and the wall time (to stamp the lines it kept) of its reading.
 *
 * Input is bytes, in chunks cut anywhere. A line ends at '\n'; a CR before
 * it is dropped. The last line of a chunk is held until its '\n' arrives.
 * Lines longer than LOGSCAN_LINE_MAX are cut there (only the first
 * LOGSCAN_LINE_MAX bytes are matched) and counted in `truncated`. NUL bytes
 * and invalid UTF-8 are harmless: invalid sequences simply match nothing.
 *
 * Memory is bounded whatever the input. What a scanner keeps between
 * chunks is its kept lines: at most LOGSCAN_KEPT_LINES of them, each cut
 * at its kept_max bytes (LOGSCAN_KEPT_MAX, or less as logscan_set_kept_max
 * says: logwatch shares one total among all logs), so under 300 KiB, and
 * per source LOGSCAN_CONTEXT recent lines cut the same way. While a line is
 * incomplete it also holds up to LOGSCAN_LINE_MAX + 1 bytes per source, and
 * for CRI up to LOGSCAN_LINE_MAX per stream being joined; a buffer that
 * grew past LOGSCAN_HELD_MAX for a long line is freed once that line is
 * done.
 *
 * Context never spans inputs: the lines before a match and the lines after
 * it all come from the source the match came from, and from the same run of
 * it (logscan_flush ends one). Lines of one file never show up around an
 * error in another, whatever the follower switches to (a rotated, replaced
 * or truncated file, a swapped symlink).
 *
 * Plain logs are matched over the whole complete-lines part of a chunk at
 * once (as grep does), not line by line; a match that reaches past its line
 * is checked again on the line alone, so the result is the same as matching
 * every line on its own. Patterns whose meaning could change when lines are
 * matched together (lookarounds, \A \Z \z \G \K, atomic groups, possessive
 * quantifiers, backtracking verbs, turning multiline off) are matched line
 * by line. `^` and `$` match at line ends, also before a lone CR.
 *
 * CRI logs (Kubernetes, `TIMESTAMP STREAM TAG MESSAGE`): the message is
 * matched, partial lines (tag P) are joined per stream until the F line,
 * lines that do not parse are counted as malformed and matched whole. */
#ifndef STAKEOUT_LOGSCAN_H
#define STAKEOUT_LOGSCAN_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGSCAN_LINE_MAX (64 * 1024) /* longer lines are cut and counted */
#define LOGSCAN_KEEP 10              /* matching lines kept for the alert (it shows 10) */
#define LOGSCAN_CONTEXT 3            /* lines kept before and after each */
#define LOGSCAN_KEPT_MAX 4096        /* bytes kept of each of those lines, at most */
#define LOGSCAN_WINDOW_S 60          /* the errors-per-minute window */
#define LOGSCAN_HELD_MAX 4096        /* larger partial-line buffers are freed after use */
/* lines a scanner keeps: each match with its context, and the recent lines
 * of its own source that become the next match's "before" (each other
 * source, a struct logscan_src, keeps LOGSCAN_CONTEXT of its own, cut the
 * same way) */
#define LOGSCAN_KEPT_LINES (LOGSCAN_KEEP * (1 + 2 * LOGSCAN_CONTEXT) + LOGSCAN_CONTEXT)

/* A kept line. text is owned by the scanner and valid until the next call
 * that feeds it or frees it. */
struct logscan_line {
    const char *text; /* NUL-terminated, at most the scanner's kept_max bytes */
    size_t len;
    bool cut;        /* the line was longer than what is kept */
    uint64_t lineno; /* 1 for the first line this scanner saw */
    int64_t wall_ns; /* when it was read; CRI: the line's own timestamp */
};

struct logscan_match {
    int64_t mono_ns; /* monotonic time of the chunk it came in */
    struct logscan_line line;
    struct logscan_line before[LOGSCAN_CONTEXT]; /* oldest first */
    size_t nbefore;
    struct logscan_line after[LOGSCAN_CONTEXT]; /* filled in as lines arrive */
    size_t nafter;
};

struct logscan_stats {
    uint64_t bytes;        /* bytes fed */
    uint64_t lines;        /* complete lines; CRI: after joining partial lines */
    uint64_t matched;      /* lines the pattern matched */
    uint64_t truncated;    /* lines longer than LOGSCAN_LINE_MAX */
    uint64_t malformed;    /* CRI lines that did not parse */
    uint64_t match_errors; /* lines PCRE2 gave up on (match limit): not counted */
};

struct logscan_ctx;

/* One input (one file): its partial last line, held between chunks, and its
 * context. Owned by the caller, fed to one scanner only; logscan_src_fini
 * frees what it holds. */
struct logscan_src {
    char *part; /* owned, at most LOGSCAN_LINE_MAX + 1 bytes used */
    size_t len, cap;
    bool over;               /* bytes past LOGSCAN_LINE_MAX + 1 were dropped */
    struct logscan_ctx *ctx; /* owned: its last lines; NULL until it is fed */
};

struct logscan;

/* Compile pattern (PCRE2 syntax, as in the rules file) for logs in format.
 * Returns 0 with *out set, or -EINVAL with PCRE2's message in err (may be
 * NULL). */
int logscan_new(enum log_format format, const char *pattern, struct logscan **out, char *err,
                size_t errlen) __attribute__((warn_unused_result));
void logscan_free(struct logscan *s);

void logscan_src_init(struct logscan_src *src);
void logscan_src_fini(struct logscan_src *src);

/* Keep at most bytes (1 to LOGSCAN_KEPT_MAX; clamped) of each line kept
 * from now on. Call before feeding: lines kept before keep their length. */
void logscan_set_kept_max(struct logscan *s, size_t bytes);
size_t logscan_kept_max(const struct logscan *s);

/* Bytes allocated for the kept lines and the recent lines of the
 * scanner's own source: at most LOGSCAN_KEPT_LINES times (kept_max + 1). */
size_t logscan_kept_bytes(const struct logscan *s);

/* Scan buf[0..n) read from src (NULL: the scanner's own source). */
void logscan_feed(struct logscan *s, struct logscan_src *src, const char *buf, size_t n,
                  int64_t mono_ns, int64_t wall_ns);

/* src has ended (its file was rotated away, deleted or truncated): a held
 * partial line is taken as complete rather than glued to what comes next,
 * and its context ends: what is fed through src from now on is a new input,
 * neither context of the matches before nor given them as context. */
void logscan_flush(struct logscan *s, struct logscan_src *src, int64_t mono_ns, int64_t wall_ns);

/* Matching lines in the last LOGSCAN_WINDOW_S seconds (one-second buckets)
 * before now_ns: the `errors` metric. O(LOGSCAN_WINDOW_S). */
uint64_t logscan_errors_per_min(const struct logscan *s, int64_t now_ns);

void logscan_stats(const struct logscan *s, struct logscan_stats *out);

/* The kept matches, at most LOGSCAN_KEEP: 0 is the oldest. */
size_t logscan_nmatches(const struct logscan *s);
const struct logscan_match *logscan_match_at(const struct logscan *s, size_t i);

/* Whether plain lines are matched a chunk at a time (false: line by line,
 * for CRI and for patterns that need it). */
bool logscan_bulk(const struct logscan *s);

#endif
