/* sidecar/stackwalk.c - remote unwinding with caching accessors; see stackwalk.h.
 *
 * libunwind asks its accessors for registers, memory and the unwind
 * information of an address. The stock _UPT accessors answer with one
 * PTRACE_PEEKUSER per register, one PTRACE_PEEKDATA per word, and a fresh
 * read of /proc/PID/maps plus an mmap of the ELF file whenever the address
 * leaves the last object (libunwind issue 431). Here:
 *   - registers: one PTRACE_GETREGS per stack;
 *   - memory: the live part of the stack (from the stack pointer to the end
 *     of its mapping, at most 64 KiB) is copied with one process_vm_readv
 *     while the thread is stopped; pages of read-only file-backed mappings
 *     (code, .eh_frame_hdr, .eh_frame) are cached for the whole capture;
 *     anything else is read in 2 KiB blocks, kept for the current stack;
 *   - unwind information: the ELF program headers and .eh_frame_hdr of each
 *     object are read once from the target's memory and described to
 *     libunwind as a remote table, which its own binary search then walks.
 * Floating-point registers, the word-at-a-time fallback when
 * process_vm_readv is refused, and put_unwind_info go to the _UPT functions.
 *
 * Where DWARF has nothing to say (no object, no table, no FDE), the walk
 * follows the frame-pointer chain for one frame and hands the caller's
 * registers back to libunwind, so DWARF resumes where it can. */
#include "stackwalk.h"

#include "clock.h"
#include "fsread.h"
#include "procparse.h"
#include "xalloc.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind-ptrace.h>
#include <libunwind.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

/* Exported by libunwind-generic (the _UPT accessors call it) but not
 * declared in its public headers; perf's libunwind support declares it the
 * same way. */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
                                              unw_dyn_info_t *di, unw_proc_info_t *pi,
                                              int need_unwind_info, void *arg);

#define SW_PAGE 4096u
#define SW_PAGE_SLOTS 4096u       /* hash slots: at most 3/4 used, 12 MiB of pages */
#define SW_BLOCK 2048u
#define SW_NBLOCKS 32u            /* 64 KiB of stack per unwind */
#define SW_MAPS_MIN_INTERVAL_NS (100LL * 1000000LL)
#define SW_MAX_MAPS (64u << 20)    /* bytes of /proc/PID/maps read */
#define SW_MAX_FP_FRAME (64ull << 20)
#define SW_FDE_SLOTS 8192u        /* remembered "has an FDE" answers, direct-mapped */
#define SW_STACK_MAX (64u << 10)      /* bytes of stack copied per snapshot */
#define SW_STACK_UNKNOWN (16u << 10)  /* when the stack's mapping is not known yet */

#define DW_EH_PE_omit 0xff
#define DW_EH_PE_datarel_sdata4 0x3b

struct sw_mapping {
    uint64_t start, end, offset, dev, inode;
    bool writable, exec, file;
    int32_t obj;                  /* index in objs; -1 none; -2 not looked up yet */
};

struct sw_object {
    uint64_t dev, inode, base;    /* base: start of its offset-0 mapping */
    char build_id[41];            /* hex, "" when none */
    bool have_table;
    unw_dyn_info_t di;            /* remote table: addresses in the target */
};

struct sw_page {
    uint64_t addr;                /* page address + 1; 0: empty slot */
    unsigned char *data;          /* owned, SW_PAGE bytes */
};

struct sw_fde_memo {
    uint64_t ip;                  /* 0: empty */
    bool has;
};

struct sw_block {
    uint64_t addr;
    uint32_t len;                 /* bytes valid from addr */
    unsigned char data[SW_BLOCK];
};

struct stackwalk {
    int pid;
    unw_addr_space_t as;
    unw_accessors_t acc;

    struct sw_mapping *maps;      /* owned, sorted by start */
    size_t nmaps;
    int64_t maps_read_ns;
    bool maps_refreshed_this_stack;

