/* tests/test_profile.c - the in-memory profile (sidecar/profile): interning,
 * counts, threads, names and top functions, on hand-built profiles. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "profile_fixture.h"

/* The share of a function in a top list, or NULL when it is not there. */
static const struct prof_func_share *find_share(const struct prof_func_share *s, size_t n,
                                                const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(s[i].function, name))
            return &s[i];
    }
    return NULL;
}

static uint32_t frame_at(const struct profile *p, uint64_t addr)
{
    for (uint32_t f = 1; f <= p->nframes; f++) {
        if (p->frames[f - 1].addr == addr)
            return f;
    }
    return 0;
}

/* ---- interning and counts ----------------------------------------------- */

Test(profile, fixture_interns_frames_by_address_and_stacks_by_frames)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    cr_assert_eq(p->nframes, 10, "10 distinct addresses, got %u frames", p->nframes);
    cr_assert_eq(p->nstacks, 4);
    cr_assert_eq(p->nsamples, 100);
    cr_assert_eq(p->stacks[0].count, 40);
    cr_assert_eq(p->stacks[1].count, 20);
    cr_assert_eq(p->stacks[2].count, 30);
    cr_assert_eq(p->stacks[3].count, 10);
    cr_assert_eq(p->stacks[0].nframes, 4);
    cr_assert_eq(p->stacks[3].nframes, 3);
    /* Leaf first, and the shared caller frames are the same ids. */
    cr_assert_eq(p->frames[p->stacks[0].frames[0] - 1].addr, 0x404000);
    cr_assert_eq(p->stacks[0].frames[3], p->stacks[1].frames[3]);
    cr_assert_eq(p->stacks[0].frames[2], p->stacks[2].frames[2]);
    cr_assert_neq(p->stacks[0].frames[0], p->stacks[1].frames[0]);
    cr_assert_eq(p->stacks[0].value, 40 * 10000000ULL);
    profile_free(p);
}

Test(profile, totals_sum_counts_and_values)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    cr_assert_eq(p->period_ns, 10000000);
    cr_assert_eq(profile_total_count(p), 100);
    cr_assert_eq(profile_total_value(p), 100 * 10000000ULL);
    cr_assert_eq(p->failed_unwinds, 0);
    profile_free(p);
}

Test(profile, samples_keep_stack_thread_time_and_value_in_order)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    cr_assert_eq(p->samples[0].stack, 1);
    cr_assert_eq(p->samples[0].tid, 101);
    cr_assert_eq(p->samples[40].stack, 2);
    cr_assert_eq(p->samples[40].tid, 102);
    cr_assert_eq(p->samples[99].stack, 4);
    cr_assert_eq(p->samples[99].tid, 103);
    for (size_t i = 1; i < p->nsamples; i++)
        cr_assert_gt(p->samples[i].t_ns, p->samples[i - 1].t_ns);
    cr_assert_eq(p->samples[5].value, 10000000);
    profile_free(p);
}

Test(profile, threads_count_samples_and_last_name_wins)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    cr_assert_eq(p->nthreads, 3);
    uint64_t seen[3] = {0};
    for (uint32_t i = 0; i < p->nthreads; i++) {
        const struct prof_thread *t = &p->threads[i];
        if (t->tid == 101) {
            seen[0] = t->samples;
            cr_assert_str_eq(t->name, "worker");
        } else if (t->tid == 102) {
            seen[1] = t->samples;
        } else if (t->tid == 103) {
            seen[2] = t->samples;
            cr_assert_str_eq(t->name, "idler");
        }
    }
    cr_assert_eq(seen[0], 70);
    cr_assert_eq(seen[1], 20);
    cr_assert_eq(seen[2], 10);
    profile_thread_name(p, 103, "renamed");
    profile_thread_name(p, 999, "not sampled yet");
    cr_assert_eq(p->nthreads, 4);
    for (uint32_t i = 0; i < p->nthreads; i++) {
        if (p->threads[i].tid == 103)
            cr_assert_str_eq(p->threads[i].name, "renamed");
        if (p->threads[i].tid == 999)
            cr_assert_eq(p->threads[i].samples, 0);
    }
    profile_free(p);
}

Test(profile, thread_name_longer_than_field_is_cut_at_a_character)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    /* 30 ASCII bytes then a 3-byte character that does not fit in 31. */
    profile_thread_name(p, 1, "abcdefghijklmnopqrstuvwxyzabcd\xe2\x82\xac");
    cr_assert_str_eq(p->threads[0].name, "abcdefghijklmnopqrstuvwxyzabcd");
    profile_free(p);
}

