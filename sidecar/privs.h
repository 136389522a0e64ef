/* sidecar/privs.h - least privilege for the daemon, and trust in its rules.
 *
 * Owns nothing. I/O: capabilities (libcap), prctl, stat. Capabilities are
 * per thread on Linux: privs_drop must run on the main thread before any
 * other thread exists, so every thread inherits the reduced set. */
#ifndef STAKEOUT_PRIVS_H
#define STAKEOUT_PRIVS_H

#include <stdbool.h>
#include <stddef.h>

/* Keep only CAP_SYS_PTRACE (profiles), CAP_PERFMON (memory profiles by
 * syscall tracepoints) and, when dac_read_search is true,
 * CAP_DAC_READ_SEARCH (logs of another user), of what we hold; drop the rest
 * from the effective, permitted, inheritable and (when allowed) bounding
 * sets; set no_new_privs. kept receives the names kept, comma-separated
 * ("cap_sys_ptrace,cap_perfmon"), or "none". Returns 0 or a negative errno. */
int privs_drop(bool dac_read_search, char *kept, size_t len) __attribute__((warn_unused_result));

/* Whether stakeout may act on the rules file open at fd, which was opened
 * by the name path: whoever can write the file, or put another one in its
 * place, decides what stakeout (often root, with CAP_SYS_PTRACE) attaches
 * to, reads and sends away. The caller parses what it read from this same
 * descriptor, so nothing can be swapped in between the check and the read.
 *
 * The file (fstat of fd) must be a regular file owned by root or by
 * stakeout's user (the effective uid) and writable by neither its group nor
 * others. Every directory from the one that holds the file (the file's own
 * path, read from /proc/self/fd) up to /, and from the one that holds the
 * name path (it may be a symlink, as in Kubernetes' ConfigMap volumes) up to
 * /, must be owned by root or stakeout's user and writable by neither group
 * nor others (the rule of sshd's StrictModes), with two exceptions:
 *   - a sticky directory such as /tmp: others cannot rename or remove what
 *     they do not own there, and a file or directory they made there
 *     beforehand fails the owner check;
 *   - a directory on a read-only mount: nobody here can change it
 *     (Kubernetes mounts a ConfigMap read-only, in a directory of mode 0777).
 * Returns 0; -EPERM with the reason in err; -EAGAIN when the file moved
 * while it was being checked (try again); or another negative errno. */
int privs_check_rules_fd(int fd, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
