/* sidecar/tracefs.h - the kernel's tracepoints as perf_event_open wants
 * them: each one's id, and where its fields lie in the raw record.
 *
 * Owns nothing (outputs are caller structs). tracefs_format_parse is pure
 * (unit-tested on recorded format files); tracefs_find and tracefs_event
 * read tracefs, which is mounted at /sys/kernel/tracing on current systems,
 * under /sys/kernel/debug/tracing on older ones, and on some not at all:
 * tracefs_find then says what to mount. */
#ifndef STAKEOUT_TRACEFS_H
#define STAKEOUT_TRACEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACEFS_MAX_FIELDS 16

struct tracefs_field {
    char name[32];
    unsigned offset, size;         /* in the raw record, bytes */
};

struct tracefs_format {
    int id;                        /* perf_event_attr.config for PERF_TYPE_TRACEPOINT */
    struct tracefs_field fields[TRACEFS_MAX_FIELDS];
    size_t nfields;                /* the event's own fields (common_* left out) */
};

/* The text of events/SYSTEM/NAME/format. Returns 0, or -EINVAL without an
 * ID line; fields beyond TRACEFS_MAX_FIELDS are left out. */
int tracefs_format_parse(const char *buf, size_t n, struct tracefs_format *out)
    __attribute__((warn_unused_result));

/* The field called name, NULL when there is none. */
const struct tracefs_field *tracefs_field(const struct tracefs_format *f, const char *name);

/* A field's value in a raw record of len bytes (little-endian, 1 to 8
 * bytes); false when it lies outside the record. */
bool tracefs_value(const struct tracefs_field *f, const void *raw, size_t len, uint64_t *out)
    __attribute__((warn_unused_result));

/* Where tracefs is mounted (its events/ directory readable). Returns 0 with
 * the path in dir, or -ENOENT with a message in err saying what to mount. */
int tracefs_find(char *dir, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Read events/SYSTEM/NAME/format under dir. */
int tracefs_event(const char *dir, const char *system, const char *name,
                  struct tracefs_format *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
