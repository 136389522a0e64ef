/* sidecar/slog.c - logfmt / JSON lines on stderr; see slog.h. */
#include "slog.h"

#include "clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum slog_level min_level = SLOG_INFO;
static enum slog_format out_format = SLOG_LOGFMT;
static int out_fd = 2;

#define SLOG_LINE_MAX 8192

struct line {
    char buf[SLOG_LINE_MAX];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->len + n > sizeof l->buf - 2)
        n = sizeof l->buf - 2 - l->len; /* truncate: one line, always */
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* logfmt: quote when the value has a space, '=', '"' or control chars. */
static void put_logfmt_value(struct line *l, const char *v)
{
    bool quote = *v == '\0';
    for (const char *p = v; *p && !quote; p++)
        quote = *p == ' ' || *p == '=' || *p == '"' || (unsigned char)*p < 0x20;
    if (!quote) {
        puts_(l, v);
        return;
    }
    put(l, "\"", 1);
    for (const char *p = v; *p; p++) {
        char esc[8];
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            puts_(l, esc);
        } else {
            put(l, p, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_json_string(struct line *l, const char *v)
{
    put(l, "\"", 1);
    for (const char *p = v; *p; p++) {
        char esc[8];
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(l, esc);
        } else {
            put(l, p, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_pair(struct line *l, const char *k, const char *v, bool first)
{
    if (out_format == SLOG_JSON) {
        if (!first)
            put(l, ",", 1);
        put_json_string(l, k);
        put(l, ":", 1);
        put_json_string(l, v);
    } else {
        if (!first)
            put(l, " ", 1);
        puts_(l, k);
        put(l, "=", 1);
        put_logfmt_value(l, v);
    }
}

static const char *level_name(enum slog_level level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return (unsigned)level < 4 ? names[level] : "info";
}

static void emit(enum slog_level level, const char *msg, va_list ap)
{
    struct line l;
    char ts[80];
    int64_t now = clock_wall_ns();
    time_t sec = (time_t)(now / 1000000000LL);
    struct tm tm;

    l.len = 0;
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(now % 1000000000LL / 1000000));
    if (out_format == SLOG_JSON)
        put(&l, "{", 1);
    put_pair(&l, "ts", ts, true);
    put_pair(&l, "level", level_name(level), false);
    put_pair(&l, "msg", msg, false);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        put_pair(&l, k, v ? v : "", false);
    }
    if (out_format == SLOG_JSON)
        put(&l, "}", 1);
    l.buf[l.len++] = '\n';
    size_t off = 0;
    while (off < l.len) {
        ssize_t w = write(out_fd, l.buf + off, l.len - off);
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere to report a failing log */
        off += (size_t)w;
    }
}

void slog(enum slog_level level, const char *msg, ...)
{
    va_list ap;
    if (level < min_level)
        return;
    va_start(ap, msg);
    emit(level, msg, ap);
    va_end(ap);
}

static void emit_plain(enum slog_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit(level, msg, ap);
    va_end(ap);
}

void slogf(enum slog_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (level < min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit_plain(level, msg, (const char *)NULL);
}

void slog_setup(enum slog_level level, enum slog_format format, int fd)
{
    min_level = level;
    out_format = format;
    if (fd >= 0)
        out_fd = fd;
}

bool slog_enabled(enum slog_level level)
{
    return level >= min_level;
}

bool slog_parse_level(const char *s, enum slog_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum slog_level)i;
            return true;
        }
    }
    return false;
}

bool slog_parse_format(const char *s, enum slog_format *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = SLOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = SLOG_JSON;
    else
        return false;
    return true;
}
