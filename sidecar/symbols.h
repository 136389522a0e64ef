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
 * access to the target any more, so a target that exited is still named. */
#ifndef STAKEOUT_SYMBOLS_H
#define STAKEOUT_SYMBOLS_H

#include "profile.h"

#include <stddef.h>

struct symcache;

struct symcache *symcache_new(void);
void symcache_free(struct symcache *c);

/* Read pid's executable mappings into p (profile_add_mapping, with build-ids)
 * and load the symbol tables of their objects into the cache. Returns 0, or
 * a negative errno when /proc/PID/maps cannot be read. Objects that cannot
 * be opened are skipped (their frames will read "module+0xoffset"). */
int symbols_snapshot(struct symcache *c, int pid, struct profile *p)
    __attribute__((warn_unused_result));

/* Name every frame of p: function (demangled C++ and Rust), with the
 * mapping's load bias applied for PIE and shared objects; JIT frames from
 * the perf map; the rest "module+0xoffset". Returns the number of frames
 * that got a real function name. */
size_t symbols_resolve(struct symcache *c, struct profile *p);

/* Demangle a C++ (Itanium) or Rust (legacy or v0) symbol into out; returns
 * false (out untouched) when name is not mangled. */
bool symbols_demangle(const char *name, char *out, size_t len);

#endif
