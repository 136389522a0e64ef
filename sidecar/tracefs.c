/* sidecar/tracefs.c - tracepoint ids and record layouts; see tracefs.h. */
#include "tracefs.h"

#include "errbuf.h"
#include "fsread.h"
#include "procparse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const mounts[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};

/* "\tfield:unsigned long addr;\toffset:16;\tsize:8;\tsigned:0;" */
static bool parse_field(const char *line, const char *end, struct tracefs_field *f)
{
    const char *semi = memchr(line, ';', (size_t)(end - line));
    if (!semi)
        return false;
    /* the name is the last word before ';', past any array suffix "[6]" */
    const char *name_end = semi;
    const char *bracket = memchr(line, '[', (size_t)(semi - line));
    if (bracket)
        name_end = bracket;
    const char *name = name_end;
    while (name > line && name[-1] != ' ' && name[-1] != '\t' && name[-1] != '*')
        name--;
    size_t nlen = (size_t)(name_end - name);
    if (nlen == 0 || nlen >= sizeof f->name)
        return false;
    memcpy(f->name, name, nlen);
    f->name[nlen] = '\0';
    const char *o = strstr(semi, "offset:"), *s = strstr(semi, "size:");
    uint64_t off, size;
    if (!o || !s || o >= end || s >= end)
        return false;
    o += 7;
    s += 5;
    if (!procparse_dec(&o, end, &off) || !procparse_dec(&s, end, &size) || off > 65535 ||
        size > 65535)
        return false;
    f->offset = (unsigned)off;
    f->size = (unsigned)size;
    return true;
}

int tracefs_format_parse(const char *buf, size_t n, struct tracefs_format *out)
{
    struct tracefs_format f = {.id = -1};
    const char *p = buf, *end = buf + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        while (p < le && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(le - p) > 3 && memcmp(p, "ID:", 3) == 0) {
            const char *v = p + 3;
            while (v < le && *v == ' ')
                v++;
            uint64_t id;
            if (procparse_dec(&v, le, &id) && id <= 0x7fffffff)
                f.id = (int)id;
        } else if ((size_t)(le - p) > 6 && memcmp(p, "field:", 6) == 0 &&
                   f.nfields < TRACEFS_MAX_FIELDS) {
            struct tracefs_field fl;
            if (parse_field(p + 6, le, &fl) && strncmp(fl.name, "common_", 7) != 0)
                f.fields[f.nfields++] = fl;
        }
        p = nl ? nl + 1 : end;
    }
    if (f.id < 0)
        return -EINVAL;
    *out = f;
    return 0;
}

const struct tracefs_field *tracefs_field(const struct tracefs_format *f, const char *name)
{
    for (size_t i = 0; i < f->nfields; i++) {
        if (strcmp(f->fields[i].name, name) == 0)
            return &f->fields[i];
    }
    return NULL;
}

bool tracefs_value(const struct tracefs_field *f, const void *raw, size_t len, uint64_t *out)
{
    if (!f || f->size == 0 || f->size > 8 || f->offset > len || f->size > len - f->offset)
        return false;
    const unsigned char *b = (const unsigned char *)raw + f->offset;
    uint64_t v = 0;
    for (unsigned i = 0; i < f->size; i++)
        v |= (uint64_t)b[i] << (8 * i);
    *out = v;
    return true;
}

int tracefs_find(char *dir, size_t len, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++) {
        char probe[128];
        snprintf(probe, sizeof probe, "%s/events/syscalls", mounts[i]);
        /* the effective ids and capabilities, not the real uid access(2) asks for */
        if (faccessat(AT_FDCWD, probe, R_OK | X_OK, AT_EACCESS) == 0) {
            snprintf(dir, len, "%s", mounts[i]);
            return 0;
        }
    }
    errbuf_set(err, errlen,
               "tracefs is not mounted (no /sys/kernel/tracing/events/syscalls): mount it with "
               "'mount -t tracefs nodev /sys/kernel/tracing' (in Kubernetes: a hostPath volume "
               "of /sys/kernel/tracing), or the kernel lacks CONFIG_FTRACE_SYSCALLS");
    return -ENOENT;
}

int tracefs_event(const char *dir, const char *system, const char *name,
                  struct tracefs_format *out, char *err, size_t errlen)
{
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/events/%s/%s/format", dir, system, name);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n < 0) {
        errbuf_set(err, errlen, "cannot read %s: %s", path, strerror((int)-n));
        return (int)n;
    }
    if (tracefs_format_parse(buf, (size_t)n, out) < 0) {
        errbuf_set(err, errlen, "%s has no tracepoint id", path);
        return -EINVAL;
    }
    return 0;
}
