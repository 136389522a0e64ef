/* sidecar/daemon.h - `stakeout run`: the service beside an application.
 *
 * Owns: everything the daemon runs (config, collector, engine, log
 * followers, captures, alert delivery, the HTTP listener) for the life of
 * daemon_run. I/O: one event loop (epoll) over a timerfd for polls, a
 * signalfd (SIGHUP reload, SIGTERM/SIGINT stop), inotify on the rules file
 * and on the logs, an eventfd woken by finished captures. Captures run on
 * their own threads so polling and log counting go on during them. */
#ifndef STAKEOUT_DAEMON_H
#define STAKEOUT_DAEMON_H

#include "slog.h"

#include <stdbool.h>

struct daemon_opts {
    const char *config_path;
    enum slog_level log_level;
    enum slog_format log_format;
    bool keep_privileges;      /* tests and benchmarks only: do not drop capabilities */
};

/* Run until SIGTERM or SIGINT. Returns the process exit code: 0 after a clean
 * stop, 1 when it could not start (invalid rules file, listener, spool). */
int daemon_run(const struct daemon_opts *o);

#endif
