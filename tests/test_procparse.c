/* tests/test_procparse.c - /proc and cgroupfs parsers (sidecar/procparse).
 *
 * Recorded text from a real machine, hand-made tricky cases, and loops that
 * feed every prefix and random bytes. Each buffer handed to a parser is a
 * heap copy of exactly n bytes with no NUL after it, so ASan catches any read
 * past n. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procparse.h"
#include "support/spawn.h"

/* ---- helpers ----------------------------------------------------------- */

/* A malloc'd copy of exactly n bytes of s (no NUL after it). */
static char *exact(const void *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    if (n)
        memcpy(p, s, n);
    return p;
}

/* Wrappers that parse a C string through an exact-size copy. */
static int status_of(const char *text, size_t n, struct proc_status *out)
{
    char *b = exact(text, n);
    int rc = procparse_status(b, n, out);
    free(b);
    return rc;
}

static int stat_of(const char *text, size_t n, struct proc_stat *out)
{
    char *b = exact(text, n);
    int rc = procparse_stat(b, n, out);
    free(b);
    return rc;
}

static int cgroup_of(const char *text, struct proc_cgroup *out)
{
    size_t n = strlen(text);
    char *b = exact(text, n);
    int rc = procparse_cgroup(b, n, out);
    free(b);
    return rc;
}

static int cpu_max_of(const char *text, double *out)
{
    size_t n = strlen(text);
    char *b = exact(text, n);
    int rc = procparse_cpu_max(b, n, out);
    free(b);
    return rc;
}

static int u64_of(const char *text, uint64_t *out)
{
    size_t n = strlen(text);
    char *b = exact(text, n);
    int rc = procparse_u64_file(b, n, out);
    free(b);
    return rc;
}

static int psi_of(const char *text, double *out)
{
    size_t n = strlen(text);
    char *b = exact(text, n);
    int rc = procparse_psi_some_avg10(b, n, out);
    free(b);
    return rc;
}

static int cpu_stat_of(const char *text, struct cg_cpu_stat *out)
{
    size_t n = strlen(text);
    char *b = exact(text, n);
    int rc = procparse_cpu_stat(b, n, out);
    free(b);
    return rc;
}

static int mem_events_of(const char *text, struct cg_mem_events *out)
{
    size_t n = strlen(text);
    char *b = exact(text, n);
    int rc = procparse_memory_events(b, n, out);
    free(b);
    return rc;
}

/* procparse_maps_line on an exact copy of line, returned in *copy: out->path
 * points into it, so the caller frees it when done with out. */
static int maps_of(const char *line, struct proc_map *out, char **copy)
{
    size_t n = strlen(line);
    *copy = exact(line, n);
    return procparse_maps_line(*copy, n, out);
}

static int build_id_of(const unsigned char *img, size_t n, char *out, size_t len)
{
    unsigned char *b = (unsigned char *)exact(img, n);
    int rc = procparse_elf_build_id(b, n, out, len);
    free(b);
    return rc;
}

/* xorshift64*: reproducible pseudo-random bytes for the garbage loops. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* ---- /proc/PID/status -------------------------------------------------- */

/* `cat /proc/self/status` on the development VM (Linux 6.18, x86_64). */
static const char status_self[] =
    "Name:\tcat\n"
    "Umask:\t0022\n"
    "State:\tR (running)\n"
    "Tgid:\t30005\n"
    "Ngid:\t0\n"
    "Pid:\t30005\n"
    "PPid:\t30003\n"
    "TracerPid:\t0\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t256\n"
    "Groups:\t \n"
    "NStgid:\t30005\n"
    "NSpid:\t30005\n"
    "NSpgid:\t30003\n"
    "NSsid:\t25487\n"
    "Kthread:\t0\n"
    "VmPeak:\t    3060 kB\n"
    "VmSize:\t    3060 kB\n"
    "VmLck:\t       0 kB\n"
    "VmPin:\t       0 kB\n"
    "VmHWM:\t    1724 kB\n"
    "VmRSS:\t    1724 kB\n"
    "RssAnon:\t     112 kB\n"
    "RssFile:\t    1612 kB\n"
    "RssShmem:\t       0 kB\n"
    "VmData:\t     360 kB\n"
    "VmStk:\t     132 kB\n"
    "VmExe:\t      20 kB\n"
    "VmLib:\t    1528 kB\n"
    "VmPTE:\t      44 kB\n"
    "VmSwap:\t       0 kB\n"
    "HugetlbPages:\t       0 kB\n"
    "CoreDumping:\t0\n"
    "THP_enabled:\t1\n"
    "untag_mask:\t0xffffffffffffffff\n"
    "Threads:\t1\n"
    "SigQ:\t0/96364\n"
    "SigPnd:\t0000000000000000\n"
    "ShdPnd:\t0000000000000000\n"
    "SigBlk:\t0000000000000000\n"
    "SigIgn:\t0000000000000000\n"
    "SigCgt:\t0000000000000000\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001fffeffffff\n"
    "CapEff:\t000001fffeffffff\n"
    "CapBnd:\t000001fffeffffff\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t0\n"
    "Seccomp:\t0\n"
    "Seccomp_filters:\t0\n"
    "Speculation_Store_Bypass:\tvulnerable\n"
    "SpeculationIndirectBranch:\talways enabled\n"
    "Cpus_allowed:\t3\n"
    "Cpus_allowed_list:\t0-1\n"
    "Mems_allowed:\t00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,0"
    "0000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000"
    ",00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,000000"
    "00,00000000,00000000,00000000,00000001\n"
    "Mems_allowed_list:\t0\n"
    "voluntary_ctxt_switches:\t1\n"
    "nonvoluntary_ctxt_switches:\t0\n";

/* /proc/1/status on the same machine, the lines around the ones we read; the
 * real uid and VmSwap changed from 0 so that they are told apart. */
static const char status_pid1[] = "Name:\tprocess_api\n"
                                  "Umask:\t0022\n"
                                  "State:\tS (sleeping)\n"
                                  "Tgid:\t1\n"
                                  "Ngid:\t0\n"
                                  "Pid:\t1\n"
                                  "PPid:\t0\n"
                                  "TracerPid:\t0\n"
                                  "Uid:\t1000\t0\t0\t0\n"
                                  "Gid:\t0\t0\t0\t0\n"
                                  "VmPeak:\t   52196 kB\n"
                                  "VmSize:\t   40044 kB\n"
                                  "VmLck:\t   40012 kB\n"
                                  "VmPin:\t       0 kB\n"
                                  "VmHWM:\t   17696 kB\n"
                                  "VmRSS:\t   10844 kB\n"
                                  "RssAnon:\t    4340 kB\n"
                                  "RssFile:\t       8 kB\n"
                                  "RssShmem:\t    6496 kB\n"
                                  "VmData:\t   32432 kB\n"
                                  "VmStk:\t     132 kB\n"
                                  "VmExe:\t    5400 kB\n"
                                  "VmLib:\t       8 kB\n"
                                  "VmPTE:\t     116 kB\n"
                                  "VmSwap:\t     256 kB\n"
                                  "HugetlbPages:\t       0 kB\n"
                                  "CoreDumping:\t0\n"
                                  "THP_enabled:\t1\n"
                                  "Threads:\t13\n"
                                  "SigQ:\t0/96364\n"
                                  "voluntary_ctxt_switches:\t331\n"
                                  "nonvoluntary_ctxt_switches:\t48\n";

/* /proc/2/status (kthreadd): a kernel thread has no Vm or Rss lines. */
static const char status_kthread[] = "Name:\tkthreadd\n"
                                     "Umask:\t0022\n"
                                     "State:\tS (sleeping)\n"
                                     "Tgid:\t2\n"
                                     "Ngid:\t0\n"
                                     "Pid:\t2\n"
                                     "PPid:\t0\n"
                                     "TracerPid:\t0\n"
                                     "Uid:\t0\t0\t0\t0\n"
                                     "Gid:\t0\t0\t0\t0\n"
                                     "FDSize:\t64\n"
                                     "Groups:\t \n"
                                     "Kthread:\t1\n"
                                     "Threads:\t1\n"
                                     "NoNewPrivs:\t0\n"
                                     "Cpus_allowed_list:\t0-1\n"
                                     "voluntary_ctxt_switches:\t63\n"
                                     "nonvoluntary_ctxt_switches:\t0\n";

Test(procparse, status_real_self_converts_kb_to_bytes)
{
    struct proc_status st;
    cr_assert_eq(status_of(status_self, sizeof status_self - 1, &st), 0);
    cr_assert(st.have_rss);
    cr_assert_eq(st.rss, 1724ULL * 1024);
    cr_assert_eq(st.rss_anon, 112ULL * 1024);
    cr_assert_eq(st.rss_file, 1612ULL * 1024);
    cr_assert_eq(st.rss_shmem, 0);
    cr_assert_eq(st.swap, 0);
    cr_assert_eq(st.vm_size, 3060ULL * 1024);
    cr_assert_eq(st.voluntary_ctxt, 1);
    cr_assert_eq(st.nonvoluntary_ctxt, 0);
    cr_assert_eq(st.threads, 1);
    cr_assert_eq(st.uid, 0);
    cr_assert_eq(st.tracer_pid, 0);
    cr_assert_eq(st.state, 'R');
}

