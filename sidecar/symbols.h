/* sidecar/symbols.h - names for the addresses of a profile.
 *
 * Owns: a cache of symbol tables keyed by ELF build-id (or path and inode
 * when an object has no build-id), kept across captures, and the open file
 * descriptors of the objects a snapshot found. Borrows: the profile it
 * names. I/O: /proc/PID/maps, /proc/PID/map_files, /proc/PID/root, ELF files
 * (.symtab, .dynsym, and /usr/lib/debug/.build-id/ debug files when present),
 * /tmp/perf-PID.map inside the target's root for JIT code.
 *
 * Objects are opened through /proc/PID/map_files/START-END (the very file
 * the target mapped, even from another mount namespace, even deleted), else
 * through /proc/PID/root/PATH; never through PATH in our own filesystem,
 * which could be a different file of the same name (a sidecar's libc).
 *
 * Use: symbols_snapshot before and after a capture (maps change: dlopen),
 * then symbols_resolve once the target runs again. Resolution needs no
 * access to the target any more, so a target that exited is still named.
 * Not thread-safe: one thread at a time per cache.
 *
 * Memory: the cache holds at most symcache_max_bytes (default
 * SYMCACHE_DEFAULT_MAX_BYTES, the rules file's symbol_cache_max_bytes):
 * symbol tables and their names, perf maps, and the records of what each
 * process mapped, and while an object is read, what reading it takes
 * (libelf's copies of its headers and symbol sections, sorting scratch).
 * Every byte is taken from that budget before it is allocated. Something
 * new that needs room evicts what the snapshot under way does not use,
 * least recently used first: other processes' records and perf maps, then
 * objects no record points at. What does not fit even then is skipped and
 * noted in the profile, naming symbol_cache_max_bytes: an object whose
 * tables do not fit is not read (its frames read "module+0xoffset" and keep
 * its build-id), and a perf map keeps the lines that fit, the later ones
 * are dropped and JIT frames in the addresses those cover stay unnamed
 * (perfmap.h says why that is still exact). Outside the budget: a few
 * hundred bytes per process record, and /proc/PID/maps while it is read. */
#ifndef STAKEOUT_SYMBOLS_H
#define STAKEOUT_SYMBOLS_H

#include "profile.h"

#include <stddef.h>
#include <stdint.h>

#define SYMCACHE_DEFAULT_MAX_BYTES (64ull << 20)

struct symcache;

struct symcache *symcache_new(void);
void symcache_free(struct symcache *c);

/* The budget of the cache (see above); a smaller one than the cache holds
 * evicts at once. Call between captures, not during one. */
void symcache_set_max_bytes(struct symcache *c, uint64_t bytes);
uint64_t symcache_max_bytes(const struct symcache *c);

/* Bytes held now, and the most ever held (what was taken from the budget,
 * transient reading costs included). */
uint64_t symcache_bytes(const struct symcache *c);
uint64_t symcache_peak_bytes(const struct symcache *c);

/* Process records and objects evicted to make room so far. */
size_t symcache_evictions(const struct symcache *c);

/* Read pid's executable mappings into p (profile_add_mapping, with build-ids)
 * and load the symbol tables of their objects into the cache. Returns 0, or
 * a negative errno when /proc/PID/maps cannot be read. Objects that cannot
 * be opened are skipped (their frames will read "module+0xoffset").
 *
 * Details: a mapping p already has (same range, offset and file) is not
 * added again; p may be NULL to only fill the cache; p->pid is set when 0.
 * Every descriptor is closed before returning (an open one would keep a
 * deleted binary's disk space). A file opened through /proc/PID/root (when
 * map_files is refused: it needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)
 * must have the inode the maps line names, or else hold the bytes the
 * target has mapped (read from /proc/PID/mem); a file replaced by another
 * build is skipped, never read in its place. An object that cannot be
 * read still gets its build-id, from the target's memory (the mapping of
 * its first page), so its frames can be named elsewhere - or here, when the
 * cache has met that build. The [vdso] is read from /proc/PID/mem. The
 * perf map (/tmp/perf-N.map, N the pid as the target knows it) is read
 * incrementally: a later snapshot reads only what the JIT appended. How
 * many objects could not be read, and the first reason, go into p's notes. */
int symbols_snapshot(struct symcache *c, int pid, struct profile *p)
    __attribute__((warn_unused_result));

/* Name every frame of p: function (demangled C++ and Rust), with the
 * mapping's load bias applied for PIE and shared objects; JIT frames from
 * the perf map; the rest "module+0xoffset". Returns the number of frames
 * that got a real function name. */
size_t symbols_resolve(struct symcache *c, struct profile *p);

/* Leaf and return addresses (symbols_resolve): frame addresses are taken as
 * raw instruction pointers, leaf first, as the unwinder gives them. A frame
 * that sits anywhere but first in some stack of p is a return address,
 * which points after its call - possibly already into the next function
 * when the call was the caller's last instruction (noreturn callees) - so
 * it is looked up at addr - 1. A frame only ever seen as a leaf is looked up
 * at addr. (Frames are interned by address: one seen in both roles is
 * looked up at addr - 1, which names the same function unless a call ends
 * the function before it.) The profile keeps the raw addresses; the sampler
 * must not subtract 1 itself.
 *
 * Frames that already have a function are left alone, so call this once,
 * after the last snapshot. Mappings are matched to objects through the
 * snapshots of p->pid, else by their build-id; frames no object names (JIT
 * code in anonymous memory) are looked up in the perf map read by the
 * snapshots of p->pid. */

/* Where separate debug files are looked for by build-id
 * (DIR/.build-id/xx/yyyy.debug) for objects without a .symtab: under DIR
 * inside the target's root first, then in our own filesystem (a debug file
 * is used only when its build-id matches, so ours is safe to read). Default
 * "/usr/lib/debug"; dir is copied. */
void symcache_set_debug_root(struct symcache *c, const char *dir);

/* How many times an object's symbol tables were read (ELF parsed) so far:
 * objects met again, in any process, are found in the cache by file
 * identity or build-id and not read again. */
size_t symcache_parses(const struct symcache *c);

/* Demangle a C++ (Itanium) or Rust (legacy or v0) symbol into out; returns
 * false (out untouched) when name is not mangled. */
bool symbols_demangle(const char *name, char *out, size_t len);

#endif
