/* tests/test_symbols.c - the symbolizer (symbols.h, symtab.h, perfmap.h)
 * against real processes from tests/targets: a PIE with a shared library
 * (symtarget, libsymlib.so), its stripped copy and separate debug file, a
 * C++ program, a JIT perf map, and a target in its own mount namespace
 * whose binary is deleted and whose path names another file in ours. The
 * targets print the addresses of their functions, which are the truth the
 * names are checked against. Also: demangling, perf map text, the cache,
 * garbage ELF files, and the cache's memory budget: its accounting, its
 * evictions, its notes, the peak memory of reads it refuses (VmHWM), and
 * `stakeout record` of a target with a 3M-line perf map in a 128 MiB
 * memory cgroup. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <jansson.h>

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "membudget.h"
#include "perfmap.h"
#include "procparse.h"
#include "profile.h"
#include "support/cgroup.h"
#include "support/child.h"
#include "support/spawn.h"
#include "symbols.h"
#include "symtab.h"

/* ---- helpers ----------------------------------------------------------- */

struct target {
    struct child ch;
    size_t n;
    char name[16][40];
    uint64_t addr[16];
};

/* Starts argv and reads its "NAME VALUE" lines up to "ready". */
static void target_start(struct target *t, char *const argv[])
{
    memset(t, 0, sizeof *t);
    cr_assert_eq(child_start(&t->ch, argv), 0, "cannot start %s", argv[0]);
    for (;;) {
        char line[256];
        cr_assert_gt(child_readline(&t->ch, line, sizeof line, 20000), 0, "%s did not get ready",
                     argv[0]);
        if (strcmp(line, "ready") == 0)
            break;
        char *sp = strchr(line, ' ');
        cr_assert(sp && t->n < 16, "unexpected line '%s' from %s", line, argv[0]);
        *sp = '\0';
        cr_assert_lt(strlen(line), sizeof t->name[0]);
        memcpy(t->name[t->n], line, strlen(line) + 1);
        t->addr[t->n] = strtoull(sp + 1, NULL, 0);
        t->n++;
    }
}

static uint64_t target_value(const struct target *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->name[i], name) == 0)
            return t->addr[i];
    }
    cr_assert_fail("target did not print %s", name);
    return 0;
}

static const struct prof_frame *frame_at(const struct profile *p, uint64_t addr)
{
    for (uint32_t i = 0; i < p->nframes; i++) {
        if (p->frames[i].addr == addr)
            return &p->frames[i];
    }
    cr_assert_fail("no frame at 0x%llx", (unsigned long long)addr);
    return NULL;
}

static const char *name_at(const struct profile *p, uint64_t addr)
{
    const char *f = frame_at(p, addr)->function;
    return f ? f : "(none)";
}

static const struct prof_mapping *mapping_at(const struct profile *p, uint64_t addr)
{
    uint32_t id = profile_find_mapping(p, addr);
    cr_assert_neq(id, 0, "no mapping holds 0x%llx", (unsigned long long)addr);
    return &p->mappings[id - 1];
}

static void sample(struct profile *p, uint64_t leaf, uint64_t caller)
{
    uint64_t ips[2] = {leaf, caller};
    profile_add_sample(p, ips, caller ? 2 : 1, 1, 0, 1);
}

/* The build-id of a file, read by procparse (not by the code under test). */
static void file_build_id(const char *path, char *out, size_t len)
{
    static unsigned char head[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    cr_assert_gt(n, 0);
    cr_assert_eq(procparse_elf_build_id(head, (size_t)n, out, len), 0, "no build-id in %s", path);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(in >= 0 && out >= 0, "copy %s to %s: %s", from, to, strerror(errno));
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        cr_assert_geq(n, 0);
        if (n == 0)
            break;
        cr_assert_eq(write(out, buf, (size_t)n), n);
    }
    close(in);
    close(out);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0 && fstat(fd, &st) == 0, "open %s", path);
    unsigned char *buf = malloc((size_t)st.st_size);
    cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return buf;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* child_target's path lives in one static buffer; a test needs several. */
static char *target_path(const char *name)
{
    static char paths[4][4096];
    static unsigned next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s", child_target(name));
    return p;
}

/* ---- demangling -------------------------------------------------------- */

struct demangle_case {
    char mangled[64], want[80];
};

ParameterizedTestParameters(symbols, demangle_cxx_and_rust_names_read_as_source)
{
    static struct demangle_case cases[] = {
        {"_ZN4shop5priceEid", "shop::price(int, double)"},
        {"_ZNSt6vectorIiSaIiEE9push_backERKi",
         "std::vector<int, std::allocator<int> >::push_back(int const&)"},
        {"_ZN4shop5twiceIlEET_S1_", "long shop::twice<long>(long)"},
        {"_Z3foov.cold", "foo() [clone .cold]"},
        {"_Z3foov@@LIB_1.0", "foo()@@LIB_1.0"},
        /* Rust legacy: Itanium-shaped with a hash, which is dropped */
        {"_ZN4core3fmt9Formatter3pad17h1234567890abcdefE", "core::fmt::Formatter::pad"},
        {"_ZN3std2rt10lang_start17h0f0e0d0c0b0a0908E", "std::rt::lang_start"},
        /* Rust v0 */
        {"_RNvNtCs1234_7mycrate4util3bar", "mycrate::util::bar"},
        {"_RNvCsbmNqQUJIY6D_4core3foo", "core::foo"},
    };
    return cr_make_param_array(struct demangle_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct demangle_case *tc, symbols, demangle_cxx_and_rust_names_read_as_source)
{
    char out[256];
    cr_assert(symbols_demangle(tc->mangled, out, sizeof out), "%s not demangled", tc->mangled);
    cr_assert_str_eq(out, tc->want);
}

Test(symbols, demangle_plain_and_broken_names_leave_out_untouched)
{
    const char *names[] = {"main", "sym_exported", "_start", "", "_Z", "_ZN3foo", "_RNv", "_R"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char out[16] = "untouched";
        cr_assert_not(symbols_demangle(names[i], out, sizeof out), "'%s' demangled", names[i]);
        cr_assert_str_eq(out, "untouched");
    }
}

Test(symbols, demangle_cuts_to_the_buffer)
{
    char out[8];
    cr_assert(symbols_demangle("_ZN4shop5priceEid", out, sizeof out));
    cr_assert_str_eq(out, "shop::p");
}

/* ---- perf maps ----------------------------------------------------------- */

Test(symbols, perf_map_lines_fed_in_pieces_are_found)
{
    const char *text = "1000 100 LazyCompile:*foo /app/a.js:1\r\n"
                       "0x2000 0x10 Builtin:ArgumentsAdaptor\n"
                       "garbage line\n"
                       "3000 0 zero_size\n"
                       "4000 10\n"
                       "1010 20 later_wins\n"
                       "5000 8 last_without_newline";
    struct perfmap *m = perfmap_new(NULL);
    /* one byte at a time: every line is cut somewhere */
    for (size_t i = 0; text[i]; i++)
        perfmap_feed(m, text + i, 1);
    perfmap_sort(m);
    cr_assert_eq(perfmap_count(m), 3);
    cr_assert_str_eq(perfmap_lookup(m, 0x1000), "LazyCompile:*foo /app/a.js:1");
    cr_assert_str_eq(perfmap_lookup(m, 0x1015), "later_wins");
    cr_assert_str_eq(perfmap_lookup(m, 0x1030), "LazyCompile:*foo /app/a.js:1");
    cr_assert_null(perfmap_lookup(m, 0x1100));
    cr_assert_str_eq(perfmap_lookup(m, 0x200f), "Builtin:ArgumentsAdaptor");
    cr_assert_null(perfmap_lookup(m, 0x2010));
    cr_assert_null(perfmap_lookup(m, 0x3000));
    cr_assert_null(perfmap_lookup(m, 0x5000), "a line is not taken before its newline");
    perfmap_feed(m, "\n", 1);
    perfmap_sort(m);
    cr_assert_str_eq(perfmap_lookup(m, 0x5004), "last_without_newline");
    perfmap_free(m);
}

Test(symbols, perf_map_overlong_lines_and_noise_are_skipped)
{
    struct perfmap *m = perfmap_new(NULL);
    char *big = malloc(3 * PERFMAP_MAX_LINE);
    memset(big, 'a', 3 * PERFMAP_MAX_LINE);
    memcpy(big, "6000 10 ", 8);
    perfmap_feed(m, big, 3 * PERFMAP_MAX_LINE);
    perfmap_feed(m, "\n7000 10 ok\n", 12);
    unsigned long long x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char c = (char)(x & 0xff);
        perfmap_feed(m, &c, 1);
    }
    perfmap_sort(m);
    cr_assert_null(perfmap_lookup(m, 0x6000));
    cr_assert_str_eq(perfmap_lookup(m, 0x7001), "ok");
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const char *s = perfmap_lookup(m, x);
        if (s)
            cr_assert_lt(strlen(s), PERFMAP_MAX_LINE);
    }
    free(big);
    perfmap_free(m);
}

