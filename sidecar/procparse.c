/* sidecar/procparse.c - parsers for /proc and cgroupfs text; see procparse.h.
 *
 * Every parser walks a (pointer, length) span and never reads at or past the
 * end: the buffer need not be NUL-terminated and may be cut anywhere, since a
 * read of /proc can be short. Numbers are parsed by hand (no strtoull, no
 * strtod) so that neither NUL termination nor the locale matters. Results are
 * built in a local struct and copied out only on success. */
#include "procparse.h"

#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- spans ------------------------------------------------------------- */

/* n bytes at p; p may be NULL only when n is 0. */
struct span {
    const char *p;
    size_t n;
};

static struct span span_of(const char *buf, size_t n)
{
    struct span s = {buf, buf ? n : 0};
    return s;
}

static struct span span_cstr(const char *s)
{
    return span_of(s, strlen(s));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void span_skip(struct span *s, size_t k)
{
    s->p += k;
    s->n -= k;
}

/* s without leading and trailing blanks and line ends. */
static struct span span_trim(struct span s)
{
    while (s.n > 0 && (is_blank(s.p[0]) || s.p[0] == '\n' || s.p[0] == '\r'))
        span_skip(&s, 1);
    while (s.n > 0 && (is_blank(s.p[s.n - 1]) || s.p[s.n - 1] == '\n' || s.p[s.n - 1] == '\r'))
        s.n--;
    return s;
}

static bool span_eq(struct span s, const char *lit)
{
    size_t len = strlen(lit);
    return s.n == len && memcmp(s.p, lit, len) == 0;
}

/* Moves the first line of *rest (without its '\n') into *line. False when
 * no whole line is left: text after the last '\n' may have been cut by a
 * short read in the middle of a number or a path, so it is never used. */
static bool span_next_line(struct span *rest, struct span *line)
{
    const char *nl = rest->n ? memchr(rest->p, '\n', rest->n) : NULL;

    if (!nl)
        return false;
    line->p = rest->p;
    line->n = (size_t)(nl - rest->p);
    span_skip(rest, line->n + 1);
    return true;
}

/* The next run of non-blank characters in *rest, which advances past it.
 * Empty when only blanks are left. */
static struct span span_next_token(struct span *rest)
{
    struct span tok;

