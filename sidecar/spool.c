/* sidecar/spool.c - bundles and delivery records on disk; see spool.h. */
#include "spool.h"

#include "errbuf.h"
#include "slog.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"
#define SPOOL_BUNDLE_FILE "bundle.json"
#define RECORD_MAX 1024 /* bytes of one serialized record */

/* A record as the index keeps it: small, since there is one per bundle and
 * hook of the whole backlog (last_error stays on disk). */
struct hookrec {
    int64_t next_attempt_ns;
    int64_t updated_ns;
    uint32_t attempts;
    uint32_t file_bytes; /* size of delivery-<n>.json */
    int16_t last_status;
    uint8_t state; /* enum spool_state */
    bool claimed;
};

struct entry {
    char id[SPOOL_ID_MAX];
    int64_t created_ns;
    uint64_t bytes;        /* every file of the bundle, records included */
    struct hookrec *hooks; /* owned, nhooks */
};

struct spool {
    char *dir; /* owned */
    int dirfd; /* owned, holds the flock */
    uint64_t max_bytes;
    size_t nhooks;
    pthread_mutex_t mu;
    struct entry *entries; /* owned, oldest first (created_ns, then id) */
    size_t n, cap;
    uint64_t bytes;          /* sum of entries[].bytes */
    uint64_t reserved;       /* room promised to puts in progress */
    struct spool_counters c; /* the event counters; the rest is computed */
};

static void hookrec_set(struct hookrec *hr, const struct spool_record *r)
{
    hr->next_attempt_ns = r->next_attempt_ns;
    hr->updated_ns = r->updated_ns;
    hr->attempts = r->attempts;
    hr->last_status = (int16_t)r->last_status;
    hr->state = (uint8_t)r->state;
}

static void hookrec_get(const struct hookrec *hr, struct spool_record *r)
{
    memset(r, 0, sizeof *r);
    r->state = (enum spool_state)hr->state;
    r->attempts = hr->attempts;
    r->next_attempt_ns = hr->next_attempt_ns;
    r->updated_ns = hr->updated_ns;
    r->last_status = hr->last_status;
}

bool spool_id_valid(const char *id)
{
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (!ok)
            return false;
    }
    return n > 0 && n < SPOOL_ID_MAX;
}

const char *spool_state_name(enum spool_state st)
{
    switch (st) {
    case SPOOL_NONE:
        return "none";
    case SPOOL_PENDING:
        return "pending";
    case SPOOL_DELIVERED:
        return "delivered";
    case SPOOL_FAILED:
        return "failed";
    }
    return "?";
}

static bool parse_state(const char *s, enum spool_state *out)
{
    static const enum spool_state all[] = {SPOOL_PENDING, SPOOL_DELIVERED, SPOOL_FAILED};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, spool_state_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

static void record_name(size_t hook, char *buf, size_t len)
{
    snprintf(buf, len, "delivery-%zu.json", hook);
}

static void record_tmp_name(size_t hook, char *buf, size_t len)
{
    snprintf(buf, len, ".delivery-%zu.json.tmp", hook);
}

/* The record as one line of JSON. Returns a new string. */
static char *record_format(size_t hook, const struct spool_record *r)
{
    json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:i, s:s}", "hook", (json_int_t)hook, "state",
                          spool_state_name(r->state), "attempts", (json_int_t)r->attempts,
                          "next_attempt_ms", (json_int_t)(r->next_attempt_ns / 1000000),
                          "updated_ms", (json_int_t)(r->updated_ns / 1000000), "last_status",
                          r->last_status, "last_error", r->last_error);
    if (!o) /* last_error not UTF-8: keep the record, lose the reason */
        o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:i, s:s}", "hook", (json_int_t)hook, "state",
                      spool_state_name(r->state), "attempts", (json_int_t)r->attempts,
                      "next_attempt_ms", (json_int_t)(r->next_attempt_ns / 1000000), "updated_ms",
                      (json_int_t)(r->updated_ns / 1000000), "last_status", r->last_status,
                      "last_error", "?");
    if (!o) {
        fprintf(stderr, "stakeout: out of memory\n");
        abort();
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) {
        fprintf(stderr, "stakeout: out of memory\n");
        abort();
    }
    char *line = xasprintf("%s\n", s);
    free(s);
    return line;
}