Test(procparse, status_real_pid1_reads_every_field)
{
    struct proc_status st;
    cr_assert_eq(status_of(status_pid1, sizeof status_pid1 - 1, &st), 0);
    cr_assert(st.have_rss);
    cr_assert_eq(st.rss, 10844ULL * 1024);
    cr_assert_eq(st.rss_anon, 4340ULL * 1024);
    cr_assert_eq(st.rss_file, 8ULL * 1024);
    cr_assert_eq(st.rss_shmem, 6496ULL * 1024);
    cr_assert_eq(st.swap, 256ULL * 1024);
    cr_assert_eq(st.vm_size, 40044ULL * 1024);
    cr_assert_eq(st.voluntary_ctxt, 331);
    cr_assert_eq(st.nonvoluntary_ctxt, 48);
    cr_assert_eq(st.threads, 13);
    cr_assert_eq(st.uid, 1000, "the first Uid column is the real uid");
    cr_assert_eq(st.state, 'S');
}

Test(procparse, status_kernel_thread_has_no_rss)
{
    struct proc_status st;
    cr_assert_eq(status_of(status_kthread, sizeof status_kthread - 1, &st), 0);
    cr_assert_not(st.have_rss);
    cr_assert_eq(st.rss, 0);
    cr_assert_eq(st.vm_size, 0);
    cr_assert_eq(st.threads, 1);
    cr_assert_eq(st.voluntary_ctxt, 63);
    cr_assert_eq(st.state, 'S');
}

Test(procparse, status_traced_process_reports_tracer_pid)
{
    static const char text[] = "State:\tt (tracing stop)\nTracerPid:\t4242\n";
    struct proc_status st;
    cr_assert_eq(status_of(text, sizeof text - 1, &st), 0);
    cr_assert_eq(st.tracer_pid, 4242);
    cr_assert_eq(st.state, 't');
    cr_assert_not(st.have_rss);
}

Test(procparse, status_missing_state_is_question_mark)
{
    static const char text[] = "Threads:\t3\n";
    struct proc_status st;
    cr_assert_eq(status_of(text, sizeof text - 1, &st), 0);
    cr_assert_eq(st.state, '?');
    cr_assert_eq(st.threads, 3);
}

Test(procparse, status_empty_or_garbage_is_einval_and_leaves_output)
{
    static const char garbage[] = "\x01\x02 no colon here, not a newline in sight \xff\xfe";
    static const char unknown[] = "Name:\tcat\nUmask:\t0022\n";
    struct proc_status st = {.threads = 77};
    cr_assert_eq(status_of("", 0, &st), -EINVAL);
    cr_assert_eq(procparse_status(NULL, 0, &st), -EINVAL);
    cr_assert_eq(status_of(garbage, sizeof garbage - 1, &st), -EINVAL);
    cr_assert_eq(status_of(unknown, sizeof unknown - 1, &st), -EINVAL);
    cr_assert_eq(st.threads, 77, "output written on failure");
}

Test(procparse, status_cut_last_line_is_ignored)
{
    /* A short read ending in "VmRSS:\t 17" must not report 17 kB. */
    static const char text[] = "Threads:\t4\nVmRSS:\t    17";
    static const char cut_threads[] = "VmRSS:\t  20 kB\nThreads:\t1";
    struct proc_status st;
    cr_assert_eq(status_of(text, sizeof text - 1, &st), 0);
    cr_assert_not(st.have_rss);
    cr_assert_eq(st.threads, 4);
    cr_assert_eq(status_of(cut_threads, sizeof cut_threads - 1, &st), 0);
    cr_assert_eq(st.rss, 20 * 1024);
    cr_assert_eq(st.threads, 0, "the last line has no newline and may be cut");
}

Test(procparse, status_bad_values_are_ignored)
{
    static const char text[] = "VmRSS:\t 12\n"                       /* no unit */
                               "VmSwap:\t 12 MB\n"                   /* wrong unit */
                               "VmSize:\t 18446744073709551615 kB\n" /* overflows in bytes */
                               "RssAnon:\t 8 kB trailing\n"
                               "Threads:\t-1\n"
                               "Uid:\tx\t0\n"
                               "TracerPid:\t99999999999\n"
                               "State:\t\n"
                               "RssFile:\t 3 kB\n";
    struct proc_status st;
    cr_assert_eq(status_of(text, sizeof text - 1, &st), 0);
    cr_assert_not(st.have_rss);
    cr_assert_eq(st.swap, 0);
    cr_assert_eq(st.vm_size, 0);
    cr_assert_eq(st.rss_anon, 0);
    cr_assert_eq(st.threads, 0);
    cr_assert_eq(st.uid, 0);
    cr_assert_eq(st.tracer_pid, 0);
    cr_assert_eq(st.state, '?');
    cr_assert_eq(st.rss_file, 3 * 1024);
}

Test(procparse, status_very_long_line_is_skipped)
{
    size_t junk = 1 << 20;
    const char tail[] = "\nVmRSS:\t 4 kB\n";
    char *b = malloc(junk + sizeof tail - 1);
    struct proc_status st;

    cr_assert_not_null(b);
    memset(b, 'x', junk);
    b[100] = ':';
    memcpy(b + junk, tail, sizeof tail - 1);
    cr_assert_eq(procparse_status(b, junk + sizeof tail - 1, &st), 0);
    cr_assert_eq(st.rss, 4096);
    free(b);
}

Test(procparse, status_every_prefix_gives_whole_values_or_none)
{
    const size_t n = sizeof status_pid1 - 1;
    for (size_t k = 0; k <= n; k++) {
        struct proc_status st = {0};
        int rc = status_of(status_pid1, k, &st);
        cr_assert(rc == 0 || rc == -EINVAL, "prefix %zu: rc %d", k, rc);
        if (rc != 0)
            continue;
        cr_assert(st.rss == 0 || st.rss == 10844ULL * 1024, "prefix %zu: rss %llu", k,
                  (unsigned long long)st.rss);
        cr_assert_eq(st.have_rss, st.rss != 0, "prefix %zu", k);
        cr_assert(st.vm_size == 0 || st.vm_size == 40044ULL * 1024, "prefix %zu", k);
        cr_assert(st.threads == 0 || st.threads == 13, "prefix %zu: %u threads", k, st.threads);
        cr_assert(st.voluntary_ctxt == 0 || st.voluntary_ctxt == 331, "prefix %zu", k);
        cr_assert(st.uid == 0 || st.uid == 1000, "prefix %zu", k);
    }
}

/* ---- /proc/PID/stat ---------------------------------------------------- */

/* `sh -c 'cat /proc/$$/stat'` and /proc/1/stat on the development VM. */
static const char stat_self[] =
    "30006 (sh) S 30003 30003 25487 0 -1 4194304 107 0 0 0 0 0 0 0 20 0 1 0 166895 2654208 34"
    "8 18446744073709551615 94793967312896 94793967389625 140728590275472 0 0 0 0 0 65538 1 0"
    " 0 17 0 0 0 0 0 0 94793967418928 94793967424064 94794775576576 140728590281153 140728590"
    "281177 140728590281177 140728590282732 0\n";
static const char stat_pid1[] =
    "1 (process_api) S 0 0 0 0 -1 4194560 27881 15376097 0 1410 234 545 30832 26483 10 -10 13"
    " 0 20 41005056 2695 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0\n";

Test(procparse, stat_real_self_parses_every_field)
{
    struct proc_stat st;
    cr_assert_eq(stat_of(stat_self, sizeof stat_self - 1, &st), 0);
    cr_assert_eq(st.pid, 30006);
    cr_assert_str_eq(st.comm, "sh");
    cr_assert_eq(st.state, 'S');
    cr_assert_eq(st.ppid, 30003);
    cr_assert_eq(st.minflt, 107);
    cr_assert_eq(st.majflt, 0);
    cr_assert_eq(st.utime, 0);
    cr_assert_eq(st.stime, 0);
    cr_assert_eq(st.num_threads, 1);
    cr_assert_eq(st.starttime, 166895);
    cr_assert_eq(st.processor, 0);
}

Test(procparse, stat_real_pid1_parses_counters_and_processor)
{
    struct proc_stat st;
    cr_assert_eq(stat_of(stat_pid1, sizeof stat_pid1 - 1, &st), 0);
    cr_assert_eq(st.pid, 1);
    cr_assert_str_eq(st.comm, "process_api");
    cr_assert_eq(st.ppid, 0);
    cr_assert_eq(st.minflt, 27881);
    cr_assert_eq(st.majflt, 0, "cminflt (11) must not be taken for majflt (12)");
    cr_assert_eq(st.utime, 234);
    cr_assert_eq(st.stime, 545);
    cr_assert_eq(st.num_threads, 13);
    cr_assert_eq(st.starttime, 20);
    cr_assert_eq(st.processor, 1);
}