/* ---- real processes -------------------------------------------------------- */

Test(symbols, pie_executable_and_library_functions_are_named, .timeout = 60)
{
    char *argv[] = {target_path("symtarget"), NULL};
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    char want_exe[160], want_lib[160];

    target_start(&t, argv);
    uint64_t exported = target_value(&t, "sym_exported");
    uint64_t work = target_value(&t, "sym_static_work");
    uint64_t lib = target_value(&t, "symlib_compute");
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    cr_assert_eq(p->pid, t.ch.pid);
    sample(p, exported + 2, lib + 1);
    sample(p, work + 1, 0);
    sample(p, lib + 3, 0);

    /* the target is gone before naming: the snapshot has all it needs */
    child_stop(&t.ch);
    size_t named = symbols_resolve(c, p);

    cr_assert_str_eq(name_at(p, exported + 2), "sym_exported");
    cr_assert_str_eq(name_at(p, work + 1), "sym_static_work");
    cr_assert_str_eq(name_at(p, lib + 1), "symlib_compute");
    cr_assert_str_eq(name_at(p, lib + 3), "symlib_compute");
    cr_assert_eq(named, 4);

    const struct prof_mapping *me = mapping_at(p, exported);
    const struct prof_mapping *ml = mapping_at(p, lib);
    cr_assert(ends_with(me->file, "/symtarget"), "exe mapping is %s", me->file);
    cr_assert(ends_with(ml->file, "/libsymlib.so"), "lib mapping is %s", ml->file);
    file_build_id(argv[0], want_exe, sizeof want_exe);
    file_build_id(ml->file, want_lib, sizeof want_lib);
    cr_assert_str_eq(me->build_id, want_exe);
    cr_assert_str_eq(ml->build_id, want_lib);
    cr_assert(me->has_functions && ml->has_functions);

    /* It is a PIE, loaded far above its link-time addresses: the bias is real. */
    size_t n;
    unsigned char *img = slurp(argv[0], &n);
    cr_assert_eq(((Elf64_Ehdr *)img)->e_type, ET_DYN);
    free(img);
    cr_assert_gt(me->start, 0x10000000u);

    bool vdso = false;
    for (uint32_t i = 0; i < p->nmappings; i++) {
        if (strcmp(p->mappings[i].file, "[vdso]") == 0)
            vdso = p->mappings[i].build_id[0] != '\0';
    }
    cr_assert(vdso, "the [vdso] mapping has no build-id");

    profile_free(p);
    symcache_free(c);
}

Test(symbols, return_address_is_looked_up_one_byte_before, .timeout = 60)
{
    char *argv[] = {target_path("symtarget"), NULL};
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *callers = profile_new(PROFILE_TYPE_CPU, 99);
    struct profile *leaves = profile_new(PROFILE_TYPE_CPU, 99);

    target_start(&t, argv);
    uint64_t exported = target_value(&t, "sym_exported");
    uint64_t work = target_value(&t, "sym_static_work");
    /* sym_tail_caller ends with its call to the noreturn sym_park: the
     * return address lies past its last byte */
    uint64_t ra = target_value(&t, "ra");
    cr_assert_gt(ra, target_value(&t, "sym_tail_caller"));
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, callers), 0);
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, leaves), 0);
    child_stop(&t.ch);

    sample(callers, work + 1, ra);
    sample(callers, work + 2, exported);
    symbols_resolve(c, callers);
    cr_assert_str_eq(name_at(callers, ra), "sym_tail_caller");
    cr_assert_str_neq(name_at(callers, exported), "sym_exported",
                      "a return address at a function's first byte belongs to the one before");

    sample(leaves, ra, 0);
    sample(leaves, exported, 0);
    symbols_resolve(c, leaves);
    cr_assert_str_neq(name_at(leaves, ra), "sym_tail_caller");
    cr_assert_str_eq(name_at(leaves, exported), "sym_exported");

    profile_free(callers);
    profile_free(leaves);
    symcache_free(c);
}

Test(symbols, stripped_executable_keeps_dynsym_names_and_build_id, .timeout = 60)
{
    char *argv[] = {target_path("symtarget-stripped"), NULL};
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    char want[160], label[96];

    target_start(&t, argv);
    uint64_t exported = target_value(&t, "sym_exported");
    uint64_t work = target_value(&t, "sym_static_work");
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    child_stop(&t.ch);
    sample(p, exported + 1, 0);
    sample(p, work + 1, 0);
    sample(p, 0x10, 0);
    cr_assert_eq(symbols_resolve(c, p), 1);

    cr_assert_str_eq(name_at(p, exported + 1), "sym_exported", "from .dynsym");
    const struct prof_mapping *m = mapping_at(p, work);
    snprintf(label, sizeof label, "symtarget-stripped+0x%llx",
             (unsigned long long)(work + 1 - m->start + m->offset));
    cr_assert_str_eq(name_at(p, work + 1), label);
    cr_assert_str_eq(name_at(p, 0x10), "0x10");
    /* strip keeps the build-id note: the frame can be named elsewhere */
    file_build_id(target_path("symtarget"), want, sizeof want);
    cr_assert_str_eq(m->build_id, want);

    profile_free(p);
    symcache_free(c);
}