    struct sw_object *objs;       /* owned */
    size_t nobjs;

    struct sw_page *pages;        /* owned: SW_PAGE_SLOTS slots */
    size_t npages;

    struct sw_block *blocks;      /* owned: SW_NBLOCKS, valid for the current stack */
    size_t nblocks;

    struct sw_fde_memo *fde_memo; /* owned: SW_FDE_SLOTS, which addresses have an FDE */

    unsigned char *stack;         /* owned: SW_STACK_MAX bytes, the snapshot's stack */
    uint64_t stack_lo;            /* target address of stack[0] */
    size_t stack_len;
    int snap_tid;                 /* thread of the snapshot, 0: none */

    bool no_vm_readv;             /* process_vm_readv refused: PEEKDATA through _UPT */
    struct stackwalk_stats stats;
};

struct stackwalk_thread {
    struct stackwalk *sw;         /* borrowed */
    int tid;
    void *upt;                    /* owned: _UPT_create(tid) */
    struct user_regs_struct regs; /* of the current stack (or the frame-pointer walk) */
    bool have_regs;
};

/* ---- /proc/PID/maps ---- */

static void clear_pages(struct stackwalk *sw)
{
    for (size_t i = 0; i < SW_PAGE_SLOTS; i++) {
        free(sw->pages[i].data);
        sw->pages[i].data = NULL;
        sw->pages[i].addr = 0;
    }
    sw->npages = 0;
}

/* (Re)read the memory map. Objects and cached pages go with the old map:
 * an address may now belong to another file. */
static int read_maps(struct stackwalk *sw)
{
    char path[64], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", sw->pid);
    int rc = fsread_alloc(path, SW_MAX_MAPS, &buf, &len);
    if (rc < 0)
        return rc;
    size_t cap = 64, n = 0;
    struct sw_mapping *maps = xcalloc(cap, sizeof *maps);
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break; /* a cut last line */
        struct proc_map m;
        if (procparse_maps_line(p, (size_t)(nl - p), &m) == 0) {
            if (n == cap) {
                cap *= 2;
                maps = xreallocarray(maps, cap, sizeof *maps);
            }
            maps[n++] = (struct sw_mapping){
                .start = m.start, .end = m.end, .offset = m.offset, .dev = m.dev,
                .inode = m.inode, .writable = m.perms[1] == 'w', .exec = m.perms[2] == 'x',
                .file = m.inode != 0 && m.path_len > 0 && m.path[0] == '/', .obj = -2};
        }
        p = nl + 1;
    }
    free(buf);
    free(sw->maps);
    sw->maps = maps;
    sw->nmaps = n;
    free(sw->objs);
    sw->objs = NULL;
    sw->nobjs = 0;
    clear_pages(sw);
    if (sw->fde_memo)
        memset(sw->fde_memo, 0, SW_FDE_SLOTS * sizeof *sw->fde_memo);
    sw->maps_read_ns = clock_mono_ns();
    sw->stats.maps_reads++;
    if (sw->as)
        unw_flush_cache(sw->as, 0, 0);
    return 0;
}

static struct sw_mapping *find_map(struct stackwalk *sw, uint64_t addr)
{
    size_t lo = 0, hi = sw->nmaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < sw->maps[mid].start)
            hi = mid;
        else if (addr >= sw->maps[mid].end)
            lo = mid + 1;
        else
            return &sw->maps[mid];
    }
    return NULL;
}

/* An address outside every mapping: the target may have mapped something
 * since (dlopen, a JIT). Re-read once per stack, and not too often. */
static struct sw_mapping *find_map_refresh(struct stackwalk *sw, uint64_t addr)
{
    struct sw_mapping *m = find_map(sw, addr);
    if (m || sw->maps_refreshed_this_stack ||
        clock_mono_ns() - sw->maps_read_ns < SW_MAPS_MIN_INTERVAL_NS)
        return m;
    sw->maps_refreshed_this_stack = true;
    if (read_maps(sw) < 0)
        return NULL;
    return find_map(sw, addr);
}

