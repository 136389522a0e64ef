/* tests/test_perfrec.c - tracepoint formats (tracefs.h) and perf ring-buffer
 * records (perfrec.h), decoded from text and bytes written out here. */
#include <criterion/criterion.h>

#include "perfrec.h"
#include "tracefs.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>

TestSuite(perfrec, .timeout = 30);

static const char mmap_format[] =
    "name: sys_enter_mmap\n"
    "ID: 174\n"
    "format:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n"
    "\n"
    "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
    "\tfield:unsigned long addr;\toffset:16;\tsize:8;\tsigned:0;\n"
    "\tfield:unsigned long len;\toffset:24;\tsize:8;\tsigned:0;\n"
    "\tfield:int behavior;\toffset:32;\tsize:8;\tsigned:0;\n"
    "\tfield:unsigned long args[6];\toffset:40;\tsize:48;\tsigned:0;\n"
    "\n"
    "print fmt: \"addr: 0x%08lx\", ((unsigned long)(REC->addr))\n";

Test(perfrec, tracepoint_format_gives_id_and_field_places)
{
    struct tracefs_format f;
    cr_assert_eq(tracefs_format_parse(mmap_format, sizeof mmap_format - 1, &f), 0);
    cr_expect_eq(f.id, 174);
    cr_expect_eq(f.nfields, 5, "common_ fields left out");
    const struct tracefs_field *len = tracefs_field(&f, "len");
    cr_assert_not_null(len);
    cr_expect_eq(len->offset, 24);
    cr_expect_eq(len->size, 8);
    cr_expect_not_null(tracefs_field(&f, "behavior"));
    cr_expect_not_null(tracefs_field(&f, "args"), "an array keeps its name");
    cr_expect_null(tracefs_field(&f, "common_pid"));
    unsigned char raw[40] = {0};
    raw[24] = 0x00;
    raw[25] = 0x10; /* 4096, little-endian */
    uint64_t v;
    cr_expect(tracefs_value(len, raw, sizeof raw, &v));
    cr_expect_eq(v, 4096);
    cr_expect(!tracefs_value(len, raw, 30, &v), "past the record's end");
}

Test(perfrec, format_without_id_or_with_junk_is_refused_or_skipped)
{
    struct tracefs_format f;
    const char no_id[] = "name: x\nformat:\n\tfield:int a;\toffset:8;\tsize:4;\n";
    cr_expect_eq(tracefs_format_parse(no_id, sizeof no_id - 1, &f), -EINVAL);
    const char junk[] = "ID: 9\n\tfield:;\n\tfield:int b;\toffset:zz;\tsize:4;\n"
                        "\tfield:int c;\toffset:99999999;\tsize:4;\n\tfield:int d;\toffset:8;"
                        "\tsize:4;\n";
    cr_assert_eq(tracefs_format_parse(junk, sizeof junk - 1, &f), 0);
    cr_expect_eq(f.nfields, 1);
    cr_expect_str_eq(f.fields[0].name, "d");
}

/* A sample record as the kernel writes it for our sample_type. */
static size_t build_sample(unsigned char *buf, uint32_t raw_len, unsigned nregs,
                           uint64_t stack_size, uint64_t dyn)
{
    size_t n = sizeof(struct perf_event_header);
    uint64_t id = 77, time = 123456789;
    uint32_t pid = 10, tid = 11;
    memcpy(buf + n, &id, 8), n += 8;
    memcpy(buf + n, &pid, 4), n += 4;
    memcpy(buf + n, &tid, 4), n += 4;
    memcpy(buf + n, &time, 8), n += 8;
    memcpy(buf + n, &raw_len, 4), n += 4;
    for (uint32_t i = 0; i < raw_len; i++)
        buf[n++] = (unsigned char)i;
    uint64_t abi = PERF_SAMPLE_REGS_ABI_64;
    memcpy(buf + n, &abi, 8), n += 8;
    for (unsigned i = 0; i < nregs; i++) {
        uint64_t r = 1000 + i;
        memcpy(buf + n, &r, 8), n += 8;
    }
    memcpy(buf + n, &stack_size, 8), n += 8;
    if (stack_size) {
        memset(buf + n, 0xab, stack_size), n += stack_size;
        memcpy(buf + n, &dyn, 8), n += 8;
    }
    struct perf_event_header h = {.type = PERF_RECORD_SAMPLE, .size = (uint16_t)n};
    memcpy(buf, &h, sizeof h);
    return n;
}

#define ST                                                                                        \
    (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW |              \
     PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER)

Test(perfrec, sample_with_registers_and_stack_is_decoded)
{
    _Alignas(8) unsigned char buf[1024];
    size_t n = build_sample(buf, 44, 17, 256, 200);
    struct perfrec_sample s;
    cr_assert_eq(perfrec_sample(buf, n, ST, 17, &s), 0);
    cr_expect_eq(s.id, 77);
    cr_expect_eq(s.pid, 10);
    cr_expect_eq(s.tid, 11);
    cr_expect_eq(s.time, 123456789);
    cr_expect_eq(s.raw_len, 44);
    cr_expect_eq(((const unsigned char *)s.raw)[43], 43);
    cr_expect_eq(s.regs[16], 1016);
    cr_expect_eq(s.stack_len, 200, "dyn_size: what was copied");
    n = build_sample(buf, 44, 17, 0, 0);
    cr_assert_eq(perfrec_sample(buf, n, ST, 17, &s), 0);
    cr_expect_null(s.stack, "an event that asks for no stack");
}

Test(perfrec, records_that_do_not_fit_their_length_are_refused)
{
    _Alignas(8) unsigned char buf[1024];
    size_t n = build_sample(buf, 44, 17, 256, 200);
    struct perfrec_sample s;
    cr_expect_eq(perfrec_sample(buf, n - 1, ST, 17, &s), -EINVAL, "header larger than the bytes");
    for (size_t cut = sizeof(struct perf_event_header); cut < n; cut += 7) {
        struct perf_event_header h = {.type = PERF_RECORD_SAMPLE, .size = (uint16_t)cut};
        memcpy(buf, &h, sizeof h);
        cr_expect_eq(perfrec_sample(buf, n, ST, 17, &s), -EINVAL, "cut at %zu", cut);
    }
    n = build_sample(buf, 44, 17, 256, 200);
    uint32_t huge = 60000; /* the raw size field, after id, pid/tid and time */
    memcpy(buf + sizeof(struct perf_event_header) + 24, &huge, 4);
    cr_expect_eq(perfrec_sample(buf, n, ST, 17, &s), -EINVAL, "raw size beyond the record");
    cr_expect_eq(perfrec_sample(buf, n, ST | PERF_SAMPLE_CALLCHAIN, 17, &s), -EINVAL);
}