static int record_parse(const char *buf, size_t len, struct spool_record *out)
{
    json_error_t je;
    json_t *o = json_loadb(buf, len, 0, &je);
    if (!o)
        return -EINVAL;
    int rc = -EINVAL;
    const char *state = NULL, *last_error = "";
    json_int_t attempts = 0, next_ms = 0, updated_ms = 0, status = 0;
    if (json_unpack(o, "{s:s, s:I, s:I, s?I, s?I, s?s}", "state", &state, "attempts", &attempts,
                    "next_attempt_ms", &next_ms, "updated_ms", &updated_ms, "last_status", &status,
                    "last_error", &last_error) != 0)
        goto out;
    struct spool_record r;
    memset(&r, 0, sizeof r);
    if (!parse_state(state, &r.state) || attempts < 0 || attempts > UINT32_MAX || next_ms < 0 ||
        next_ms > INT64_MAX / 1000000 || updated_ms < 0 || updated_ms > INT64_MAX / 1000000 ||
        status < 0 || status > 999)
        goto out;
    r.attempts = (uint32_t)attempts;
    r.next_attempt_ns = (int64_t)next_ms * 1000000;
    r.updated_ns = (int64_t)updated_ms * 1000000;
    r.last_status = (int)status;
    snprintf(r.last_error, sizeof r.last_error, "%s", last_error);
    *out = r;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* ---- file helpers: every one retries EINTR and returns 0 or -errno ----- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int fsync_fd(int fd)
{
    while (fsync(fd) == -1) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

static int close_fd(int fd)
{
    /* Linux releases the fd even when close fails; EINTR is not retried */
    if (close(fd) == -1 && errno != EINTR)
        return -errno;
    return 0;
}

/* Create name in dfd (it must not exist), write data, set the mtime when
 * mtime_ns >= 0, fsync, close. On error the file is removed. */
static int write_file_at(int dfd, const char *name, const void *data, size_t len, int64_t mtime_ns)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1)
        return -errno;
    int rc = write_all(fd, data, len);
    if (rc == 0 && mtime_ns >= 0) {
        struct timespec ts[2] = {{mtime_ns / 1000000000, mtime_ns % 1000000000},
                                 {mtime_ns / 1000000000, mtime_ns % 1000000000}};
        if (futimens(fd, ts) == -1)
            rc = -errno;
    }
    if (rc == 0)
        rc = fsync_fd(fd);
    int crc = close_fd(fd);
    if (rc == 0)
        rc = crc;
    if (rc != 0)
        unlinkat(dfd, name, 0);
    return rc;
}

/* Copy the file at src into dfd/name, fsync'd (moving across filesystems). */
static int copy_file_at(const char *src, int dfd, const char *name)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in == -1)
        return -errno;
    int rc = 0;
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out == -1) {
        rc = -errno;
        goto close_in;
    }
    char *buf = xmalloc(64 * 1024);
    for (;;) {
        ssize_t r = read(in, buf, 64 * 1024);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        rc = write_all(out, buf, (size_t)r);
        if (rc != 0)
            break;
    }
    free(buf);
    if (rc == 0)
        rc = fsync_fd(out);
    int crc = close_fd(out);
    if (rc == 0)
        rc = crc;
    if (rc != 0)
        unlinkat(dfd, name, 0);
close_in:
    close(in);
    return rc;
}

static int fsync_at(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    int rc = fsync_fd(fd);
    close(fd);
    return rc;
}

/* Remove dfd/name, a directory holding only files. */
static int remove_flat_dir(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(fd, de->d_name, 0) == -1 && errno != ENOENT && rc == 0)
            rc = -errno;
    }
    closedir(d);
    if (unlinkat(dfd, name, AT_REMOVEDIR) == -1 && rc == 0)
        rc = -errno;
    return rc;
}

static ssize_t read_small_at(int dfd, const char *name, char *buf, size_t len)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    size_t got = 0;
    ssize_t rc = 0;
    while (got < len - 1) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (rc < 0)
        return rc;
    buf[got] = '\0';
    return (ssize_t)got;
}