Test(procparse, stat_comm_with_parens_and_spaces_ends_at_last_paren)
{
    static const char text[] = "4242 (a) (b c) R 7 4242 4242 0 -1 0 5 0 6 0 8 9 0 0 20 0 3 0 777 "
                               "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 1\n";
    struct proc_stat st;
    cr_assert_eq(stat_of(text, sizeof text - 1, &st), 0);
    cr_assert_str_eq(st.comm, "a) (b c");
    cr_assert_eq(st.state, 'R');
    cr_assert_eq(st.ppid, 7);
    cr_assert_eq(st.minflt, 5);
    cr_assert_eq(st.majflt, 6);
    cr_assert_eq(st.utime, 8);
    cr_assert_eq(st.stime, 9);
    cr_assert_eq(st.num_threads, 3);
    cr_assert_eq(st.starttime, 777);
    cr_assert_eq(st.processor, 1);
}

Test(procparse, stat_comm_with_newline_and_empty_comm_parse)
{
    static const char nl[] = "9 (x\ny) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55\n";
    static const char empty[] = "9 () S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 56\n";
    struct proc_stat st;
    cr_assert_eq(stat_of(nl, sizeof nl - 1, &st), 0);
    cr_assert_str_eq(st.comm, "x\ny");
    cr_assert_eq(st.starttime, 55);
    cr_assert_eq(stat_of(empty, sizeof empty - 1, &st), 0);
    cr_assert_str_eq(st.comm, "");
    cr_assert_eq(st.starttime, 56);
}

Test(procparse, stat_long_comm_is_cut_to_buffer)
{
    char text[512];
    char name[200];
    struct proc_stat st;

    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(text, sizeof text, "5 (%s) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99\n", name);
    cr_assert_eq(stat_of(text, strlen(text), &st), 0);
    cr_assert_eq(strlen(st.comm), sizeof st.comm - 1);
    cr_assert_eq(st.starttime, 99);
}

Test(procparse, stat_short_line_through_starttime_leaves_rest_zero)
{
    /* Exactly 22 fields, as an old kernel or a cut read might give. */
    static const char text[] = "12 (short) S 1 12 12 0 -1 0 3 0 4 0 5 6 0 0 20 0 2 0 1234\n";
    struct proc_stat st;
    cr_assert_eq(stat_of(text, sizeof text - 1, &st), 0);
    cr_assert_eq(st.num_threads, 2);
    cr_assert_eq(st.starttime, 1234);
    cr_assert_eq(st.processor, 0);
}

Test(procparse, stat_missing_starttime_is_einval_and_leaves_output)
{
    static const char text[] = "12 (short) S 1 12 12 0 -1 0 3 0 4 0 5 6 0 0 20 0 2 0\n";
    struct proc_stat st = {.pid = -5};
    cr_assert_eq(stat_of(text, sizeof text - 1, &st), -EINVAL);
    cr_assert_eq(st.pid, -5);
}

Test(procparse, stat_number_running_into_end_of_buffer_is_not_trusted)
{
    /* "1234" may be the start of "123456": without a blank or '\n' after
     * starttime, the line is too short to use. */
    static const char cut[] = "12 (short) S 1 12 12 0 -1 0 3 0 4 0 5 6 0 0 20 0 2 0 1234";
    static const char cut_later[] =
        "12 (short) S 1 12 12 0 -1 0 3 0 4 0 5 6 0 0 20 0 2 0 1234 0 0 0 0 0 "
        "0 0 0 0 0 0 0 0 0 0 17 3";
    struct proc_stat st;
    cr_assert_eq(stat_of(cut, sizeof cut - 1, &st), -EINVAL);
    cr_assert_eq(stat_of(cut_later, sizeof cut_later - 1, &st), 0);
    cr_assert_eq(st.starttime, 1234);
    cr_assert_eq(st.processor, 0, "processor '3' runs into the end and may be cut");
}

Test(procparse, stat_malformed_field_after_starttime_keeps_earlier_ones)
{
    static const char text[] = "12 (x) S 1 12 12 0 -1 0 3 0 4 0 5 6 0 0 20 0 2 0 1234 0 0 0 0 0 "
                               "0 0 0 0 0 0 0 0 0 0 17 zz\n";
    struct proc_stat st;
    cr_assert_eq(stat_of(text, sizeof text - 1, &st), 0);
    cr_assert_eq(st.starttime, 1234);
    cr_assert_eq(st.processor, 0);
}

struct stat_bad {
    char text[96];
};

ParameterizedTestParameters(procparse, stat_garbage_is_einval)
{
    static struct stat_bad cases[] = {
        {""},
        {"garbage without any parenthesis or newline"},
        {"12 (no closing paren S 1 2 3"},
        {"12 )x( S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"(nopid) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"x12 (a) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"-3 (a) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"12 (a) SS 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"12 (a) S x 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"12 (a) S 1 0 0 0 -1 0 -7 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"12 (a) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5\n"},
        {"12 (a) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999\n"},
        {"12 (a)\n S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n"},
        {"12 (a)"},
    };
    return cr_make_param_array(struct stat_bad, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct stat_bad *c, procparse, stat_garbage_is_einval)
{
    struct proc_stat st;
    cr_assert_eq(stat_of(c->text, strlen(c->text), &st), -EINVAL, "'%s'", c->text);
}

Test(procparse, stat_every_prefix_succeeds_only_with_whole_starttime)
{
    const size_t n = sizeof stat_pid1 - 1;
    const char *after = strrchr(stat_pid1, ')') + 1;
    size_t end = 0;

    /* Offset just past field 22 (starttime): 20 blank-separated fields on. */
    for (int field = 2; field < 22; after++) {
        if (*after == ' ')
            field++;
    }
    while (*after != ' ')
        after++;
    end = (size_t)(after - stat_pid1);
    for (size_t k = 0; k <= n; k++) {
        struct proc_stat st = {0};
        int rc = stat_of(stat_pid1, k, &st);
        if (k <= end) {
            cr_assert_eq(rc, -EINVAL, "prefix %zu of %zu accepted", k, n);
            continue;
        }
        cr_assert_eq(rc, 0, "prefix %zu rejected", k);
        cr_assert_eq(st.starttime, 20);
        cr_assert_eq(st.num_threads, 13);
        cr_assert(st.processor == 0 || st.processor == 1);
    }
}

/* ---- /proc/PID/cgroup -------------------------------------------------- */

#define ID64 "3f4c1b2a9e8d7c6b5a493827161504f3e2d1c0b9a8978685746352413021f0e1"

Test(procparse, cgroup_v2_only_fills_v2)
{
    static const char text[] = "0::/system.slice/docker-" ID64 ".scope\n";
    struct proc_cgroup cg;
    char id[65];
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v2, "/system.slice/docker-" ID64 ".scope");
    cr_assert_str_eq(cg.v1_memory, "");
    cr_assert_str_eq(cg.v1_cpu, "");
    cr_assert_str_eq(cg.v1_cpu_mount, "");
    procparse_container_id(cg.v2, id, sizeof id);
    cr_assert_str_eq(id, ID64);
}

Test(procparse, cgroup_v1_docker_fills_memory_and_cpu)
{
    /* A container on a cgroup v1 host (Debian 10 + Docker 19). */
    static const char text[] = "12:hugetlb:/docker/" ID64 "\n"
                               "11:cpuset:/docker/" ID64 "\n"
                               "10:pids:/docker/" ID64 "\n"
                               "9:memory:/docker/" ID64 "\n"
                               "8:net_cls,net_prio:/docker/" ID64 "\n"
                               "7:cpu,cpuacct:/docker/" ID64 "\n"
                               "6:blkio:/docker/" ID64 "\n"
                               "5:freezer:/docker/" ID64 "\n"
                               "4:perf_event:/docker/" ID64 "\n"
                               "3:devices:/docker/" ID64 "\n"
                               "2:rdma:/\n"
                               "1:name=systemd:/docker/" ID64 "\n";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v2, "");
    cr_assert_str_eq(cg.v1_memory, "/docker/" ID64);
    cr_assert_str_eq(cg.v1_cpu, "/docker/" ID64);
    cr_assert_str_eq(cg.v1_cpu_mount, "cpu,cpuacct");
}

