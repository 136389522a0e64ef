/* sidecar/privs.h - least privilege for the daemon.
 *
 * Owns nothing. I/O: capabilities (libcap), prctl, stat. Capabilities are
 * per thread on Linux: privs_drop must run on the main thread before any
 * other thread exists, so every thread inherits the reduced set. */
#ifndef STAKEOUT_PRIVS_H
#define STAKEOUT_PRIVS_H

#include <stdbool.h>
#include <stddef.h>

/* Keep only CAP_SYS_PTRACE (profiles) and, when dac_read_search is true,
 * CAP_DAC_READ_SEARCH (logs of another user), of what we hold; drop the rest
 * from the effective, permitted, inheritable and (when allowed) bounding
 * sets; set no_new_privs. kept receives "cap_sys_ptrace" or "none" etc.
 * Returns 0 or a negative errno. */
int privs_drop(bool dac_read_search, char *kept, size_t len) __attribute__((warn_unused_result));

/* Refuse a rules file that users other than its owner may write: whoever
 * can write it decides what stakeout attaches to. Returns 0, or -EPERM with
 * the reason in err. */
int privs_check_rules_file(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
