/* sidecar/perfrec.h - records of a perf_event ring buffer, decoded.
 *
 * Owns nothing: a decoded record points into the bytes it was decoded from.
 * Pure: works on a copy of one record (the caller takes it out of the ring,
 * joining the two ends when it wraps), so it is unit-tested on bytes built
 * by hand. The kernel writes these records, but what they carry (raw
 * tracepoint data, a copy of the target's stack) is the target's: every
 * size is checked against the record's length. */
#ifndef STAKEOUT_PERFREC_H
#define STAKEOUT_PERFREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sample fields stakeout asks for; the decoder accepts exactly these
 * bits of sample_type (PERF_SAMPLE_IDENTIFIER | TID | TIME | RAW, and
 * optionally REGS_USER | STACK_USER). */
struct perfrec_sample {
    uint64_t id;                   /* the event (PERF_EVENT_IOC_ID) */
    uint32_t pid, tid;
    uint64_t time;
    const void *raw;               /* the tracepoint's record */
    uint32_t raw_len;
    uint64_t abi;                  /* 0: no registers (a kernel thread) */
    const uint64_t *regs;          /* nregs of them, in the mask's bit order */
    const void *stack;             /* the copy of the user stack */
    uint64_t stack_len;            /* bytes valid in it (dyn_size) */
};

/* A PERF_RECORD_SAMPLE of len bytes (header included) for an event of
 * sample_type with nregs registers in its sample_regs_user mask. Returns
 * 0, or -EINVAL when it does not fit its length or sample_type has bits
 * the decoder does not know. */
int perfrec_sample(const void *rec, size_t len, uint64_t sample_type, unsigned nregs,
                   struct perfrec_sample *out) __attribute__((warn_unused_result));

/* The trailing sample_id of a non-sample record (sample_id_all, with the
 * same sample_type): tid and time. Returns 0 or -EINVAL. */
int perfrec_sample_id(const void *rec, size_t len, uint64_t sample_type, uint32_t *pid,
                      uint32_t *tid, uint64_t *time) __attribute__((warn_unused_result));

#endif