/* ---- target memory ---- */

static int read_remote(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t addr, void *buf,
                       size_t len, size_t *got)
{
    sw->stats.mem_syscalls++;
    if (!sw->no_vm_readv) {
        struct iovec local = {.iov_base = buf, .iov_len = len};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
        ssize_t r = process_vm_readv(sw->pid, &local, 1, &remote, 1, 0);
        if (r > 0) {
            *got = (size_t)r;
            return 0;
        }
        if (r == 0 || (errno != EPERM && errno != ENOSYS))
            return -EFAULT;
        sw->no_vm_readv = true; /* seccomp or an old kernel: words through ptrace */
    }
    size_t done = 0;
    while (done + sizeof(unw_word_t) <= len) {
        unw_word_t w;
        if (_UPT_access_mem(sw->as, (unw_word_t)(addr + done), &w, 0, t->upt) < 0)
            break;
        memcpy((char *)buf + done, &w, sizeof w);
        done += sizeof w;
    }
    if (done == 0)
        return -EFAULT;
    *got = done;
    return 0;
}

static const unsigned char *cached_page(struct stackwalk *sw, struct stackwalk_thread *t,
                                        uint64_t page)
{
    size_t mask = SW_PAGE_SLOTS - 1;
    size_t i = (size_t)((page / SW_PAGE) * 0x9E3779B97F4A7C15ull >> 52) & mask;
    for (;;) {
        if (sw->pages[i].addr == page + 1) {
            sw->stats.page_hits++;
            return sw->pages[i].data;
        }
        if (sw->pages[i].addr == 0)
            break;
        i = (i + 1) & mask;
    }
    unsigned char *data = xmalloc(SW_PAGE);
    size_t got = 0;
    if (read_remote(sw, t, page, data, SW_PAGE, &got) < 0 || got < SW_PAGE) {
        free(data);
        return NULL;
    }
    if (sw->npages >= SW_PAGE_SLOTS / 4 * 3) {
        clear_pages(sw);
        i = (size_t)((page / SW_PAGE) * 0x9E3779B97F4A7C15ull >> 52) & mask;
    }
    sw->pages[i].addr = page + 1;
    sw->pages[i].data = data;
    sw->npages++;
    return data;
}

static const unsigned char *cached_block(struct stackwalk *sw, struct stackwalk_thread *t,
                                         uint64_t block, uint32_t *len)
{
    for (size_t i = 0; i < sw->nblocks; i++) {
        if (sw->blocks[i].addr == block) {
            *len = sw->blocks[i].len;
            return sw->blocks[i].data;
        }
    }
    if (sw->nblocks == SW_NBLOCKS)
        return NULL;
    struct sw_block *b = &sw->blocks[sw->nblocks];
    size_t got = 0;
    if (read_remote(sw, t, block, b->data, SW_BLOCK, &got) < 0)
        return NULL;
    b->addr = block;
    b->len = (uint32_t)got;
    sw->nblocks++;
    *len = b->len;
    return b->data;
}

/* Copy len bytes of the target's memory at addr. Read-only file-backed
 * memory comes from the page cache, the rest from this stack's blocks. */