Test(symbols, debug_file_by_build_id_names_stripped_functions, .timeout = 60)
{
    char *argv[] = {target_path("symtarget-stripped"), NULL};
    char root[] = "/tmp/symdbg.XXXXXX", dir[256], file[512], debug[512], id[160];
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);

    cr_assert_not_null(mkdtemp(root));
    file_build_id(argv[0], id, sizeof id);
    snprintf(dir, sizeof dir, "%s/.build-id", root);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof dir, "%s/.build-id/%.2s", root, id);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(file, sizeof file, "%s/%s.debug", dir, id + 2);
    snprintf(debug, sizeof debug, "%s.debug", target_path("symtarget"));
    copy_file(debug, file, 0644);
    symcache_set_debug_root(c, root);

    target_start(&t, argv);
    uint64_t work = target_value(&t, "sym_static_work");
    uint64_t tail = target_value(&t, "sym_tail_caller");
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    child_stop(&t.ch);
    sample(p, work + 1, tail + 3);
    cr_assert_eq(symbols_resolve(c, p), 2);
    cr_assert_str_eq(name_at(p, work + 1), "sym_static_work");
    cr_assert_str_eq(name_at(p, tail + 3), "sym_tail_caller");

    profile_free(p);
    symcache_free(c);
    unlink(file);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/.build-id", root);
    rmdir(dir);
    rmdir(root);
}

Test(symbols, cxx_functions_are_demangled, .timeout = 60)
{
    char *argv[] = {target_path("symtarget_cxx"), NULL};
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);

    target_start(&t, argv);
    uint64_t price = target_value(&t, "shop_price");
    uint64_t twice = target_value(&t, "shop_twice_long");
    uint64_t count = target_value(&t, "shop_cart_count");
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    child_stop(&t.ch);
    sample(p, price + 1, twice + 1);
    sample(p, count + 1, 0);
    cr_assert_eq(symbols_resolve(c, p), 3);
    cr_assert_str_eq(name_at(p, price + 1), "shop::price(int, double)");
    cr_assert_str_eq(name_at(p, twice + 1), "long shop::twice<long>(long)");
    cr_assert_str_eq(name_at(p, count + 1), "shop::cart::count(char const*)");

    profile_free(p);
    symcache_free(c);
}

Test(symbols, perf_map_names_jit_frames, .timeout = 60)
{
    char *argv[] = {target_path("symtarget"), "--jit", NULL};
    char path[64];
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);

    target_start(&t, argv);
    snprintf(path, sizeof path, "/tmp/perf-%d.map", t.ch.pid);
    uint64_t jit = target_value(&t, "jit");
    uint64_t exported = target_value(&t, "sym_exported");
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    /* the JIT goes on appending; the next snapshot reads what is new */
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fprintf(f, "%llx 20 jit_appended_function\n", (unsigned long long)jit + 0x200);
    fclose(f);
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    child_stop(&t.ch);
    unlink(path);
    sample(p, jit + 0x20, exported + 4);
    sample(p, jit + 0x105, jit + 0x3f);
    sample(p, jit + 0x210, 0);
    cr_assert_eq(symbols_resolve(c, p), 5);
    cr_assert_str_eq(name_at(p, jit + 0x210), "jit_appended_function");
    cr_assert_str_eq(name_at(p, jit + 0x20), "jit_fake_function");
    cr_assert_str_eq(name_at(p, jit + 0x3f), "jit_fake_function");
    cr_assert_str_eq(name_at(p, jit + 0x105), "jit_other_function");
    cr_assert_str_eq(name_at(p, exported + 4), "sym_exported");

    profile_free(p);
    symcache_free(c);
}

Test(symbols, mount_namespace_target_is_read_through_map_files_not_our_file, .timeout = 60)
{
    char dir[] = "/tmp/symns.XXXXXX", app[128], decoy_map[64], want[160], decoy_id[160];
    char *real = target_path("symtarget");
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);

    cr_assert_eq(access("/usr/bin/unshare", X_OK), 0, "util-linux unshare is needed");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(app, sizeof app, "%s/app", dir);
    /* In our namespace the path names another program altogether. */
    copy_file(target_path("symtarget_cxx"), app, 0755);
    file_build_id(app, decoy_id, sizeof decoy_id);
    file_build_id(real, want, sizeof want);
    cr_assert_str_neq(want, decoy_id);

    /* In the target's: a private /tmp holding its own copy at that path,
     * which it deletes once running, its library and its perf map. The
     * files are opened before the new /tmp hides them (the build tree may
     * be under /tmp); LD_LIBRARY_PATH finds the library's copy. */
    char script[] =
        "exec 3<\"$2\" 4<\"$3\" && mount -t tmpfs none /tmp && mkdir -p \"$1\" && "
        "cat <&3 >\"$1/app\" && cat <&4 >\"$1/libsymlib.so\" && chmod 755 \"$1/app\" && "
        "exec 3<&- 4<&- && export LD_LIBRARY_PATH=\"$1\" && "
        "exec \"$1/app\" --jit --unlink-self";
    char *lib = target_path("libsymlib.so");
    char *argv[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", script, "sh", dir, real, lib, NULL};
    target_start(&t, argv);
    cr_assert_eq((int)target_value(&t, "pid"), t.ch.pid);
    uint64_t exported = target_value(&t, "sym_exported");
    uint64_t work = target_value(&t, "sym_static_work");
    uint64_t lib_addr = target_value(&t, "symlib_compute");
    uint64_t jit = target_value(&t, "jit");

    snprintf(decoy_map, sizeof decoy_map, "/tmp/perf-%d.map", t.ch.pid);
    FILE *f = fopen(decoy_map, "w");
    cr_assert_not_null(f);
    fprintf(f, "%llx 1000 decoy_function\n", (unsigned long long)jit);
    fclose(f);

    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    child_stop(&t.ch);
    unlink(decoy_map);
    sample(p, exported + 1, work + 5);
    sample(p, lib_addr + 1, jit + 1);
    cr_assert_eq(symbols_resolve(c, p), 4);
    cr_assert_str_eq(name_at(p, exported + 1), "sym_exported");
    cr_assert_str_eq(name_at(p, work + 5), "sym_static_work");
    cr_assert_str_eq(name_at(p, lib_addr + 1), "symlib_compute");
    cr_assert_str_eq(name_at(p, jit + 1), "jit_fake_function");

    const struct prof_mapping *m = mapping_at(p, exported);
    cr_assert_str_eq(m->file, app, "the path as the target sees it");
    char nslib[160];
    snprintf(nslib, sizeof nslib, "%s/libsymlib.so", dir);
    cr_assert_str_eq(mapping_at(p, lib_addr)->file, nslib, "a path that is not in our namespace");
    cr_assert_str_eq(m->build_id, want, "read our own %s instead", app);

    profile_free(p);
    symcache_free(c);
    unlink(app);
    rmdir(dir);
}

