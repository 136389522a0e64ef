/* sidecar/symtab.c - one ELF object's function symbols; see symtab.h.
 *
 * libelf does the reading, but it trusts the header's table sizes more than
 * we may: with ELF_C_READ on a descriptor it does not know the file's size,
 * so a garbage section count becomes a calloc of gigabytes. elf_check_head
 * therefore checks the header against the real size first, and every
 * section or note whose bytes we ask libelf for is checked to lie inside the
 * file before we ask. Both are also taken from the budget before we ask
 * (struct rd), so a file that is well-formed but huge (millions of
 * sections, a gigabyte of symbols) is refused, not read into memory. */
#include "symtab.h"

#include "errbuf.h"
#include "xalloc.h"

#include <elf.h>
#include <errno.h>
#include <gelf.h>
#include <limits.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYMTAB_MAX_NOTE (1u << 20) /* notes larger than this are not looked in */
/* What one section or program header costs while the file is open: libelf's
 * descriptor (about 250 bytes in elfutils 0.188) and its copy of the header,
 * and our struct sec; rounded up. */
#define SYMTAB_HEADER_BYTES 512

struct seg {
    uint64_t off, vaddr, filesz;
};

/* One symbol: [addr, end) and its name in the pool. */
struct sym {
    uint64_t addr, end;
    uint32_t name; /* offset in symtab.names */
    uint8_t sized; /* st_size > 0 */
    uint8_t bind;  /* 2 global, 1 weak, 0 local: higher wins among aliases */
};

struct symtab {
    char build_id[2 * SYMTAB_BUILD_ID_MAX + 1];
    struct seg *segs; /* owned */
    size_t nsegs;
    struct sym *syms; /* owned, sorted by addr, one per addr */
    size_t nsyms, capsyms;
    char *names; /* owned: NUL-terminated names back to back */
    size_t names_len, names_cap;
    bool full;
    struct membudget *budget; /* borrowed, may be NULL */
    uint64_t charged;         /* taken from it: the struct, segs, syms and names capacity */
};

/* One read's dealings with the budget: what it takes only while the file is
 * open (given back by rd_done), and whether it was refused. */
struct rd {
    struct membudget *b; /* borrowed, may be NULL */
    uint64_t transient;
    bool refused;
    bool foreign; /* the file's byte order is not ours: libelf converts into a copy */
};

/* Where the ELF bytes come from: a descriptor or a buffer, and how many. */
struct elf_src {
    int fd; /* -1 for a buffer */
    const unsigned char *mem;
    uint64_t size;
};

/* One section header, as much of it as we use. */
struct sec {
    uint32_t type, link;
    uint64_t flags, addr, size, off;
};

/* ---- the budget ------------------------------------------------------- */

/* n bytes for as long as the file is open; false (and refused) when not. */
static bool rd_take(struct rd *r, uint64_t n)
{
    if (r->refused || !membudget_take(r->b, n)) {
        r->refused = true;
        return false;
    }
    r->transient += n;
    return true;
}

static void rd_done(struct rd *r)
{
    membudget_give(r->b, r->transient);
    r->transient = 0;
}

/* n bytes that t keeps; false (and r refused) when not. */
static bool held_take(struct symtab *t, struct rd *r, uint64_t n)
{
    if (r->refused || !membudget_take(t->budget, n)) {
        r->refused = true;
        return false;
    }
    t->charged += n;
    return true;
}

/* ---- header check --------------------------------------------------- */

static int src_read(const struct elf_src *s, void *buf, size_t n, uint64_t off)
{
    if (off > s->size || n > s->size - off)
        return -EINVAL;
    if (s->mem) {
        memcpy(buf, s->mem + off, n);
        return 0;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(s->fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            return -errno;
        if (r == 0)
            return -EINVAL;
        got += (size_t)r;
    }
    return 0;
}

/* An unsigned word of width bytes at b, in the file's byte order. */
static uint64_t word(const unsigned char *b, size_t width, bool big)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | b[big ? i : width - 1 - i];
    return v;
}

/* True when count entries of entsize bytes from off lie inside the file. */
static bool table_fits(const struct elf_src *s, uint64_t off, uint64_t count, uint64_t entsize)
{
    return off <= s->size && (count == 0 || count <= (s->size - off) / entsize);
}