Test(profile, many_frames_and_stacks_survive_table_growth)
{
    struct profile *p = profile_new(PROFILE_TYPE_WALL, 1000);
    for (uint64_t i = 0; i < 20000; i++) {
        uint64_t ips[3] = {0x1000 + i, 0x900000 + (i % 7), 0x800000};
        profile_add_sample(p, ips, 3, (int32_t)(i % 50), (int64_t)i, 1000000);
    }
    /* The same stacks again: nothing new is interned. */
    for (uint64_t i = 0; i < 20000; i += 2) {
        uint64_t ips[3] = {0x1000 + i, 0x900000 + (i % 7), 0x800000};
        profile_add_sample(p, ips, 3, (int32_t)(i % 50), (int64_t)i, 1000000);
    }
    cr_assert_eq(p->nframes, 20000 + 7 + 1);
    cr_assert_eq(p->nstacks, 20000);
    cr_assert_eq(p->nthreads, 50);
    cr_assert_eq(profile_total_count(p), 30000);
    cr_assert_eq(p->stacks[0].count, 2);
    cr_assert_eq(p->stacks[1].count, 1);
    profile_free(p);
}

Test(profile, stack_deeper_than_256_frames_is_kept_whole)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    uint64_t ips[600];
    for (int i = 0; i < 600; i++)
        ips[i] = 0x1000 + (uint64_t)i * 16;
    profile_add_sample(p, ips, 600, 1, 0, 1);
    profile_add_sample(p, ips, 600, 1, 1, 1);
    cr_assert_eq(p->nstacks, 1);
    cr_assert_eq(p->stacks[0].nframes, 600);
    cr_assert_eq(p->stacks[0].count, 2);
    cr_assert_eq(p->frames[p->stacks[0].frames[599] - 1].addr, 0x1000 + 599 * 16);
    profile_free(p);
}

Test(profile, empty_stack_is_kept_and_counted_as_failed_unwind)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    uint64_t ip = 0x1234;
    profile_add_sample(p, &ip, 1, 1, 0, 10);
    profile_add_sample(p, NULL, 0, 1, 1, 10);
    profile_add_sample(p, NULL, 0, 2, 2, 10);
    cr_assert_eq(p->failed_unwinds, 2);
    cr_assert_eq(p->nstacks, 2);
    cr_assert_eq(p->stacks[1].nframes, 0);
    cr_assert_eq(p->stacks[1].count, 2);
    struct prof_func_share s[4];
    size_t n = profile_top_functions(p, s, 4);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(s[0].function, PROFILE_NO_STACK);
    cr_assert_float_eq(s[0].self, 2.0 / 3.0, 1e-9);
    profile_free(p);
}

/* ---- mappings and names ------------------------------------------------- */

Test(profile, find_mapping_includes_start_and_excludes_limit)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    uint32_t a = profile_add_mapping(p, 0x1000, 0x2000, 0, "/a", "");
    uint32_t b = profile_add_mapping(p, 0x3000, 0x4000, 0x2000, "/b", "AbCd");
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);
    cr_assert_eq(profile_find_mapping(p, 0x1000), a);
    cr_assert_eq(profile_find_mapping(p, 0x1fff), a);
    cr_assert_eq(profile_find_mapping(p, 0x2000), 0);
    cr_assert_eq(profile_find_mapping(p, 0x3500), b);
    cr_assert_eq(profile_find_mapping(p, 0xfff), 0);
    cr_assert_str_eq(p->mappings[1].build_id, "abcd", "build-ids are kept lower case");
    profile_free(p);
}

Test(profile, same_mapping_twice_is_one_mapping)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    uint32_t a = profile_add_mapping(p, 0x1000, 0x2000, 0, "/lib/x.so", "");
    uint32_t b = profile_add_mapping(p, 0x1000, 0x2000, 0, "/lib/x.so", "beef");
    cr_assert_eq(a, b);
    cr_assert_eq(p->nmappings, 1);
    cr_assert_str_eq(p->mappings[0].build_id, "beef", "a later snapshot fills the build-id");
    cr_assert_eq(profile_add_mapping(p, 0x1000, 0x2000, 0x1000, "/lib/x.so", ""), 2);
    profile_free(p);
}

Test(profile, build_id_that_is_not_hex_is_unknown)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    profile_add_mapping(p, 0x1000, 0x2000, 0, "/a", "12zz");
    profile_add_mapping(p, 0x3000, 0x4000, 0, "/b", NULL);
    cr_assert_str_eq(p->mappings[0].build_id, "");
    cr_assert_str_eq(p->mappings[1].build_id, "");
    profile_free(p);
}