/* Takes CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE out of this test process's
 * effective set: /proc/PID/map_files is then refused, as it is to a sidecar
 * granted only CAP_SYS_PTRACE (the usual Kubernetes setup). */
static void drop_map_files_caps(int pid)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    char dir[64];

    cr_assert_eq(syscall(SYS_capget, &h, d), 0);
    d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
    d[CAP_TO_INDEX(CAP_CHECKPOINT_RESTORE)].effective &= ~CAP_TO_MASK(CAP_CHECKPOINT_RESTORE);
    cr_assert_eq(syscall(SYS_capset, &h, d), 0);

    snprintf(dir, sizeof dir, "/proc/%d/map_files", pid);
    DIR *md = opendir(dir);
    cr_assert_not_null(md);
    struct dirent *e;
    int fd = -1;
    while ((e = readdir(md)) != NULL && e->d_name[0] == '.')
        ;
    cr_assert_not_null(e);
    fd = openat(dirfd(md), e->d_name, O_RDONLY | O_CLOEXEC);
    cr_assert_eq(fd, -1, "map_files still open: the test would not test the fallback");
    cr_assert_eq(errno, EPERM);
    closedir(md);
}

Test(symbols, without_map_files_the_path_in_root_is_used_only_if_still_the_mapped_file,
     .timeout = 60)
{
    char dir[] = "/tmp/symroot.XXXXXX", kept[64], same[64], other[64], tmp[64], want[160];
    struct target tk, ts, to;
    struct symcache *c = symcache_new();
    struct profile *pk = profile_new(PROFILE_TYPE_CPU, 99);
    struct profile *ps = profile_new(PROFILE_TYPE_CPU, 99);
    struct profile *po = profile_new(PROFILE_TYPE_CPU, 99);
    struct profile *po2 = profile_new(PROFILE_TYPE_CPU, 99);
    struct symcache *fresh = symcache_new();
    char label[96];

    cr_assert_not_null(mkdtemp(dir));
    snprintf(kept, sizeof kept, "%s/kept", dir);
    snprintf(same, sizeof same, "%s/same", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    copy_file(target_path("symtarget"), kept, 0755);
    copy_file(target_path("symtarget"), same, 0755);
    copy_file(target_path("symtarget"), other, 0755);
    char *ak[] = {kept, NULL}, *as[] = {same, NULL}, *ao[] = {other, NULL};
    target_start(&tk, ak);
    target_start(&ts, as);
    target_start(&to, ao);
    /* after they started: "same" gets a new inode with the same bytes (a
     * package reinstalled), "other" another program (an upgrade) */
    copy_file(target_path("symtarget"), tmp, 0755);
    cr_assert_eq(rename(tmp, same), 0);
    copy_file(target_path("symtarget_cxx"), tmp, 0755);
    cr_assert_eq(rename(tmp, other), 0);

    drop_map_files_caps(tk.ch.pid);
    cr_assert_eq(symbols_snapshot(c, tk.ch.pid, pk), 0);
    cr_assert_eq(symbols_snapshot(c, ts.ch.pid, ps), 0);
    /* "other" alone, in a cache that has not met its build */
    cr_assert_eq(symbols_snapshot(fresh, to.ch.pid, po), 0);
    cr_assert_eq(symbols_snapshot(c, to.ch.pid, po2), 0);
    uint64_t wk = target_value(&tk, "sym_static_work"), ws = target_value(&ts, "sym_static_work");
    uint64_t wo = target_value(&to, "sym_static_work"), lo = target_value(&to, "symlib_compute");
    child_stop(&tk.ch);
    child_stop(&ts.ch);
    child_stop(&to.ch);

    sample(pk, wk + 1, 0);
    sample(ps, ws + 1, 0);
    sample(po, wo + 1, lo + 1);
    sample(po2, wo + 1, 0);
    cr_assert_eq(symbols_resolve(c, pk), 1);
    cr_assert_eq(symbols_resolve(c, ps), 1, "%s", ps->nnotes ? ps->notes[0] : "");
    cr_assert_eq(symbols_resolve(fresh, po), 1);
    cr_assert_str_eq(name_at(pk, wk + 1), "sym_static_work", "same inode");
    cr_assert_str_eq(name_at(ps, ws + 1), "sym_static_work", "same bytes");
    cr_assert_str_eq(name_at(po, lo + 1), "symlib_compute");

    /* the replaced program is not read: unnamed, and said so; its build-id
     * comes from the target's memory, for naming it elsewhere */
    const struct prof_mapping *m = mapping_at(po, wo);
    snprintf(label, sizeof label, "other+0x%llx",
             (unsigned long long)(wo + 1 - m->start + m->offset));
    cr_assert_str_eq(name_at(po, wo + 1), label);
    file_build_id(target_path("symtarget"), want, sizeof want);
    cr_assert_str_eq(m->build_id, want);
    cr_assert_eq(po->nnotes, 1);
    cr_assert(strstr(po->notes[0], "other: the file at that path is not the one mapped"), "%s",
              po->notes[0]);
    cr_assert_eq(pk->nnotes, 0, "%s", pk->nnotes ? pk->notes[0] : "");

    /* where that build-id was met in another process, its symbols serve */
    cr_assert_eq(symbols_resolve(c, po2), 1);
    cr_assert_str_eq(name_at(po2, wo + 1), "sym_static_work");

    profile_free(pk);
    profile_free(ps);
    profile_free(po);
    profile_free(po2);
    symcache_free(c);
    symcache_free(fresh);
    unlink(kept);
    unlink(same);
    unlink(other);
    rmdir(dir);
}

Test(symbols, second_snapshot_and_second_process_reuse_the_cache, .timeout = 60)
{
    char *argv[] = {target_path("symtarget"), NULL};
    struct target a, b;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);

    target_start(&a, argv);
    target_start(&b, argv);
    int pid_a = a.ch.pid;
    cr_assert_eq(symbols_snapshot(c, pid_a, NULL), 0);
    size_t parsed = symcache_parses(c);
    cr_assert_geq(parsed, 3, "exe, libsymlib, libc at least");
    cr_assert_eq(symbols_snapshot(c, a.ch.pid, p), 0);
    cr_assert_eq(symcache_parses(c), parsed, "the same process was read again");
    cr_assert_eq(symbols_snapshot(c, b.ch.pid, NULL), 0);
    cr_assert_eq(symcache_parses(c), parsed, "the same binaries were read again");
    child_stop(&a.ch);
    child_stop(&b.ch);

    uint64_t exported = target_value(&a, "sym_exported");
    sample(p, exported + 1, 0);
    cr_assert_eq(symbols_resolve(c, p), 1);
    cr_assert_str_eq(name_at(p, exported + 1), "sym_exported");
    cr_assert_eq(symbols_snapshot(c, pid_a, p), -ENOENT, "a reaped pid");

    profile_free(p);
    symcache_free(c);
}