/* Checks what libelf will size its tables by: the ELF identification, the
 * program and section header tables (with the PN_XNUM / SHN_UNDEF escapes
 * that keep the real counts in section header 0) inside the file. Then
 * takes what libelf will allocate for them from r's budget. */
static int elf_check_head(const struct elf_src *s, struct rd *r, char *err, size_t errlen)
{
    unsigned char h[sizeof(Elf64_Ehdr)];
    size_t hsz, phsz, shsz;
    bool big, is64;
    int rc;

    if (s->size < EI_NIDENT) {
        errbuf_set(err, errlen, "file too short for ELF");
        return -EINVAL;
    }
    rc = src_read(s, h, EI_NIDENT, 0);
    if (rc != 0)
        return rc;
    if (memcmp(h, ELFMAG, SELFMAG) != 0) {
        errbuf_set(err, errlen, "not ELF");
        return -EINVAL;
    }
    if ((h[EI_CLASS] != ELFCLASS32 && h[EI_CLASS] != ELFCLASS64) ||
        (h[EI_DATA] != ELFDATA2LSB && h[EI_DATA] != ELFDATA2MSB)) {
        errbuf_set(err, errlen, "unknown ELF class or byte order");
        return -EINVAL;
    }
    is64 = h[EI_CLASS] == ELFCLASS64;
    big = h[EI_DATA] == ELFDATA2MSB;
    hsz = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    phsz = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    shsz = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    if (src_read(s, h, hsz, 0) != 0) {
        errbuf_set(err, errlen, "ELF header cut short");
        return -EINVAL;
    }

    uint64_t phoff, shoff, phnum, shnum, phent, shent;
    if (is64) {
        phoff = word(h + offsetof(Elf64_Ehdr, e_phoff), 8, big);
        shoff = word(h + offsetof(Elf64_Ehdr, e_shoff), 8, big);
        phent = word(h + offsetof(Elf64_Ehdr, e_phentsize), 2, big);
        phnum = word(h + offsetof(Elf64_Ehdr, e_phnum), 2, big);
        shent = word(h + offsetof(Elf64_Ehdr, e_shentsize), 2, big);
        shnum = word(h + offsetof(Elf64_Ehdr, e_shnum), 2, big);
    } else {
        phoff = word(h + offsetof(Elf32_Ehdr, e_phoff), 4, big);
        shoff = word(h + offsetof(Elf32_Ehdr, e_shoff), 4, big);
        phent = word(h + offsetof(Elf32_Ehdr, e_phentsize), 2, big);
        phnum = word(h + offsetof(Elf32_Ehdr, e_phnum), 2, big);
        shent = word(h + offsetof(Elf32_Ehdr, e_shentsize), 2, big);
        shnum = word(h + offsetof(Elf32_Ehdr, e_shnum), 2, big);
    }

    if (shoff != 0 && (shnum == 0 || phnum == PN_XNUM)) {
        unsigned char s0[sizeof(Elf64_Shdr)];
        if (src_read(s, s0, shsz, shoff) != 0) {
            errbuf_set(err, errlen, "section header 0 past the end of the file");
            return -EINVAL;
        }
        if (shnum == 0)
            shnum = is64 ? word(s0 + offsetof(Elf64_Shdr, sh_size), 8, big)
                         : word(s0 + offsetof(Elf32_Shdr, sh_size), 4, big);
        if (phnum == PN_XNUM)
            phnum = is64 ? word(s0 + offsetof(Elf64_Shdr, sh_info), 4, big)
                         : word(s0 + offsetof(Elf32_Shdr, sh_info), 4, big);
    }
    if (phnum > 0 && (phent != phsz || !table_fits(s, phoff, phnum, phsz))) {
        errbuf_set(err, errlen, "program headers past the end of the file");
        return -EINVAL;
    }
    if (shoff != 0 && shnum > 0 && (shent != shsz || !table_fits(s, shoff, shnum, shsz))) {
        errbuf_set(err, errlen, "section headers past the end of the file");
        return -EINVAL;
    }
    /* phnum < 2^32 and shnum is bounded by the file's size, but a sparse
     * file can be huge: check before multiplying */
    uint64_t heads = phnum + (shoff ? shnum : 0) + 1;
    if (heads > UINT64_MAX / SYMTAB_HEADER_BYTES || !rd_take(r, heads * SYMTAB_HEADER_BYTES)) {
        r->refused = true;
        errbuf_set(err, errlen, "%llu section and program headers do not fit the memory budget",
                   (unsigned long long)heads - 1);
        return -ENOBUFS;
    }
    r->foreign = big != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
    return 0;
}

