/* tests/test_smaps.c - /proc/PID/smaps parsed, classified, compared (smaps.h):
 * on recorded text, and on this process's own file. */
#include <criterion/criterion.h>

#include "smaps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

TestSuite(smaps, .timeout = 30);

static const char rec[] =
    "55d0c6a00000-55d0c6a21000 r-xp 00000000 08:01 1234                       /usr/bin/app\n"
    "Size:                132 kB\n"
    "Rss:                 120 kB\n"
    "Pss:                  60 kB\n"
    "Anonymous:             0 kB\n"
    "VmFlags: rd ex mr mw me\n"
    "55d0c6c00000-55d0c6c21000 rw-p 00000000 00:00 0                          [heap]\n"
    "Rss:                 132 kB\n"
    "Anonymous:           132 kB\n"
    "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
    "Rss:                  64 kB\n"
    "7f0000021000-7f0004000000 ---p 00000000 00:00 0 \n"
    "Rss:                   0 kB\n"
    "7f1000000000-7f1000001000 ---p 00000000 00:00 0 \n"
    "Rss:                   0 kB\n"
    "7f1000001000-7f1000801000 rw-p 00000000 00:00 0 \n"
    "Rss:                  16 kB\n"
    "Swap:                  8 kB\n"
    "7f2000000000-7f2000100000 rw-s 00000000 00:05 99                         /dev/shm/ring (deleted)\n"
    "Rss:                1024 kB\n"
    "7f3000000000-7f3000001000 rw-p 00000000 00:00 0                          [anon:jit cache]\n"
    "Rss:                   4 kB\n"
    "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "Rss:                  12 kB\n"
    "7ffc00100000-7ffc00102000 r-xp 00000000 00:00 0                          [vdso]\n"
    "Rss:                   8 kB\n"
    "7ffc00200000-7ffc00201000 r--p 00000000 00:00 0                          [vvar]\n"
    "Rss:                   4";

Test(smaps, recorded_text_is_classified_and_counted)
{
    struct smaps s;
    cr_assert_eq(smaps_parse(rec, strlen(rec), &s), 0);
    cr_assert_eq(s.n, 11, "the last line is cut: its mapping is kept, its field is not");
    cr_expect(s.truncated);
    enum smaps_kind want[] = {SMAPS_FILE, SMAPS_HEAP,   SMAPS_ANON,  SMAPS_ANON,  SMAPS_ANON,
                              SMAPS_STACK, SMAPS_SHARED, SMAPS_ANON, SMAPS_STACK, SMAPS_OTHER,
                              SMAPS_OTHER};
    for (size_t i = 0; i < 11; i++)
        cr_expect_eq(s.v[i].kind, want[i], "mapping %zu is %s", i, smaps_kind_name(s.v[i].kind));
    cr_expect_str_eq(s.v[0].path, "/usr/bin/app");
    cr_expect_eq(s.v[0].rss, 120 * 1024);
    cr_expect_eq(s.v[0].pss, 60 * 1024);
    cr_expect_eq(s.v[5].swap, 8 * 1024);
    cr_expect_str_eq(s.v[6].path, "/dev/shm/ring", "without ' (deleted)'");
    cr_expect_str_eq(s.v[7].path, "[anon:jit cache]");
    uint64_t rss[SMAPS_NKINDS];
    smaps_totals(&s, rss);
    cr_expect_eq(rss[SMAPS_HEAP], 132 * 1024);
    cr_expect_eq(rss[SMAPS_ANON], 68 * 1024);
    cr_expect_eq(rss[SMAPS_STACK], 28 * 1024);
    cr_expect_eq(rss[SMAPS_SHARED], 1024 * 1024);
    cr_expect_eq(rss[SMAPS_OTHER], 8 * 1024, "vvar's cut field is not counted");
    smaps_fini(&s);
}

Test(smaps, garbage_and_empty_text_are_refused)
{
    struct smaps s;
    cr_expect_eq(smaps_parse("", 0, &s), -EINVAL);
    const char junk[] = "Rss: 4 kB\nnot a mapping\n\x01\x02\n55-44 rw-p 0 0:0 0\n";
    cr_expect_eq(smaps_parse(junk, sizeof junk - 1, &s), -EINVAL);
}

static const char before[] =
    "1000-3000 rw-p 00000000 00:00 0 [heap]\nRss: 8 kB\n"
    "5000-6000 rw-p 00000000 00:00 0 \nRss: 4 kB\n"
    "9000-a000 r--p 00000000 08:01 7 /lib/x.so\nRss: 4 kB\n";
static const char after[] =
    "1000-9000 rw-p 00000000 00:00 0 [heap]\nRss: 24 kB\n"
    "9000-a000 r--p 00000000 08:01 7 /lib/x.so\nRss: 4 kB\n"
    "b000-f000 rw-p 00000000 00:00 0 \nRss: 16 kB\n";

Test(smaps, diff_lists_growth_largest_first_and_what_went)
{
    struct smaps a, b;
    cr_assert_eq(smaps_parse(before, sizeof before - 1, &a), 0);
    cr_assert_eq(smaps_parse(after, sizeof after - 1, &b), 0);
    struct smaps_change *c;
    size_t n = smaps_diff(&a, &b, &c);
    cr_assert_eq(n, 3, "the unchanged library is left out");
    cr_expect_eq(c[0].kind, SMAPS_HEAP);
    cr_expect_eq(c[0].rss_before, 8 * 1024);
    cr_expect_eq(c[0].rss_after, 24 * 1024);
    cr_expect_eq(c[0].size_after, 0x8000);
    cr_expect_eq(c[1].start, 0xb000, "new: grew from nothing");
    cr_expect_eq(c[1].size_before, 0);
    cr_expect_eq(c[2].start, 0x5000, "gone: last");
    cr_expect_eq(c[2].rss_after, 0);
    free(c);
    smaps_fini(&a);
    smaps_fini(&b);
}

Test(smaps, own_process_growth_shows_in_a_real_reading)
{
    struct smaps a, b;
    char err[256];
    cr_assert_eq(smaps_read(getpid(), 64 << 20, &a, err, sizeof err), 0, "%s", err);
    size_t len = 8 << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    memset(m, 1, len);
    cr_assert_eq(smaps_read(getpid(), 64 << 20, &b, err, sizeof err), 0, "%s", err);
    cr_expect(!a.truncated && !b.truncated);
    struct smaps_change *c;
    size_t n = smaps_diff(&a, &b, &c);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (c[i].start <= (uintptr_t)m && c[i].start + c[i].size_after >= (uintptr_t)m + len &&
            c[i].rss_after - c[i].rss_before >= len) {
            found = true;
            cr_expect_eq(c[i].kind, SMAPS_ANON);
        }
    }
    cr_expect(found, "8 MiB touched are not in the diff");
    free(c);
    munmap(m, len);
    smaps_fini(&a);
    smaps_fini(&b);
    cr_expect_eq(smaps_read(999999999, 1 << 20, &a, err, sizeof err), -ENOENT);
    cr_expect(strstr(err, "/proc/999999999/smaps") != NULL, "%s", err);
}