static int read_mem(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t addr, void *out,
                    size_t len)
{
    unsigned char *dst = out;
    while (len > 0) {
        struct sw_mapping *m = find_map(sw, addr);
        size_t chunk;
        if (m && m->file && !m->writable) {
            uint64_t page = addr & ~(uint64_t)(SW_PAGE - 1);
            const unsigned char *data = cached_page(sw, t, page);
            if (!data)
                return -EFAULT;
            chunk = SW_PAGE - (size_t)(addr - page);
            if (chunk > len)
                chunk = len;
            memcpy(dst, data + (addr - page), chunk);
        } else if (addr >= sw->stack_lo && addr - sw->stack_lo < sw->stack_len) {
            chunk = sw->stack_len - (size_t)(addr - sw->stack_lo);
            if (chunk > len)
                chunk = len;
            memcpy(dst, sw->stack + (addr - sw->stack_lo), chunk);
        } else {
            uint64_t block = addr & ~(uint64_t)(SW_BLOCK - 1);
            uint32_t blen = 0;
            const unsigned char *data = cached_block(sw, t, block, &blen);
            if (data) {
                if (addr - block >= blen)
                    return -EFAULT;
                chunk = blen - (size_t)(addr - block);
                if (chunk > len)
                    chunk = len;
                memcpy(dst, data + (addr - block), chunk);
            } else {
                size_t got = 0; /* blocks all used: read just what is asked */
                if (read_remote(sw, t, addr, dst, len, &got) < 0 || got < len)
                    return -EFAULT;
                chunk = len;
            }
        }
        dst += chunk;
        addr += chunk;
        len -= chunk;
    }
    return 0;
}

/* ---- objects and their unwind tables ---- */

unsigned stackwalk_eh_enc_size(uint8_t enc)
{
    if (enc == DW_EH_PE_omit)
        return 0;
    switch (enc & 0x0f) {
    case 0x00: /* absptr */
        return 8;
    case 0x02: /* udata2 */
    case 0x0a: /* sdata2 */
        return 2;
    case 0x03: /* udata4 */
    case 0x0b: /* sdata4 */
        return 4;
    case 0x04: /* udata8 */
    case 0x0c: /* sdata8 */
        return 8;
    default:   /* uleb128, sleb128: never used for these two fields */
        return 0;
    }
}

static void read_build_id(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t addr,
                          uint64_t size, struct sw_object *o)
{
    unsigned char notes[1024];
    if (size > sizeof notes)
        size = sizeof notes;
    if (read_mem(sw, t, addr, notes, (size_t)size) < 0)
        return;
    size_t off = 0;
    while (off + sizeof(Elf64_Nhdr) <= size) {
        Elf64_Nhdr nh;
        memcpy(&nh, notes + off, sizeof nh);
        size_t name_off = off + sizeof nh;
        size_t desc_off = name_off + ((nh.n_namesz + 3u) & ~3u);
        size_t next = desc_off + ((nh.n_descsz + 3u) & ~3u);
        if (next > size || next <= off)
            return;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(notes + name_off, "GNU", 4) == 0 && nh.n_descsz <= 20) {
            for (size_t i = 0; i < nh.n_descsz; i++)
                snprintf(o->build_id + 2 * i, 3, "%02x", notes[desc_off + i]);
            return;
        }
        off = next;
    }
}

/* Read the ELF and program headers of the object mapped at base, and its
 * .eh_frame_hdr, from the target's memory. */