/* Opens s with libelf after elf_check_head. */
static int elf_open(const struct elf_src *s, struct rd *r, Elf **out, char *err, size_t errlen)
{
    int rc = elf_check_head(s, r, err, errlen);
    if (rc != 0)
        return rc;
    if (elf_version(EV_CURRENT) == EV_NONE) {
        errbuf_set(err, errlen, "libelf: %s", elf_errmsg(-1));
        return -ENOTSUP;
    }
    /* elf_memory does not write to a read-only image (ELF_C_READ_MMAP). */
    Elf *e = s->mem ? elf_memory((char *)(uintptr_t)s->mem, (size_t)s->size)
                    : elf_begin(s->fd, ELF_C_READ, NULL);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        errbuf_set(err, errlen, "libelf: %s", e ? "not ELF" : elf_errmsg(-1));
        if (e)
            elf_end(e);
        return -EINVAL;
    }
    *out = e;
    return 0;
}

static int src_from_fd(int fd, struct elf_src *s)
{
    struct stat st;
    if (fstat(fd, &st) == -1)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    s->fd = fd;
    s->mem = NULL;
    s->size = (uint64_t)st.st_size;
    return 0;
}

/* ---- sections and notes --------------------------------------------- */

/* Bytes [off, off + size) are inside the file. */
static bool in_file(const struct elf_src *s, uint64_t off, uint64_t size)
{
    return off <= s->size && size <= s->size - off;
}

/* The section headers of e, NULL (and *n = 0) when there are none. */
static struct sec *read_sections(Elf *e, size_t *n)
{
    size_t shnum = 0;
    *n = 0;
    if (elf_getshdrnum(e, &shnum) != 0 || shnum == 0)
        return NULL;
    struct sec *secs = xcalloc(shnum, sizeof *secs);
    for (size_t i = 0; i < shnum; i++) {
        GElf_Shdr sh;
        Elf_Scn *scn = elf_getscn(e, i);
        if (!scn || !gelf_getshdr(scn, &sh))
            continue; /* stays SHT_NULL */
        secs[i] =
            (struct sec){sh.sh_type, sh.sh_link, sh.sh_flags, sh.sh_addr, sh.sh_size, sh.sh_offset};
    }
    *n = shnum;
    return secs;
}

