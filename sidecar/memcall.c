/* sidecar/memcall.c - what each address-space call means for the ledger;
 * see memcall.h. */
#include "memcall.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#define MAX_ERRNO 4095 /* the kernel returns -1..-4095 for an error */

static bool failed(const struct memcall *c)
{
    return c->have_ret && c->ret >= (uint64_t)-MAX_ERRNO;
}

int memcall_from_syscall(long sysno)
{
    switch (sysno) {
    case SYS_mmap: return MEMCALL_MMAP;
    case SYS_munmap: return MEMCALL_MUNMAP;
    case SYS_brk: return MEMCALL_BRK;
    case SYS_mremap: return MEMCALL_MREMAP;
    case SYS_mprotect: return MEMCALL_MPROTECT;
    default: return -1;
    }
}

bool memcall_grows(enum memcall_nr nr)
{
    return nr == MEMCALL_MMAP || nr == MEMCALL_BRK || nr == MEMCALL_MREMAP ||
           nr == MEMCALL_MPROTECT;
}

const char *memcall_name(enum memcall_nr nr)
{
    static const char *const names[MEMCALL_COUNT] = {"mmap", "munmap", "brk", "mremap",
                                                      "mprotect"};
    return (unsigned)nr < MEMCALL_COUNT ? names[nr] : "?";
}

/* Memory of its own: anonymous (private or shared), or a private file
 * mapping that can be written (its pages become copies). A file mapped to
 * be read is the page cache's, shared with everyone who reads the file. */
static bool mmap_charges(uint64_t prot, uint64_t flags)
{
    if (flags & MAP_ANONYMOUS)
        return true;
    return (flags & MAP_TYPE) == MAP_PRIVATE && (prot & PROT_WRITE);
}

uint64_t memcall_apply(struct memledger *l, struct profile *p, const struct memcall *c,
                       const uint64_t *ips, uint32_t n)
{
    if (failed(c))
        return 0;
    uint32_t owner = p->nsamples <= UINT32_MAX - 1 ? (uint32_t)p->nsamples : UINT32_MAX;
    uint64_t grown = 0;
    switch (c->nr) {
    case MEMCALL_MMAP: {
        /* without the result only a MAP_FIXED call says where it went */
        uint64_t addr = c->have_ret ? c->ret : c->a[0];
        if (!c->have_ret && !(c->a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
            return 0;
        grown = memledger_mmap(l, addr, c->a[1], c->a[2] == PROT_NONE,
                               mmap_charges(c->a[2], c->a[3]), owner);
        break;
    }
    case MEMCALL_MUNMAP:
        memledger_munmap(l, c->a[0], c->a[1]);
        break;
    case MEMCALL_BRK: {
        uint64_t brk = c->have_ret ? c->ret : c->a[0];
        if (brk == 0)
            return 0; /* brk(0) asks where the break is, and a failed entry says nothing */
        grown = memledger_brk(l, brk, owner);
        break;
    }
    case MEMCALL_MREMAP: {
        uint64_t to = c->have_ret ? c->ret
                      : (c->a[3] & MREMAP_FIXED) ? c->a[4]
                                                 : c->a[0]; /* assume in place */
        grown = memledger_mremap(l, c->a[0], c->a[1], to, c->a[2], owner);
        break;
    }
    case MEMCALL_MPROTECT:
        if (c->a[2] != PROT_NONE)
            grown = memledger_mprotect(l, c->a[0], c->a[1], owner);
        break;
    default:
        break;
    }
    if (grown > 0)
        profile_add_sample(p, ips, n, c->tid, c->t_ns, grown);
    return grown;
}

void memcall_finish(const struct memledger *l, struct profile *p)
{
    for (size_t i = 0; i < p->nsamples && i < UINT32_MAX; i++)
        profile_set_inuse(p, i, memledger_held(l, (uint32_t)i));
}