/* ---- the index (callers hold s->mu) ------------------------------------- */

static struct entry *find(struct spool *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->entries[i].id, id) == 0)
            return &s->entries[i];
    }
    return NULL;
}

static bool entry_before(const struct entry *a, const struct entry *b)
{
    if (a->created_ns != b->created_ns)
        return a->created_ns < b->created_ns;
    return strcmp(a->id, b->id) < 0;
}

/* Insert e (moved in) keeping the order. */
static void insert(struct spool *s, struct entry *e)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->entries = xreallocarray(s->entries, s->cap, sizeof *s->entries);
    }
    size_t i = s->n;
    while (i > 0 && entry_before(e, &s->entries[i - 1]))
        i--;
    memmove(&s->entries[i + 1], &s->entries[i], (s->n - i) * sizeof *s->entries);
    s->entries[i] = *e;
    s->n++;
    s->bytes += e->bytes;
}

static void drop_at(struct spool *s, size_t i)
{
    s->bytes -= s->entries[i].bytes;
    free(s->entries[i].hooks);
    memmove(&s->entries[i], &s->entries[i + 1], (s->n - i - 1) * sizeof *s->entries);
    s->n--;
}

static bool entry_claimed(const struct spool *s, const struct entry *e)
{
    for (size_t h = 0; h < s->nhooks; h++) {
        if (e->hooks[h].claimed)
            return true;
    }
    return false;
}

static size_t entry_pending(const struct spool *s, const struct entry *e)
{
    size_t n = 0;
    for (size_t h = 0; h < s->nhooks; h++)
        n += e->hooks[h].state == SPOOL_PENDING;
    return n;
}

/* Remove bundles, oldest finished first, then oldest pending, until need
 * more bytes fit under the cap. */
static int make_room(struct spool *s, uint64_t need)
{
    if (s->max_bytes == 0)
        return 0;
    while (s->bytes + s->reserved + need > s->max_bytes) {
        size_t victim = SIZE_MAX;
        for (int pass = 0; pass < 2 && victim == SIZE_MAX; pass++) {
            for (size_t i = 0; i < s->n; i++) {
                const struct entry *e = &s->entries[i];
                if (entry_claimed(s, e) || (pass == 0 && entry_pending(s, e) > 0))
                    continue;
                victim = i;
                break;
            }
        }
        if (victim == SIZE_MAX)
            return -ENOSPC;
        struct entry *e = &s->entries[victim];
        size_t pending = entry_pending(s, e);
        char bytes[32], npend[32];
        snprintf(bytes, sizeof bytes, "%" PRIu64, e->bytes);
        snprintf(npend, sizeof npend, "%zu", pending);
        int rc = remove_flat_dir(s->dirfd, e->id);
        if (rc != 0 && rc != -ENOENT) {
            slog(SLOG_ERROR, "spool full: cannot remove bundle", "id", e->id, "error",
                 strerror(-rc), NULL);
            return rc;
        }
        slog(pending ? SLOG_ERROR : SLOG_WARN,
             pending ? "spool full: removed a bundle with deliveries pending"
                     : "spool full: removed the oldest finished bundle",
             "id", e->id, "bytes", bytes, "pending_deliveries", npend, NULL);
        if (pending)
            s->c.evicted_pending++;
        else
            s->c.evicted_finished++;
        drop_at(s, victim);
    }
    return 0;
}

/* ---- open --------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, 0700) == -1 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* Index the bundle directory id. Returns 0, or -ENOENT when it holds no
 * bundle.json (not ours: left alone). */