/* Section i has its bytes in the file, uncompressed: safe to elf_getdata. */
static bool sec_readable(const struct elf_src *s, const struct sec *secs, size_t nsecs, size_t i)
{
    if (i == 0 || i >= nsecs)
        return false;
    const struct sec *x = &secs[i];
    return x->type != SHT_NOBITS && x->type != SHT_NULL && !(x->flags & SHF_COMPRESSED) &&
           in_file(s, x->off, x->size);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The GNU build-id among the notes of d, as hex in out[len]. */
static bool notes_build_id(Elf_Data *d, char *out, size_t len)
{
    size_t off = 0, next, name_off, desc_off;
    GElf_Nhdr nh;

    if (!d || !d->d_buf)
        return false;
    while (off < d->d_size && (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
        const unsigned char *b = d->d_buf;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == sizeof ELF_NOTE_GNU &&
            memcmp(b + name_off, ELF_NOTE_GNU, sizeof ELF_NOTE_GNU) == 0 && nh.n_descsz > 0 &&
            nh.n_descsz <= SYMTAB_BUILD_ID_MAX && len >= 2 * (size_t)nh.n_descsz + 1) {
            hex(b + desc_off, nh.n_descsz, out);
            return true;
        }
        off = next;
    }
    return false;
}

/* The build-id from the PT_NOTE segments, else from the SHT_NOTE sections.
 * Each note libelf loads stays in memory until elf_end: taken from r first
 * (false, r refused, when it will not). */
static bool elf_build_id(Elf *e, struct rd *r, const struct elf_src *s, const struct sec *secs,
                         size_t nsecs, char *out, size_t len)
{
    size_t phnum = 0;
    if (elf_getphdrnum(e, &phnum) == 0) {
        for (size_t i = 0; i < phnum; i++) {
            GElf_Phdr ph;
            if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_NOTE)
                continue;
            if (ph.p_filesz == 0 || ph.p_filesz > SYMTAB_MAX_NOTE ||
                !in_file(s, ph.p_offset, ph.p_filesz))
                continue;
            if (!rd_take(r, ph.p_filesz * (r->foreign ? 2 : 1)))
                return false;
            Elf_Data *d = elf_getdata_rawchunk(e, (int64_t)ph.p_offset, ph.p_filesz,
                                               ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
            if (notes_build_id(d, out, len))
                return true;
        }
    }
    for (size_t i = 1; i < nsecs; i++) {
        if (secs[i].type != SHT_NOTE || secs[i].size > SYMTAB_MAX_NOTE ||
            !sec_readable(s, secs, nsecs, i))
            continue;
        if (!rd_take(r, secs[i].size * (r->foreign ? 2 : 1)))
            return false;
        Elf_Scn *scn = elf_getscn(e, i);
        if (scn && notes_build_id(elf_getdata(scn, NULL), out, len))
            return true;
    }
    return false;
}

/* ---- symbols --------------------------------------------------------- */

/* Room for one more symbol and a name of len bytes, taken from the budget
 * before anything grows; false (r refused) when it will not. */
static bool make_room(struct symtab *t, struct rd *r, size_t len)
{
    if (r->refused)
        return false;
    if (t->names_len + len + 1 > t->names_cap) {
        size_t old = t->names_cap;
        size_t cap = membudget_grow(t->budget, old, t->names_len + len + 1, 1, old);
        if (cap == 0) {
            r->refused = true;
            return false;
        }
        t->charged += cap - old;
        t->names = xrealloc(t->names, cap);
        t->names_cap = cap;
        membudget_give(t->budget, old);
    }
    if (t->nsyms == t->capsyms) {
        uint64_t old = (uint64_t)t->capsyms * sizeof *t->syms;
        size_t cap = membudget_grow(t->budget, t->capsyms, t->nsyms + 1, sizeof *t->syms, old);
        if (cap == 0) {
            r->refused = true;
            return false;
        }
        t->charged += (uint64_t)(cap - t->capsyms) * sizeof *t->syms;
        t->syms = xreallocarray(t->syms, cap, sizeof *t->syms);
        t->capsyms = cap;
        membudget_give(t->budget, old);
    }
    return true;
}

/* Adds a symbol named name[len] (make_room first). */
static void push_sym(struct symtab *t, struct sym *sy, const char *name, size_t len)
{
    sy->name = (uint32_t)t->names_len;
    memcpy(t->names + t->names_len, name, len);
    t->names[t->names_len + len] = '\0';
    t->names_len += len + 1;
    t->syms[t->nsyms++] = *sy;
}

/* Adds the function symbols of symbol table section i (SHT_SYMTAB or
 * SHT_DYNSYM) to t; returns how many it added. Stops, with r refused, when
 * the budget will not take what it needs. */
static size_t collect_table(struct symtab *t, struct rd *r, Elf *e, const struct elf_src *s,
                            const struct sec *secs, size_t nsecs, size_t i, bool arm)
{
    size_t added = 0;
    size_t strndx = secs[i].link;
    if (!sec_readable(s, secs, nsecs, i) || !sec_readable(s, secs, nsecs, strndx) ||
        secs[strndx].type != SHT_STRTAB)
        return 0;
    /* libelf loads both sections whole (the symbols converted into a copy
     * when the byte order is not ours) and keeps them until elf_end */
    if (!rd_take(r, secs[i].size * (r->foreign ? 2 : 1)) || !rd_take(r, secs[strndx].size))
        return 0;
    Elf_Scn *scn = elf_getscn(e, i);
    Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
    size_t entsize = gelf_fsize(e, ELF_T_SYM, 1, EV_CURRENT);
    if (!d || !d->d_buf || d->d_type != ELF_T_SYM || entsize == 0)
        return 0;
    size_t count = d->d_size / entsize;

    for (size_t k = 1; k < count && k <= INT_MAX && t->nsyms < SYMTAB_MAX_SYMBOLS; k++) {
        GElf_Sym st;
        if (!gelf_getsym(d, (int)k, &st))
            break;
        unsigned type = GELF_ST_TYPE(st.st_info), bind = GELF_ST_BIND(st.st_info);
        if (st.st_shndx == SHN_UNDEF || st.st_shndx >= SHN_LORESERVE || st.st_shndx >= nsecs)
            continue;
        const struct sec *in = &secs[st.st_shndx];
        if (type != STT_FUNC && type != STT_GNU_IFUNC &&
            !(type == STT_NOTYPE && (in->flags & SHF_EXECINSTR)))
            continue;
        uint64_t value = arm ? st.st_value & ~(uint64_t)1 : st.st_value;
        if (value == 0)
            continue;
        const char *name = elf_strptr(e, strndx, st.st_name);
        if (!name || !name[0])
            continue;
        /* assembler-local labels and ARM mapping symbols are not functions */
        if (type == STT_NOTYPE && (name[0] == '$' || strncmp(name, ".L", 2) == 0))
            continue;
        size_t len = strnlen(name, SYMTAB_MAX_NAME + 1);
        if (len > SYMTAB_MAX_NAME || t->names_len + len + 1 > UINT32_MAX)
            continue;

        struct sym sy = {.addr = value, .sized = st.st_size > 0};
        sy.bind = bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;
        if (st.st_size > 0) {
            if (st.st_size > UINT64_MAX - value)
                continue;
            sy.end = value + st.st_size;
        } else {
            /* up to the end of its section; finish() cuts at the next symbol */
            bool inside = value >= in->addr && value - in->addr < in->size;
            sy.end = inside ? in->addr + in->size : value;
        }
        if (!make_room(t, r, len))
            break;
        push_sym(t, &sy, name, len);
        added++;
    }
    return added;
}

static size_t underscores(const char *s)
{
    size_t n = 0;
    while (s[n] == '_')
        n++;
    return n;
}

/* Sort order: by address, and among aliases the one to keep first. */
struct cmp_ctx {
    const char *names;
};

static int cmp_sym(const void *pa, const void *pb, void *arg)
{
    const struct sym *a = pa, *b = pb;
    const struct cmp_ctx *ctx = arg;
    if (a->addr != b->addr)
        return a->addr < b->addr ? -1 : 1;
    if (a->sized != b->sized)
        return a->sized ? -1 : 1;
    if (a->bind != b->bind)
        return a->bind > b->bind ? -1 : 1;
    const char *na = ctx->names + a->name, *nb = ctx->names + b->name;
    size_t ua = underscores(na), ub = underscores(nb);
    if (ua != ub)
        return ua < ub ? -1 : 1;
    size_t la = strlen(na), lb = strlen(nb);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(na, nb);
}

/* Sorts, keeps one symbol per address, and ends unsized ones at the next.
 * False (r refused) when the budget will not take the scratch copy that
 * glibc's qsort makes of the array. */
static bool finish(struct symtab *t, struct rd *rd)
{
    struct cmp_ctx ctx = {t->names};
    size_t w = 0;
    uint64_t scratch = (uint64_t)t->nsyms * sizeof *t->syms;

    if (t->nsyms == 0)
        return true;
    if (!membudget_take(t->budget, scratch)) {
        rd->refused = true;
        return false;
    }
    qsort_r(t->syms, t->nsyms, sizeof *t->syms, cmp_sym, &ctx);
    membudget_give(t->budget, scratch);
    for (size_t r = 0; r < t->nsyms; r++) {
        if (w > 0 && t->syms[w - 1].addr == t->syms[r].addr)
            continue;
        t->syms[w++] = t->syms[r];
    }
    t->nsyms = w;
    for (size_t i = 0; i + 1 < t->nsyms; i++) {
        struct sym *y = &t->syms[i];
        if (!y->sized && y->end > t->syms[i + 1].addr)
            y->end = t->syms[i + 1].addr;
    }
    return true;
}

/* Gives back the capacity beyond what t holds: a table is read once and
 * kept for long. */
static void shrink(struct symtab *t)
{
    if (t->capsyms > t->nsyms) {
        uint64_t spare = (uint64_t)(t->capsyms - t->nsyms) * sizeof *t->syms;
        if (t->nsyms == 0) {
            free(t->syms);
            t->syms = NULL;
        } else {
            t->syms = xreallocarray(t->syms, t->nsyms, sizeof *t->syms);
        }
        membudget_give(t->budget, spare);
        t->charged -= spare;
        t->capsyms = t->nsyms;
    }
    if (t->names_cap > t->names_len) {
        if (t->names_len == 0) {
            free(t->names);
            t->names = NULL;
        } else {
            t->names = xrealloc(t->names, t->names_len);
        }
        membudget_give(t->budget, t->names_cap - t->names_len);
        t->charged -= t->names_cap - t->names_len;
        t->names_cap = t->names_len;
    }
}

static void read_segments(struct symtab *t, struct rd *r, Elf *e)
{
    size_t phnum = 0;
    if (elf_getphdrnum(e, &phnum) != 0 || phnum == 0 ||
        !held_take(t, r, (uint64_t)phnum * sizeof *t->segs))
        return;
    t->segs = xcalloc(phnum, sizeof *t->segs);
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || ph.p_filesz == 0 ||
            ph.p_filesz > UINT64_MAX - ph.p_offset)
            continue;
        t->segs[t->nsegs++] = (struct seg){ph.p_offset, ph.p_vaddr, ph.p_filesz};
    }
}