Test(profile, frames_sampled_before_their_mapping_join_it)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    uint64_t ip = 0x7000123;
    profile_add_sample(p, &ip, 1, 1, 0, 1);
    cr_assert_eq(p->frames[0].mapping, 0);
    cr_assert_str_eq(profile_frame_name(p, 1), "0x7000123");
    profile_add_mapping(p, 0x7000000, 0x7001000, 0x5000, "/opt/lib/late.so", "");
    cr_assert_eq(p->frames[0].mapping, 1);
    cr_assert_str_eq(profile_frame_name(p, 1), "late.so+0x5123", "the cached label is redone");
    profile_free(p);
}

Test(profile, name_unknown_gives_module_plus_file_offset)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    uint64_t ips[3] = {FIXTURE_LIBC_START + 0x2345, 0xdead, 0x401000};
    profile_add_sample(p, ips, 3, 101, 0, 10000000);
    uint32_t in_libc = frame_at(p, FIXTURE_LIBC_START + 0x2345), outside = frame_at(p, 0xdead);
    cr_assert(in_libc && outside);
    cr_assert_null(p->frames[in_libc - 1].function);
    profile_name_unknown(p);
    /* offset = addr - start + the mapping's file offset (0x1000) */
    cr_assert_str_eq(p->frames[in_libc - 1].function, "libc.so.6+0x3345");
    cr_assert_str_eq(p->frames[outside - 1].function, "0xdead");
    cr_assert_str_eq(p->frames[frame_at(p, 0x401000) - 1].function, "main", "named stay named");
    cr_assert_not(profile_frame_named(p, in_libc));
    cr_assert_not(profile_frame_named(p, outside));
    cr_assert(profile_frame_named(p, frame_at(p, 0x401000)));
    profile_free(p);
}

Test(profile, name_frame_marks_real_names_and_their_mapping)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    profile_add_mapping(p, 0x1000, 0x2000, 0, "/bin/x", "");
    profile_add_mapping(p, 0x3000, 0x4000, 0, "/lib/y.so", "");
    uint64_t ips[2] = {0x1010, 0x3020};
    profile_add_sample(p, ips, 2, 1, 0, 1);
    cr_assert_not(profile_frame_named(p, 1));
    profile_name_frame(p, 1, "f", "x.c", 3);
    /* A symbolizer that writes the label itself has not named the frame. */
    profile_name_frame(p, 2, "y.so+0x20", NULL, 0);
    cr_assert(profile_frame_named(p, 1));
    cr_assert_not(profile_frame_named(p, 2));
    cr_assert(p->mappings[0].has_functions);
    cr_assert_not(p->mappings[1].has_functions);
    cr_assert_str_eq(p->frames[0].file, "x.c");
    cr_assert_eq(p->frames[0].line, 3);
    cr_assert_str_eq(profile_frame_name(p, 2), "y.so+0x20");
    /* Naming again replaces. */
    profile_name_frame(p, 1, "g", NULL, 0);
    cr_assert_str_eq(p->frames[0].function, "g");
    cr_assert_null(p->frames[0].file);
    profile_free(p);
}

Test(profile, strings_are_cleaned_to_utf8_without_controls)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    uint64_t ip = 0x10;
    profile_add_sample(p, &ip, 1, 1, 0, 1);
    profile_name_frame(p, 1, "ok_\xc3\xa9_bad\xff\xfe_ctl\n\t_surrogate\xed\xa0\x80_end", NULL, 0);
    cr_assert_str_eq(p->frames[0].function, "ok_\xc3\xa9_bad??_ctl??_surrogate???_end");
    profile_thread_name(p, 1, "th\x01read");
    cr_assert_str_eq(p->threads[0].name, "th?read");
    profile_note(p, "note %d\x7f", 5);
    cr_assert_str_eq(p->notes[0], "note 5?");
    profile_add_mapping(p, 0, 0x100, 0, "/tmp/\x80x", "");
    cr_assert_str_eq(p->mappings[0].file, "/tmp/?x");
    char s[] = "tail\xe2\x82";
    profile_text_clean(s);
    cr_assert_str_eq(s, "tail??");
    profile_free(p);
}

Test(profile, notes_are_formatted_and_kept_in_order)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    profile_note(p, "rate lowered to %u Hz: target stopped %.1f%%", 49u, 1.3);
    profile_note(p, "second");
    cr_assert_eq(p->nnotes, 2);
    cr_assert_str_eq(p->notes[0], "rate lowered to 49 Hz: target stopped 1.3%");
    cr_assert_str_eq(p->notes[1], "second");
    profile_free(p);
}

Test(profile, free_of_null_does_nothing)
{
    profile_free(NULL);
}

/* ---- top functions ------------------------------------------------------ */