Test(procparse, cgroup_hybrid_real_machine_fills_all)
{
    /* /proc/self/cgroup on the development VM: v1 controllers split, plus the
     * unified hierarchy. cpuset and cpuacct come first and are not cpu. */
    static const char text[] = "9:name=systemd:/\n"
                               "8:pids:/\n"
                               "7:blkio:/\n"
                               "6:freezer:/\n"
                               "5:devices:/\n"
                               "4:memory:/process_api/916f13075dbdfbdbafb7075dff67fc7c\n"
                               "3:cpuset:/a\n"
                               "2:cpuacct:/b\n"
                               "1:cpu:/c\n"
                               "0::/\n";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v2, "/");
    cr_assert_str_eq(cg.v1_memory, "/process_api/916f13075dbdfbdbafb7075dff67fc7c");
    cr_assert_str_eq(cg.v1_cpu, "/c");
    cr_assert_str_eq(cg.v1_cpu_mount, "cpu");
}

Test(procparse, cgroup_cpuacct_cpuset_alone_are_not_cpu)
{
    static const char text[] = "3:cpuset:/a\n2:cpuacct:/b\n1:cpuacct,cpuset:/c\n";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v1_cpu, "");
    cr_assert_str_eq(cg.v1_cpu_mount, "");
    cr_assert_str_eq(cg.v1_memory, "");
}

Test(procparse, cgroup_outside_is_a_whole_dotdot_component)
{
    /* what a process of another container reads as, from a sidecar */
    cr_assert(procparse_cgroup_outside("/../app"));
    cr_assert(procparse_cgroup_outside("/../../kubepods/pod1/" ID64));
    cr_assert(procparse_cgroup_outside(".."));
    cr_assert(procparse_cgroup_outside("/a/.."));
    cr_assert_not(procparse_cgroup_outside("/"));
    cr_assert_not(procparse_cgroup_outside(""));
    cr_assert_not(procparse_cgroup_outside("/docker/" ID64));
    /* cgroups may be named so */
    cr_assert_not(procparse_cgroup_outside("/..app"));
    cr_assert_not(procparse_cgroup_outside("/app../x"));
    cr_assert_not(procparse_cgroup_outside("/.../x"));
}

Test(procparse, cgroup_controller_order_cpuacct_cpu_is_found)
{
    static const char text[] = "4:cpuacct,cpu:/x\n";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v1_cpu, "/x");
    cr_assert_str_eq(cg.v1_cpu_mount, "cpuacct,cpu");
}

Test(procparse, cgroup_path_with_colons_and_spaces_is_kept_whole)
{
    static const char text[] = "0::/odd:path/with space\n";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v2, "/odd:path/with space");
}

Test(procparse, cgroup_malformed_lines_are_skipped)
{
    static const char text[] = "garbage\n"
                               "x:memory:/nope\n"
                               ":memory:/nope\n"
                               "5:memory\n"
                               "\n"
                               "4:memory:/yes\n";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v1_memory, "/yes");
}

Test(procparse, cgroup_cut_last_line_is_ignored)
{
    static const char text[] = "4:memory:/whole\n0::/kubepods/burstable/po";
    struct proc_cgroup cg;
    cr_assert_eq(cgroup_of(text, &cg), 0);
    cr_assert_str_eq(cg.v1_memory, "/whole");
    cr_assert_str_eq(cg.v2, "", "a cut path must not be used");
}

Test(procparse, cgroup_empty_or_garbage_is_einval)
{
    struct proc_cgroup cg = {.v2 = "keep"};
    cr_assert_eq(cgroup_of("", &cg), -EINVAL);
    cr_assert_eq(procparse_cgroup(NULL, 0, &cg), -EINVAL);
    cr_assert_eq(cgroup_of("no colons at all\n", &cg), -EINVAL);
    cr_assert_eq(cgroup_of("0::/cut without newline", &cg), -EINVAL);
    cr_assert_str_eq(cg.v2, "keep");
}

Test(procparse, cgroup_path_too_long_is_enametoolong)
{
    size_t len = 600;
    char *text = malloc(len + 8);
    struct proc_cgroup cg;

    cr_assert_not_null(text);
    memcpy(text, "0::/", 4);
    memset(text + 4, 'p', len);
    text[4 + len] = '\n';
    text[5 + len] = '\0';
    cr_assert_eq(cgroup_of(text, &cg), -ENAMETOOLONG);
    free(text);
}

/* ---- number scanners -------------------------------------------------- */

Test(procparse, hex_and_dec_scanners_stop_at_the_first_non_digit)
{
    const char *text = "7fFf-12 ";
    const char *p = text, *end = text + strlen(text);
    uint64_t v = 0;

    cr_assert(procparse_hex(&p, end, &v));
    cr_assert_eq(v, 0x7fff);
    cr_assert_eq(p, text + 4);
    p++;
    cr_assert(procparse_dec(&p, end, &v));
    cr_assert_eq(v, 12);
    cr_assert_eq(p, text + 7);
    /* the end bounds the digits, not the NUL */
    p = text;
    cr_assert(procparse_hex(&p, text + 2, &v));
    cr_assert_eq(v, 0x7f);
    cr_assert_eq(p, text + 2);
}

Test(procparse, hex_and_dec_scanners_refuse_no_digit_and_overflow_untouched)
{
    /* the last is UINT64_MAX - 5 in decimal, and 20 hex digits */
    const char *cases[] = {"", "x1", "-1", " 1", "18446744073709551610"};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *end = cases[i] + strlen(cases[i]);
        const char *p = cases[i];
        uint64_t v = 42;
        cr_assert_not(procparse_hex(&p, end, &v), "hex '%s'", cases[i]);
        cr_assert(p == cases[i] && v == 42, "hex '%s' moved or wrote", cases[i]);
        cr_assert_not(procparse_dec(&p, end, &v), "dec '%s'", cases[i]);
        cr_assert(p == cases[i] && v == 42, "dec '%s' moved or wrote", cases[i]);
    }
}

Test(procparse, hex_and_dec_scanners_take_the_largest_values_they_allow)
{
    const char *hex = "ffffffffffffffff", *dec = "18446744073709551609";
    const char *p = hex;
    uint64_t v = 0;

    cr_assert(procparse_hex(&p, hex + strlen(hex), &v));
    cr_assert_eq(v, UINT64_MAX);
    p = "10000000000000000"; /* 17 hex digits */
    cr_assert_not(procparse_hex(&p, p + 17, &v));
    p = dec;
    cr_assert(procparse_dec(&p, dec + strlen(dec), &v));
    cr_assert_eq(v, UINT64_MAX - 6);
}

/* ---- /proc/PID/maps ---------------------------------------------------- */

Test(procparse, maps_line_with_path_is_parsed)
{
    const char *s = "55d4c6a01000-55d4c6a02000 r-xp 00001000 08:01 1234567    /usr/bin/my app\n";
    struct proc_map m;
    char *b;
    cr_assert_eq(maps_of(s, &m, &b), 0);
    cr_assert_eq(m.start, 0x55d4c6a01000ull);
    cr_assert_eq(m.end, 0x55d4c6a02000ull);
    cr_assert_eq(m.offset, 0x1000u);
    cr_assert_str_eq(m.perms, "r-xp");
    cr_assert_eq(m.dev >> 32, 8);
    cr_assert_eq(m.dev & 0xffffffffu, 1);
    cr_assert_eq(m.inode, 1234567u);
    cr_assert_eq(m.path_len, strlen("/usr/bin/my app"));
    cr_assert(memcmp(m.path, "/usr/bin/my app", m.path_len) == 0);
    cr_assert_not(m.deleted);
    free(b);
}

Test(procparse, maps_line_libc_fields_and_dev_number_parse)
{
    struct proc_map m;
    char *b, *b2;
    const char *l = "7f12a000-7f12b000 r-xp 00002000 fd:01 1234567  /usr/lib/x86_64-linux-gnu/"
                    "libc.so.6\n";
    cr_assert_eq(maps_of(l, &m, &b), 0);
    cr_expect_eq(m.start, 0x7f12a000);
    cr_expect_eq(m.end, 0x7f12b000);
    cr_expect_eq(m.offset, 0x2000);
    cr_expect_eq(m.dev, (0xfdull << 32) | 1);
    cr_expect_eq(m.inode, 1234567);
    cr_expect_str_eq(m.perms, "r-xp");
    cr_expect_eq(m.path_len, strlen("/usr/lib/x86_64-linux-gnu/libc.so.6"));
    cr_expect_eq(strncmp(m.path, "/usr/lib/x86_64-linux-gnu/libc.so.6", m.path_len), 0);
    const char *anon = "7ffd0000-7ffd1000 rw-p 00000000 00:00 0 ";
    cr_assert_eq(maps_of(anon, &m, &b2), 0);
    cr_expect_eq(m.path_len, 0);
    const char *bad[] = {"",
                         "7f12a000 r-xp 0 fd:01 1 /x",
                         "2000-1000 r-xp 0 fd:01 1 /x",
                         "1000-2000 r-x 0 fd:01 1 /x",
                         "1000-2000 r-xp 0 fd01 1 /x",
                         "1000-2000 r-xp zz fd:01 1 /x",
                         "1000-2000 r-xp 0 fd:01 /x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *c;
        cr_expect_eq(maps_of(bad[i], &m, &c), -EINVAL, "'%s'", bad[i]);
        free(c);
    }
    free(b);
    free(b2);
}