static int load_entry(struct spool *s, const char *id, struct entry *out)
{
    int fd = openat(s->dirfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    struct stat st;
    if (fstatat(fd, SPOOL_BUNDLE_FILE, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOENT;
    }
    struct entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.id, sizeof e.id, "%s", id);
    e.created_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    e.hooks = xcalloc(s->nhooks ? s->nhooks : 1, sizeof *e.hooks);

    int dfd = dup(fd);
    DIR *d = dfd == -1 ? NULL : fdopendir(dfd);
    if (!d) {
        int rc = -errno;
        if (dfd != -1)
            close(dfd);
        close(fd);
        free(e.hooks);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strncmp(de->d_name, ".delivery-", 10) == 0) {
            /* a record update that did not reach its rename */
            if (unlinkat(fd, de->d_name, 0) == 0)
                s->c.leftovers_removed++;
            continue;
        }
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            e.bytes += (uint64_t)st.st_size;
    }
    closedir(d);

    for (size_t h = 0; h < s->nhooks; h++) {
        char name[64], buf[RECORD_MAX];
        record_name(h, name, sizeof name);
        ssize_t n = read_small_at(fd, name, buf, sizeof buf);
        if (n == -ENOENT)
            continue; /* the hook came after the bundle */
        struct spool_record rec;
        if (n >= 0 && record_parse(buf, (size_t)n, &rec) == 0) {
            hookrec_set(&e.hooks[h], &rec);
            e.hooks[h].file_bytes = (uint32_t)n;
            continue;
        }
        /* unreadable record: deliver again rather than lose the alert */
        slog(SLOG_WARN, "spool: unreadable delivery record, delivering again", "id", id, "record",
             name, NULL);
        e.hooks[h].state = SPOOL_PENDING;
        e.hooks[h].next_attempt_ns = e.created_ns;
    }
    close(fd);
    *out = e;
    return 0;
}

static int scan_dir(struct spool *s, char *err, size_t errlen)
{
    int fd = dup(s->dirfd);
    DIR *d = fd == -1 ? NULL : fdopendir(fd);
    if (!d) {
        int rc = -errno;
        if (fd != -1)
            close(fd);
        errbuf_set(err, errlen, "cannot list spool %s: %s", s->dir, strerror(-rc));
        return rc;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            int rc = remove_flat_dir(s->dirfd, de->d_name);
            if (rc == 0) {
                slog(SLOG_INFO, "spool: removed an interrupted write", "dir", de->d_name, NULL);
                s->c.leftovers_removed++;
            } else {
                slog(SLOG_WARN, "spool: cannot remove an interrupted write", "dir", de->d_name,
                     "error", strerror(-rc), NULL);
            }
            continue;
        }
        if (!spool_id_valid(de->d_name))
            continue;
        struct entry e;
        if (load_entry(s, de->d_name, &e) == 0)
            insert(s, &e);
    }
    closedir(d);
    return 0;
}

int spool_open(const char *dir, uint64_t max_bytes, size_t nhooks, struct spool **out, char *err,
               size_t errlen)
{
    if (nhooks > SPOOL_MAX_HOOKS) {
        errbuf_set(err, errlen, "too many webhooks (%zu, at most %d)", nhooks, SPOOL_MAX_HOOKS);
        return -EINVAL;
    }
    int rc = mkdir_p(dir);
    if (rc != 0) {
        errbuf_set(err, errlen, "cannot create spool %s: %s", dir, strerror(-rc));
        return rc;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot open spool %s: %s", dir, strerror(-rc));
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        errbuf_set(err, errlen, "spool %s is in use by another stakeout", dir);
        close(fd);
        return rc;
    }
    struct spool *s = xcalloc(1, sizeof *s);
    s->dir = xstrdup(dir);
    s->dirfd = fd;
    s->max_bytes = max_bytes;
    s->nhooks = nhooks;
    pthread_mutex_init(&s->mu, NULL);
    rc = scan_dir(s, err, errlen);
    if (rc == 0)
        rc = make_room(s, 0);
    if (rc != 0) {
        if (err && err[0] == '\0')
            errbuf_set(err, errlen, "cannot bring spool %s under its cap: %s", dir, strerror(-rc));
        spool_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void spool_free(struct spool *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->entries[i].hooks);
    free(s->entries);
    pthread_mutex_destroy(&s->mu);
    close(s->dirfd);
    free(s->dir);
    free(s);
}

/* ---- put ---------------------------------------------------------------- */

static bool file_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n < 256 && name[0] != '.' && !strchr(name, '/') &&
           strcmp(name, SPOOL_BUNDLE_FILE) != 0 && strncmp(name, "delivery-", 9) != 0;
}

