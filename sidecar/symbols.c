/* sidecar/symbols.c - names for the addresses of a profile; see symbols.h.
 *
 * Two caches. Objects (struct symobj): one per ELF file, keyed by file
 * identity (device, inode, size, mtime: a file met again is found without
 * reading it) and by build-id (the same build in another container's layer
 * is found after reading only its notes). Processes (struct symproc): what
 * the snapshots of one pid saw - which object each mapping is, and its perf
 * map - so a profile can be named after the target has gone. Both are
 * bounded: the least recently used process record goes first, then objects
 * no process record points at.
 *
 * Memory: everything the cache holds (symbol tables and names, perf maps,
 * bindings, object records) and what reading an object takes while it
 * lasts is taken from one byte budget before it is allocated. When
 * something new needs room, reclaim() evicts what the snapshot under way
 * does not use, least recently used first (process records, with their
 * perf maps and their hold on objects; objects nothing points at). What
 * does not fit even then is skipped and said in the profile's notes. */
#include "symbols.h"

#include "fsread.h"
#include "membudget.h"
#include "perfmap.h"
#include "rootfs.h"
#include "procparse.h"
#include "symtab.h"
#include "units.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libiberty/demangle.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SYMBOLS_MAX_PROCS 64
#define SYMBOLS_MAX_OBJECTS 1024     /* unreferenced ones beyond this are evicted */
#define SYMBOLS_MAX_MAPS (64u << 20) /* bytes of /proc/PID/maps */
#define SYMBOLS_MAX_VDSO (1u << 20)
#define SYMBOLS_MAX_PERFMAP (512ull << 20) /* bytes of one perf map, in total */
#define SYMBOLS_DEFAULT_DEBUG_ROOT "/usr/lib/debug"
#define BUILD_ID_LEN (2 * SYMTAB_BUILD_ID_MAX + 1)
#define BUDGET_KEY "symbol_cache_max_bytes" /* the rules file's name for the budget */

struct symobj {
    struct symtab *tab;          /* owned; NULL: not an ELF object we can read */
    char build_id[BUILD_ID_LEN]; /* "" when none */
    bool has_ident;              /* false for memory images ([vdso]) */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    unsigned refs; /* bindings pointing here */
    uint64_t used; /* cache tick of the last use */
};

/* A mapping a snapshot saw, and the object it is. */
struct binding {
    uint64_t start, limit, offset;
    char *file;         /* owned: path as in the maps line */
    struct symobj *obj; /* counted in obj->refs */
};

struct symproc {
    int pid;            /* 0: free slot */
    uint64_t starttime; /* tells a reused pid apart */
    struct binding *b;  /* owned */
    size_t nb, capb;
    uint64_t charged;    /* budget bytes of b and its paths */
    struct perfmap *jit; /* owned, NULL until a perf map was read */
    dev_t jit_dev;
    ino_t jit_ino;
    uint64_t jit_off;  /* bytes of it fed so far */
    bool jit_too_big;  /* past SYMBOLS_MAX_PERFMAP: not used */
    char jit_path[64]; /* as the target sees it, for notes */
    uint64_t used;
};

struct symcache {
    struct symobj **objs; /* owned, each owned */
    size_t nobjs, capobjs;
    struct symproc procs[SYMBOLS_MAX_PROCS];
    char *debug_root; /* owned */
    uint64_t tick;
    size_t parses, evictions;
    struct membudget budget; /* its reclaim hook evicts from this cache */
};

/* One snapshot's working state. */
struct snap {
    struct symcache *c;
    int pid;
    int rootfd; /* /proc/PID/root, -1 when not accessible */
    int memfd;  /* /proc/PID/mem, or a negative errno once tried */
    bool mem_tried;
    size_t objects, failed, over_budget;
    char first_failure[320];
    char first_over[320];
};

/* ---- small I/O helpers --------------------------------------------- */

static int open_retry(const char *path, int flags)
{
    int fd;
    do {
        fd = open(path, flags);
    } while (fd == -1 && errno == EINTR);
    return fd == -1 ? -errno : fd;
}