Test(profile, top_functions_split_60_30_10_by_self)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    struct prof_func_share s[16];
    size_t n = profile_top_functions(p, s, 16);
    cr_assert_eq(n, 8, "8 functions over 10 frames, got %zu", n);
    cr_assert_str_eq(s[0].function, "hot_a");
    cr_assert_str_eq(s[1].function, "hot_b");
    cr_assert_str_eq(s[2].function, "hot_c");
    cr_assert_float_eq(s[0].self, 0.6, 1e-12);
    cr_assert_float_eq(s[1].self, 0.3, 1e-12);
    cr_assert_float_eq(s[2].self, 0.1, 1e-12);
    cr_assert_eq(s[0].self_count, 60);
    /* Then functions with no self time, by total: main, run, compute, io, idle. */
    cr_assert_str_eq(s[3].function, "main");
    cr_assert_str_eq(s[4].function, "run");
    cr_assert_float_eq(s[3].total, 1.0, 1e-12);
    cr_assert_float_eq(s[4].total, 0.9, 1e-12);
    cr_assert_float_eq(find_share(s, n, "compute")->total, 0.6, 1e-12);
    cr_assert_float_eq(find_share(s, n, "io")->total, 0.3, 1e-12);
    cr_assert_float_eq(find_share(s, n, "idle")->total, 0.1, 1e-12);
    cr_assert_float_eq(find_share(s, n, "hot_a")->total, 0.6, 1e-12);
    cr_assert_eq(find_share(s, n, "main")->self_count, 0);
    profile_free(p);
}

Test(profile, top_functions_stop_at_max)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    struct prof_func_share s[2];
    cr_assert_eq(profile_top_functions(p, s, 2), 2);
    cr_assert_str_eq(s[0].function, "hot_a");
    cr_assert_str_eq(s[1].function, "hot_b");
    cr_assert_eq(profile_top_functions(p, s, 0), 0);
    profile_free(p);
}

Test(profile, top_functions_count_recursion_once_per_stack)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    uint64_t rec[4] = {0x30, 0x20, 0x30, 0x10}; /* f <- g <- f <- main */
    uint64_t flat[2] = {0x40, 0x10};            /* h <- main */
    profile_add_sample(p, rec, 4, 1, 0, 1);
    profile_add_sample(p, rec, 4, 1, 1, 1);
    profile_add_sample(p, rec, 4, 1, 2, 1);
    profile_add_sample(p, flat, 2, 1, 3, 1);
    profile_name_frame(p, 1, "f", NULL, 0);
    profile_name_frame(p, 2, "g", NULL, 0);
    profile_name_frame(p, 3, "main", NULL, 0);
    profile_name_frame(p, 4, "h", NULL, 0);
    struct prof_func_share s[8];
    size_t n = profile_top_functions(p, s, 8);
    cr_assert_eq(n, 4);
    cr_assert_float_eq(find_share(s, n, "f")->total, 0.75, 1e-12);
    cr_assert_float_eq(find_share(s, n, "f")->self, 0.75, 1e-12);
    cr_assert_float_eq(find_share(s, n, "main")->total, 1.0, 1e-12);
    cr_assert_float_eq(find_share(s, n, "h")->self, 0.25, 1e-12);
    profile_free(p);
}

Test(profile, top_functions_of_unnamed_frames_use_their_labels)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    profile_add_mapping(p, 0x1000, 0x2000, 0, "/bin/stripped", "");
    uint64_t ips[2] = {0x1100, 0x1010};
    profile_add_sample(p, ips, 2, 1, 0, 1);
    struct prof_func_share s[4];
    cr_assert_eq(profile_top_functions(p, s, 4), 2);
    cr_assert_str_eq(s[0].function, "stripped+0x100");
    profile_free(p);
}

Test(profile, top_functions_of_empty_profile_is_empty)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    struct prof_func_share s[4];
    cr_assert_eq(profile_top_functions(p, s, 4), 0);
    cr_assert_eq(profile_total_count(p), 0);
    profile_free(p);
}

Test(profile, memory_top_functions_by_value_weigh_bytes)
{
    struct profile *p = fixture_memory();
    cr_assert(profile_in_bytes(p));
    struct prof_func_share s[8];
    size_t n = profile_top_functions_by_value(p, s, 8);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(s[0].function, "xmalloc");
    cr_assert_eq(s[0].self_count, 6000);
    cr_assert_float_eq(find_share(s, n, "parse")->total, 0.5, 1e-12);
    cr_assert_float_eq(find_share(s, n, "load")->total, 0.5, 1e-12);
    n = profile_top_functions(p, s, 8);
    cr_assert_float_eq(find_share(s, n, "parse")->total, 0.75, 1e-12);
    cr_assert_float_eq(find_share(s, n, "load")->total, 0.25, 1e-12);
    profile_free(p);
}