static int check_files(const struct spool_file *files, size_t nfiles, uint64_t *bytes, char *err,
                       size_t errlen)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (!file_name_ok(files[i].name)) {
            errbuf_set(err, errlen, "bad attachment name '%s'", files[i].name);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(files[i].name, files[j].name) == 0) {
                errbuf_set(err, errlen, "attachment '%s' given twice", files[i].name);
                return -EINVAL;
            }
        }
        if (files[i].path) {
            struct stat st;
            int rc = stat(files[i].path, &st) == -1 ? -errno : 0;
            if (rc == 0 && !S_ISREG(st.st_mode))
                rc = -EINVAL;
            if (rc != 0) {
                errbuf_set(err, errlen, "attachment %s: %s", files[i].path, strerror(-rc));
                return rc;
            }
            total += (uint64_t)st.st_size;
        } else {
            total += files[i].len;
        }
    }
    *bytes = total;
    return 0;
}

/* Put the files moved into the temporary directory back where they were. */
static void move_back(int tfd, const struct spool_file *files, const bool *moved, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (moved[i] && renameat(tfd, files[i].name, AT_FDCWD, files[i].path) == -1)
            slog(SLOG_WARN, "spool: cannot move an attachment back", "path", files[i].path, "error",
                 strerror(errno), NULL);
    }
}

/* Fill the temporary directory tfd. moved[i]: files[i] was renamed in. */
static int fill_tmp(struct spool *s, int tfd, const char *json, size_t json_len,
                    const struct spool_file *files, size_t nfiles, bool *moved,
                    char *const *records, int64_t created_ns, const char **what)
{
    int rc = write_file_at(tfd, SPOOL_BUNDLE_FILE, json, json_len, created_ns);
    *what = SPOOL_BUNDLE_FILE;
    for (size_t i = 0; i < nfiles && rc == 0; i++) {
        *what = files[i].name;
        if (!files[i].path) {
            rc = write_file_at(tfd, files[i].name, files[i].data, files[i].len, -1);
            continue;
        }
        if (renameat(AT_FDCWD, files[i].path, tfd, files[i].name) == 0) {
            moved[i] = true;
            rc = fsync_at(tfd, files[i].name);
        } else if (errno == EXDEV) {
            rc = copy_file_at(files[i].path, tfd, files[i].name);
        } else {
            rc = -errno;
        }
    }
    for (size_t h = 0; h < s->nhooks && rc == 0; h++) {
        char name[64];
        record_name(h, name, sizeof name);
        *what = "delivery record";
        rc = write_file_at(tfd, name, records[h], strlen(records[h]), -1);
    }
    if (rc == 0) {
        *what = "directory";
        rc = fsync_fd(tfd);
    }
    return rc;
}