static void load_object(struct stackwalk *sw, struct stackwalk_thread *t, struct sw_object *o)
{
    Elf64_Ehdr eh;
    if (read_mem(sw, t, o->base, &eh, sizeof eh) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        eh.e_phnum == 0 || eh.e_phnum > 128)
        return;
    Elf64_Phdr ph[128];
    if (read_mem(sw, t, o->base + eh.e_phoff, ph, eh.e_phnum * sizeof ph[0]) < 0)
        return;
    const Elf64_Phdr *first = NULL, *ehf = NULL;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (!first || ph[i].p_vaddr < first->p_vaddr)
                first = &ph[i];
        } else if (ph[i].p_type == PT_GNU_EH_FRAME) {
            ehf = &ph[i];
        }
    }
    if (!first || first->p_offset >= SW_PAGE)
        return;
    uint64_t bias = o->base - (first->p_vaddr & ~(uint64_t)(SW_PAGE - 1));
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (bias + ph[i].p_vaddr < lo)
                lo = bias + ph[i].p_vaddr;
            if (bias + ph[i].p_vaddr + ph[i].p_memsz > hi)
                hi = bias + ph[i].p_vaddr + ph[i].p_memsz;
        } else if (ph[i].p_type == PT_NOTE && !o->build_id[0]) {
            read_build_id(sw, t, bias + ph[i].p_vaddr, ph[i].p_filesz, o);
        }
    }
    if (!ehf)
        return; /* no .eh_frame_hdr (Go, -fno-asynchronous-unwind-tables): frame pointers */
    uint64_t hdr = bias + ehf->p_vaddr;
    unsigned char h[4 + 8 + 8];
    if (read_mem(sw, t, hdr, h, sizeof h) < 0 || h[0] != 1 || h[3] != DW_EH_PE_datarel_sdata4)
        return;
    unsigned ptr_size = stackwalk_eh_enc_size(h[1]), count_size = stackwalk_eh_enc_size(h[2]);
    if (ptr_size == 0 || count_size == 0)
        return;
    uint64_t count = 0;
    if (count_size == 2) {
        uint16_t v;
        memcpy(&v, h + 4 + ptr_size, 2);
        count = v;
    } else if (count_size == 4) {
        uint32_t v;
        memcpy(&v, h + 4 + ptr_size, 4);
        count = v;
    } else {
        memcpy(&count, h + 4 + ptr_size, 8);
    }
    if (count == 0 || count > (1u << 24))
        return;
    o->di.start_ip = lo;
    o->di.end_ip = hi;
    o->di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    o->di.gp = 0;
    o->di.u.rti.name_ptr = 0;
    o->di.u.rti.segbase = hdr;
    o->di.u.rti.table_data = hdr + 4 + ptr_size + count_size;
    /* entries are two sdata4 (initial location, FDE), counted in words */
    o->di.u.rti.table_len = count * 8 / sizeof(unw_word_t);
    o->have_table = true;
    sw->stats.objects++;
}

static struct sw_object *object_for(struct stackwalk *sw, struct stackwalk_thread *t,
                                    struct sw_mapping *m)
{
    if (m->obj >= 0)
        return &sw->objs[m->obj];
    if (m->obj == -1 || !m->file)
        return NULL;
    m->obj = -1;
    /* the object's first mapping: same file, offset 0, at or below m */
    const struct sw_mapping *base = NULL;
    for (const struct sw_mapping *b = m; b >= sw->maps; b--) {
        if (b->dev == m->dev && b->inode == m->inode && b->offset == 0) {
            base = b;
            break;
        }
    }
    if (!base)
        return NULL;
    for (size_t i = 0; i < sw->nobjs; i++) {
        if (sw->objs[i].base == base->start && sw->objs[i].inode == m->inode &&
            sw->objs[i].dev == m->dev) {
            m->obj = (int32_t)i;
            return &sw->objs[i];
        }
    }
    sw->objs = xreallocarray(sw->objs, sw->nobjs + 1, sizeof *sw->objs);
    struct sw_object *o = &sw->objs[sw->nobjs];
    memset(o, 0, sizeof *o);
    o->dev = m->dev;
    o->inode = m->inode;
    o->base = base->start;
    m->obj = (int32_t)sw->nobjs++;
    load_object(sw, t, o);
    return o;
}

/* ---- the accessors ---- */

static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
                              int need_unwind_info, void *arg)
{
    struct stackwalk_thread *t = arg;
    struct stackwalk *sw = t->sw;
    struct sw_mapping *m = find_map_refresh(sw, ip);
    if (!m || !m->exec)
        return -UNW_ENOINFO;
    struct sw_object *o = object_for(sw, t, m);
    if (!o || !o->have_table)
        return -UNW_ENOINFO; /* JIT code, or no table: the frame-pointer walk takes over */
    if (ip < o->di.start_ip || ip >= o->di.end_ip)
        return -UNW_ENOINFO;
    return UNW_OBJ(dwarf_search_unwind_table)(as, ip, &o->di, pi, need_unwind_info, arg);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    struct stackwalk_thread *t = arg;
    _UPT_put_unwind_info(as, pi, t->upt);
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    (void)as;
    (void)addr;
    (void)arg;
    return -UNW_ENOINFO;
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
                          void *arg)
{
    (void)as;
    struct stackwalk_thread *t = arg;
    if (write)
        return -UNW_EINVAL; /* never write to the target */
    return read_mem(t->sw, t, addr, val, sizeof *val) < 0 ? -UNW_EINVAL : 0;
}

