/* sidecar/privs.c - capabilities and no_new_privs; see privs.h. */
#include "privs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>

int privs_drop(bool dac_read_search, char *kept, size_t len)
{
    cap_value_t want[2];
    int nwant = 0;
    int rc = 0;
    cap_t cur = cap_get_proc();
    cap_t next = NULL;

    if (!cur)
        return -errno;
    /* keep a capability only if we hold it now */
    cap_value_t candidates[2] = {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};
    for (int i = 0; i < (dac_read_search ? 2 : 1); i++) {
        cap_flag_value_t v = CAP_CLEAR;
        if (cap_get_flag(cur, candidates[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET)
            want[nwant++] = candidates[i];
    }
    /* the bounding set can only shrink with CAP_SETPCAP, which we may hold */
    cap_flag_value_t setpcap = CAP_CLEAR;
    if (cap_get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap) == 0 && setpcap == CAP_SET) {
        for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
            bool keep = false;
            for (int i = 0; i < nwant; i++)
                keep |= want[i] == c;
            if (!keep && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) != 0 && errno != EINVAL) {
                rc = -errno;
                goto out;
            }
        }
    }
    next = cap_init();
    if (!next) {
        rc = -errno;
        goto out;
    }
    if (nwant > 0 && (cap_set_flag(next, CAP_PERMITTED, nwant, want, CAP_SET) != 0 ||
                      cap_set_flag(next, CAP_EFFECTIVE, nwant, want, CAP_SET) != 0)) {
        rc = -errno;
        goto out;
    }
    if (cap_set_proc(next) != 0) {
        rc = -errno;
        goto out;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        rc = -errno;
        goto out;
    }
    if (nwant == 0)
        snprintf(kept, len, "none");
    else if (nwant == 1)
        snprintf(kept, len, "%s", want[0] == CAP_SYS_PTRACE ? "cap_sys_ptrace" : "cap_dac_read_search");
    else
        snprintf(kept, len, "cap_sys_ptrace,cap_dac_read_search");
out:
    if (next)
        cap_free(next);
    cap_free(cur);
    return rc;
}

int privs_check_rules_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s is writable by %s: whoever can write it decides what stakeout attaches to; "
                 "chmod go-w it",
                 path, (st.st_mode & S_IWOTH) ? "other users" : "its group");
        return -EPERM;
    }
    return 0;
}
