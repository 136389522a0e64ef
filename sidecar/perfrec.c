/* sidecar/perfrec.c - perf_event ring-buffer records decoded; see perfrec.h.
 * The layouts are those of include/uapi/linux/perf_event.h. */
#include "perfrec.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>

#define KNOWN                                                                                     \
    (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW |              \
     PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER)

struct cursor {
    const unsigned char *p, *end;
};

static bool take(struct cursor *c, void *out, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return false;
    memcpy(out, c->p, n);
    c->p += n;
    return true;
}

static bool skip(struct cursor *c, uint64_t n)
{
    if ((uint64_t)(c->end - c->p) < n)
        return false;
    c->p += n;
    return true;
}

int perfrec_sample(const void *rec, size_t len, uint64_t sample_type, unsigned nregs,
                   struct perfrec_sample *out)
{
    struct perfrec_sample s = {0};
    struct perf_event_header h;
    struct cursor c = {rec, (const unsigned char *)rec + len};
    if ((sample_type & ~(uint64_t)KNOWN) || !take(&c, &h, sizeof h) || h.size > len)
        return -EINVAL;
    c.end = (const unsigned char *)rec + h.size;
    if ((sample_type & PERF_SAMPLE_IDENTIFIER) && !take(&c, &s.id, 8))
        return -EINVAL;
    if ((sample_type & PERF_SAMPLE_TID) && (!take(&c, &s.pid, 4) || !take(&c, &s.tid, 4)))
        return -EINVAL;
    if ((sample_type & PERF_SAMPLE_TIME) && !take(&c, &s.time, 8))
        return -EINVAL;
    if (sample_type & PERF_SAMPLE_RAW) {
        if (!take(&c, &s.raw_len, 4))
            return -EINVAL;
        s.raw = c.p;
        if (!skip(&c, s.raw_len))
            return -EINVAL;
    }
    if (sample_type & PERF_SAMPLE_REGS_USER) {
        if (!take(&c, &s.abi, 8))
            return -EINVAL;
        if (s.abi != 0) {
            s.regs = (const uint64_t *)(const void *)c.p;
            if (!skip(&c, (uint64_t)nregs * 8))
                return -EINVAL;
        }
    }
    if (sample_type & PERF_SAMPLE_STACK_USER) {
        uint64_t size;
        if (!take(&c, &size, 8))
            return -EINVAL;
        if (size != 0) {
            s.stack = c.p;
            uint64_t dyn;
            if (!skip(&c, size) || !take(&c, &dyn, 8))
                return -EINVAL;
            s.stack_len = dyn < size ? dyn : size;
        }
    }
    *out = s;
    return 0;
}

int perfrec_sample_id(const void *rec, size_t len, uint64_t sample_type, uint32_t *pid,
                      uint32_t *tid, uint64_t *time)
{
    /* at the end: { u32 pid, tid } { u64 time } { u64 id } (IDENTIFIER last) */
    size_t tail = ((sample_type & PERF_SAMPLE_TID) ? 8 : 0) +
                  ((sample_type & PERF_SAMPLE_TIME) ? 8 : 0) +
                  ((sample_type & PERF_SAMPLE_IDENTIFIER) ? 8 : 0);
    struct perf_event_header h;
    if (len < sizeof h)
        return -EINVAL;
    memcpy(&h, rec, sizeof h);
    if (h.size > len || h.size < sizeof h + tail ||
        !(sample_type & PERF_SAMPLE_TID) || !(sample_type & PERF_SAMPLE_TIME))
        return -EINVAL;
    const unsigned char *p = (const unsigned char *)rec + h.size - tail;
    memcpy(pid, p, 4);
    memcpy(tid, p + 4, 4);
    memcpy(time, p + 8, 8);
    return 0;
}
