/* tests/test_memcall.c - what each address-space call does to the ledger and
 * the profile (memcall.h), on calls written out by hand. */
#include <criterion/criterion.h>

#include "memcall.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

TestSuite(memcall, .timeout = 30);

static const uint64_t leak_stack[] = {0x1000, 0x2000, 0x3000};
static const uint64_t churn_stack[] = {0x1000, 0x4000, 0x3000};

static struct memcall call(enum memcall_nr nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                           uint64_t ret)
{
    return (struct memcall){.nr = nr, .tid = 7, .a = {a0, a1, a2, a3, 0}, .ret = ret,
                            .have_ret = true};
}

Test(memcall, leak_keeps_its_bytes_and_churn_nets_to_zero)
{
    struct memledger *l = memledger_new(4096);
    struct profile *p = profile_new(PROFILE_TYPE_MEMORY, 0);
    const uint64_t anon = MAP_PRIVATE | MAP_ANONYMOUS, rw = PROT_READ | PROT_WRITE;
    for (int i = 0; i < 20; i++) {
        struct memcall m = call(MEMCALL_MMAP, 0, 1 << 20, rw, anon, 0x7f0000000000);
        cr_assert_eq(memcall_apply(l, p, &m, churn_stack, 3), 1 << 20);
        struct memcall u = call(MEMCALL_MUNMAP, 0x7f0000000000, 1 << 20, 0, 0, 0);
        memcall_apply(l, p, &u, NULL, 0);
        if (i % 2 == 0) {
            uint64_t at = 0x7e0000000000 + (uint64_t)i * (1 << 20);
            struct memcall k = call(MEMCALL_MMAP, 0, 1 << 20, rw, anon, at);
            memcall_apply(l, p, &k, leak_stack, 3);
        }
    }
    memcall_finish(l, p);
    cr_assert_eq(p->nsamples, 30);
    cr_assert_eq(profile_total_value(p), 30u << 20, "gross: every growth");
    cr_assert_eq(profile_total_weight(p), 10u << 20, "net: the leak");
    for (uint32_t i = 0; i < p->nstacks; i++) {
        uint64_t leaf_caller = p->frames[p->stacks[i].frames[1] - 1].addr;
        cr_expect_eq(p->stacks[i].inuse, leaf_caller == 0x2000 ? 10u << 20 : 0);
    }
    profile_free(p);
    memledger_free(l);
}

Test(memcall, failed_calls_and_queries_change_nothing)
{
    struct memledger *l = memledger_new(4096);
    struct profile *p = profile_new(PROFILE_TYPE_MEMORY, 0);
    struct memcall m = call(MEMCALL_MMAP, 0, 1 << 20, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-ENOMEM);
    cr_expect_eq(memcall_apply(l, p, &m, leak_stack, 3), 0);
    struct memcall q = call(MEMCALL_BRK, 0, 0, 0, 0, 0x555000000000);
    cr_expect_eq(memcall_apply(l, p, &q, leak_stack, 3), 0, "brk(0) sets the break");
    struct memcall b = call(MEMCALL_BRK, 0x555000100000, 0, 0, 0, 0x555000000000);
    cr_expect_eq(memcall_apply(l, p, &b, leak_stack, 3), 0, "a refused brk returns the old one");
    b.ret = 0x555000100000;
    cr_expect_eq(memcall_apply(l, p, &b, leak_stack, 3), 0x100000);
    struct memcall ro = call(MEMCALL_MMAP, 0, 1 << 20, PROT_READ, MAP_PRIVATE, 0x7f1000000000);
    cr_expect_eq(memcall_apply(l, p, &ro, leak_stack, 3), 0, "a file mapped to be read");
    struct memcall cow = call(MEMCALL_MMAP, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                              0x7f2000000000);
    cr_expect_eq(memcall_apply(l, p, &cow, leak_stack, 3), 8192, "private writable file data");
    struct memcall shm = call(MEMCALL_MMAP, 0, 8192, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, 0x7f3000000000);
    cr_expect_eq(memcall_apply(l, p, &shm, leak_stack, 3), 8192, "shared anonymous memory");
    cr_expect_eq(p->nsamples, 3);
    profile_free(p);
    memledger_free(l);
}

Test(memcall, arena_growth_by_mprotect_is_charged_once_and_given_back_by_unmapping)
{
    struct memledger *l = memledger_new(4096);
    struct profile *p = profile_new(PROFILE_TYPE_MEMORY, 0);
    struct memcall r = call(MEMCALL_MMAP, 0, 64 << 20, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0x7f4000000000);
    cr_expect_eq(memcall_apply(l, p, &r, leak_stack, 3), 0, "a reserve is not memory");
    struct memcall g = call(MEMCALL_MPROTECT, 0x7f4000000000, 1 << 20, PROT_READ | PROT_WRITE,
                            0, 0);
    cr_expect_eq(memcall_apply(l, p, &g, churn_stack, 3), 1 << 20);
    struct memcall none = call(MEMCALL_MPROTECT, 0x7f4000000000, 1 << 20, PROT_NONE, 0, 0);
    cr_expect_eq(memcall_apply(l, p, &none, leak_stack, 3), 0);
    cr_expect_eq(memcall_apply(l, p, &g, leak_stack, 3), 0, "usable again: not charged twice");
    /* the arena shrinks by mapping PROT_NONE over its top (overcommit 2) */
    struct memcall s = call(MEMCALL_MMAP, 0x7f4000080000, 1 << 19, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0x7f4000080000);
    memcall_apply(l, p, &s, leak_stack, 3);
    memcall_finish(l, p);
    cr_expect_eq(profile_total_weight(p), 1 << 19, "half given back, half held");
    profile_free(p);
    memledger_free(l);
}

Test(memcall, entry_only_calls_assume_success_where_the_place_is_known)
{
    struct memledger *l = memledger_new(4096);
    struct profile *p = profile_new(PROFILE_TYPE_MEMORY, 0);
    struct memcall m = call(MEMCALL_MMAP, 0, 4096, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, 0);
    m.have_ret = false;
    cr_expect_eq(memcall_apply(l, p, &m, leak_stack, 3), 0, "where did it go? unknown");
    m.a[0] = 0x7f5000000000;
    m.a[3] |= MAP_FIXED;
    cr_expect_eq(memcall_apply(l, p, &m, leak_stack, 3), 4096);
    cr_expect_eq(memcall_from_syscall(SYS_mmap), MEMCALL_MMAP);
    cr_expect_eq(memcall_from_syscall(SYS_mprotect), MEMCALL_MPROTECT);
    cr_expect_eq(memcall_from_syscall(SYS_madvise), -1, "see memcall.h");
    cr_expect_eq(memcall_from_syscall(SYS_read), -1);
    profile_free(p);
    memledger_free(l);
}