static unsigned long long *reg_slot(struct user_regs_struct *r, unw_regnum_t reg)
{
    switch (reg) {
    case UNW_X86_64_RAX: return &r->rax;
    case UNW_X86_64_RDX: return &r->rdx;
    case UNW_X86_64_RCX: return &r->rcx;
    case UNW_X86_64_RBX: return &r->rbx;
    case UNW_X86_64_RSI: return &r->rsi;
    case UNW_X86_64_RDI: return &r->rdi;
    case UNW_X86_64_RBP: return &r->rbp;
    case UNW_X86_64_RSP: return &r->rsp;
    case UNW_X86_64_R8: return &r->r8;
    case UNW_X86_64_R9: return &r->r9;
    case UNW_X86_64_R10: return &r->r10;
    case UNW_X86_64_R11: return &r->r11;
    case UNW_X86_64_R12: return &r->r12;
    case UNW_X86_64_R13: return &r->r13;
    case UNW_X86_64_R14: return &r->r14;
    case UNW_X86_64_R15: return &r->r15;
    case UNW_X86_64_RIP: return &r->rip;
    default: return NULL;
    }
}

static int load_regs(struct stackwalk_thread *t)
{
    if (ptrace(PTRACE_GETREGS, t->tid, NULL, &t->regs) == -1)
        return -errno;
    t->have_regs = true;
    return 0;
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
                          void *arg)
{
    (void)as;
    struct stackwalk_thread *t = arg;
    if (!t->have_regs && load_regs(t) < 0)
        return -UNW_EBADREG;
    unsigned long long *slot = reg_slot(&t->regs, reg);
    if (!slot)
        return -UNW_EBADREG;
    if (write)
        *slot = *val; /* our copy only: the thread's registers are never written */
    else
        *val = *slot;
    return 0;
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
                            void *arg)
{
    struct stackwalk_thread *t = arg;
    if (write)
        return -UNW_EINVAL;
    return _UPT_access_fpreg(as, reg, val, 0, t->upt);
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as;
    (void)c;
    (void)arg;
    return -UNW_EINVAL; /* the target is resumed by the sampler, never by libunwind */
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
                             unw_word_t *off, void *arg)
{
    (void)as;
    (void)addr;
    (void)buf;
    (void)len;
    (void)off;
    (void)arg;
    return -UNW_ENOINFO; /* names come after the capture (symbols.h), never while stopped */
}

/* ---- public ---- */

int stackwalk_new(int pid, struct stackwalk **out, char *err, size_t errlen)
{
    struct stackwalk *sw = xcalloc(1, sizeof *sw);
    sw->pid = pid;
    sw->pages = xcalloc(SW_PAGE_SLOTS, sizeof *sw->pages);
    sw->blocks = xcalloc(SW_NBLOCKS, sizeof *sw->blocks);
    sw->stack = xmalloc(SW_STACK_MAX);
    sw->fde_memo = xcalloc(SW_FDE_SLOTS, sizeof *sw->fde_memo);
    int rc = read_maps(sw);
    if (rc < 0) {
        if (err)
            snprintf(err, errlen, "cannot read /proc/%d/maps: %s", pid, strerror(-rc));
        goto fail_maps;
    }
    sw->acc = (unw_accessors_t){
        .find_proc_info = acc_find_proc_info,
        .put_unwind_info = acc_put_unwind_info,
        .get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
        .access_mem = acc_access_mem,
        .access_reg = acc_access_reg,
        .access_fpreg = acc_access_fpreg,
        .resume = acc_resume,
        .get_proc_name = acc_get_proc_name,
    };
    sw->as = unw_create_addr_space(&sw->acc, 0);
    if (!sw->as) {
        rc = -ENOMEM;
        if (err)
            snprintf(err, errlen, "libunwind: cannot create an address space");
        goto fail_maps;
    }
    unw_set_caching_policy(sw->as, UNW_CACHE_GLOBAL);
    *out = sw;
    return 0;

fail_maps:
    stackwalk_free(sw);
    return rc;
}