int spool_put(struct spool *s, const char *id, const json_t *bundle, const struct spool_file *files,
              size_t nfiles, int64_t created_ns, char *err, size_t errlen)
{
    if (!spool_id_valid(id)) {
        errbuf_set(err, errlen, "bad bundle id '%s'", id);
        return -EINVAL;
    }
    uint64_t need = 0;
    int rc = check_files(files, nfiles, &need, err, errlen);
    if (rc != 0)
        return rc;
    /* indented for people reading the spool; reals as bundle.h rounds them */
    char *json = json_dumps(bundle, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    if (!json) {
        errbuf_set(err, errlen, "bundle cannot be serialized");
        return -EINVAL;
    }
    size_t json_len = strlen(json);
    struct entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.id, sizeof e.id, "%s", id);
    e.created_ns = created_ns;
    e.hooks = xcalloc(s->nhooks ? s->nhooks : 1, sizeof *e.hooks);
    char **records = xcalloc(s->nhooks ? s->nhooks : 1, sizeof *records);
    bool *moved = xcalloc(nfiles ? nfiles : 1, sizeof *moved);
    need += json_len;
    for (size_t h = 0; h < s->nhooks; h++) {
        struct spool_record r;
        memset(&r, 0, sizeof r);
        r.state = SPOOL_PENDING;
        r.next_attempt_ns = created_ns;
        r.updated_ns = created_ns;
        hookrec_set(&e.hooks[h], &r);
        records[h] = record_format(h, &r);
        e.hooks[h].file_bytes = (uint32_t)strlen(records[h]);
        need += e.hooks[h].file_bytes;
    }
    e.bytes = need;

    char tmp[SPOOL_ID_MAX + 8];
    snprintf(tmp, sizeof tmp, TMP_PREFIX "%s", id);
    int tfd = -1;
    bool reserved = false;

    pthread_mutex_lock(&s->mu);
    if (find(s, id)) {
        rc = -EEXIST;
        errbuf_set(err, errlen, "bundle %s already exists", id);
    } else if (s->max_bytes && need > s->max_bytes) {
        rc = -EFBIG;
        errbuf_set(err, errlen, "bundle of %" PRIu64 " bytes exceeds the spool cap of %" PRIu64,
                   need, s->max_bytes);
    } else {
        rc = make_room(s, need);
        if (rc != 0)
            errbuf_set(err, errlen,
                       "no room for %" PRIu64 " bytes under the spool cap of %" PRIu64
                       " (every bundle left is being delivered)",
                       need, s->max_bytes);
        else
            s->reserved += need;
        reserved = rc == 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        goto fail;

    if (mkdirat(s->dirfd, tmp, 0700) == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot create %s/%s: %s", s->dir, tmp, strerror(-rc));
        goto fail;
    }
    tfd = openat(s->dirfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot open %s/%s: %s", s->dir, tmp, strerror(-rc));
        goto remove_tmp;
    }
    const char *what = "";
    rc = fill_tmp(s, tfd, json, json_len, files, nfiles, moved, records, created_ns, &what);
    if (rc != 0) {
        errbuf_set(err, errlen, "cannot write %s of bundle %s: %s", what, id, strerror(-rc));
        goto remove_tmp;
    }
    if (renameat2(s->dirfd, tmp, s->dirfd, id, RENAME_NOREPLACE) == -1) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot rename bundle %s into place: %s", id, strerror(-rc));
        goto remove_tmp;
    }
    rc = fsync_fd(s->dirfd);
    if (rc != 0) {
        /* the rename may not survive a crash: undo it, report the error */
        errbuf_set(err, errlen, "cannot sync spool directory %s: %s", s->dir, strerror(-rc));
        if (renameat(s->dirfd, id, s->dirfd, tmp) == -1)
            slog(SLOG_ERROR, "spool: cannot undo a rename", "id", id, NULL);
        goto remove_tmp;
    }
    close(tfd);
    tfd = -1;
    /* sources copied across filesystems are removed once the bundle is safe */
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].path && !moved[i])
            unlink(files[i].path);
    }
    pthread_mutex_lock(&s->mu);
    s->reserved -= need;
    insert(s, &e);
    s->c.puts++;
    pthread_mutex_unlock(&s->mu);
    e.hooks = NULL; /* moved into the index */
    goto out;

remove_tmp:
    if (tfd != -1) {
        move_back(tfd, files, moved, nfiles);
        close(tfd);
        tfd = -1;
    }
    if (remove_flat_dir(s->dirfd, tmp) != 0)
        slog(SLOG_ERROR, "spool: cannot remove a failed write", "dir", tmp, NULL);
fail:
    pthread_mutex_lock(&s->mu);
    if (reserved)
        s->reserved -= need;
    s->c.put_failures++;
    pthread_mutex_unlock(&s->mu);
    slog(SLOG_ERROR, "spool: bundle not written", "id", id, "error",
         err && err[0] ? err : strerror(-rc), NULL);
out:
    for (size_t h = 0; h < s->nhooks; h++)
        free(records[h]);
    free(records);
    free(moved);
    free(e.hooks);
    free(json);
    return rc;
}

/* ---- deliveries --------------------------------------------------------- */

