/* sidecar/logwatch.h - every log file of every target, followed and scanned.
 *
 * Owns: one scanner (logscan) and one follower (logtail) per configured log.
 * Borrows: the config. I/O through logtail. A target's log path is the path
 * in the target's own filesystem: when the target runs in another mount
 * namespace (a container seen from a sidecar) or chrooted, its follower
 * holds the target's root (rootfs_open_root) and opens the path confined to
 * it (rootfs_open), never through a "/proc/PID/root/..." string; a process
 * that replaces it has a root of its own, which is taken anew. Until the
 * target's process is known, and when it shares our root, the path is
 * opened in stakeout's own filesystem.
 *
 * A log with root: host is a path of stakeout's own filesystem (a
 * DaemonSet's view of the node's /var/log/containers): the target's ids
 * (its container id and pod uid, from its cgroup path) are put in, and
 * when that is a glob(3) pattern the most recently modified match is
 * followed (a kubelet keeps a container's previous log next to the new
 * one). The pattern is looked at again when the target's process changes,
 * and at each poll while it matches nothing; a plain path is followed
 * before it exists. Host files are opened as named, regular files only.
 *
 * A target's logs follow its most recently given process: a target that
 * matches several processes at once has the logs of the last one found.
 *
 * Memory: the lines every scanner keeps for alerts (logscan.h) share
 * LOGWATCH_KEPT_BYTES: each log keeps at most logwatch_kept_max(n) bytes of
 * a line, n the number of logs, so all of them together stay within it (up
 * to some 1,700 logs; past that each still keeps LOGWATCH_KEPT_MIN bytes of
 * a line). Besides, each followed file has a LOGTAIL_CHUNK read buffer, and
 * a line still being written holds up to LOGSCAN_LINE_MAX until it ends. */
#ifndef STAKEOUT_LOGWATCH_H
#define STAKEOUT_LOGWATCH_H

#include "config.h"
#include "logscan.h"

#include <stddef.h>
#include <stdint.h>

#define LOGWATCH_KEPT_BYTES (8u << 20) /* the kept lines of all logs together */
#define LOGWATCH_KEPT_MIN 64           /* bytes of a kept line, however many logs */

struct logwatch;

/* Bytes each of nlogs logs keeps of a line: LOGSCAN_KEPT_MAX up to 28 logs,
 * then less, so that nlogs * LOGSCAN_KEPT_LINES * (that + 1) stays within
 * LOGWATCH_KEPT_BYTES; never below LOGWATCH_KEPT_MIN. Pure. */
size_t logwatch_kept_max(size_t nlogs);

/* Build the scanners (the patterns were validated by the config). Returns
 * NULL with a message in err if a pattern does not compile for the scanner. */
struct logwatch *logwatch_new(const struct config *cfg, char *err, size_t errlen);
void logwatch_free(struct logwatch *lw);

/* Borrow a reloaded config whose targets and logs are the same. */
void logwatch_set_config(struct logwatch *lw, const struct config *cfg);

/* The process of target t is now pid (0: none is running), in the cgroup
 * whose path /proc/PID/cgroup gives (NULL or "": unknown), where a host
 * log's ${container_id} and ${pod_uid} come from. Followers whose file
 * changes are started again; those in the target's root always are. */
void logwatch_target_pid(struct logwatch *lw, size_t target, int pid, const char *cgroup);

/* Safety-net poll of every follower (call once per poll interval). */
void logwatch_poll(struct logwatch *lw, int64_t mono_ns, int64_t wall_ns);

/* The inotify descriptors to wait on; at most max are written. */
size_t logwatch_fds(const struct logwatch *lw, int *fds, size_t max);

/* fd (one of logwatch_fds) is readable. */
void logwatch_ready(struct logwatch *lw, int fd, int64_t mono_ns, int64_t wall_ns);

/* Matching lines per minute over all logs of target t; NaN when it has none. */
double logwatch_errors_per_min(const struct logwatch *lw, size_t t, int64_t now_ns);

/* The logs of target t, for the alert: the scanner of its i-th log and the
 * path it follows (NULL past the last). */
const struct logscan *logwatch_scanner(const struct logwatch *lw, size_t t, size_t i,
                                       const char **path);

#endif
