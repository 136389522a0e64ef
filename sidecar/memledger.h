/* sidecar/memledger.h - growth of a process's address space, charged to the
 * calls that made it, net of what is given back.
 *
 * Owns: an ordered map of the address ranges seen to grow during a capture,
 * each charged to an owner (the caller's id for the call that grew it: the
 * index of a sample) or only reserved (mapped PROT_NONE: address space, not
 * memory), and the bytes each owner still holds. Borrows nothing. Pure: fed
 * the address-space calls of the target (arguments and results) in the
 * order it made them; no I/O, no clock.
 *
 * Growth charges its bytes to the owner of the call; giving memory back (a
 * munmap, a shrinking brk or mremap, an mprotect back to PROT_NONE) credits
 * each byte to the owner that grew it, so a call path that frees what it
 * takes nets to zero and a leaking one keeps what it took. A range the
 * capture did not see grow (mapped before it began) is credited to nobody:
 * only growth can be charged, and what was there before is counted apart
 * (stats.unseen_released). Sizes are virtual bytes in whole pages: what the
 * target asked the kernel for, not what it touched.
 *
 * The calls that grow memory: mmap (anonymous, or a private writable file
 * mapping: the caller decides and says so with charge); brk; mremap; and
 * mprotect that makes a reserved range usable (malloc's thread arenas
 * reserve 64 MiB PROT_NONE and grow inside it that way). The calls that
 * give it back: munmap, brk and mremap (see memcall.h for madvise). */
#ifndef STAKEOUT_MEMLEDGER_H
#define STAKEOUT_MEMLEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct memledger;

struct memledger_stats {
    uint64_t charged;           /* bytes charged to owners, in all */
    uint64_t credited;          /* bytes given back that an owner had grown */
    uint64_t unseen_released;   /* bytes given back that grew before the capture */
    uint64_t ranges;            /* ranges in the map now */
};

/* page_size: a power of two (sysconf(_SC_PAGESIZE) of the target's machine). */
struct memledger *memledger_new(uint64_t page_size);
void memledger_free(struct memledger *l);

/* What the capture finds at its start: a range mapped PROT_NONE (making it
 * usable later is growth), and the program break (0: unknown; the first
 * brk seen then only sets it). */
void memledger_reserved(struct memledger *l, uint64_t start, uint64_t end);
void memledger_set_brk(struct memledger *l, uint64_t brk);

/* A successful mmap at addr of len bytes (a MAP_FIXED one replaces what was
 * there: credited). prot_none: reserved, charged to nobody; else charged to
 * owner when charge is set (anonymous or private writable memory), else only
 * taken out of the map (a file mapped to be read). Returns the bytes
 * charged. */
uint64_t memledger_mmap(struct memledger *l, uint64_t addr, uint64_t len, bool prot_none,
                        bool charge, uint32_t owner);

/* A successful munmap. */
void memledger_munmap(struct memledger *l, uint64_t addr, uint64_t len);

/* brk returned brk (the break now, changed or not). Returns the bytes
 * charged to owner. */
uint64_t memledger_brk(struct memledger *l, uint64_t brk, uint32_t owner);

/* A successful mremap of [old_addr, old_addr + old_len) to new_len bytes,
 * now at new_addr (moved or not). What moved keeps its owners; growth is
 * charged to owner, shrinking credited. Returns the bytes charged. */
uint64_t memledger_mremap(struct memledger *l, uint64_t old_addr, uint64_t old_len,
                          uint64_t new_addr, uint64_t new_len, uint32_t owner);

/* A successful mprotect to a usable protection: the reserved parts of the
 * range become charged to owner. Returns the bytes charged. (An mprotect to
 * PROT_NONE gives nothing back: the pages stay; it is not a call here.) */
uint64_t memledger_mprotect(struct memledger *l, uint64_t addr, uint64_t len, uint32_t owner);

/* Every charged range still mapped, in address order, with its owner. */
void memledger_each(const struct memledger *l,
                    void (*fn)(void *ctx, uint64_t start, uint64_t end, uint32_t owner),
                    void *ctx);

/* Bytes owner grew that are still mapped. */
uint64_t memledger_held(const struct memledger *l, uint32_t owner);

void memledger_stats(const struct memledger *l, struct memledger_stats *out);

#endif