/* ---- garbage ELF ----------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void probe(const struct symtab *t, uint64_t *seed)
{
    cr_assert_lt(strlen(symtab_build_id(t)), 2 * SYMTAB_BUILD_ID_MAX + 1);
    for (int i = 0; i < 32; i++) {
        uint64_t a = i < 16 ? rnd(seed) % 0x8000 : rnd(seed), va;
        const char *name = symtab_lookup(t, a, NULL);
        if (name)
            cr_assert_leq(strlen(name), SYMTAB_MAX_NAME);
        if (symtab_vaddr(t, a, &va))
            (void)symtab_lookup(t, va, &va);
    }
}

Test(symbols, garbage_and_truncated_elf_files_never_crash, .timeout = 60)
{
    size_t n;
    unsigned char *orig = slurp(target_path("symtarget"), &n);
    unsigned char *buf = malloc(n);
    char path[] = "/tmp/symfuzz.XXXXXX", err[128], id[160];
    int fd = mkstemp(path);
    struct symtab *valid = NULL, *t;
    uint64_t seed = 0x5eedf00dULL;
    size_t parsed = 0, rejected = 0;

    cr_assert_geq(fd, 0);
    cr_assert_eq(symtab_read_mem(orig, n, NULL, &valid, err, sizeof err), 0, "%s", err);
    cr_assert(symtab_has_full(valid));
    cr_assert_gt(symtab_count(valid), 5);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)orig;
    uint64_t shoff = eh->e_shoff, shlen = (uint64_t)eh->e_shnum * eh->e_shentsize;
    cr_assert_leq(shoff + shlen, n);

    for (int it = 0; it < 2500; it++) {
        size_t len = n;
        memcpy(buf, orig, n);
        switch (it % 5) {
        case 0: /* cut anywhere */
            len = (size_t)(rnd(&seed) % n);
            break;
        case 1: /* the ELF header */
            for (int k = 1 + (int)(rnd(&seed) % 6); k > 0; k--)
                buf[16 + rnd(&seed) % 48] = (unsigned char)rnd(&seed);
            break;
        case 2: /* section headers: offsets, sizes, links, types */
            for (int k = 1 + (int)(rnd(&seed) % 8); k > 0; k--)
                buf[shoff + rnd(&seed) % shlen] = (unsigned char)rnd(&seed);
            break;
        case 3: /* anywhere, with some huge words */
            for (int k = 1 + (int)(rnd(&seed) % 32); k > 0; k--) {
                size_t at = (size_t)(rnd(&seed) % (n - 8));
                if (k % 4 == 0)
                    memset(buf + at, 0xff, 8);
                else
                    buf[at] = (unsigned char)rnd(&seed);
            }
            if (rnd(&seed) % 3 == 0)
                len = (size_t)(rnd(&seed) % n);
            break;
        default: /* an ELF identification, then noise */
            for (size_t k = 16; k < n; k++)
                buf[k] = (unsigned char)rnd(&seed);
            len = 64 + (size_t)(rnd(&seed) % 4096);
            break;
        }
        cr_assert_eq(ftruncate(fd, 0), 0);
        cr_assert_eq(pwrite(fd, buf, len, 0), (ssize_t)len);

        t = NULL;
        if (symtab_read_fd(fd, NULL, &t, err, sizeof err) == 0) {
            parsed++;
            probe(t, &seed);
            symtab_free(t);
        } else {
            rejected++;
        }
        if (symtab_build_id_fd(fd, NULL, id, sizeof id) == 0)
            cr_assert_lt(strlen(id), sizeof id);
        t = NULL;
        if (symtab_read_mem(buf, len, NULL, &t, err, sizeof err) == 0) {
            probe(t, &seed);
            symtab_free(t);
        }
        /* as the debug file of the real object (same build-id when the
         * mutation left the note alone) */
        if (symtab_add_debug_fd(valid, fd, err, sizeof err) == 0)
            cr_assert(symtab_has_full(valid));
        probe(valid, &seed);
    }
    cr_assert_gt(parsed, 100, "mutations left too few readable files to exercise the reader");
    cr_assert_gt(rejected, 100);

    symtab_free(valid);
    close(fd);
    unlink(path);
    free(buf);
    free(orig);
}

/* ---- the memory budget ------------------------------------------------------- */

#define MIB (1024 * 1024)

#ifdef __SANITIZE_ADDRESS__
/* The budget tests measure this process's peak resident memory. ASan's
 * quarantine keeps freed blocks resident (256 MiB by default), so it would
 * measure the sanitizer rather than the code: keep it small here. */
const char *__asan_default_options(void) __attribute__((used));
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=1";
}
#endif

/* A peak of this process's resident memory, in KiB, from /proc/self/status. */
static long status_kib(const char *field)
{
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "re");
    cr_assert_not_null(f);
    while (v < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    }
    fclose(f);
    cr_assert_geq(v, 0, "no %s in /proc/self/status", field);
    return v;
}

/* Restart VmHWM from the current RSS (clear_refs 5), and return that RSS. */
static long peak_restart(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "clear_refs: %s", strerror(errno));
    cr_assert_eq(write(fd, "5", 1), 1, "clear_refs: %s", strerror(errno));
    close(fd);
    return status_kib("VmRSS");
}

/* How far VmHWM went above rss (KiB) since peak_restart. */
static long peak_growth_mib(long rss)
{
    return (status_kib("VmHWM") - rss) / 1024;
}

/* A shared object with nsyms sized function symbols, all named "f", of 16
 * bytes each from address 0x1000, one segment loading the whole file at
 * address 0, and no build-id: its .symtab takes 24 bytes a symbol, which a
 * reader must hold twice or more. */