    while (rest->n > 0 && is_blank(rest->p[0]))
        span_skip(rest, 1);
    tok.p = rest->p;
    tok.n = 0;
    while (tok.n < rest->n && !is_blank(rest->p[tok.n]))
        tok.n++;
    span_skip(rest, tok.n);
    return tok;
}

/* Splits "key<sep>value" at the first sep. False when there is none. */
static bool span_split(struct span s, char sep, struct span *key, struct span *value)
{
    const char *at = s.n ? memchr(s.p, sep, s.n) : NULL;

    if (!at)
        return false;
    key->p = s.p;
    key->n = (size_t)(at - s.p);
    value->p = at + 1;
    value->n = s.n - key->n - 1;
    return true;
}

/* Copies s into out[len] as a C string. False (out untouched) when it does
 * not fit. */
static bool span_copy(struct span s, char *out, size_t len)
{
    if (s.n >= len)
        return false;
    if (s.n)
        memcpy(out, s.p, s.n);
    out[s.n] = '\0';
    return true;
}

/* ---- numbers ----------------------------------------------------------- */

/* s, all of it, as a decimal u64. A value above UINT64_MAX is a failure,
 * or UINT64_MAX when saturate is set. */
static bool parse_u64(struct span s, uint64_t *out, bool saturate)
{
    uint64_t v = 0;
    bool over = false;

    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d;
        if (!is_digit(s.p[i]))
            return false;
        d = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (over && !saturate)
        return false;
    *out = over ? UINT64_MAX : v;
    return true;
}

/* s, all of it, as a decimal integer in [lo, hi], with an optional '-'. */
static bool parse_int_range(struct span s, long long lo, long long hi, long long *out)
{
    bool neg = s.n > 0 && s.p[0] == '-';
    uint64_t mag;

    if (neg)
        span_skip(&s, 1);
    if (!parse_u64(s, &mag, false))
        return false;
    if (neg) {
        /* -(LLONG_MIN) does not fit a long long, so compare magnitudes. */
        if (lo >= 0 || mag > (uint64_t)(-(lo + 1)) + 1)
            return false;
        *out = mag == 0 ? 0 : -(long long)(mag - 1) - 1;
        return true;
    }
    if (hi < 0 || mag > (uint64_t)hi)
        return false;
    *out = (long long)mag;
    return true;
}

static bool parse_int(struct span s, int *out)
{
    long long v;

    if (!parse_int_range(s, INT_MIN, INT_MAX, &v))
        return false;
    *out = (int)v;
    return true;
}

/* A non-negative decimal "12" or "12.34" (the form the kernel prints PSI
 * averages in). */
static bool parse_decimal(struct span s, double *out)
{
    double v = 0, scale = 1;
    size_t i = 0, digits = 0;

    for (; i < s.n && is_digit(s.p[i]); i++, digits++)
        v = v * 10 + (s.p[i] - '0');
    if (i < s.n && s.p[i] == '.') {
        for (i++; i < s.n && is_digit(s.p[i]); i++, digits++) {
            scale /= 10;
            v += (s.p[i] - '0') * scale;
        }
    }
    if (digits == 0 || i != s.n)
        return false;
    *out = v;
    return true;
}

/* The value of the hex digit c, -1 when c is not one. */
static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool procparse_hex(const char **s, const char *end, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    for (; p < end; p++) {
        int d = hex_value(*p);
        if (d < 0)
            break;
        if (v >> 60)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    if (p == *s)
        return false;
    *s = p;
    *out = v;
    return true;
}

bool procparse_dec(const char **s, const char *end, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    for (; p < end && is_digit(*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == *s)
        return false;
    *s = p;
    *out = v;
    return true;
}

/* The character c at *s, which moves past it. False when it is not there. */
static bool take_char(const char **s, const char *end, char c)
{
    if (*s >= end || **s != c)
        return false;
    (*s)++;
    return true;
}

/* ---- /proc/PID/status -------------------------------------------------- */

/* "  1752 kB" -> 1752 * 1024. The unit is required: a value without it is
 * either not a size or was cut short by a truncated read. */
static bool parse_kb(struct span value, uint64_t *bytes)
{
    struct span num = span_next_token(&value);
    struct span unit = span_next_token(&value);
    uint64_t kb;

    if (!span_eq(unit, "kB") || span_next_token(&value).n != 0)
        return false;
    if (!parse_u64(num, &kb, false) || kb > UINT64_MAX / 1024)
        return false;
    *bytes = kb * 1024;
    return true;
}

static bool parse_u64_field(struct span value, uint64_t *out)
{
    return parse_u64(span_trim(value), out, false);
}

int procparse_status(const char *buf, size_t n, struct proc_status *out)
{
    struct proc_status st = {0};
    const struct {
        const char *key;
        uint64_t *dst;
    } kb_fields[] = {
        {"VmRSS", &st.rss},          {"RssAnon", &st.rss_anon}, {"RssFile", &st.rss_file},
        {"RssShmem", &st.rss_shmem}, {"VmSwap", &st.swap},      {"VmSize", &st.vm_size},
    };
    struct span rest = span_of(buf, n), line, key, value;
    unsigned found = 0;

    st.state = '?';
    while (span_next_line(&rest, &line)) {
        uint64_t u;
        long long ll;
        bool ok = false;

        if (!span_split(line, ':', &key, &value))
            continue;
        for (size_t i = 0; i < sizeof kb_fields / sizeof kb_fields[0]; i++) {
            if (span_eq(key, kb_fields[i].key)) {
                ok = parse_kb(value, kb_fields[i].dst);
                if (ok && kb_fields[i].dst == &st.rss)
                    st.have_rss = true;
                break;
            }
        }
        if (span_eq(key, "voluntary_ctxt_switches")) {
            ok = parse_u64_field(value, &st.voluntary_ctxt);
        } else if (span_eq(key, "nonvoluntary_ctxt_switches")) {
            ok = parse_u64_field(value, &st.nonvoluntary_ctxt);
        } else if (span_eq(key, "Threads")) {
            ok = parse_u64_field(value, &u) && u <= UINT_MAX;
            if (ok)
                st.threads = (unsigned)u;
        } else if (span_eq(key, "Uid")) {
            /* real, effective, saved, filesystem: the first is the real uid. */
            ok = parse_u64(span_next_token(&value), &u, false) && u <= UINT_MAX;
            if (ok)
                st.uid = (unsigned)u;
        } else if (span_eq(key, "TracerPid")) {
            ok = parse_int_range(span_trim(value), 0, INT_MAX, &ll);
            if (ok)
                st.tracer_pid = (int)ll;
        } else if (span_eq(key, "State")) {
            struct span word = span_next_token(&value);
            ok = word.n > 0;
            if (ok)
                st.state = word.p[0];
        }
        found += ok;
    }
    if (found == 0)
        return -EINVAL;
    *out = st;
    return 0;
}

/* ---- /proc/PID/stat ---------------------------------------------------- */

/* Field numbers as in proc(5). */
enum {
    STAT_STATE = 3,
    STAT_PPID = 4,
    STAT_MINFLT = 10,
    STAT_MAJFLT = 12,
    STAT_UTIME = 14,
    STAT_STIME = 15,
    STAT_NUM_THREADS = 20,
    STAT_STARTTIME = 22,
    STAT_PROCESSOR = 39,
};

/* Stores field number `field` of a stat line. False when it is malformed. */
static bool stat_field(struct proc_stat *st, int field, struct span tok)
{
    long long ll;

    switch (field) {
    case STAT_STATE:
        if (tok.n != 1)
            return false;
        st->state = tok.p[0];
        return true;
    case STAT_PPID:
        return parse_int(tok, &st->ppid);
    case STAT_MINFLT:
        return parse_u64(tok, &st->minflt, false);
    case STAT_MAJFLT:
        return parse_u64(tok, &st->majflt, false);
    case STAT_UTIME:
        return parse_u64(tok, &st->utime, false);
    case STAT_STIME:
        return parse_u64(tok, &st->stime, false);
    case STAT_NUM_THREADS:
        if (!parse_int_range(tok, LONG_MIN, LONG_MAX, &ll))
            return false;
        st->num_threads = (long)ll;
        return true;
    case STAT_STARTTIME:
        return parse_u64(tok, &st->starttime, false);
    case STAT_PROCESSOR:
        return parse_int(tok, &st->processor);
    default:
        return true; /* a field we do not keep */
    }
}

int procparse_stat(const char *buf, size_t n, struct proc_stat *out)
{
    struct proc_stat st = {0};
    struct span all = span_of(buf, n), head, comm, line;
    const char *lp, *rp = NULL, *nl;
    long long pid;
    int field = STAT_STATE;

    lp = all.n ? memchr(all.p, '(', all.n) : NULL;
    if (!lp)
        return -EINVAL;
    for (size_t i = all.n; i > (size_t)(lp - all.p) + 1 && !rp; i--) {
        if (all.p[i - 1] == ')')
            rp = all.p + i - 1;
    }
    if (!rp)
        return -EINVAL;
    head.p = all.p;
    head.n = (size_t)(lp - all.p);
    if (!parse_int_range(span_trim(head), 0, INT_MAX, &pid))
        return -EINVAL;
    st.pid = (int)pid;
    comm.p = lp + 1;
    comm.n = (size_t)(rp - comm.p);
    if (comm.n >= sizeof st.comm)
        comm.n = sizeof st.comm - 1; /* a name, not a key: cutting it is harmless */
    span_copy(comm, st.comm, sizeof st.comm);

    /* comm may hold '\n'; the fields are the rest of the line after it. A
     * field running into the end of the buffer may have been cut short, so
     * only fields followed by a blank or the '\n' count. */
    line.p = rp + 1;
    line.n = all.n - (size_t)(line.p - all.p);
    nl = line.n ? memchr(line.p, '\n', line.n) : NULL;
    if (nl)
        line.n = (size_t)(nl - line.p);
    for (;; field++) {
        struct span tok = span_next_token(&line);
        if (tok.n == 0 || (line.n == 0 && !nl) || !stat_field(&st, field, tok))
            break;
    }
    /* field is now the first one missing or malformed. */
    if (field <= STAT_STARTTIME)
        return -EINVAL;
    *out = st;
    return 0;
}

/* ---- /proc/PID/cgroup -------------------------------------------------- */

/* Whether the comma-separated list holds name as a whole element. */
static bool list_has(struct span list, const char *name)
{
    struct span elem;

    while (list.n > 0) {
        const char *comma = memchr(list.p, ',', list.n);
        elem.p = list.p;
        elem.n = comma ? (size_t)(comma - list.p) : list.n;
        if (span_eq(elem, name))
            return true;
        span_skip(&list, comma ? elem.n + 1 : elem.n);
    }
    return false;
}

int procparse_cgroup(const char *buf, size_t n, struct proc_cgroup *out)
{
    struct proc_cgroup cg;
    struct span rest = span_of(buf, n), line, id, tail, ctrl, path;
    bool have_v2 = false, have_mem = false, have_cpu = false, any = false;

    memset(&cg, 0, sizeof cg);
    while (span_next_line(&rest, &line)) {
        uint64_t hier;

        if (!span_split(line, ':', &id, &tail) || !span_split(tail, ':', &ctrl, &path))
            continue;
        if (!parse_u64(id, &hier, false))
            continue;
        any = true;
        if (hier == 0 && ctrl.n == 0) {
            if (!have_v2 && !span_copy(path, cg.v2, sizeof cg.v2))
                return -ENAMETOOLONG;
            have_v2 = true;
        }
        if (ctrl.n == 0)
            continue;
        if (!have_mem && list_has(ctrl, "memory")) {
            if (!span_copy(path, cg.v1_memory, sizeof cg.v1_memory))
                return -ENAMETOOLONG;
            have_mem = true;
        }
        if (!have_cpu && list_has(ctrl, "cpu")) {
            if (!span_copy(path, cg.v1_cpu, sizeof cg.v1_cpu) ||
                !span_copy(ctrl, cg.v1_cpu_mount, sizeof cg.v1_cpu_mount))
                return -ENAMETOOLONG;
            have_cpu = true;
        }
    }
    if (!any)
        return -EINVAL;
    *out = cg;
    return 0;
}

bool procparse_cgroup_outside(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        p += *p == '/';
    }
    return false;
}

/* ---- /proc/PID/maps ---------------------------------------------------- */

int procparse_maps_line(const char *line, size_t n, struct proc_map *out)
{
    static const char deleted[] = " (deleted)";
    const size_t deleted_len = sizeof deleted - 1;
    const char *p = line, *end = line + n;
    struct proc_map m = {0};
    uint64_t major, minor;

    if (n > 0 && end[-1] == '\n')
        end--;
    if (!procparse_hex(&p, end, &m.start) || !take_char(&p, end, '-') ||
        !procparse_hex(&p, end, &m.end) || !take_char(&p, end, ' ') || end - p < 5)
        return -EINVAL;
    memcpy(m.perms, p, 4);
    m.perms[4] = '\0';
    p += 4;
    if (!take_char(&p, end, ' ') || !procparse_hex(&p, end, &m.offset) ||
        !take_char(&p, end, ' ') || !procparse_hex(&p, end, &major) || !take_char(&p, end, ':') ||
        !procparse_hex(&p, end, &minor) || !take_char(&p, end, ' ') ||
        !procparse_dec(&p, end, &m.inode))
        return -EINVAL;
    /* the inode ends at a blank or at the end: "12abc" is not an inode */
    if (p < end && *p != ' ')
        return -EINVAL;
    if (m.start >= m.end || major > UINT32_MAX || minor > UINT32_MAX)
        return -EINVAL;
    m.dev = major << 32 | minor;
    while (p < end && *p == ' ')
        p++;
    m.path = p;
    m.path_len = (size_t)(end - p);
    if (m.path_len > deleted_len && memcmp(end - deleted_len, deleted, deleted_len) == 0) {
        m.path_len -= deleted_len;
        m.deleted = true;
    }
    *out = m;
    return 0;
}

/* ---- container ids ----------------------------------------------------- */

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void procparse_container_id(const char *path, char *out, size_t len)
{
    enum { ID_LEN = 64 };
    struct span s = span_cstr(path ? path : "");
    const char *found = NULL;
    size_t i = 0;

    while (i < s.n) {
        size_t start = i;
        while (i < s.n && is_hex(s.p[i]))
            i++;
        if (i - start == ID_LEN)
            found = s.p + start;
        if (i == start)
            i++;
    }
    if (len == 0)
        return;
    out[0] = '\0';
    if (!found || len <= ID_LEN)
        return;
    for (size_t k = 0; k < ID_LEN; k++) {
        char c = found[k];
        out[k] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    out[ID_LEN] = '\0';
}

/* A pod uid of n characters at u: 8-4-4-4-12 hex digits separated by '-'
 * (cgroupfs driver) or '_' (systemd driver), or 32 hex digits (a static
 * pod's, a hash of its manifest). */
static bool pod_uid_shape(const char *u, size_t n)
{
    if (n != 36 && n != 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool sep = n == 36 && (i == 8 || i == 13 || i == 18 || i == 23);
        if (sep ? (u[i] != '-' && u[i] != '_') : !is_hex(u[i]))
            return false;
    }
    return true;
}

void procparse_pod_uid(const char *path, char *out, size_t len)
{
    const char *s = path ? path : "", *found = NULL;
    size_t found_n = 0;

    for (const char *p = strstr(s, "pod"); p; p = strstr(p + 1, "pod")) {
        const char *u = p + 3;
        size_t n = 0;
        if (p != s && p[-1] != '/' && p[-1] != '-')
            continue; /* "kubepods" */
        while (is_hex(u[n]) || u[n] == '-' || u[n] == '_')
            n++;
        if ((u[n] == '\0' || u[n] == '/' || u[n] == '.') && pod_uid_shape(u, n)) {
            found = u;
            found_n = n;
        }
    }
    if (len == 0)
        return;
    out[0] = '\0';
    if (!found || len <= found_n)
        return;
    for (size_t k = 0; k < found_n; k++)
        out[k] = found[k] == '_' ? '-' : found[k];
    out[found_n] = '\0';
}

/* ---- cgroup controller files ------------------------------------------ */

int procparse_cpu_max(const char *buf, size_t n, double *cpus)
{
    struct span s = span_trim(span_of(buf, n));
    struct span quota = span_next_token(&s);
    struct span period = span_next_token(&s);
    uint64_t q = 0, p;

    if (span_next_token(&s).n != 0 || !parse_u64(period, &p, false) || p == 0)
        return -EINVAL;
    if (!span_eq(quota, "max") && (!parse_u64(quota, &q, false) || q == 0))
        return -EINVAL;
    *cpus = (double)q / (double)p;
    return 0;
}

double procparse_cfs_quota(long long quota_us, long long period_us)
{
    if (quota_us <= 0 || period_us <= 0)
        return 0;
    return (double)quota_us / (double)period_us;
}

/* Walks "key value" lines; for each key in keys[] (NULL-terminated) stores
 * the value in vals[i]. Returns the number of keys found, or -EINVAL when a
 * wanted key has a value that is not a number. */
static int parse_flat_keyed(const char *buf, size_t n, const char *const *keys, uint64_t *vals)
{
    struct span rest = span_of(buf, n), line;
    int found = 0;

    while (span_next_line(&rest, &line)) {
        struct span key = span_next_token(&line);
        struct span value = span_next_token(&line);

        for (size_t i = 0; keys[i]; i++) {
            if (!span_eq(key, keys[i]))
                continue;
            if (!parse_u64(value, &vals[i], false) || span_next_token(&line).n != 0)
                return -EINVAL;
            found++;
            break;
        }
    }
    return found;
}

int procparse_cpu_stat(const char *buf, size_t n, struct cg_cpu_stat *out)
{
    static const char *const keys[] = {"nr_periods", "nr_throttled", NULL};
    uint64_t vals[2] = {0, 0};
    int found = parse_flat_keyed(buf, n, keys, vals);

    if (found < 0)
        return found;
    out->nr_periods = vals[0];
    out->nr_throttled = vals[1];
    out->have = found > 0;
    return 0;
}

int procparse_memory_events(const char *buf, size_t n, struct cg_mem_events *out)
{
    /* v1 memory.oom_control also has oom_kill_disable and under_oom: both are
     * states, not counters, and are skipped like any other key. */
    static const char *const keys[] = {"high", "max", "oom", "oom_kill", NULL};
    uint64_t vals[4] = {0, 0, 0, 0};
    int found = parse_flat_keyed(buf, n, keys, vals);

    if (found < 0)
        return found;
    out->high = vals[0];
    out->max = vals[1];
    out->oom = vals[2];
    out->oom_kill = vals[3];
    out->have = found > 0;
    return 0;
}

int procparse_u64_file(const char *buf, size_t n, uint64_t *out)
{
    /* v1 reports "no limit" as PAGE_COUNTER_MAX in bytes, 9223372036854771712
     * with 4 KiB pages and other values with other page sizes; no real
     * amount reaches 2^62. */
    const uint64_t unlimited_from = UINT64_C(1) << 62;
    struct span s = span_trim(span_of(buf, n));
    uint64_t v;

    if (span_eq(s, "max")) {
        *out = UINT64_MAX;
        return 0;
    }
    if (!parse_u64(s, &v, true))
        return -EINVAL;
    *out = v >= unlimited_from ? UINT64_MAX : v;
    return 0;
}

int procparse_psi_some_avg10(const char *buf, size_t n, double *out)
{
    struct span rest = span_of(buf, n), line;

    while (span_next_line(&rest, &line)) {
        struct span word = span_next_token(&line), key, value;

        if (!span_eq(word, "some"))
            continue;
        for (word = span_next_token(&line); word.n; word = span_next_token(&line)) {
            double v;
            if (span_split(word, '=', &key, &value) && span_eq(key, "avg10")) {
                if (!parse_decimal(value, &v))
                    return -EINVAL;
                *out = v;
                return 0;
            }
        }
        return -EINVAL;
    }
    return -EINVAL;
}

/* ---- ELF build id ------------------------------------------------------ */

/* An ELF image prefix and how to read its words. */
struct elf_view {
    const unsigned char *buf;
    size_t n;
    bool is64;
    bool big;
};

static bool elf_fits(const struct elf_view *e, uint64_t off, uint64_t len)
{
    return off <= e->n && len <= e->n - off;
}

/* The width-byte word at off; the caller has checked that it fits. */
static uint64_t elf_word(const struct elf_view *e, uint64_t off, size_t width)
{
    uint64_t v = 0;

    for (size_t i = 0; i < width; i++) {
        size_t k = e->big ? i : width - 1 - i;
        v = (v << 8) | e->buf[off + k];
    }
    return v;
}

/* Where a header field is in ELF32 and in ELF64: offset and width. */
struct elf_field {
    size_t off32, w32, off64, w64;
};

static const struct elf_field f_phoff = {offsetof(Elf32_Ehdr, e_phoff), 4,
                                         offsetof(Elf64_Ehdr, e_phoff), 8};
static const struct elf_field f_shoff = {offsetof(Elf32_Ehdr, e_shoff), 4,
                                         offsetof(Elf64_Ehdr, e_shoff), 8};
static const struct elf_field f_phentsize = {offsetof(Elf32_Ehdr, e_phentsize), 2,
                                             offsetof(Elf64_Ehdr, e_phentsize), 2};
static const struct elf_field f_phnum = {offsetof(Elf32_Ehdr, e_phnum), 2,
                                         offsetof(Elf64_Ehdr, e_phnum), 2};
static const struct elf_field f_shentsize = {offsetof(Elf32_Ehdr, e_shentsize), 2,
                                             offsetof(Elf64_Ehdr, e_shentsize), 2};
static const struct elf_field f_shnum = {offsetof(Elf32_Ehdr, e_shnum), 2,
                                         offsetof(Elf64_Ehdr, e_shnum), 2};
static const struct elf_field f_p_type = {offsetof(Elf32_Phdr, p_type), 4,
                                          offsetof(Elf64_Phdr, p_type), 4};
static const struct elf_field f_p_offset = {offsetof(Elf32_Phdr, p_offset), 4,
                                            offsetof(Elf64_Phdr, p_offset), 8};
static const struct elf_field f_p_filesz = {offsetof(Elf32_Phdr, p_filesz), 4,
                                            offsetof(Elf64_Phdr, p_filesz), 8};
static const struct elf_field f_p_align = {offsetof(Elf32_Phdr, p_align), 4,
                                           offsetof(Elf64_Phdr, p_align), 8};
static const struct elf_field f_sh_type = {offsetof(Elf32_Shdr, sh_type), 4,
                                           offsetof(Elf64_Shdr, sh_type), 4};
static const struct elf_field f_sh_offset = {offsetof(Elf32_Shdr, sh_offset), 4,
                                             offsetof(Elf64_Shdr, sh_offset), 8};
static const struct elf_field f_sh_size = {offsetof(Elf32_Shdr, sh_size), 4,
                                           offsetof(Elf64_Shdr, sh_size), 8};
static const struct elf_field f_sh_info = {offsetof(Elf32_Shdr, sh_info), 4,
                                           offsetof(Elf64_Shdr, sh_info), 4};
static const struct elf_field f_sh_addralign = {offsetof(Elf32_Shdr, sh_addralign), 4,
                                                offsetof(Elf64_Shdr, sh_addralign), 8};

/* Field f of the header at base; the caller has checked that it fits. */
static uint64_t elf_get(const struct elf_view *e, uint64_t base, const struct elf_field *f)
{
    return e->is64 ? elf_word(e, base + f->off64, f->w64) : elf_word(e, base + f->off32, f->w32);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Looks through the notes in [off, off + size) for the GNU build id, which
 * it writes as hex into out[len]. Notes cut off by the end of the buffer
 * count as absent. */
static int elf_notes_find(const struct elf_view *e, uint64_t off, uint64_t size, uint64_t align,
                          char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const uint64_t hdr = 12; /* namesz, descsz, type: 4-byte words in both classes */
    uint64_t pos = 0;

    if (off > e->n)
        return -ENOENT;
    if (size > e->n - off)
        size = e->n - off;
    align = align == 8 ? 8 : 4;
    while (size - pos >= hdr) {
        uint64_t namesz = elf_word(e, off + pos, 4);
        uint64_t descsz = elf_word(e, off + pos + 4, 4);
        uint64_t type = elf_word(e, off + pos + 8, 4);
        uint64_t name = pos + hdr, desc, next;

        if (namesz > size - name)
            break;
        desc = align_up(name + namesz, align);
        if (desc > size || descsz > size - desc)
            break;
        if (type == NT_GNU_BUILD_ID && namesz == sizeof ELF_NOTE_GNU && descsz > 0 &&
            memcmp(e->buf + off + name, ELF_NOTE_GNU, sizeof ELF_NOTE_GNU) == 0) {
            if (len < 2 * descsz + 1)
                return -ERANGE;
            for (uint64_t i = 0; i < descsz; i++) {
                unsigned char b = e->buf[off + desc + i];
                out[2 * i] = hex[b >> 4];
                out[2 * i + 1] = hex[b & 15];
            }
            out[2 * descsz] = '\0';
            return 0;
        }
        next = align_up(desc + descsz, align);
        if (next > size)
            break;
        pos = next;
    }
    return -ENOENT;
}

int procparse_elf_build_id(const unsigned char *buf, size_t n, char *out, size_t len)
{
    struct elf_view e = {buf, buf ? n : 0, false, false};
    uint64_t phoff, phentsize, phnum, shoff, shentsize, shnum;
    size_t phdr_size, shdr_size;
    bool searched = false;
    int rc;

    if (e.n < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0)
        return -EINVAL;
    if (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64)
        return -EINVAL;
    if (buf[EI_DATA] != ELFDATA2LSB && buf[EI_DATA] != ELFDATA2MSB)
        return -EINVAL;
    e.is64 = buf[EI_CLASS] == ELFCLASS64;
    e.big = buf[EI_DATA] == ELFDATA2MSB;
    if (e.n < (e.is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
        return -EINVAL;
    phdr_size = e.is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    shdr_size = e.is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    phoff = elf_get(&e, 0, &f_phoff);
    phentsize = elf_get(&e, 0, &f_phentsize);
    phnum = elf_get(&e, 0, &f_phnum);
    shoff = elf_get(&e, 0, &f_shoff);
    shentsize = elf_get(&e, 0, &f_shentsize);
    shnum = elf_get(&e, 0, &f_shnum);

    /* More than 0xfeff headers: the real counts are in section header 0. */
    if ((phnum == PN_XNUM || (shnum == 0 && shoff != 0)) && shentsize >= shdr_size &&
        elf_fits(&e, shoff, shdr_size)) {
        if (phnum == PN_XNUM)
            phnum = elf_get(&e, shoff, &f_sh_info);
        if (shnum == 0)
            shnum = elf_get(&e, shoff, &f_sh_size);
    }

    /* Each table is used only when all of it is in the buffer; division keeps
     * phentsize * phnum from overflowing. */
    if (phnum > 0 && phentsize >= phdr_size && phoff <= e.n && phnum <= (e.n - phoff) / phentsize) {
        searched = true;
        for (uint64_t i = 0; i < phnum; i++) {
            uint64_t ph = phoff + i * phentsize;
            if (elf_get(&e, ph, &f_p_type) != PT_NOTE)
                continue;
            rc = elf_notes_find(&e, elf_get(&e, ph, &f_p_offset), elf_get(&e, ph, &f_p_filesz),
                                elf_get(&e, ph, &f_p_align), out, len);
            if (rc != -ENOENT)
                return rc;
        }
    }
    if (shnum > 0 && shentsize >= shdr_size && shoff <= e.n && shnum <= (e.n - shoff) / shentsize) {
        searched = true;
        for (uint64_t i = 0; i < shnum; i++) {
            uint64_t sh = shoff + i * shentsize;
            if (elf_get(&e, sh, &f_sh_type) != SHT_NOTE)
                continue;
            rc = elf_notes_find(&e, elf_get(&e, sh, &f_sh_offset), elf_get(&e, sh, &f_sh_size),
                                elf_get(&e, sh, &f_sh_addralign), out, len);
            if (rc != -ENOENT)
                return rc;
        }
    }
    /* Headers announced but not in the buffer: it was cut too short to tell. */
    if (!searched && (phnum > 0 || shnum > 0))
        return -EINVAL;
    return -ENOENT;
}