Test(procparse, maps_line_deleted_anonymous_and_vdso)
{
    const char *del = "7f0000000000-7f0000001000 r-xp 00000000 00:2a 99 /tmp/x/app (deleted)";
    const char *anon = "7f0000001000-7f0000002000 rwxp 00000000 00:00 0 ";
    const char *vdso = "7ffd1b5f0000-7ffd1b5f2000 r-xp 00000000 00:00 0                  [vdso]";
    struct proc_map m;
    char *b1, *b2, *b3;

    cr_assert_eq(maps_of(del, &m, &b1), 0);
    cr_assert(m.deleted);
    cr_assert_eq(m.path_len, strlen("/tmp/x/app"));
    cr_assert_eq(maps_of(anon, &m, &b2), 0);
    cr_assert_eq(m.path_len, 0);
    cr_assert_eq(maps_of(vdso, &m, &b3), 0);
    cr_assert_eq(m.path_len, 6);
    cr_assert(memcmp(m.path, "[vdso]", 6) == 0);
    free(b1);
    free(b2);
    free(b3);
}

Test(procparse, maps_line_malformed_is_rejected)
{
    const char *bad[] = {
        "",
        "7f00-",
        "7f00-7f10 r-xp",
        "7f10-7f00 r-xp 00000000 00:00 0",    /* start after end */
        "7f00-7f10 r-xp 00000000 0000 0",     /* no ':' in dev */
        "7f00-7f10 r-xp 00000000 00:00 x /a", /* inode not a number */
        "zz00-7f10 r-xp 00000000 00:00 0",
        "7f00-7f10 r-xp 00000000 00:00 12abc /a", /* junk glued to the inode */
        "10000000000000000-20000000000000000 r-xp 0 0:0 0",
    };
    struct proc_map m = {.start = 42};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *b;
        int rc = maps_of(bad[i], &m, &b);
        free(b);
        cr_assert_eq(rc, -EINVAL, "'%s'", bad[i]);
    }
    cr_assert_eq(m.start, 42, "out written on failure");
}

Test(procparse, maps_line_device_numbers_over_32_bits_are_einval)
{
    const char *bad[] = {"1000-2000 r-xp 0 100000000:01 1 /x",
                         "1000-2000 r-xp 0 08:100000000 1 /x"};
    const char *ok = "1000-2000 r-xp 0 ffffffff:ffffffff 1 /x";
    struct proc_map m;
    char *b;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(maps_of(bad[i], &m, &b), -EINVAL, "'%s'", bad[i]);
        free(b);
    }
    cr_assert_eq(maps_of(ok, &m, &b), 0);
    cr_assert_eq(m.dev, UINT64_MAX);
    free(b);
}

Test(procparse, maps_line_every_prefix_is_whole_fields_or_einval)
{
    const char line[] =
        "7f12a000-7f12b000 r-xp 00002000 fd:01 1234567  /usr/lib/libc.so.6 (deleted)\n";
    const size_t n = sizeof line - 1;
    const size_t inode_end = strlen("7f12a000-7f12b000 r-xp 00002000 fd:01 1234567");

    for (size_t k = 0; k <= n; k++) {
        struct proc_map m;
        char *b = exact(line, k);
        int rc = procparse_maps_line(b, k, &m);
        cr_assert(rc == 0 || rc == -EINVAL, "prefix %zu: rc %d", k, rc);
        if (rc == 0) {
            /* a cut inode still parses: the caller drops a line without '\n' */
            cr_assert_geq(k, inode_end - 6, "prefix %zu", k);
            cr_assert_eq(m.start, 0x7f12a000, "prefix %zu", k);
            cr_assert_eq(m.end, 0x7f12b000, "prefix %zu", k);
            cr_assert_eq(m.dev, (0xfdull << 32) | 1, "prefix %zu", k);
            cr_assert_leq(m.path_len, k, "prefix %zu", k);
            cr_assert(m.path_len == 0 || (m.path >= b && m.path + m.path_len <= b + k),
                      "prefix %zu: path outside the line", k);
        }
        free(b);
    }
}

/* ---- container ids ----------------------------------------------------- */

struct id_case {
    char path[320];
    char id[65];
};