static void write_elf_with_symbols(int fd, size_t nsyms)
{
    const uint64_t strtab_off = 0x1000, symtab_off = 0x1008;
    const uint64_t symtab_size = (nsyms + 1) * sizeof(Elf64_Sym);
    Elf64_Ehdr eh = {.e_type = ET_DYN, .e_machine = EM_X86_64, .e_version = EV_CURRENT};
    Elf64_Phdr ph = {.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_align = 0x1000};
    Elf64_Shdr sh[4] = {
        [1] = {.sh_type = SHT_NOBITS,
               .sh_flags = SHF_ALLOC | SHF_EXECINSTR,
               .sh_addr = 0x1000,
               .sh_size = nsyms * 16},
        [2] = {.sh_type = SHT_SYMTAB,
               .sh_offset = symtab_off,
               .sh_size = symtab_size,
               .sh_link = 3,
               .sh_info = 1,
               .sh_addralign = 8,
               .sh_entsize = sizeof(Elf64_Sym)},
        [3] = {.sh_type = SHT_STRTAB, .sh_offset = strtab_off, .sh_size = 3},
    };
    static Elf64_Sym chunk[4096];

    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ehsize = sizeof eh;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof ph;
    eh.e_phnum = 1;
    eh.e_shoff = symtab_off + symtab_size;
    eh.e_shentsize = sizeof sh[0];
    eh.e_shnum = 4;
    ph.p_filesz = ph.p_memsz = eh.e_shoff + sizeof sh; /* file offset = address */
    cr_assert_eq(ftruncate(fd, 0), 0);
    cr_assert_eq(pwrite(fd, &eh, sizeof eh, 0), (ssize_t)sizeof eh);
    cr_assert_eq(pwrite(fd, &ph, sizeof ph, sizeof eh), (ssize_t)sizeof ph);
    cr_assert_eq(pwrite(fd, "\0f\0", 3, (off_t)strtab_off), 3);
    for (size_t i = 0; i <= nsyms; i += 4096) {
        size_t n = nsyms + 1 - i < 4096 ? nsyms + 1 - i : 4096;
        for (size_t k = 0; k < n; k++) {
            size_t at = i + k;
            chunk[k] = (Elf64_Sym){0};
            if (at > 0)
                chunk[k] = (Elf64_Sym){.st_name = 1,
                                       .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                                       .st_shndx = 1,
                                       .st_value = 0x1000 + (at - 1) * 16,
                                       .st_size = 16};
        }
        off_t off = (off_t)(symtab_off + i * sizeof(Elf64_Sym));
        cr_assert_eq(pwrite(fd, chunk, n * sizeof chunk[0], off), (ssize_t)(n * sizeof chunk[0]));
    }
    cr_assert_eq(pwrite(fd, sh, sizeof sh, (off_t)eh.e_shoff), (ssize_t)sizeof sh);
}

/* Files a test made in /tmp, removed by its .fini (remove_made) also when an
 * assertion ends the test early. */
static char made_files[4][64];

static void made(const char *path)
{
    for (size_t i = 0; i < sizeof made_files / sizeof made_files[0]; i++) {
        if (!made_files[i][0]) {
            snprintf(made_files[i], sizeof made_files[i], "%s", path);
            return;
        }
    }
    cr_assert_fail("more than 4 files made");
}

static void remove_made(void)
{
    for (size_t i = 0; i < sizeof made_files / sizeof made_files[0]; i++) {
        if (made_files[i][0] && unlink(made_files[i]) == -1 && errno != ENOENT)
            fprintf(stderr, "cannot remove %s: %s\n", made_files[i], strerror(errno));
        made_files[i][0] = '\0';
    }
}

/* /tmp/perf-PID.map with n lines "BASE+i*0x100 40 NAME_i" of a JIT named
 * name, after what the file holds when append. */
static void write_perf_map(int pid, uint64_t base, size_t n, const char *name, bool append)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", pid);
    FILE *f = fopen(path, append ? "ae" : "we");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    if (!append)
        made(path);
    for (size_t i = 0; i < n; i++)
        cr_assert_gt(fprintf(f, "%llx 40 %s_%zu /srv/app/routes.js:%zu\n",
                             (unsigned long long)(base + i * 0x100), name, i, i),
                     0);
    cr_assert_eq(fclose(f), 0);
}

static const char *note_with(const struct profile *p, const char *text)
{
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strstr(p->notes[i], text))
            return p->notes[i];
    }
    return NULL;
}

Test(symbols, perf_map_over_its_budget_keeps_what_fits_and_names_nothing_a_later_line_may_cover)
{
    struct membudget b;
    membudget_init(&b, 64 * 1024, NULL, NULL);
    struct perfmap *m = perfmap_new(&b);
    char line[128];
    const uint64_t base = 0x100000;

    for (size_t i = 0; i < 20000; i++) {
        int n = snprintf(line, sizeof line, "%llx 40 fn_%05zu\n",
                         (unsigned long long)(base + i * 0x100), i);
        perfmap_feed(m, line, (size_t)n);
        cr_assert_leq(b.used, b.limit, "over the budget after line %zu", i);
    }
    perfmap_sort(m);
    bool by_budget = false;
    size_t kept = perfmap_count(m);
    cr_assert(kept > 100 && kept < 20000, "%zu lines kept", kept);
    cr_assert_eq(perfmap_dropped(m, &by_budget), 20000 - kept);
    cr_assert(by_budget);
    cr_assert_eq(perfmap_bytes(m), b.used, "the map holds what it took");
    cr_assert_leq(b.peak, b.limit);

    snprintf(line, sizeof line, "fn_%05zu", kept - 1);
    cr_assert_str_eq(perfmap_lookup(m, base + 5 * 0x100 + 3), "fn_00005");
    cr_assert_str_eq(perfmap_lookup(m, base + (kept - 1) * 0x100), line);
    cr_assert_null(perfmap_lookup(m, base + kept * 0x100), "a dropped line");
    cr_assert_null(perfmap_lookup(m, base + 19999 * 0x100 + 1));

    /* The JIT reuses the memory of fn_00005: that later line is dropped too,
     * and fn_00005's name may be stale there now, so nothing is named from
     * there on. Below it the kept names are still right. */
    perfmap_feed(m, "100500 10 reused\n", 17);
    perfmap_sort(m);
    cr_assert_null(perfmap_lookup(m, base + 5 * 0x100 + 3));
    cr_assert_null(perfmap_lookup(m, base + 6 * 0x100 + 3));
    cr_assert_str_eq(perfmap_lookup(m, base + 4 * 0x100 + 3), "fn_00004");
    cr_assert_eq(perfmap_dropped(m, NULL), 20000 - kept + 1);

    perfmap_free(m);
    cr_assert_eq(b.used, 0, "%llu bytes not given back", (unsigned long long)b.used);
}

Test(symbols, perf_map_without_a_budget_keeps_every_line)
{
    struct perfmap *m = perfmap_new(NULL);
    char line[64];
    for (size_t i = 0; i < 20000; i++) {
        int n = snprintf(line, sizeof line, "%zx 40 fn_%05zu\n", 0x100000 + i * 0x100, i);
        perfmap_feed(m, line, (size_t)n);
    }
    perfmap_sort(m);
    cr_assert_eq(perfmap_count(m), 20000);
    cr_assert_eq(perfmap_dropped(m, NULL), 0);
    cr_assert_str_eq(perfmap_lookup(m, 0x100000 + 19999 * 0x100 + 1), "fn_19999");
    perfmap_free(m);
}