void stackwalk_free(struct stackwalk *sw)
{
    if (!sw)
        return;
    if (sw->as)
        unw_destroy_addr_space(sw->as);
    clear_pages(sw);
    free(sw->pages);
    free(sw->blocks);
    free(sw->stack);
    free(sw->fde_memo);
    free(sw->objs);
    free(sw->maps);
    free(sw);
}

struct stackwalk_thread *stackwalk_thread_new(struct stackwalk *sw, int tid)
{
    struct stackwalk_thread *t = xcalloc(1, sizeof *t);
    t->sw = sw;
    t->tid = tid;
    t->upt = _UPT_create(tid);
    if (!t->upt) {
        fprintf(stderr, "stakeout: out of memory (_UPT_create)\n");
        abort();
    }
    return t;
}

void stackwalk_thread_free(struct stackwalk_thread *t)
{
    if (!t)
        return;
    _UPT_destroy(t->upt);
    free(t);
}

/* Whether DWARF describes the code at ip. libunwind, left to itself, guesses
 * a frame without an FDE from the frame pointer in a way that skips the
 * caller of a leaf; asking first lets fp_step do that frame properly. */
static bool has_fde(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t ip)
{
    struct sw_fde_memo *memo = &sw->fde_memo[(ip * 0x9E3779B97F4A7C15ull >> 40) % SW_FDE_SLOTS];
    if (memo->ip == ip)
        return memo->has;
    bool has = false;
    struct sw_mapping *m = find_map_refresh(sw, ip);
    struct sw_object *o = m && m->exec ? object_for(sw, t, m) : NULL;
    if (o && o->have_table && ip >= o->di.start_ip && ip < o->di.end_ip) {
        unw_proc_info_t pi;
        memset(&pi, 0, sizeof pi);
        has = UNW_OBJ(dwarf_search_unwind_table)(sw->as, ip, &o->di, &pi, 0, t) == 0;
    }
    memo->ip = ip;
    memo->has = has;
    return has;
}

/* Whether addr follows a call instruction in executable memory: what a
 * return address always does (call rel32, or call through a register or
 * memory: FF /2 with 0, 1 or 4 bytes of displacement, with or without SIB). */
static bool after_call(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t addr)
{
    const struct sw_mapping *m = find_map(sw, addr);
    unsigned char b[7];
    if (!m || !m->exec || addr < m->start + sizeof b ||
        read_mem(sw, t, addr - sizeof b, b, sizeof b) < 0)
        return false;
    if (b[2] == 0xe8)
        return true; /* e8 rel32 */
    for (int len = 2; len <= 7; len++) {
        if (b[7 - len] == 0xff && (b[8 - len] & 0x38) == 0x10)
            return true;
    }
    return false;
}

/* The leaf frame of code without unwind information: a function that
 * needs no frame (compilers skip the frame pointer in leaves) has its
 * return address at [sp] and the caller's frame pointer still in bp; a
 * framed one (or any function past its first instruction) has a local
 * there. When [sp] is a return address, the caller is found from it. */
static bool frameless_leaf_step(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t sp,
                                uint64_t bp)
{
    uint64_t ret;
    if (read_mem(sw, t, sp, &ret, sizeof ret) < 0 || !after_call(sw, t, ret))
        return false;
    t->regs.rip = ret;
    t->regs.rsp = sp + 8;
    t->regs.rbp = bp;
    t->have_regs = true;
    return true;
}

/* One frame by the frame-pointer chain from (sp, bp): the caller's registers
 * go into t->regs for libunwind to start again from. */
