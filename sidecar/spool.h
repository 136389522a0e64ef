/* sidecar/spool.h - alert bundles on disk, and one delivery record per webhook.
 *
 * Owns: struct spool, an index of the bundles under its directory (id,
 * creation time, bytes, the delivery record of each hook), the directory's
 * fd and its lock (spool_free releases them). Borrows nothing. Does I/O on
 * its directory only and never reads the clock: callers pass wall time.
 * Thread-safe: one mutex, never held across anything slower than a
 * rename; the capture side puts, the delivery thread claims and updates.
 *
 * Layout, for a user looking at the disk as much as for the code:
 *   dir/<id>/bundle.json         the bundle; its mtime is the creation time
 *   dir/<id>/<attachment>        profile.pb.gz, flame.svg, ...
 *   dir/<id>/delivery-<n>.json   hook n: {"state": "pending|delivered|failed",
 *                                "attempts", "next_attempt_ms", "updated_ms",
 *                                "last_status", "last_error"}
 * A bundle appears under its id complete or not at all: spool_put writes
 * dir/.tmp-<id>/ (each file written and fsync'd, then the directory), renames
 * it to dir/<id>/ and fsyncs dir. On any error, disk full included, the
 * temporary directory is removed. A record is replaced by a temporary
 * file, fsync'd, renamed over it; the directory is not synced: after a
 * crash an update may be undone, which costs one more attempt (a duplicate
 * with the same webhook-id), never a lost delivery. An unreadable record
 * is taken as pending for the same reason.
 * spool_open removes what an interrupted put or update left behind and
 * rebuilds the index from the records, so pending deliveries resume.
 *
 * Size cap: before a put, bundles are removed until the new one fits: the
 * oldest finished ones first (every hook delivered or failed for good), then,
 * only when nothing else frees enough room, the oldest with deliveries still
 * pending. A bundle claimed by the delivery thread is never removed. Each
 * removal is logged (slog) and counted. */
#ifndef STAKEOUT_SPOOL_H
#define STAKEOUT_SPOOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_ID_MAX 64 /* ids: 1..63 of [A-Za-z0-9_-] */
#define SPOOL_MAX_HOOKS 64

enum spool_state {
    SPOOL_NONE,      /* no record: the hook was not configured when the bundle was put */
    SPOOL_PENDING,   /* to be (re)tried at next_attempt_ns */
    SPOOL_DELIVERED, /* a 2xx came back */
    SPOOL_FAILED,    /* given up: permanent error or max_age */
};

struct spool_record {
    enum spool_state state;
    uint32_t attempts;
    int64_t next_attempt_ns; /* wall clock; meaningful while pending */
    int64_t updated_ns;      /* wall clock of the last change */
    int last_status;         /* HTTP status of the last attempt, 0 when none came back */
    char last_error[160];    /* short reason of the last failure, "" when none */
};

/* One attachment for spool_put: moved in from a file or written from memory. */
struct spool_file {
    const char *name; /* plain file name: no '/', no leading '.', not bundle.json */
    const char *path; /* a file to move in (rename; copied across filesystems), or NULL */
    const void *data; /* ... bytes to write, when path is NULL */
    size_t len;
};

/* One delivery: a bundle and a hook. */
struct spool_work {
    char id[SPOOL_ID_MAX];
    size_t hook;
    int64_t created_ns;      /* wall clock of spool_put */
    struct spool_record rec; /* as it is now, but for last_error: "" (it stays on disk,
                                where spool_record_read finds it) */
};

struct spool_counters {
    uint64_t bytes;             /* what the bundles under dir take (file sizes) */
    uint64_t bundles;           /* bundles under dir */
    uint64_t pending;           /* (bundle, hook) deliveries not finished */
    uint64_t puts;              /* bundles written */
    uint64_t put_failures;      /* spool_put errors (nothing was left under the id) */
    uint64_t evicted_finished;  /* removed for room, every delivery finished */
    uint64_t evicted_pending;   /* removed for room with deliveries pending */
    uint64_t leftovers_removed; /* temporary files of an interrupted put or update */
};

struct spool;

/* Open (creating it, mode 0700, when missing) the spool in dir for nhooks
 * webhooks, capped at max_bytes (0: no cap), and index what is there. Takes
 * an exclusive lock on dir: -EBUSY when another spool has it open. Returns
 * 0 with *out set, or a negative errno with a message in err. */
int spool_open(const char *dir, uint64_t max_bytes, size_t nhooks, struct spool **out, char *err,
               size_t errlen) __attribute__((warn_unused_result));
void spool_free(struct spool *s);

/* Write bundle (as bundle.json, mtime created_ns) and files under id, with a
 * pending record (next attempt: created_ns) for each hook. Makes room first
 * (see the size cap above). Files given by path are moved in, and moved
 * back where they were on failure. Returns 0, or a negative errno with a
 * message in err: -EINVAL for a bad id or file name, -EEXIST when id is
 * taken, -EFBIG when the bundle alone exceeds the cap, -ENOSPC when the
 * cap cannot be met or the disk is full. On error nothing is under id. */
int spool_put(struct spool *s, const char *id, const json_t *bundle, const struct spool_file *files,
              size_t nfiles, int64_t created_ns, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Path of a bundle's directory ("<dir>/<id>"). Returns 0 or -ENAMETOOLONG. */
int spool_bundle_dir(const struct spool *s, const char *id, char *buf, size_t len)
    __attribute__((warn_unused_result));

/* Claim the pending delivery of hook with the earliest next attempt if it is
 * due at now_ns: returns true with *out set. A claimed delivery is not
 * returned again and its bundle is not removed until spool_update or
 * spool_unclaim. Otherwise returns false with *next_ns set to the earliest
 * next attempt of an unclaimed pending delivery of hook (INT64_MAX: none). */
bool spool_claim(struct spool *s, size_t hook, int64_t now_ns, struct spool_work *out,
                 int64_t *next_ns);

/* Replace the record of a claimed delivery (atomically on disk) and release
 * the claim. Returns 0 or a negative errno (the claim is released anyway,
 * and the index keeps the new state so the work is not redone in a loop). */
int spool_update(struct spool *s, const char *id, size_t hook, const struct spool_record *rec)
    __attribute__((warn_unused_result));

/* Release a claim without changing the record. */
void spool_unclaim(struct spool *s, const char *id, size_t hook);

/* Up to max pending deliveries, oldest bundle first, claimed or not.
 * Returns how many there are in all. */
size_t spool_pending(struct spool *s, struct spool_work *out, size_t max);

/* Read the record of (id, hook) as it is on disk. Returns 0, -ENOENT, or
 * -EINVAL for a file that does not parse. */
int spool_record_read(const struct spool *s, const char *id, size_t hook, struct spool_record *out)
    __attribute__((warn_unused_result));

/* The bundles' bytes, and every counter; both thread-safe. */
uint64_t spool_bytes(struct spool *s);
void spool_counters(struct spool *s, struct spool_counters *out);

/* True when id is a valid bundle id. */
bool spool_id_valid(const char *id);

const char *spool_state_name(enum spool_state st);

#endif
