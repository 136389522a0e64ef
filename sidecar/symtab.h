/* sidecar/symtab.h - the function symbols of one ELF object, for lookups.
 *
 * Owns: struct symtab (symtab_free): the object's function symbols sorted by
 * address, their names, its PT_LOAD segments and its build-id. Borrows: the
 * file descriptor or buffer it reads (never closed, never kept). I/O: reads
 * through elfutils libelf (ELF_C_READ: pread, no mmap, so a file truncated
 * under us cannot SIGBUS us); nothing else. Everything read is
 * bounds-checked: a truncated or garbage file gives an error or fewer
 * symbols, never a crash.
 *
 * Addresses here are link-time virtual addresses (st_value, p_vaddr). A
 * runtime address becomes one in two steps: the file offset it maps
 * (addr - mapping start + mapping offset), then the PT_LOAD segment holding
 * that offset (symtab_vaddr). That handles PIE executables and shared
 * libraries whatever their load bias, and the separate r-x mapping of
 * -z separate-code layouts, without knowing where the object was loaded.
 *
 * Symbols: STT_FUNC and STT_GNU_IFUNC, plus STT_NOTYPE ones in executable
 * sections (hand-written assembly), from .symtab and .dynsym. A symbol of
 * size 0 covers up to the next symbol or the end of its section. Aliases at
 * one address keep one name, chosen as perf does: sized over unsized,
 * global over weak over local, fewer leading underscores, then shorter.
 *
 * Memory: a read takes from a byte budget (membudget.h; NULL: no limit)
 * before it allocates, both what the table keeps (symbols, names, segments)
 * and what only the read needs: libelf's descriptors of every section and
 * program header, the symbol and string table sections it loads, notes, and
 * the scratch copy sorting makes. What the read needed is given back when
 * it returns, what the table keeps when it is freed. When the budget
 * refuses, the read fails with -ENOBUFS and leaves nothing behind: part of
 * a symbol table would name addresses after the wrong function (an unsized
 * symbol reaches up to the next one kept). */
#ifndef STAKEOUT_SYMTAB_H
#define STAKEOUT_SYMTAB_H

#include "membudget.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYMTAB_BUILD_ID_MAX 64        /* bytes; the hex form needs twice that plus a NUL */
#define SYMTAB_MAX_SYMBOLS (8u << 20) /* per object: more are ignored */
#define SYMTAB_MAX_NAME 65536         /* longer names are skipped */

struct symtab;

/* Read the object open on fd, taking memory from b (borrowed, may be NULL;
 * it must outlive the table). Returns 0 and *out, -EINVAL (with a reason in
 * err) when it is not an ELF executable or shared object we understand,
 * -ENOBUFS when b refuses, or a negative errno when it cannot be read. An
 * object without any symbol table succeeds with no symbols (its build-id
 * and segments still count). */
int symtab_read_fd(int fd, struct membudget *b, struct symtab **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Same, from an image in memory (the [vdso] read from the target). */
int symtab_read_mem(const void *buf, size_t n, struct membudget *b, struct symtab **out,
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Add the .symtab of a separate debug file (open on fd) to t, from t's
 * budget. The debug file must carry t's build-id: -ENOENT when t has none,
 * -ESTALE when the ids differ, -EINVAL when fd is not ELF, -ENOBUFS when the
 * budget refuses (t is then as it was). */
int symtab_add_debug_fd(struct symtab *t, int fd, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Only the GNU build-id of the object on fd, as lowercase hex, without
 * reading its symbols: 0, -ENOENT when it has none, -EINVAL when not ELF,
 * -ENOBUFS when what libelf needs to open it does not fit b. */
int symtab_build_id_fd(int fd, struct membudget *b, char *out, size_t len)
    __attribute__((warn_unused_result));

void symtab_free(struct symtab *t);

/* Its build-id in hex, "" when it has none. Borrowed. */
const char *symtab_build_id(const struct symtab *t);

/* True when it had a full .symtab (own or from a debug file), not only the
 * exported names of .dynsym. */
bool symtab_has_full(const struct symtab *t);

/* Number of distinct symbols held. */
size_t symtab_count(const struct symtab *t);

/* Bytes t holds from its budget (given back by symtab_free). */
uint64_t symtab_bytes(const struct symtab *t);

/* The virtual address that file offset off is loaded at, through the PT_LOAD
 * segment holding it; false when no segment does. */
bool symtab_vaddr(const struct symtab *t, uint64_t off, uint64_t *vaddr);

/* The name of the symbol covering vaddr (its raw, mangled form), and its
 * start in *start when start is not NULL; NULL when none covers it.
 * Borrowed: valid until symtab_free or symtab_add_debug_fd. O(log n). */
const char *symtab_lookup(const struct symtab *t, uint64_t vaddr, uint64_t *start);

#endif