int spool_bundle_dir(const struct spool *s, const char *id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", s->dir, id);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool spool_claim(struct spool *s, size_t hook, int64_t now_ns, struct spool_work *out,
                 int64_t *next_ns)
{
    bool claimed = false;
    int64_t best = INT64_MAX;
    pthread_mutex_lock(&s->mu);
    struct entry *pick = NULL;
    for (size_t i = 0; i < s->n && hook < s->nhooks; i++) {
        struct hookrec *hr = &s->entries[i].hooks[hook];
        if (hr->state != SPOOL_PENDING || hr->claimed)
            continue;
        if (hr->next_attempt_ns < best) {
            best = hr->next_attempt_ns;
            pick = &s->entries[i];
        }
    }
    if (pick && best <= now_ns) {
        pick->hooks[hook].claimed = true;
        snprintf(out->id, sizeof out->id, "%s", pick->id);
        out->hook = hook;
        out->created_ns = pick->created_ns;
        hookrec_get(&pick->hooks[hook], &out->rec);
        claimed = true;
    } else {
        *next_ns = best;
    }
    pthread_mutex_unlock(&s->mu);
    return claimed;
}

int spool_update(struct spool *s, const char *id, size_t hook, const struct spool_record *rec)
{
    char name[64], tmp[64];
    record_name(hook, name, sizeof name);
    record_tmp_name(hook, tmp, sizeof tmp);
    char *line = record_format(hook, rec);
    size_t len = strlen(line);
    int rc = 0;
    int fd = openat(s->dirfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        rc = -errno;
        goto index;
    }
    unlinkat(fd, tmp, 0); /* an update interrupted earlier */
    rc = write_file_at(fd, tmp, line, len, -1);
    /* No fsync of the directory: a rename lost in a crash brings back the
     * previous record, which means one more attempt (a duplicate the
     * receiver can tell by its webhook-id), never a lost delivery; the
     * pending records a bundle starts with are synced by spool_put. It
     * halves the cost of a delivery. */
    if (rc == 0 && renameat(fd, tmp, fd, name) == -1) {
        rc = -errno;
        unlinkat(fd, tmp, 0);
    }
    close(fd);
index:
    pthread_mutex_lock(&s->mu);
    struct entry *e = hook < s->nhooks ? find(s, id) : NULL;
    if (e) {
        struct hookrec *hr = &e->hooks[hook];
        hookrec_set(hr, rec);
        hr->claimed = false;
        if (rc == 0) {
            e->bytes = e->bytes - hr->file_bytes + len;
            s->bytes = s->bytes - hr->file_bytes + len;
            hr->file_bytes = (uint32_t)len;
        }
    } else if (rc == 0) {
        rc = -ENOENT;
    }
    pthread_mutex_unlock(&s->mu);
    free(line);
    return rc;
}

void spool_unclaim(struct spool *s, const char *id, size_t hook)
{
    pthread_mutex_lock(&s->mu);
    struct entry *e = hook < s->nhooks ? find(s, id) : NULL;
    if (e)
        e->hooks[hook].claimed = false;
    pthread_mutex_unlock(&s->mu);
}

size_t spool_pending(struct spool *s, struct spool_work *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        const struct entry *e = &s->entries[i];
        for (size_t h = 0; h < s->nhooks; h++) {
            if (e->hooks[h].state != SPOOL_PENDING)
                continue;
            if (n < max) {
                snprintf(out[n].id, sizeof out[n].id, "%s", e->id);
                out[n].hook = h;
                out[n].created_ns = e->created_ns;
                hookrec_get(&e->hooks[h], &out[n].rec);
            }
            n++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

int spool_record_read(const struct spool *s, const char *id, size_t hook, struct spool_record *out)
{
    if (!spool_id_valid(id))
        return -EINVAL;
    char path[SPOOL_ID_MAX + 64], buf[RECORD_MAX];
    char name[64];
    record_name(hook, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", id, name);
    ssize_t n = read_small_at(s->dirfd, path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    return record_parse(buf, (size_t)n, out);
}

uint64_t spool_bytes(struct spool *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t b = s->bytes;
    pthread_mutex_unlock(&s->mu);
    return b;
}

void spool_counters(struct spool *s, struct spool_counters *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->c;
    out->bytes = s->bytes;
    out->bundles = s->n;
    out->pending = 0;
    for (size_t i = 0; i < s->n; i++)
        out->pending += entry_pending(s, &s->entries[i]);
    pthread_mutex_unlock(&s->mu);
}