/* Budgets that refuse at different points: libelf's copy of the .symtab
 * (48 MiB) does not fit 4 MiB; in 80 MiB it does, and the table's own
 * array and the sort's scratch do not. */
ParameterizedTestParameters(symbols,
                            symbol_table_larger_than_the_budget_is_refused_before_it_is_read)
{
    static unsigned budgets_mib[] = {4, 80};
    return cr_make_param_array(unsigned, budgets_mib, 2);
}

ParameterizedTest(unsigned *mib, symbols,
                  symbol_table_larger_than_the_budget_is_refused_before_it_is_read, .timeout = 60,
                  .fini = remove_made)
{
    char path[] = "/tmp/symbig.XXXXXX", err[128] = "", id[160];
    int fd = mkstemp(path);
    struct symtab *t = NULL;
    struct membudget b;
    const size_t nsyms = 2u << 20;

    cr_assert_geq(fd, 0);
    cr_assert_eq(unlink(path), 0, "read through fd only");
    write_elf_with_symbols(fd, nsyms);
    membudget_init(&b, (uint64_t)*mib * MIB, NULL, NULL);

    long rss = peak_restart();
    cr_assert_eq(symtab_read_fd(fd, &b, &t, err, sizeof err), -ENOBUFS, "%s", err);
    long grew = peak_growth_mib(rss);
    cr_log_info("budget %u MiB: refused (%s), peak grew %ld MiB", *mib, err, grew);
    cr_assert_null(t);
    cr_assert(strstr(err, "memory budget"), "%s", err);
    cr_assert_leq(grew, *mib + 4, "the refused read went %ld MiB up, budget %u MiB", grew, *mib);
    cr_assert_eq(b.used, 0, "%llu bytes not given back", (unsigned long long)b.used);
    cr_assert_leq(b.peak, b.limit);
    cr_assert_eq(symtab_build_id_fd(fd, &b, id, sizeof id), -ENOENT, "it has no build-id");

    /* Control: the same read without a budget does go that high - the
     * measure above would have seen it. */
    rss = peak_restart();
    cr_assert_eq(symtab_read_fd(fd, NULL, &t, err, sizeof err), 0, "%s", err);
    grew = peak_growth_mib(rss);
    cr_assert_gt(grew, 90, "an unbounded read grew only %ld MiB", grew);
    cr_assert_eq(symtab_count(t), nsyms);
    cr_assert_str_eq(symtab_lookup(t, 0x1000 + 12345 * 16 + 3, NULL), "f");
    symtab_free(t);

    /* With room it is read whole, and what it holds is all given back. */
    t = NULL;
    membudget_init(&b, 512ull * MIB, NULL, NULL);
    cr_assert_eq(symtab_read_fd(fd, &b, &t, err, sizeof err), 0, "%s", err);
    cr_assert_eq(symtab_count(t), nsyms);
    cr_assert_eq(symtab_bytes(t), b.used);
    cr_assert_geq(b.used, nsyms * 16, "the table holds its symbols");
    cr_assert_gt(b.peak, b.used + nsyms * 24, "libelf's copy of .symtab was counted");
    symtab_free(t);
    cr_assert_eq(b.used, 0);

    close(fd);
}

Test(symbols, snapshots_evict_other_processes_least_recently_used_first_within_the_budget,
     .timeout = 90, .fini = remove_made)
{
    char *argv[] = {target_path("symtarget"), NULL};
    const uint64_t jit = 0x10000000; /* no object is mapped there */
    struct target a, b;
    struct symcache *c = symcache_new();
    struct profile *pa = profile_new(PROFILE_TYPE_CPU, 99);
    struct profile *pb = profile_new(PROFILE_TYPE_CPU, 99);
    struct profile *pa2 = profile_new(PROFILE_TYPE_CPU, 99);
    char want[64];

    target_start(&a, argv);
    target_start(&b, argv);
    int pid_a = a.ch.pid, pid_b = b.ch.pid;
    write_perf_map(pid_a, jit, 20000, "jit_a", false);
    write_perf_map(pid_b, jit, 20000, "jit_b", false);

    cr_assert_eq(symbols_snapshot(c, a.ch.pid, pa), 0);
    uint64_t alone = symcache_bytes(c);
    size_t parses = symcache_parses(c);
    cr_assert_null(note_with(pa, "perf map"), "%s", note_with(pa, "perf map"));
    cr_assert_gt(alone, 1 * MIB, "20000 perf map lines and the objects");

    /* Room for one process's perf map, not for two: B's snapshot evicts
     * what A's left, and B is named whole. */
    uint64_t limit = alone * 3 / 2;
    symcache_set_max_bytes(c, limit);
    cr_assert_eq(symcache_evictions(c), 0);
    cr_assert_eq(symbols_snapshot(c, b.ch.pid, pb), 0);
    cr_assert_geq(symcache_evictions(c), 1, "nothing was evicted");
    cr_assert_leq(symcache_peak_bytes(c), limit);
    cr_assert_leq(symcache_bytes(c), limit);
    cr_assert_eq(symcache_parses(c), parses, "B's objects, in use, were evicted and read again");
    cr_assert_eq(pb->nnotes, 0, "%s", pb->nnotes ? pb->notes[0] : "");

    uint64_t exported = target_value(&a, "sym_exported");
    sample(pa, jit + 5 * 0x100 + 1, exported + 1);
    sample(pb, jit + 7 * 0x100 + 1, target_value(&b, "sym_exported") + 1);
    cr_assert_eq(symbols_resolve(c, pb), 2);
    cr_assert_str_eq(name_at(pb, jit + 7 * 0x100 + 1), "jit_b_7 /srv/app/routes.js:7");
    /* A's record went, with its perf map; its ELF objects are found by
     * build-id */
    cr_assert_eq(symbols_resolve(c, pa), 1);
    cr_assert_str_eq(name_at(pa, exported + 1), "sym_exported");
    cr_assert_str_neq(name_at(pa, jit + 5 * 0x100 + 1), "jit_a_5 /srv/app/routes.js:5");

    /* A map larger than the whole budget keeps what fits, and says so. */
    write_perf_map(pid_a, jit + 20000 * 0x100, 200000, "jit_more", true);
    cr_assert_eq(symbols_snapshot(c, pid_a, pa2), 0);
    cr_assert_leq(symcache_peak_bytes(c), limit);
    const char *note = note_with(pa2, "lines not kept");
    cr_assert_not_null(note, "no note about the perf map");
    cr_log_info("%s", note);
    cr_assert(strstr(note, "symbol_cache_max_bytes"), "%s", note);
    cr_assert(strstr(note, "/tmp/perf-"), "%s", note);
    sample(pa2, jit + 3 * 0x100 + 1, 0);
    sample(pa2, jit + 219999 * 0x100 + 1, 0);
    cr_assert_eq(symbols_resolve(c, pa2), 1);
    cr_assert_str_eq(name_at(pa2, jit + 3 * 0x100 + 1), "jit_a_3 /srv/app/routes.js:3");
    snprintf(want, sizeof want, "0x%llx", (unsigned long long)(jit + 219999 * 0x100 + 1));
    cr_assert_str_eq(name_at(pa2, jit + 219999 * 0x100 + 1), want, "a dropped line named a frame");

    child_stop(&a.ch);
    child_stop(&b.ch);
    profile_free(pa);
    profile_free(pb);
    profile_free(pa2);
    symcache_free(c);
}