ParameterizedTestParameters(procparse, container_id_forms_are_recognised)
{
    static struct id_case cases[] = {
        {"/system.slice/docker-" ID64 ".scope", ID64},
        {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7c3a41a6_5d3e_4b8e_9a1f"
         "_0c2d4e6f8a9b.slice/cri-containerd-" ID64 ".scope",
         ID64},
        {"/kubepods/besteffort/pod7c3a41a6-5d3e-4b8e-9a1f-0c2d4e6f8a9b/" ID64, ID64},
        {"/docker/" ID64, ID64},
        {"/machine.slice/libpod-" ID64 ".scope/container", ID64},
        {"/kubepods.slice/kubepods-pod1.slice/crio-" ID64 ".scope", ID64},
        /* the last id wins: a container nested in another */
        {"/docker/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/docker/" ID64,
         ID64},
        {"/DOCKER/3F4C1B2A9E8D7C6B5A493827161504F3E2D1C0B9A8978685746352413021F0E1", ID64},
        /* no id: */
        {"/kubepods/besteffort/pod7c3a41a6-5d3e-4b8e-9a1f-0c2d4e6f8a9b", ""},
        {"/kubepods.slice/kubepods-pod7c3a41a6_5d3e_4b8e_9a1f_0c2d4e6f8a9b.slice", ""},
        {"/process_api/916f13075dbdfbdbafb7075dff67fc7c", ""},
        {"/user.slice/user-1000.slice/session-2.scope", ""},
        {"/", ""},
        {"", ""},
        /* 63 and 65 hex digits are not ids */
        {"/docker/3f4c1b2a9e8d7c6b5a493827161504f3e2d1c0b9a8978685746352413021f0e", ""},
        {"/docker/3f4c1b2a9e8d7c6b5a493827161504f3e2d1c0b9a8978685746352413021f0e1a", ""},
    };
    return cr_make_param_array(struct id_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct id_case *c, procparse, container_id_forms_are_recognised)
{
    char id[65];
    memset(id, 'Z', sizeof id);
    procparse_container_id(c->path, id, sizeof id);
    cr_assert_str_eq(id, c->id, "path '%s'", c->path);
}

Test(procparse, container_id_small_output_is_empty)
{
    char id[64] = "x";
    char none[1] = "x";
    procparse_container_id("/docker/" ID64, id, sizeof id);
    cr_assert_str_eq(id, "");
    procparse_container_id("/docker/" ID64, none, sizeof none);
    cr_assert_str_eq(none, "");
    procparse_container_id(NULL, id, sizeof id);
    cr_assert_str_eq(id, "");
    procparse_container_id("/docker/" ID64, NULL, 0); /* writes nothing */
}

/* ---- pod uids ---------------------------------------------------------- */

#define UID "7c3a41a6-5d3e-4b8e-9a1f-0c2d4e6f8a9b"
#define UID_ "7c3a41a6_5d3e_4b8e_9a1f_0c2d4e6f8a9b"

ParameterizedTestParameters(procparse, pod_uid_forms_are_recognised)
{
    static struct id_case cases[] = {
        {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
         ".slice/cri-containerd-" ID64 ".scope",
         UID},
        {"/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" ID64 ".scope", UID},
        {"/kubepods/besteffort/pod" UID "/" ID64, UID},
        {"/kubepods/pod" UID, UID},
        /* seen from another container's cgroup namespace (a DaemonSet's) */
        {"/../../kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" ID64 ".scope", UID},
        /* a static pod: the hash of its manifest */
        {"/kubepods/burstable/pod0f8c6e1d2b3a49587c6d5e4f3a2b1c0d/" ID64,
         "0f8c6e1d2b3a49587c6d5e4f3a2b1c0d"},
        /* none: */
        {"/kubepods.slice/kubepods-burstable.slice", ""},
        {"/system.slice/docker-" ID64 ".scope", ""},
        {"/kubepods/besteffort/pod7c3a41a6-5d3e-4b8e-9a1f", ""},      /* cut short */
        {"/kubepods/besteffort/pod" UID "x/" ID64, ""},              /* not the whole name */
        {"/kubepods/besteffort/xpod" UID "/" ID64, ""},              /* not a pod component */
        {"/kubepods/pod7c3a41a6-5d3e_4b8e-9a1f-0c2d4e6f8a9b-00/x", ""}, /* 39 characters */
        {"/", ""},
        {"", ""},
    };
    return cr_make_param_array(struct id_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct id_case *c, procparse, pod_uid_forms_are_recognised)
{
    char id[65];
    memset(id, 'Z', sizeof id);
    procparse_pod_uid(c->path, id, sizeof id);
    cr_assert_str_eq(id, c->id, "path '%s'", c->path);
}

Test(procparse, pod_uid_small_output_is_empty)
{
    char uid[36] = "x";
    procparse_pod_uid("/kubepods/pod" UID, uid, sizeof uid);
    cr_assert_str_eq(uid, "");
    procparse_pod_uid(NULL, uid, sizeof uid);
    cr_assert_str_eq(uid, "");
    procparse_pod_uid("/kubepods/pod" UID, NULL, 0); /* writes nothing */
}

/* ---- cpu.max, cfs quota ------------------------------------------------ */

struct cpu_max_case {
    char text[40];
    int rc;
    double cpus;
};

ParameterizedTestParameters(procparse, cpu_max_forms_give_cpus)
{
    static struct cpu_max_case cases[] = {
        {"max 100000\n", 0, 0.0},   {"max 100000", 0, 0.0},       {"200000 100000\n", 0, 2.0},
        {"50000 100000\n", 0, 0.5}, {"150000 100000\n", 0, 1.5},  {"1000 1000\n", 0, 1.0},
        {"", -EINVAL, 0},           {"\n", -EINVAL, 0},           {"max\n", -EINVAL, 0},
        {"200000\n", -EINVAL, 0},   {"abc 100000\n", -EINVAL, 0}, {"-1 100000\n", -EINVAL, 0},
        {"0 100000\n", -EINVAL, 0}, {"100000 0\n", -EINVAL, 0},   {"100000 max\n", -EINVAL, 0},
        {"1 2 3\n", -EINVAL, 0},    {"2.5 1\n", -EINVAL, 0},
    };
    return cr_make_param_array(struct cpu_max_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct cpu_max_case *c, procparse, cpu_max_forms_give_cpus)
{
    double cpus = -7;
    cr_assert_eq(cpu_max_of(c->text, &cpus), c->rc, "'%s'", c->text);
    if (c->rc == 0)
        cr_assert_float_eq(cpus, c->cpus, 1e-12, "'%s': %f", c->text, cpus);
    else
        cr_assert_eq(cpus, -7, "'%s': output written on failure", c->text);
}

Test(procparse, cfs_quota_unlimited_is_zero_else_ratio)
{
    cr_assert_eq(procparse_cfs_quota(-1, 100000), 0);
    cr_assert_eq(procparse_cfs_quota(0, 100000), 0);
    cr_assert_eq(procparse_cfs_quota(-50000, 100000), 0);
    cr_assert_eq(procparse_cfs_quota(50000, 0), 0);
    cr_assert_eq(procparse_cfs_quota(50000, -1), 0);
    cr_assert_float_eq(procparse_cfs_quota(250000, 100000), 2.5, 1e-12);
    cr_assert_float_eq(procparse_cfs_quota(25000, 100000), 0.25, 1e-12);
}

/* ---- cpu.stat, memory.events ------------------------------------------- */

Test(procparse, cpu_stat_v2_reads_throttling)
{
    static const char text[] = "usage_usec 9876543\n"
                               "user_usec 6543210\n"
                               "system_usec 3333333\n"
                               "core_sched.force_idle_usec 0\n"
                               "nr_periods 4500\n"
                               "nr_throttled 120\n"
                               "throttled_usec 8123456\n"
                               "nr_bursts 0\n"
                               "burst_usec 0\n";
    struct cg_cpu_stat cs;
    cr_assert_eq(cpu_stat_of(text, &cs), 0);
    cr_assert(cs.have);
    cr_assert_eq(cs.nr_periods, 4500);
    cr_assert_eq(cs.nr_throttled, 120);
}

Test(procparse, cpu_stat_v1_real_machine_reads_throttling)
{
    /* /sys/fs/cgroup/cpu/cpu.stat on the development VM, one value changed. */
    static const char text[] = "nr_periods 0\n"
                               "nr_throttled 7\n"
                               "throttled_time 0\n"
                               "nr_bursts 0\n"
                               "burst_time 0\n";
    struct cg_cpu_stat cs;
    cr_assert_eq(cpu_stat_of(text, &cs), 0);
    cr_assert(cs.have);
    cr_assert_eq(cs.nr_periods, 0);
    cr_assert_eq(cs.nr_throttled, 7);
}

Test(procparse, cpu_stat_without_cpu_controller_has_nothing)
{
    static const char text[] = "usage_usec 100\nuser_usec 60\nsystem_usec 40\n";
    struct cg_cpu_stat cs = {.have = true, .nr_periods = 9};
    cr_assert_eq(cpu_stat_of(text, &cs), 0);
    cr_assert_not(cs.have);
    cr_assert_eq(cs.nr_periods, 0);
    cr_assert_eq(cpu_stat_of("", &cs), 0);
    cr_assert_not(cs.have);
}

Test(procparse, cpu_stat_bad_value_is_einval)
{
    struct cg_cpu_stat cs = {.nr_periods = 9};
    cr_assert_eq(cpu_stat_of("nr_periods x\n", &cs), -EINVAL);
    cr_assert_eq(cpu_stat_of("nr_periods\n", &cs), -EINVAL);
    cr_assert_eq(cpu_stat_of("nr_throttled 1 2\n", &cs), -EINVAL);
    cr_assert_eq(cs.nr_periods, 9);
}

Test(procparse, memory_events_v2_reads_all_counters)
{
    static const char text[] = "low 0\nhigh 15\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n";
    struct cg_mem_events ev;
    cr_assert_eq(mem_events_of(text, &ev), 0);
    cr_assert(ev.have);
    cr_assert_eq(ev.high, 15);
    cr_assert_eq(ev.max, 7);
    cr_assert_eq(ev.oom, 2);
    cr_assert_eq(ev.oom_kill, 1);
}

Test(procparse, memory_events_v1_oom_control_gives_oom_kill)
{
    static const char text[] = "oom_kill_disable 0\nunder_oom 1\noom_kill 3\n";
    struct cg_mem_events ev;
    cr_assert_eq(mem_events_of(text, &ev), 0);
    cr_assert(ev.have);
    cr_assert_eq(ev.oom_kill, 3);
    cr_assert_eq(ev.oom, 0, "under_oom is a state, not the oom counter");
    cr_assert_eq(ev.high, 0);
    cr_assert_eq(ev.max, 0);
}

Test(procparse, memory_events_empty_has_nothing_and_bad_is_einval)
{
    struct cg_mem_events ev = {.have = true};
    cr_assert_eq(mem_events_of("", &ev), 0);
    cr_assert_not(ev.have);
    cr_assert_eq(mem_events_of("oom_kill -1\n", &ev), -EINVAL);
    /* a cut last line is dropped, not misread */
    cr_assert_eq(mem_events_of("max 3\noom_kill 1", &ev), 0);
    cr_assert_eq(ev.max, 3);
    cr_assert_eq(ev.oom_kill, 0);
}

/* ---- single-number files ----------------------------------------------- */

struct u64_case {
    char text[40];
    int rc;
    uint64_t value;
};

ParameterizedTestParameters(procparse, u64_file_forms_parse)
{
    static struct u64_case cases[] = {
        {"123\n", 0, 123},
        {"0", 0, 0},
        {"268435456\n", 0, 268435456},
        {"max\n", 0, UINT64_MAX},
        {"max", 0, UINT64_MAX},
        {"9223372036854771712\n", 0, UINT64_MAX}, /* v1, 4 KiB pages */
        {"9223372036854710272\n", 0, UINT64_MAX}, /* v1, 64 KiB pages */
        {"4611686018427387904\n", 0, UINT64_MAX}, /* 2^62 */
        {"4611686018427387903\n", 0, 4611686018427387903ULL},
        {"18446744073709551616\n", 0, UINT64_MAX}, /* 2^64 */
        {"99999999999999999999999999\n", 0, UINT64_MAX},
        {"", -EINVAL, 0},
        {"\n", -EINVAL, 0},
        {"-1\n", -EINVAL, 0},
        {"12 kB\n", -EINVAL, 0},
        {"12x\n", -EINVAL, 0},
        {"maximum\n", -EINVAL, 0},
        {"1\n2\n", -EINVAL, 0},
    };
    return cr_make_param_array(struct u64_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct u64_case *c, procparse, u64_file_forms_parse)
{
    uint64_t v = 42;
    cr_assert_eq(u64_of(c->text, &v), c->rc, "'%s'", c->text);
    cr_assert_eq(v, c->rc == 0 ? c->value : 42, "'%s': %llu", c->text, (unsigned long long)v);
}

/* ---- PSI --------------------------------------------------------------- */

struct psi_case {
    char text[128];
    int rc;
    double avg10;
};

ParameterizedTestParameters(procparse, psi_some_avg10_is_read)
{
    static struct psi_case cases[] = {
        /* /proc/pressure/cpu on the development VM */
        {"some avg10=2.60 avg60=7.66 avg300=7.91 total=76451195\n"
         "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
         0, 2.60},
        {"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 0, 0.0},
        {"full avg10=9.00 avg60=0 avg300=0 total=0\nsome avg10=1.23 avg60=0 total=0\n", 0, 1.23},
        {"some avg10=100.00 avg60=99.50 avg300=90.00 total=123456789\n", 0, 100.0},
        {"some avg10=7 avg60=0 total=0\n", 0, 7.0},
        {"", -EINVAL, 0},
        {"full avg10=1.00 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0},
        {"some avg60=1.00 avg300=0.00 total=0\n", -EINVAL, 0},
        {"some avg10=abc avg60=0.00\n", -EINVAL, 0},
        {"some avg10= avg60=0.00\n", -EINVAL, 0},
        {"some avg10=-1.00 avg60=0.00\n", -EINVAL, 0},
        {"some avg10=1.2", -EINVAL, 0}, /* cut: could be 1.23 */
        {"somewhere avg10=1.00\n", -EINVAL, 0},
    };
    return cr_make_param_array(struct psi_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct psi_case *c, procparse, psi_some_avg10_is_read)
{
    double v = -7;
    cr_assert_eq(psi_of(c->text, &v), c->rc, "'%s'", c->text);
    if (c->rc == 0)
        cr_assert_float_eq(v, c->avg10, 1e-9, "'%s': %f", c->text, v);
    else
        cr_assert_eq(v, -7);
}

/* ---- random text ------------------------------------------------------- */

/* Fragments of the formats above, so random text reaches the value parsers
 * and not only the line splitter. */
static const char *const fragments[] = {
    "VmRSS:",
    "RssAnon:",
    "Threads:",
    "Uid:",
    "State:",
    "TracerPid:",
    " kB",
    "\t",
    " ",
    "\n",
    "0",
    "1",
    "18446744073709551615",
    "99999999999999999999",
    "-",
    "(",
    ")",
    ") (",
    "0::",
    ":memory:",
    ":cpu,cpuacct:",
    "/",
    "docker-",
    "0123456789abcdef",
    "max",
    "some",
    "avg10=",
    "1.5",
    ".",
    "nr_periods",
    "nr_throttled",
    "oom_kill",
    "high",
    "=",
    ":",
    "\xff",
    "\0",
};

static size_t random_text(uint64_t *seed, char *buf, size_t cap)
{
    size_t len = rnd(seed) % cap, n = 0;
    while (n < len) {
        if (rnd(seed) % 4 == 0) {
            buf[n++] = (char)rnd(seed);
            continue;
        }
        const char *f = fragments[rnd(seed) % (sizeof fragments / sizeof fragments[0])];
        size_t flen = f[0] ? strlen(f) : 1;
        if (flen > len - n)
            flen = len - n;
        memcpy(buf + n, f, flen);
        n += flen;
    }
    return n;
}

Test(procparse, random_text_never_crashes_or_overreads)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char text[400];

    for (int iter = 0; iter < 20000; iter++) {
        size_t n = random_text(&seed, text, sizeof text);
        char *b = exact(text, n);
        struct proc_status ps;
        struct proc_stat st;
        struct proc_cgroup cg;
        struct cg_cpu_stat cs;
        struct cg_mem_events me;
        double d;
        uint64_t u;
        char id[65];
        int rc;

        rc = procparse_status(b, n, &ps);
        cr_assert(rc == 0 || rc == -EINVAL);
        rc = procparse_stat(b, n, &st);
        cr_assert(rc == 0 || rc == -EINVAL);
        if (rc == 0)
            cr_assert_lt(strlen(st.comm), sizeof st.comm);
        rc = procparse_cgroup(b, n, &cg);
        cr_assert(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG);
        if (rc == 0) {
            procparse_container_id(cg.v2, id, sizeof id);
            cr_assert(strlen(id) == 0 || strlen(id) == 64);
        }
        rc = procparse_cpu_stat(b, n, &cs);
        cr_assert(rc == 0 || rc == -EINVAL);
        rc = procparse_memory_events(b, n, &me);
        cr_assert(rc == 0 || rc == -EINVAL);
        rc = procparse_cpu_max(b, n, &d);
        cr_assert(rc == 0 || rc == -EINVAL);
        if (rc == 0)
            cr_assert_geq(d, 0);
        rc = procparse_u64_file(b, n, &u);
        cr_assert(rc == 0 || rc == -EINVAL);
        rc = procparse_psi_some_avg10(b, n, &d);
        cr_assert(rc == 0 || rc == -EINVAL);
        if (rc == 0)
            cr_assert_geq(d, 0);
        free(b);
    }
}

/* ---- ELF build id ------------------------------------------------------ */

static unsigned char *read_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    ssize_t got;

    cr_assert_neq(fd, -1, "open %s: %s", path, strerror(errno));
    cr_assert_not_null(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        got = read(fd, buf + len, cap - len);
        if (got == -1 && errno == EINTR)
            continue;
        cr_assert_neq(got, -1, "read %s: %s", path, strerror(errno));
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    *n = len;
    return buf;
}

/* The build id of path as `readelf -n` prints it ("Build ID: <hex>"). */
static void readelf_build_id(const char *path, char *out, size_t len)
{
    char readelf[] = "/usr/bin/readelf";
    char opt[] = "-n";
    char file[PATH_MAX];
    char *argv[] = {readelf, opt, file, NULL};
    struct spawn_result res;
    const char *at;
    size_t k = 0;

    snprintf(file, sizeof file, "%s", path);
    cr_assert_eq(spawn_capture(argv, NULL, 10000, &res), 0, "cannot run %s", readelf);
    cr_assert_eq(res.status, 0, "readelf -n %s failed: %s", path, res.err);
    at = strstr(res.out, "Build ID: ");
    cr_assert_not_null(at, "readelf shows no build id for %s:\n%s", path, res.out);
    for (at += strlen("Build ID: "); k + 1 < len && strchr("0123456789abcdef", *at) && *at; at++)
        out[k++] = *at;
    out[k] = '\0';
    spawn_result_fini(&res);
    cr_assert_geq(k, 16, "short build id from readelf");
}

Test(procparse, elf_own_binary_matches_readelf, .timeout = 30)
{
    char exe[PATH_MAX], want[129], got[129];
    ssize_t elen = readlink("/proc/self/exe", exe, sizeof exe - 1);
    unsigned char *img;
    size_t n;

    cr_assert_gt(elen, 0);
    exe[elen] = '\0';
    readelf_build_id(exe, want, sizeof want);
    img = read_file("/proc/self/exe", &n);
    cr_assert_eq(build_id_of(img, n, got, sizeof got), 0);
    cr_assert_str_eq(got, want);

    /* Every prefix either yields the same id or says it cannot. */
    for (size_t k = 0; k < n && k <= 16384; k++) {
        char part[129] = "";
        int rc = build_id_of(img, k, part, sizeof part);
        cr_assert(rc == 0 || rc == -ENOENT || rc == -EINVAL, "prefix %zu: rc %d", k, rc);
        if (rc == 0)
            cr_assert_str_eq(part, want, "prefix %zu", k);
        if (k < 64)
            cr_assert_eq(rc, -EINVAL, "prefix %zu is shorter than the ELF header", k);
    }
    cr_assert_eq(build_id_of(img, n, got, strlen(want)), -ERANGE, "no room for the NUL");
    free(img);
}

/* A hand-made ELF image: header, program (or section) headers, and a note
 * segment with a GNU property note before the build id. Offsets are from
 * the System V ABI, written out here rather than taken from <elf.h>. */
struct elf_case {
    char name[32];
    bool is64, big, sections;
    unsigned align;
};

struct elf_img {
    unsigned char b[1024];
    size_t len;
    size_t ph_end;   /* end of the header table the parser needs */
    size_t note_end; /* end of the build-id note */
};

static const char img_id[] = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3";

static void put(unsigned char *b, bool big, size_t off, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        b[off + i] = (unsigned char)(v >> (8 * (big ? width - 1 - i : i)));
}

static size_t up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

/* Writes a note at off; returns where the next one starts. */
static size_t put_note(unsigned char *b, bool big, size_t off, unsigned align, const char *name,
                       size_t namesz, uint32_t type, const unsigned char *desc, size_t descsz)
{
    put(b, big, off, namesz, 4);
    put(b, big, off + 4, descsz, 4);
    put(b, big, off + 8, type, 4);
    memcpy(b + off + 12, name, namesz);
    off = up(off + 12 + namesz, align);
    memcpy(b + off, desc, descsz);
    return up(off + descsz, align);
}

static void build_elf(const struct elf_case *c, struct elf_img *im)
{
    const bool big = c->big;
    const size_t ehsize = c->is64 ? 64 : 52;
    const size_t phentsize = c->is64 ? 56 : 32;
    const size_t shentsize = c->is64 ? 64 : 40;
    const size_t notes = 0x100, shoff = 0x200;
    const size_t w = c->is64 ? 8 : 4;
    unsigned char prop[20], id[20];
    size_t end;

    memset(im, 0, sizeof *im);
    memset(prop, 0xee, sizeof prop);
    for (size_t i = 0; i < sizeof id; i++)
        id[i] = (unsigned char)(0xa0 + i);
    memcpy(im->b,
           "\x7f"
           "ELF",
           4);
    im->b[4] = c->is64 ? 2 : 1;
    im->b[5] = big ? 2 : 1;
    im->b[6] = 1;
    put(im->b, big, 16, 2, 2);                     /* e_type: ET_EXEC */
    put(im->b, big, 18, c->is64 ? 43 : 20, 2);     /* e_machine: SPARCV9 / PPC */
    put(im->b, big, 20, 1, 4);                     /* e_version */
    put(im->b, big, c->is64 ? 52 : 40, ehsize, 2); /* e_ehsize */

    /* A Go note (odd name size), a GNU property note (desc not a multiple
     * of 8, so the alignment matters), then the build id. */
    end = put_note(im->b, big, notes, c->align, "Go\0", 3, 4, prop, 8);
    end = put_note(im->b, big, end, c->align, "GNU", 4, 5, prop, sizeof prop);
    im->note_end = up(end + 12 + 4, c->align) + sizeof id; /* padding not needed */
    end = put_note(im->b, big, end, c->align, "GNU", 4, 3, id, sizeof id);

    if (!c->sections) {
        size_t ph = ehsize;
        put(im->b, big, c->is64 ? 32 : 28, ph, w);        /* e_phoff */
        put(im->b, big, c->is64 ? 54 : 42, phentsize, 2); /* e_phentsize */
        put(im->b, big, c->is64 ? 56 : 44, 2, 2);         /* e_phnum */
        /* PT_LOAD, then PT_NOTE */
        put(im->b, big, ph, 1, 4);
        ph += phentsize;
        put(im->b, big, ph, 4, 4);
        put(im->b, big, ph + (c->is64 ? 8 : 4), notes, w);         /* p_offset */
        put(im->b, big, ph + (c->is64 ? 32 : 16), end - notes, w); /* p_filesz */
        put(im->b, big, ph + (c->is64 ? 48 : 28), c->align, w);    /* p_align */
        im->ph_end = ph + phentsize;
        im->len = end;
        return;
    }
    put(im->b, big, c->is64 ? 40 : 32, shoff, w);     /* e_shoff */
    put(im->b, big, c->is64 ? 58 : 46, shentsize, 2); /* e_shentsize */
    put(im->b, big, c->is64 ? 60 : 48, 3, 2);         /* e_shnum */
    /* [0] SHT_NULL, [1] SHT_PROGBITS, [2] SHT_NOTE */
    put(im->b, big, shoff + shentsize + 4, 1, 4);
    size_t sh = shoff + 2 * shentsize;
    put(im->b, big, sh + 4, 7, 4);                             /* sh_type: SHT_NOTE */
    put(im->b, big, sh + (c->is64 ? 24 : 16), notes, w);       /* sh_offset */
    put(im->b, big, sh + (c->is64 ? 32 : 20), end - notes, w); /* sh_size */
    put(im->b, big, sh + (c->is64 ? 48 : 32), c->align, w);    /* sh_addralign */
    im->ph_end = sh + shentsize;
    im->len = im->ph_end;
}

ParameterizedTestParameters(procparse, elf_handmade_build_id_is_found)
{
    static struct elf_case cases[] = {
        {"elf64 big-endian", true, true, false, 4},
        {"elf64 big-endian align 8", true, true, false, 8},
        {"elf64 little-endian align 8", true, false, false, 8},
        {"elf32 little-endian", false, false, false, 4},
        {"elf32 big-endian", false, true, false, 4},
        {"elf64 sections only", true, false, true, 4},
        {"elf32 big sections align 8", false, true, true, 8},
    };
    return cr_make_param_array(struct elf_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct elf_case *c, procparse, elf_handmade_build_id_is_found)
{
    struct elf_img im;
    char id[41];

    build_elf(c, &im);
    cr_assert_eq(build_id_of(im.b, im.len, id, sizeof id), 0, "%s", c->name);
    cr_assert_str_eq(id, img_id, "%s", c->name);
    cr_assert_eq(build_id_of(im.b, im.len, id, sizeof id - 1), -ERANGE, "%s", c->name);

    /* Cut at every length: the header, then the header table, then the note
     * must all be there before the id is. */
    for (size_t k = 0; k < im.len; k++) {
        int want = k < (c->is64 ? 64u : 52u) || k < im.ph_end ? -EINVAL : -ENOENT;
        if (c->sections && k >= im.ph_end)
            want = 0;
        if (!c->sections && k >= im.note_end)
            want = 0;
        cr_assert_eq(build_id_of(im.b, k, id, sizeof id), want, "%s cut at %zu", c->name, k);
    }
}

Test(procparse, elf_without_build_id_is_enoent)
{
    struct elf_case c = {"no id", true, false, false, 4};
    struct elf_img im;
    char id[41] = "untouched";

    build_elf(&c, &im);
    /* Turn the build-id note into an ABI tag (type 1). */
    for (size_t off = 0x100; off + 12 <= im.len; off += 4) {
        if (memcmp(im.b + off + 12, "GNU", 4) == 0 && im.b[off + 8] == 3) {
            im.b[off + 8] = 1;
            break;
        }
    }
    cr_assert_eq(build_id_of(im.b, im.len, id, sizeof id), -ENOENT);
    cr_assert_str_eq(id, "untouched");

    /* An ELF header with no program or section headers at all. */
    cr_assert_eq(build_id_of(im.b, 64, id, sizeof id), -EINVAL, "headers announced, not there");
    put(im.b, false, 56, 0, 2); /* e_phnum = 0 */
    cr_assert_eq(build_id_of(im.b, 64, id, sizeof id), -ENOENT);
}

Test(procparse, elf_not_elf_is_einval)
{
    static const unsigned char script[] = "#!/bin/sh\necho hello, this is not an ELF file at all\n";
    unsigned char hdr[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    char id[41];

    cr_assert_eq(build_id_of(script, sizeof script - 1, id, sizeof id), -EINVAL);
    cr_assert_eq(build_id_of(hdr, 0, id, sizeof id), -EINVAL);
    cr_assert_eq(procparse_elf_build_id(NULL, 0, id, sizeof id), -EINVAL);
    cr_assert_eq(build_id_of(hdr, 4, id, sizeof id), -EINVAL);
    cr_assert_eq(build_id_of(hdr, 63, id, sizeof id), -EINVAL);
    cr_assert_eq(build_id_of(hdr, 64, id, sizeof id), -ENOENT);
    hdr[4] = 3; /* no such class */
    cr_assert_eq(build_id_of(hdr, 64, id, sizeof id), -EINVAL);
    hdr[4] = 2;
    hdr[5] = 0; /* no such byte order */
    cr_assert_eq(build_id_of(hdr, 64, id, sizeof id), -EINVAL);
}

Test(procparse, elf_random_bytes_never_crash)
{
    uint64_t seed = 0x243f6a8885a308d3ULL;
    static const struct elf_case base[] = {
        {"64be", true, true, false, 8},
        {"32le", false, false, false, 4},
        {"64le sections", true, false, true, 4},
    };
    unsigned char raw[600];
    char id[41];

    for (int iter = 0; iter < 30000; iter++) {
        size_t n = rnd(&seed) % sizeof raw;
        int rc;

        if (iter % 3 == 0) {
            /* pure noise, with a valid ident two times out of three */
            for (size_t i = 0; i < n; i++)
                raw[i] = (unsigned char)rnd(&seed);
            if (iter % 2 == 0 && n >= 6) {
                memcpy(raw,
                       "\x7f"
                       "ELF",
                       4);
                raw[4] = (unsigned char)(1 + rnd(&seed) % 2);
                raw[5] = (unsigned char)(1 + rnd(&seed) % 2);
            }
        } else {
            /* a valid image with a few bytes changed */
            struct elf_img im;
            build_elf(&base[rnd(&seed) % 3], &im);
            for (int flips = 1 + (int)(rnd(&seed) % 4); flips > 0; flips--)
                im.b[rnd(&seed) % im.len] = (unsigned char)rnd(&seed);
            n = im.len < sizeof raw ? im.len : sizeof raw;
            memcpy(raw, im.b, n);
        }
        rc = build_id_of(raw, n, id, sizeof id);
        cr_assert(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ERANGE, "rc %d", rc);
        if (rc == 0) {
            size_t len = strlen(id);
            cr_assert(len > 0 && len % 2 == 0 && strspn(id, "0123456789abcdef") == len);
        }
    }
}
