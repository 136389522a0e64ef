/* sidecar/folded.h - write a profile as folded ("collapsed") stacks.
 *
 * Owns nothing. Borrows the profile, only for the call. Pure apart from the
 * FILE it is given. The text flamegraph.pl, speedscope and Pyroscope's
 * folded ingest read: one line per distinct stack, frames root first joined
 * by ';', a space, then the weight (samples for CPU and wall profiles, bytes
 * for memory). Lines are sorted bytewise and stacks that read the same are
 * merged, so the output is the same for the same profile. In frame names,
 * ';' becomes ':' (it would split the frame); an empty stack reads
 * PROFILE_NO_STACK. */
#ifndef STAKEOUT_FOLDED_H
#define STAKEOUT_FOLDED_H

#include "profile.h"

#include <stdbool.h>
#include <stdio.h>

/* Write p to out. per_thread: each thread's stacks apart, under a root frame
 * naming the thread, "name [tid]" ("[tid]" when it has no name). Returns 0,
 * or -EIO when writing failed. */
int folded_write(const struct profile *p, FILE *out, bool per_thread)
    __attribute__((warn_unused_result));

#endif