static bool fp_step(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t sp, uint64_t bp)
{
    uint64_t frame[2];
    if (bp < sp || (bp & 7) || bp - sp > SW_MAX_FP_FRAME)
        return false;
    if (read_mem(sw, t, bp, frame, sizeof frame) < 0 || frame[1] == 0)
        return false;
    const struct sw_mapping *m = find_map(sw, frame[1]);
    if (!m || !m->exec)
        return false;
    t->regs.rip = frame[1];
    t->regs.rsp = bp + 16;
    t->regs.rbp = frame[0];
    t->have_regs = true;
    return true;
}

int stackwalk_snapshot(struct stackwalk *sw, struct stackwalk_thread *t)
{
    sw->snap_tid = 0;
    sw->stack_len = 0;
    sw->nblocks = 0;
    t->have_regs = false;
    int rc = load_regs(t);
    if (rc < 0)
        return rc;
    uint64_t sp = t->regs.rsp;
    const struct sw_mapping *m = find_map(sw, sp);
    size_t len = m ? (size_t)(m->end - sp) : SW_STACK_UNKNOWN;
    if (len > SW_STACK_MAX)
        len = SW_STACK_MAX;
    size_t got = 0;
    if (len > 0 && read_remote(sw, t, sp, sw->stack, len, &got) == 0) {
        sw->stack_lo = sp;
        sw->stack_len = got;
        sw->stats.stack_bytes += got;
    }
    sw->snap_tid = t->tid;
    return 0;
}

void stackwalk_snapshot_from(struct stackwalk *sw, struct stackwalk_thread *t,
                             const struct user_regs_struct *regs, const void *stack, size_t len)
{
    sw->nblocks = 0;
    t->regs = *regs;
    t->have_regs = true;
    if (len > SW_STACK_MAX)
        len = SW_STACK_MAX;
    memcpy(sw->stack, stack, len);
    sw->stack_lo = regs->rsp;
    sw->stack_len = len;
    sw->stats.stack_bytes += len;
    sw->snap_tid = t->tid;
}

uint32_t stackwalk_unwind(struct stackwalk *sw, struct stackwalk_thread *t, uint64_t *ips,
                          uint32_t max)
{
    uint32_t n = 0;
    sw->maps_refreshed_this_stack = false;
    if (max == 0 || sw->snap_tid != t->tid || !t->have_regs)
        return 0;
    sw->snap_tid = 0;
    sw->stats.stacks++;
    unw_cursor_t c;
    if (unw_init_remote(&c, sw->as, t) < 0) {
        ips[n++] = t->regs.rip;
        return n;
    }
    uint64_t prev_sp = 0;
    while (n < max) {
        unw_word_t ip = 0, sp = 0, bp = 0;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        unw_get_reg(&c, UNW_REG_SP, &sp);
        unw_get_reg(&c, UNW_X86_64_RBP, &bp);
        if (n > 0 && sp < prev_sp)
            break; /* a caller below its callee: a corrupt stack */
        prev_sp = sp;
        ips[n++] = ip;
        /* a return address may sit just past its function: look up ip - 1 */
        if (!has_fde(sw, t, n == 1 ? ip : ip - 1)) {
            bool stepped = (n == 1 && frameless_leaf_step(sw, t, sp, bp)) || fp_step(sw, t, sp, bp);
            if (!stepped || unw_init_remote(&c, sw->as, t) < 0)
                break;
            sw->stats.fp_frames++;
            continue;
        }
        int r = unw_step(&c);
        if (r > 0) {
            sw->stats.dwarf_frames++;
            continue;
        }
        if (r == 0)
            break; /* the outermost frame (DWARF says the return address is undefined) */
        if (!fp_step(sw, t, sp, bp) || unw_init_remote(&c, sw->as, t) < 0)
            break;
        sw->stats.fp_frames++;
    }
    return n;
}

void stackwalk_get_stats(const struct stackwalk *sw, struct stackwalk_stats *out)
{
    *out = sw->stats;
}