Test(symbols, object_too_large_for_the_budget_is_skipped_with_a_note, .timeout = 90,
     .fini = remove_made)
{
    char big[] = "/tmp/symbig.XXXXXX";
    int fd = mkstemp(big);
    cr_assert_geq(fd, 0);
    made(big);
    write_elf_with_symbols(fd, 2u << 20); /* about 150 MiB to read whole */
    close(fd);
    char *argv[] = {target_path("symtarget"), "--map", big, NULL};
    struct target t;
    struct symcache *c = symcache_new();
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    char label[128];

    target_start(&t, argv);
    uint64_t mapped = target_value(&t, "mapped");
    uint64_t exported = target_value(&t, "sym_exported");
    long rss = peak_restart();
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, p), 0);
    long grew = peak_growth_mib(rss);
    cr_log_info("snapshot with a 2M-symbol object: peak grew %ld MiB", grew);
    cr_assert_leq(grew, 64 + 8, "the snapshot went %ld MiB up for a 64 MiB budget", grew);
    cr_assert_leq(symcache_peak_bytes(c), symcache_max_bytes(c));
    const char *note = note_with(p, "not read");
    cr_assert_not_null(note, "no note about the object");
    cr_log_info("%s", note);
    cr_assert(strstr(note, "1 of "), "%s", note);
    cr_assert(strstr(note, "do not fit symbol_cache_max_bytes (64MiB)"), "%s", note);
    cr_assert(strstr(note, big), "%s", note);

    sample(p, mapped + 0x10, exported + 1);
    cr_assert_eq(symbols_resolve(c, p), 1, "the other objects are named");
    cr_assert_str_eq(name_at(p, exported + 1), "sym_exported");
    snprintf(label, sizeof label, "%s+0x10", strrchr(big, '/') + 1);
    cr_assert_str_eq(name_at(p, mapped + 0x10), label);

    /* not remembered as unreadable: with room, the next snapshot reads it */
    symcache_set_max_bytes(c, 512ull * MIB);
    struct profile *q = profile_new(PROFILE_TYPE_CPU, 99);
    cr_assert_eq(symbols_snapshot(c, t.ch.pid, q), 0);
    cr_assert_null(note_with(q, "not read"), "%s", note_with(q, "not read"));
    child_stop(&t.ch);
    sample(q, mapped + 0x1000 + 0x20, 0);
    cr_assert_eq(symbols_resolve(c, q), 1);
    cr_assert_str_eq(name_at(q, mapped + 0x1000 + 0x20), "f");

    profile_free(p);
    profile_free(q);
    symcache_free(c);
}

/* The case: a target whose perf map has 3 million lines (180 MB),
 * profiled by `stakeout record` in a cgroup limited to 128 MiB, as the
 * deploy files limit stakeout. Without the budget the map alone needs some
 * 300 MB and stakeout is OOM-killed before it writes anything. */
Test(symbols, record_of_a_3m_line_perf_map_completes_under_a_128mib_limit, .timeout = 300,
     .fini = remove_made)
{
    char dir[128], out[] = "/tmp/stakeout-perfmap-XXXXXX.json", script[512], pid[16];
    bool v2 = cgroup_make("memory", dir, sizeof dir);
    cgroup_set(dir, v2 ? "memory.max" : "memory.limit_in_bytes", "134217728");
    if (!v2 && access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) == 0)
        cgroup_set(dir, "memory.memsw.limit_in_bytes", "134217728"); /* no swap either */

    char *argv[] = {target_path("symtarget"), NULL};
    struct target t;
    target_start(&t, argv);
    int target_pid = t.ch.pid;
    write_perf_map(target_pid, 0x10000000, 3000000, "LazyCompile:*handler", false);

    int fd = mkstemps(out, 5);
    cr_assert_geq(fd, 0);
    made(out);
    close(fd);
    snprintf(pid, sizeof pid, "%d", target_pid);
    /* the shell joins the cgroup and becomes stakeout: it is limited from
     * its first allocation */
    snprintf(script, sizeof script, "echo $$ > %s/cgroup.procs && exec \"$0\" \"$@\"", dir);
    char *args[] = {"/bin/sh", "-c", script, (char *)spawn_stakeout_bin(),
                    "record",  "-p", pid,    "--mode",
                    "wall",    "-d", "1s",   "-q",
                    "-o",      out,  NULL};
    /* ASan keeps freed blocks in a quarantine, 256 MiB by default: a
     * sanitized build would be measured with it */
    char asan[512];
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%squarantine_size_mb=8",
             getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
             getenv("ASAN_OPTIONS") ? ":" : "");
    char *env[] = {asan, NULL};
    struct spawn_result r;
    cr_assert_eq(spawn_capture(args, env, 240000, &r), 0);
    unsigned long long peak =
        cgroup_value(dir, v2 ? "memory.peak" : "memory.max_usage_in_bytes", NULL);
    unsigned long long kills = v2 ? cgroup_value(dir, "memory.events", "oom_kill")
                                  : cgroup_value(dir, "memory.oom_control", "oom_kill");
    cr_log_info("record: status %d, cgroup peak %llu MiB, oom kills %llu", r.status, peak >> 20,
                kills);
    child_stop(&t.ch);
    cgroup_remove(dir);

    cr_assert_not(r.timed_out, "stakeout record did not finish in 240 s");
    cr_assert_eq(kills, 0, "stakeout was OOM-killed (status %d)", r.status);
    cr_assert_eq(r.status, 0, "stakeout record failed (status %d): %s", r.status, r.err);
    json_error_t jerr;
    json_t *j = json_load_file(out, 0, &jerr);
    cr_assert_not_null(j, "%s: %s", out, jerr.text);
    json_t *notes = json_object_get(j, "notes");
    const char *note = NULL;
    for (size_t i = 0; i < json_array_size(notes) && !note; i++) {
        const char *n = json_string_value(json_array_get(notes, i));
        if (n && strstr(n, "lines not kept"))
            note = n;
    }
    cr_assert_not_null(note, "the profile does not say the perf map was cut");
    cr_log_info("%s", note);
    cr_assert(strstr(note, "symbol_cache_max_bytes (64MiB)"), "%s", note);
    cr_assert_gt(json_integer_value(json_object_get(j, "samples")), 0, "nothing was sampled");
    json_decref(j);
    spawn_result_fini(&r);
}