static void refused(char *err, size_t errlen)
{
    errbuf_set(err, errlen, "its symbol tables do not fit the memory budget");
}

static int read_src(const struct elf_src *s, struct membudget *b, struct symtab **out, char *err,
                    size_t errlen)
{
    Elf *e = NULL;
    GElf_Ehdr eh;
    struct symtab *t = NULL;
    struct sec *secs = NULL;
    size_t nsecs = 0;
    struct rd r = {.b = b};
    int rc = elf_open(s, &r, &e, err, errlen);

    if (rc != 0)
        goto out;
    if (!gelf_getehdr(e, &eh) || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
        errbuf_set(err, errlen, "not an ELF executable or shared object");
        rc = -EINVAL;
        goto out;
    }
    t = xcalloc(1, sizeof *t);
    t->budget = b;
    if (held_take(t, &r, sizeof *t))
        read_segments(t, &r, e);
    secs = read_sections(e, &nsecs);
    if (!elf_build_id(e, &r, s, secs, nsecs, t->build_id, sizeof t->build_id))
        t->build_id[0] = '\0';
    for (size_t i = 1; i < nsecs && !r.refused; i++) {
        if (secs[i].type == SHT_SYMTAB) {
            if (collect_table(t, &r, e, s, secs, nsecs, i, eh.e_machine == EM_ARM) > 0)
                t->full = true;
        } else if (secs[i].type == SHT_DYNSYM) {
            collect_table(t, &r, e, s, secs, nsecs, i, eh.e_machine == EM_ARM);
        }
    }
    if (r.refused || !finish(t, &r)) {
        refused(err, errlen);
        rc = -ENOBUFS;
        goto out;
    }
    shrink(t);
    *out = t;
    t = NULL;
out:
    free(secs);
    symtab_free(t);
    if (e)
        elf_end(e);
    rd_done(&r);
    return rc;
}

