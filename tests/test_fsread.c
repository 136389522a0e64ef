/* tests/test_fsread.c - small-file reads against real files: a file
 * larger than the first buffer, a cut at max, a missing file, procfs. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsread.h"

static char path[64];

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/stakeout-fsread-%d", (int)getpid());
}

static void teardown(void)
{
    unlink(path);
}

TestSuite(fsread, .init = setup, .fini = teardown, .timeout = 30);

/* 100,000 bytes of a known pattern, several times the first buffer. */
static void write_pattern(size_t n)
{
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++)
        cr_assert_neq(fputc('a' + (int)(i % 26), f), EOF);
    cr_assert_eq(fclose(f), 0);
}

Test(fsread, alloc_reads_a_large_file_whole_and_nul_terminated)
{
    write_pattern(100000);
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(fsread_alloc(path, 1u << 20, &buf, &len), 0);
    cr_assert_eq(len, 100000);
    cr_assert_eq(buf[len], '\0');
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != 'a' + (int)(i % 26))
            cr_assert_fail("byte %zu is %c", i, buf[i]);
    }
    free(buf);
}

Test(fsread, alloc_stops_near_max)
{
    write_pattern(100000);
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(fsread_alloc(path, 20000, &buf, &len), 0);
    cr_assert_eq(len, 19999, "read %zu bytes with max 20000", len);
    cr_assert_eq(strlen(buf), len);
    cr_assert_eq(memcmp(buf, "abcdefghij", 10), 0);
    free(buf);
    cr_assert_eq(fsread_alloc(path, 11, &buf, &len), 0, "a max below the first buffer");
    cr_assert_str_eq(buf, "abcdefghij");
    free(buf);
    cr_assert_eq(fsread_alloc(path, 1, &buf, &len), -EINVAL);
}

Test(fsread, alloc_of_a_missing_file_is_enoent_and_allocates_nothing)
{
    char *buf = (char *)"untouched";
    size_t len = 7;
    cr_assert_eq(fsread_alloc("/nonexistent/stakeout/file", 1u << 20, &buf, &len), -ENOENT);
    cr_assert_str_eq(buf, "untouched");
    cr_assert_eq(len, 7);
}

Test(fsread, alloc_reads_procfs_files_of_unknown_size)
{
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(fsread_alloc("/proc/self/maps", 64u << 20, &buf, &len), 0);
    cr_assert_gt(len, 0);
    cr_assert_eq(buf[len - 1], '\n', "the last line is whole");
    cr_assert_not_null(strstr(buf, "[stack]"));
    free(buf);
}

Test(fsread, small_read_truncates_to_the_buffer)
{
    write_pattern(100);
    char buf[11];
    cr_assert_eq(fsread(path, buf, sizeof buf), 10);
    cr_assert_str_eq(buf, "abcdefghij");
    cr_assert_eq(fsread("/nonexistent/stakeout/file", buf, sizeof buf), -ENOENT);
}