/* The pid as the target knows it (last NSpid field), for its perf map. */
static int ns_pid(int pid)
{
    char path[64], buf[16384];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0)
        return pid;
    const char *line = strstr(buf, "\nNSpid:");
    if (!line)
        return pid;
    const char *p = line + 7, *end = buf + n;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol)
        end = eol;
    uint64_t v, last = 0;
    bool any = false;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (!procparse_dec(&p, end, &v))
            break;
        last = v;
        any = true;
    }
    return any && last > 0 && last <= INT32_MAX ? (int)last : pid;
}

/* ---- the object cache ---------------------------------------------- */

static void obj_free(struct symcache *c, struct symobj *o)
{
    if (!o)
        return;
    symtab_free(o->tab);
    membudget_give(&c->budget, sizeof *o);
    free(o);
}

static bool same_ident(const struct symobj *o, const struct stat *st)
{
    return o->has_ident && o->dev == st->st_dev && o->ino == st->st_ino && o->size == st->st_size &&
           o->mtime.tv_sec == st->st_mtim.tv_sec && o->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static struct symobj *find_by_ident(struct symcache *c, const struct stat *st)
{
    for (size_t i = 0; i < c->nobjs; i++) {
        if (same_ident(c->objs[i], st))
            return c->objs[i];
    }
    return NULL;
}

static struct symobj *find_by_build_id(struct symcache *c, const char *id)
{
    if (!id[0])
        return NULL;
    for (size_t i = 0; i < c->nobjs; i++) {
        if (c->objs[i]->tab && strcmp(c->objs[i]->build_id, id) == 0)
            return c->objs[i];
    }
    return NULL;
}

/* Frees the least recently used object nothing points at, if any. */
static void evict_object(struct symcache *c)
{
    size_t victim = c->nobjs;
    for (size_t i = 0; i < c->nobjs; i++) {
        if (c->objs[i]->refs == 0 &&
            (victim == c->nobjs || c->objs[i]->used < c->objs[victim]->used))
            victim = i;
    }
    if (victim == c->nobjs)
        return;
    obj_free(c, c->objs[victim]);
    c->objs[victim] = c->objs[--c->nobjs];
}

/* Takes tab (may be NULL); st is the file's identity, NULL for memory.
 * NULL (tab freed) when the budget has no room for the record. */
static struct symobj *obj_add(struct symcache *c, struct symtab *tab, const char *build_id,
                              const struct stat *st)
{
    if (!membudget_take(&c->budget, sizeof(struct symobj))) {
        symtab_free(tab);
        return NULL;
    }
    struct symobj *o = xcalloc(1, sizeof *o);
    o->tab = tab;
    snprintf(o->build_id, sizeof o->build_id, "%s", build_id);
    if (st) {
        o->has_ident = true;
        o->dev = st->st_dev;
        o->ino = st->st_ino;
        o->size = st->st_size;
        o->mtime = st->st_mtim;
    }
    o->used = c->tick;
    if (c->nobjs >= SYMBOLS_MAX_OBJECTS)
        evict_object(c);
    if (c->nobjs == c->capobjs) {
        c->capobjs = c->capobjs ? 2 * c->capobjs : 32;
        c->objs = xreallocarray(c->objs, c->capobjs, sizeof *c->objs);
    }
    c->objs[c->nobjs++] = o;
    return o;
}

/* ---- process records ------------------------------------------------ */

static void proc_clear(struct symcache *c, struct symproc *pr)
{
    for (size_t i = 0; i < pr->nb; i++) {
        pr->b[i].obj->refs--;
        free(pr->b[i].file);
    }
    free(pr->b);
    membudget_give(&c->budget, pr->charged);
    perfmap_free(pr->jit);
    memset(pr, 0, sizeof *pr);
}

static struct symproc *proc_find(struct symcache *c, int pid)
{
    for (size_t i = 0; i < SYMBOLS_MAX_PROCS; i++) {
        if (pid > 0 && c->procs[i].pid == pid)
            return &c->procs[i];
    }
    return NULL;
}

/* The record of pid, new (or renewed, when the pid now names another
 * process) if need be; the least recently used record makes room. */
static struct symproc *proc_get(struct symcache *c, int pid, uint64_t starttime)
{
    struct symproc *pr = proc_find(c, pid);

    if (pr && starttime && pr->starttime && pr->starttime != starttime)
        proc_clear(c, pr); /* the pid names another process now */
    if (!pr) {
        pr = &c->procs[0];
        for (size_t i = 0; i < SYMBOLS_MAX_PROCS; i++) {
            if (c->procs[i].pid == 0) {
                pr = &c->procs[i];
                break;
            }
            if (c->procs[i].used < pr->used)
                pr = &c->procs[i];
        }
        proc_clear(c, pr);
    }
    if (pr->pid == 0) {
        pr->pid = pid;
        pr->starttime = starttime;
    }
    pr->used = c->tick;
    return pr;
}

/* Ties ml to obj in pr; false when the budget has no room for that. */
static bool proc_bind(struct symcache *c, struct symproc *pr, const struct proc_map *ml,
                      struct symobj *obj)
{
    for (size_t i = 0; i < pr->nb; i++) {
        struct binding *b = &pr->b[i];
        if (b->start == ml->start && b->limit == ml->end && b->offset == ml->offset &&
            strlen(b->file) == ml->path_len && memcmp(b->file, ml->path, ml->path_len) == 0) {
            b->obj->refs--;
            b->obj = obj;
            obj->refs++;
            return true;
        }
    }
    if (pr->nb == pr->capb) {
        uint64_t old = (uint64_t)pr->capb * sizeof *pr->b;
        size_t cap = membudget_grow(&c->budget, pr->capb, pr->nb + 1, sizeof *pr->b, old);
        if (cap == 0)
            return false;
        pr->charged += (uint64_t)(cap - pr->capb) * sizeof *pr->b;
        pr->b = xreallocarray(pr->b, cap, sizeof *pr->b);
        pr->capb = cap;
        membudget_give(&c->budget, old);
    }
    if (!membudget_take(&c->budget, ml->path_len + 1))
        return false;
    pr->charged += ml->path_len + 1;
    pr->b[pr->nb++] =
        (struct binding){ml->start, ml->end, ml->offset, xstrndup(ml->path, ml->path_len), obj};
    obj->refs++;
    return true;
}

/* ---- the budget ------------------------------------------------------- */

/* membudget's reclaim hook: evicts, least recently used first, what the
 * snapshot or naming under way (c->tick) has not touched - process records
 * (their perf maps, and their hold on objects) and objects nothing points
 * at - until need more bytes fit. */
static bool reclaim(void *ctx, uint64_t need)
{
    struct symcache *c = ctx;

    while (c->budget.used > c->budget.limit - need) {
        struct symproc *pr = NULL;
        size_t oi = c->nobjs;
        for (size_t i = 0; i < SYMBOLS_MAX_PROCS; i++) {
            const struct symproc *x = &c->procs[i];
            if (x->pid != 0 && x->used < c->tick && (!pr || x->used < pr->used))
                pr = &c->procs[i];
        }
        for (size_t i = 0; i < c->nobjs; i++) {
            const struct symobj *o = c->objs[i];
            if (o->refs == 0 && o->used < c->tick &&
                (oi == c->nobjs || o->used < c->objs[oi]->used))
                oi = i;
        }
        if (!pr && oi == c->nobjs)
            return false;
        if (pr && (oi == c->nobjs || pr->used <= c->objs[oi]->used)) {
            proc_clear(c, pr);
        } else {
            obj_free(c, c->objs[oi]);
            c->objs[oi] = c->objs[--c->nobjs];
        }
        c->evictions++;
    }
    return true;
}

/* ---- one snapshot ----------------------------------------------------- */

static void snap_failed(struct snap *s, const char *what, int err)
{
    s->failed++;
    if (s->failed == 1)
        snprintf(s->first_failure, sizeof s->first_failure, "%s: %s", what,
                 err == ESTALE ? "the file at that path is not the one mapped (replaced?)"
                               : strerror(err));
}

/* what did not fit the budget even after evicting all it could */
static void snap_over_budget(struct snap *s, const char *what)
{
    s->over_budget++;
    if (s->over_budget == 1)
        snprintf(s->first_over, sizeof s->first_over, "%s", what);
}

/* Reads n bytes of the target's memory at addr; false when it cannot. */
static bool read_target(struct snap *s, uint64_t addr, void *buf, size_t n)
{
    char path[64];
    size_t got = 0;

    if (!s->mem_tried) {
        snprintf(path, sizeof path, "/proc/%d/mem", s->pid);
        s->memfd = open_retry(path, O_RDONLY | O_CLOEXEC);
        s->mem_tried = true;
    }
    while (s->memfd >= 0 && got < n) {
        ssize_t r = pread(s->memfd, (char *)buf + got, n - got, (off_t)(addr + got));
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return s->memfd >= 0 && got == n;
}

/* An object without a .symtab: its separate debug file, by build-id. One
 * too large for the budget is left out (the object keeps its .dynsym). */
static void add_debug_file(struct snap *s, struct symtab *tab, const char *objpath)
{
    const char *id = symtab_build_id(tab);
    char path[4096];
    int fd;

    if (strlen(id) < 3)
        return;
    snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug", s->c->debug_root, id, id + 2);
    for (int where = 0; where < 2; where++) {
        fd = where == 0 ? rootfs_open(s->rootfd, path)
                        : open_retry(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
            continue;
        int rc = symtab_add_debug_fd(tab, fd, NULL, 0);
        close(fd);
        if (rc == -ENOBUFS) {
            char what[320];
            snprintf(what, sizeof what, "the debug file of %s", objpath);
            snap_over_budget(s, what);
        }
        if (rc == 0 || rc == -ENOBUFS)
            return;
    }
}

/* Whether fd holds what the target has mapped for ml: the first page of
 * the mapping, read from its memory, equals the file at the mapping's
 * offset. (Code pages are not written to, so equal bytes mean the same
 * build of the object; for when the inode cannot tell - overlayfs may show
 * another inode number through the path than in maps.) */
static bool same_content(struct snap *s, const struct proc_map *ml, int fd)
{
    unsigned char mem[4096], file[4096];
    size_t n = ml->end - ml->start < sizeof mem ? (size_t)(ml->end - ml->start) : sizeof mem;
    size_t got = 0;

    if (!read_target(s, ml->start, mem, n))
        return false;
    while (got < n) {
        ssize_t r = pread(fd, file + got, n - got, (off_t)(ml->offset + got));
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return memcmp(mem, file, n) == 0;
}

/* The mapped file of ml, opened as the target sees it: its map_files entry
 * (which needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), else its path
 * inside the target's root if that is still the file mapped: same inode,
 * or failing that (reinstalled, overlayfs) the same bytes. */
static int open_mapped(struct snap *s, const struct proc_map *ml, const char *path)
{
    char mf[96];
    struct stat st;
    int fd, err;

    snprintf(mf, sizeof mf, "/proc/%d/map_files/%llx-%llx", s->pid, (unsigned long long)ml->start,
             (unsigned long long)ml->end);
    fd = open_retry(mf, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0)
        return fd;
    err = fd;
    fd = rootfs_open(s->rootfd, path);
    if (fd < 0)
        return s->rootfd < 0 ? err : fd;
    if (fstat(fd, &st) == -1) {
        err = -errno;
        close(fd);
        return err;
    }
    /* a deleted file's path names another inode now, whatever its number */
    bool same_inode = !ml->deleted && (uint64_t)st.st_ino == ml->inode;
    if (!same_inode && !same_content(s, ml, fd)) {
        close(fd);
        return -ESTALE; /* replaced since it was mapped (an upgrade) */
    }
    return fd;
}

static struct symobj *snap_file(struct snap *s, const struct proc_map *ml)
{
    struct symcache *c = s->c;
    char *path = xstrndup(ml->path, ml->path_len);
    char id[BUILD_ID_LEN] = "";
    struct symtab *tab = NULL;
    struct symobj *obj = NULL;
    struct stat st;
    int rc, fd = open_mapped(s, ml, path);

    if (fd < 0) {
        snap_failed(s, path, -fd);
        goto out;
    }
    if (fstat(fd, &st) == -1) {
        snap_failed(s, path, errno);
        goto out;
    }
    obj = find_by_ident(c, &st);
    if (obj)
        goto out;
    rc = symtab_build_id_fd(fd, &c->budget, id, sizeof id);
    if (rc == 0 && (obj = find_by_build_id(c, id)) != NULL)
        goto out;
    if (rc == 0 || rc == -ENOENT) {
        c->parses++;
        rc = symtab_read_fd(fd, &c->budget, &tab, NULL, 0);
    }
    if (rc == 0 && !symtab_has_full(tab))
        add_debug_file(s, tab, path);
    if (rc == 0 || rc == -EINVAL) { /* not ELF: remembered, so not looked at again */
        obj = obj_add(c, tab, tab ? symtab_build_id(tab) : "", &st);
        if (!obj)
            snap_over_budget(s, path);
    } else if (rc == -ENOBUFS) {
        snap_over_budget(s, path); /* not remembered: tried again when there is room */
    } else {
        snap_failed(s, path, -rc);
    }
out:
    if (fd >= 0)
        close(fd);
    free(path);
    if (obj)
        obj->used = c->tick;
    return obj;
}

/* The [vdso]: no file, so its image is read from the target's memory. */
static struct symobj *snap_vdso(struct snap *s, const struct proc_map *ml)
{
    struct symcache *c = s->c;
    size_t len =
        ml->end - ml->start > SYMBOLS_MAX_VDSO ? SYMBOLS_MAX_VDSO : (size_t)(ml->end - ml->start);
    char id[BUILD_ID_LEN];
    struct symtab *tab = NULL;
    struct symobj *obj = NULL;
    unsigned char *img = NULL;
    int rc;

    if (!membudget_take(&c->budget, len)) {
        snap_over_budget(s, "[vdso]");
        return NULL;
    }
    img = xmalloc(len);
    if (!read_target(s, ml->start, img, len)) {
        snap_failed(s, "[vdso]", s->memfd < 0 ? -s->memfd : EIO);
        goto out;
    }
    if (procparse_elf_build_id(img, len, id, sizeof id) != 0)
        id[0] = '\0';
    obj = find_by_build_id(c, id);
    if (obj)
        goto out;
    c->parses++;
    rc = symtab_read_mem(img, len, &c->budget, &tab, NULL, 0);
    if (rc == 0)
        obj = obj_add(c, tab, symtab_build_id(tab), NULL);
    if (rc == -ENOBUFS || (rc == 0 && !obj))
        snap_over_budget(s, "[vdso]");
out:
    free(img);
    membudget_give(&c->budget, len);
    if (obj)
        obj->used = c->tick;
    return obj;
}

/* The build-id of a file that could not be opened, from the target's
 * memory: the mapping of the file's first page (head, when it is the same
 * file as ml) holds the ELF headers and, as linkers place it, the build-id
 * note. So its frames can still be named elsewhere, by build-id. */
static void build_id_in_memory(struct snap *s, const struct proc_map *ml,
                               const struct proc_map *head, char *out, size_t len)
{
    unsigned char *buf;
    size_t n;

    if (head->path_len != ml->path_len || head->inode != ml->inode ||
        memcmp(head->path, ml->path, ml->path_len) != 0 || head->perms[0] != 'r')
        return;
    n = head->end - head->start < 65536 ? (size_t)(head->end - head->start) : 65536;
    buf = xmalloc(n);
    if (!read_target(s, head->start, buf, n) || procparse_elf_build_id(buf, n, out, len) != 0)
        out[0] = '\0';
    free(buf);
}

/* p's mapping for ml: the one it has, or a new one. */
static void profile_mapping(struct profile *p, const struct proc_map *ml, const char *build_id)
{
    for (uint32_t i = 0; i < p->nmappings; i++) {
        struct prof_mapping *m = &p->mappings[i];
        if (m->start == ml->start && m->limit == ml->end && m->offset == ml->offset &&
            strlen(m->file) == ml->path_len && memcmp(m->file, ml->path, ml->path_len) == 0) {
            if (!m->build_id[0] && build_id[0])
                snprintf(m->build_id, sizeof m->build_id, "%s", build_id);
            return;
        }
    }
    char *file = xstrndup(ml->path, ml->path_len);
    profile_add_mapping(p, ml->start, ml->end, ml->offset, file, build_id);
    free(file);
}

/* Feeds what the JIT appended to /tmp/perf-NSPID.map since the last read.
 * Past SYMBOLS_MAX_PERFMAP bytes the map is not used at all: any later line
 * could name an address anew. */
static void snap_perfmap(struct snap *s, struct symproc *pr)
{
    int ids[2] = {ns_pid(s->pid), s->pid};
    char path[64], buf[65536];
    struct stat st;
    int fd = -1;

    for (int i = 0; i < 2 && fd < 0; i++) {
        if (i == 1 && ids[1] == ids[0])
            break;
        snprintf(path, sizeof path, "/tmp/perf-%d.map", ids[i]);
        fd = rootfs_open(s->rootfd, path);
    }
    if (fd < 0)
        return;
    if (fstat(fd, &st) == -1)
        goto out;
    if (!pr->jit || pr->jit_dev != st.st_dev || pr->jit_ino != st.st_ino ||
        (uint64_t)st.st_size < pr->jit_off) {
        perfmap_free(pr->jit);
        pr->jit = perfmap_new(&s->c->budget);
        pr->jit_dev = st.st_dev;
        pr->jit_ino = st.st_ino;
        pr->jit_off = 0;
        pr->jit_too_big = false;
        snprintf(pr->jit_path, sizeof pr->jit_path, "%s", path);
    }
    while (pr->jit_off < SYMBOLS_MAX_PERFMAP) {
        ssize_t r = pread(fd, buf, sizeof buf, (off_t)pr->jit_off);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t n = (size_t)r;
        if (n > SYMBOLS_MAX_PERFMAP - pr->jit_off)
            n = (size_t)(SYMBOLS_MAX_PERFMAP - pr->jit_off);
        perfmap_feed(pr->jit, buf, n);
        pr->jit_off += n;
    }
    if (!pr->jit_too_big && pr->jit_off >= SYMBOLS_MAX_PERFMAP &&
        (uint64_t)st.st_size > pr->jit_off) {
        perfmap_drop_rest(pr->jit);
        pr->jit_too_big = true;
    }
    perfmap_sort(pr->jit);
out:
    close(fd);
}

/* A note that replaces the one starting with the same prefix, if any: the
 * snapshots before and after a capture count the same trouble anew. */
static void note_set(struct profile *p, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note_set(struct profile *p, const char *prefix, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strncmp(p->notes[i], prefix, strlen(prefix)) == 0) {
            free(p->notes[i]);
            p->notes[i] = xstrdup(text);
            return;
        }
    }
    profile_note(p, "%s", text);
}

/* What the perf map left out, in p's notes. */
static void note_perfmap(struct symcache *c, const struct symproc *pr, struct profile *p)
{
    char prefix[96], limit[32];
    bool by_budget = false;
    size_t dropped = pr->jit ? perfmap_dropped(pr->jit, &by_budget) : 0;

    if (!p || dropped == 0)
        return;
    snprintf(prefix, sizeof prefix, "symbols: perf map %s", pr->jit_path);
    units_format_size((double)c->budget.limit, limit, sizeof limit);
    if (pr->jit_too_big)
        note_set(p, prefix, "%s is larger than %lluMiB: not used, JIT frames stay unnamed", prefix,
                 (unsigned long long)(SYMBOLS_MAX_PERFMAP >> 20));
    else if (by_budget)
        note_set(p, prefix,
                 "%s: %zu lines not kept (%zu kept): they do not fit %s (%s); JIT frames in "
                 "the addresses they cover stay unnamed",
                 prefix, dropped, perfmap_count(pr->jit), BUDGET_KEY, limit);
    else
        note_set(p, prefix,
                 "%s: %zu lines not kept past the first %u; JIT frames in the addresses they "
                 "cover stay unnamed",
                 prefix, dropped, PERFMAP_MAX_ENTRIES);
}

/* A note, unless p has it already (snapshots before and after a capture
 * usually meet the same trouble). */
static void note_once(struct profile *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_once(struct profile *p, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strcmp(p->notes[i], text) == 0)
            return;
    }
    profile_note(p, "%s", text);
}

static uint64_t start_time(int pid)
{
    char path[64], buf[1024];
    struct proc_stat st;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    ssize_t n = fsread(path, buf, sizeof buf);
    if (n <= 0 || procparse_stat(buf, (size_t)n, &st) != 0)
        return 0;
    return st.starttime;
}

int symbols_snapshot(struct symcache *c, int pid, struct profile *p)
{
    struct snap s = {.c = c, .pid = pid, .rootfd = -1, .memfd = -1};
    char path[64], *maps = NULL;
    size_t len = 0;
    int rc;

    if (pid <= 0)
        return -EINVAL;
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    rc = fsread_alloc(path, SYMBOLS_MAX_MAPS, &maps, &len);
    if (rc != 0)
        return rc;
    c->tick++;
    struct symproc *pr = proc_get(c, pid, start_time(pid));
    if (p && p->pid == 0)
        p->pid = pid;
    s.rootfd = rootfs_open_root(pid);

    struct proc_map head = {0}; /* the last mapping of a file's start */
    for (const char *line = maps, *end = maps + len; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((nl ? nl : end) - line);
        struct proc_map ml;
        struct symobj *obj = NULL;
        char id[BUILD_ID_LEN] = "";

        if (procparse_maps_line(line, n, &ml) != 0) {
            line += n + 1;
            continue;
        }
        if (ml.offset == 0 && ml.path_len > 0)
            head = ml;
        bool vdso = ml.path_len == 6 && memcmp(ml.path, "[vdso]", 6) == 0;
        if (ml.perms[2] == 'x' && (vdso || (ml.path_len > 0 && ml.path[0] == '/'))) {
            s.objects++;
            obj = vdso ? snap_vdso(&s, &ml) : snap_file(&s, &ml);
            if (!obj && !vdso)
                build_id_in_memory(&s, &ml, &head, id, sizeof id);
            if (p)
                profile_mapping(p, &ml, obj ? obj->build_id : id);
            if (obj && !proc_bind(c, pr, &ml, obj)) {
                char *file = xstrndup(ml.path, ml.path_len);
                snap_over_budget(&s, file); /* named by build-id while it stays cached */
                free(file);
            }
        }
        line += n + 1;
    }
    snap_perfmap(&s, pr);
    note_perfmap(c, pr, p);

    if (p && s.failed > 0)
        note_once(p, "symbols: %zu of %zu mapped objects could not be read (first: %s)", s.failed,
                  s.objects, s.first_failure);
    if (p && s.over_budget > 0) {
        char limit[32];
        units_format_size((double)c->budget.limit, limit, sizeof limit);
        note_once(p,
                  "symbols: %zu of %zu mapped objects not read: their symbol tables do not fit "
                  "%s (%s) (first: %s)",
                  s.over_budget, s.objects, BUDGET_KEY, limit, s.first_over);
    }
    if (s.rootfd >= 0)
        close(s.rootfd);
    if (s.memfd >= 0)
        close(s.memfd);
    free(maps);
    return 0;
}

/* ---- naming ------------------------------------------------------------ */

/* The demangled form of name as a new string, NULL when it is not mangled.
 * A symbol version ("_Z3foov@@LIB_1.0") is kept after the demangled name. */
static char *demangle_dup(const char *name)
{
    if (name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
        return NULL;
    const char *at = strchr(name, '@');
    char *base = at ? xstrndup(name, (size_t)(at - name)) : NULL;
    char *d = cplus_demangle(base ? base : name, DMGL_PARAMS | DMGL_ANSI);
    free(base);
    if (d && at) {
        char *v = xasprintf("%s%s", d, at);
        free(d);
        d = v;
    }
    return d;
}

bool symbols_demangle(const char *name, char *out, size_t len)
{
    if (!name || !out || len == 0)
        return false;
    char *d = demangle_dup(name);
    if (!d)
        return false;
    snprintf(out, len, "%s", d);
    free(d);
    return true;
}

static struct symobj *mapping_object(struct symcache *c, const struct symproc *pr,
                                     const struct prof_mapping *m)
{
    struct symobj *obj = NULL;
    for (size_t i = 0; pr && i < pr->nb && !obj; i++) {
        const struct binding *b = &pr->b[i];
        if (b->start == m->start && b->limit == m->limit && b->offset == m->offset &&
            strcmp(b->file, m->file) == 0)
            obj = b->obj;
    }
    if (!obj)
        obj = find_by_build_id(c, m->build_id);
    if (obj)
        obj->used = c->tick;
    return obj;
}

size_t symbols_resolve(struct symcache *c, struct profile *p)
{
    bool *ret_addr = xcalloc((size_t)p->nframes + 1, sizeof *ret_addr);
    struct symobj **objs = xcalloc((size_t)p->nmappings + 1, sizeof *objs);
    const struct symproc *pr = proc_find(c, p->pid);
    size_t named = 0;

    c->tick++;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const struct prof_stack *st = &p->stacks[s];
        for (uint32_t k = 1; k < st->nframes; k++) {
            if (st->frames[k] >= 1 && st->frames[k] <= p->nframes)
                ret_addr[st->frames[k]] = true;
        }
    }
    for (uint32_t i = 0; i < p->nmappings; i++)
        objs[i + 1] = mapping_object(c, pr, &p->mappings[i]);

    for (uint32_t id = 1; id <= p->nframes; id++) {
        const struct prof_frame *f = &p->frames[id - 1];
        uint32_t mid = f->mapping ? f->mapping : profile_find_mapping(p, f->addr);
        uint64_t a = f->addr;
        const char *name = NULL;

        if (f->function)
            continue;
        if (mid > p->nmappings)
            mid = 0;
        /* a return address: the call is the byte before it */
        if (ret_addr[id] && a > 0 && (mid == 0 || a - 1 >= p->mappings[mid - 1].start))
            a--;
        if (mid && objs[mid] && objs[mid]->tab) {
            const struct prof_mapping *m = &p->mappings[mid - 1];
            uint64_t va;
            if (symtab_vaddr(objs[mid]->tab, a - m->start + m->offset, &va))
                name = symtab_lookup(objs[mid]->tab, va, NULL);
        }
        if (!name && pr && pr->jit)
            name = perfmap_lookup(pr->jit, a);
        if (!name)
            continue;
        char *d = demangle_dup(name);
        profile_name_frame(p, id, d ? d : name, NULL, 0);
        free(d);
        if (mid)
            p->mappings[mid - 1].has_functions = true;
        named++;
    }
    profile_name_unknown(p);
    free(objs);
    free(ret_addr);
    return named;
}

/* ---- the cache ---------------------------------------------------------- */

struct symcache *symcache_new(void)
{
    struct symcache *c = xcalloc(1, sizeof *c);
    c->debug_root = xstrdup(SYMBOLS_DEFAULT_DEBUG_ROOT);
    membudget_init(&c->budget, SYMCACHE_DEFAULT_MAX_BYTES, reclaim, c);
    return c;
}

void symcache_free(struct symcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < SYMBOLS_MAX_PROCS; i++)
        proc_clear(c, &c->procs[i]);
    for (size_t i = 0; i < c->nobjs; i++)
        obj_free(c, c->objs[i]);
    free(c->objs);
    free(c->debug_root);
    free(c);
}

void symcache_set_debug_root(struct symcache *c, const char *dir)
{
    free(c->debug_root);
    c->debug_root = xstrdup(dir && dir[0] ? dir : SYMBOLS_DEFAULT_DEBUG_ROOT);
}

size_t symcache_parses(const struct symcache *c)
{
    return c->parses;
}

void symcache_set_max_bytes(struct symcache *c, uint64_t bytes)
{
    c->budget.limit = bytes;
    /* Between snapshots nothing is in use: with a new tick every record may
     * be evicted, so this always gets under the new limit. */
    c->tick++;
    if (c->budget.used > bytes)
        (void)reclaim(c, 0);
}

uint64_t symcache_max_bytes(const struct symcache *c)
{
    return c->budget.limit;
}

uint64_t symcache_bytes(const struct symcache *c)
{
    return c->budget.used;
}

uint64_t symcache_peak_bytes(const struct symcache *c)
{
    return c->budget.peak;
}

size_t symcache_evictions(const struct symcache *c)
{
    return c->evictions;
}