int symtab_read_fd(int fd, struct membudget *b, struct symtab **out, char *err, size_t errlen)
{
    struct elf_src s;
    int rc = src_from_fd(fd, &s);
    if (rc != 0) {
        errbuf_set(err, errlen, "%s", rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return rc;
    }
    return read_src(&s, b, out, err, errlen);
}

int symtab_read_mem(const void *buf, size_t n, struct membudget *b, struct symtab **out, char *err,
                    size_t errlen)
{
    struct elf_src s = {-1, buf, n};
    if (!buf) {
        errbuf_set(err, errlen, "no image");
        return -EINVAL;
    }
    return read_src(&s, b, out, err, errlen);
}

int symtab_add_debug_fd(struct symtab *t, int fd, char *err, size_t errlen)
{
    struct elf_src s;
    Elf *e = NULL;
    GElf_Ehdr eh;
    struct sec *secs = NULL;
    size_t nsecs = 0;
    char id[sizeof t->build_id];
    struct rd r = {.b = t->budget};
    size_t before = t->nsyms, before_names = t->names_len, added = 0;
    int rc;

    if (!t->build_id[0]) {
        errbuf_set(err, errlen, "object has no build-id to match a debug file with");
        return -ENOENT;
    }
    rc = src_from_fd(fd, &s);
    if (rc == 0)
        rc = elf_open(&s, &r, &e, err, errlen);
    if (rc != 0)
        goto out;
    if (!gelf_getehdr(e, &eh)) {
        errbuf_set(err, errlen, "no ELF header");
        rc = -EINVAL;
        goto out;
    }
    secs = read_sections(e, &nsecs);
    if (!elf_build_id(e, &r, &s, secs, nsecs, id, sizeof id) || strcmp(id, t->build_id) != 0) {
        errbuf_set(err, errlen, "%s",
                   r.refused ? "its notes do not fit the memory budget"
                             : "debug file is for another build");
        rc = r.refused ? -ENOBUFS : -ESTALE;
        goto out;
    }
    for (size_t i = 1; i < nsecs && !r.refused; i++) {
        if (secs[i].type == SHT_SYMTAB)
            added += collect_table(t, &r, e, &s, secs, nsecs, i, eh.e_machine == EM_ARM);
    }
    if (!r.refused && t->nsyms != before)
        finish(t, &r);
    if (r.refused) {
        /* what was added is cut off again: the table was whole before */
        t->nsyms = before;
        t->names_len = before_names;
        refused(err, errlen);
        rc = -ENOBUFS;
        goto out;
    }
    if (added > 0)
        t->full = true;
out:
    shrink(t);
    free(secs);
    if (e)
        elf_end(e);
    rd_done(&r);
    return rc;
}

int symtab_build_id_fd(int fd, struct membudget *b, char *out, size_t len)
{
    struct elf_src s;
    Elf *e = NULL;
    struct sec *secs = NULL;
    size_t nsecs = 0;
    char id[2 * SYMTAB_BUILD_ID_MAX + 1];
    struct rd r = {.b = b};
    int rc = src_from_fd(fd, &s);

    if (rc == 0)
        rc = elf_open(&s, &r, &e, NULL, 0);
    if (rc != 0)
        goto out;
    secs = read_sections(e, &nsecs);
    if (!elf_build_id(e, &r, &s, secs, nsecs, id, sizeof id))
        rc = r.refused ? -ENOBUFS : -ENOENT;
    else if (strlen(id) >= len)
        rc = -ERANGE;
    else
        memcpy(out, id, strlen(id) + 1);
out:
    free(secs);
    if (e)
        elf_end(e);
    rd_done(&r);
    return rc;
}

void symtab_free(struct symtab *t)
{
    if (!t)
        return;
    membudget_give(t->budget, t->charged);
    free(t->segs);
    free(t->syms);
    free(t->names);
    free(t);
}

const char *symtab_build_id(const struct symtab *t)
{
    return t->build_id;
}

bool symtab_has_full(const struct symtab *t)
{
    return t->full;
}

size_t symtab_count(const struct symtab *t)
{
    return t->nsyms;
}

uint64_t symtab_bytes(const struct symtab *t)
{
    return t->charged;
}

bool symtab_vaddr(const struct symtab *t, uint64_t off, uint64_t *vaddr)
{
    for (size_t i = 0; i < t->nsegs; i++) {
        const struct seg *g = &t->segs[i];
        if (off >= g->off && off - g->off < g->filesz) {
            *vaddr = g->vaddr + (off - g->off);
            return true;
        }
    }
    return false;
}

const char *symtab_lookup(const struct symtab *t, uint64_t vaddr, uint64_t *start)
{
    size_t lo = 0, hi = t->nsyms;

    /* first symbol starting above vaddr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->syms[mid].addr <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct sym *y = &t->syms[lo - 1];
    if (vaddr >= y->end)
        return NULL;
    if (start)
        *start = y->addr;
    return t->names + y->name;
}
