/* tests/test_outputs.c - the writers of a profile: folded stacks (exact
 * text), the SVG flame graph (well-formed XML per python3's parser, the
 * tooltips and the script), the JSON summary (values), and pprof (our gzip
 * inflated and unpacked with protobuf-c, then read by Go's own
 * `go tool pprof -top`). The profiles are the hand-built ones of
 * profile_fixture.h, with a known 60/30/10 split. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "flamegraph.h"
#include "folded.h"
#include "pprof.h"
#include "pprof.pb-c.h"
#include "profile.h"
#include "profile_fixture.h"
#include "profsum.h"
#include "support/spawn.h"

typedef Perftools__Profiles__Profile PbProfile;

/* ---- helpers ------------------------------------------------------------ */

struct membuf {
    char *data;
    size_t len;
    FILE *f;
};

static FILE *mem_open(struct membuf *m)
{
    memset(m, 0, sizeof *m);
    m->f = open_memstream(&m->data, &m->len);
    cr_assert_not_null(m->f);
    return m->f;
}

/* Close the stream; m->data then holds m->len bytes plus a NUL. */
static void mem_close(struct membuf *m)
{
    cr_assert_eq(fclose(m->f), 0);
    m->f = NULL;
}

static char *folded_text(const struct profile *p, bool per_thread)
{
    struct membuf m;
    cr_assert_eq(folded_write(p, mem_open(&m), per_thread), 0);
    mem_close(&m);
    return m.data;
}

static char *svg_text(const struct profile *p, const char *title)
{
    struct membuf m;
    cr_assert_eq(flamegraph_write(p, mem_open(&m), title), 0);
    mem_close(&m);
    return m.data;
}

static char *tmpdir_new(void)
{
    char *d = strdup("/tmp/stakeout-outputs-XXXXXX");
    cr_assert_not_null(d);
    cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
    return d;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove a directory made by tmpdir_new, and everything in it (Go's cache
 * makes its files read-only, which remove() does not mind). */
static void tmpdir_free(char *d)
{
    nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* An executable named name in $PATH, else the first of the fallbacks that
 * is one; NULL when none. The result is static. */
static const char *find_program(const char *name, const char *const *fallbacks)
{
    static char buf[4096];
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        if (n > 0 && n + strlen(name) + 2 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
            if (access(buf, X_OK) == 0)
                return buf;
        }
        path = colon ? colon + 1 : NULL;
    }
    for (size_t i = 0; fallbacks && fallbacks[i]; i++) {
        if (access(fallbacks[i], X_OK) == 0)
            return fallbacks[i];
    }
    return NULL;
}

/* ---- folded ------------------------------------------------------------- */

Test(outputs, folded_merges_stacks_root_first_sorted)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    char *text = folded_text(p, false);
    cr_assert_str_eq(text, "main;idle;hot_c 10\n"
                           "main;run;compute;hot_a 60\n"
                           "main;run;io;hot_b 30\n");
    free(text);
    profile_free(p);
}

Test(outputs, folded_per_thread_puts_the_thread_at_the_root)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    profile_add_sample(p, NULL, 0, 555, 0, 10000000); /* unnamed thread, nothing unwound */
    char *text = folded_text(p, true);
    cr_assert_str_eq(text, "[555];[unwind failed] 1\n"
                           "idler [103];main;idle;hot_c 10\n"
                           "worker [101];main;run;compute;hot_a 40\n"
                           "worker [101];main;run;io;hot_b 30\n"
                           "worker [102];main;run;compute;hot_a 20\n");
    free(text);
    profile_free(p);
}

Test(outputs, folded_memory_profile_weighs_bytes)
{
    struct profile *p = fixture_memory();
    char *text = folded_text(p, false);
    cr_assert_str_eq(text, "main;load;xmalloc 3000\n"
                           "main;parse;xmalloc 3000\n");
    free(text);
    profile_free(p);
}

Test(outputs, folded_names_lose_semicolons_and_unknown_frames_keep_labels)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    profile_add_mapping(p, 0x1000, 0x2000, 0x3000, "/opt/app/libx.so", "");
    uint64_t ips[3] = {0x1200, 0x9999, 0x1010};
    profile_add_sample(p, ips, 3, 1, 0, 1);
    profile_add_sample(p, NULL, 0, 1, 1, 1);
    profile_name_frame(p, 3, "outer f(a; b) with spaces", NULL, 0);
    char *text = folded_text(p, false);
    cr_assert_str_eq(text, "[unwind failed] 1\n"
                           "outer f(a: b) with spaces;0x9999;libx.so+0x3200 1\n");
    free(text);
    profile_free(p);
}

Test(outputs, folded_empty_profile_is_empty)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    char *text = folded_text(p, false);
    cr_assert_str_eq(text, "");
    free(text);
    profile_free(p);
}

/* ---- SVG flame graph ------------------------------------------------------ */

/* Parse an SVG with python3's XML parser and print, per frame of the
 * g#frames group in document order, "title|x|width|label". Fails the test
 * when the document is not well-formed or a frame lacks a part. */
static const char svg_check_py[] =
    "import sys, xml.etree.ElementTree as ET\n"
    "ns = '{http://www.w3.org/2000/svg}'\n"
    "root = ET.parse(sys.argv[1]).getroot()\n"
    "assert root.tag == ns + 'svg', root.tag\n"
    "assert root.find(ns + 'script') is not None, 'no script'\n"
    "frames = [g for g in root.iter(ns + 'g') if g.get('id') == 'frames']\n"
    "assert len(frames) == 1, 'one g#frames'\n"
    "for g in frames[0].findall(ns + 'g'):\n"
    "    t, r, x = g.find(ns + 'title'), g.find(ns + 'rect'), g.find(ns + 'text')\n"
    "    assert t is not None and r is not None and x is not None, 'frame parts'\n"
    "    print('%s|%s|%s|%s' % (t.text, r.get('x'), r.get('width'), x.text or ''))\n"
    "sub = [e for e in root.iter(ns + 'text') if e.get('id') == 'subtitle']\n"
    "tit = [e for e in root.iter(ns + 'text') if e.get('id') == 'title']\n"
    "print('TITLE|' + tit[0].text)\n"
    "print('SUBTITLE|' + (sub[0].text if sub else ''))\n";

/* The frames of an SVG per svg_check_py; the caller frees the text. */
static char *svg_parse(const char *svg)
{
    static const char *const py_fallbacks[] = {"/usr/bin/python3", NULL};
    const char *py = find_program("python3", py_fallbacks);
    cr_assert_not_null(py, "python3 not found: run deploy/setup.sh");
    char *dir = tmpdir_new();
    char svgpath[512], pypath[512];
    snprintf(svgpath, sizeof svgpath, "%s/fg.svg", dir);
    snprintf(pypath, sizeof pypath, "%s/check.py", dir);
    write_file(svgpath, svg, strlen(svg));
    write_file(pypath, svg_check_py, strlen(svg_check_py));
    char *argv[] = {(char *)py, pypath, svgpath, NULL};
    struct spawn_result r;
    cr_assert_eq(spawn_capture(argv, NULL, 60000, &r), 0);
    cr_assert_eq(r.status, 0, "python3 could not parse the SVG:\n%s", r.err);
    char *out = r.out;
    r.out = NULL;
    spawn_result_fini(&r);
    tmpdir_free(dir);
    return out;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(outputs, svg_is_well_formed_with_one_frame_per_merged_function)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    char *svg = svg_text(p, "CPU of <app> & \"co\"");
    char *frames = svg_parse(svg);
    /* all, main, idle, hot_c, run, compute, hot_a, io, hot_b: 9 frames and
     * 2 title lines; preorder, children by name. */
    cr_assert_eq(count_lines(frames), 11, "%s", frames);
    const char *expect[] = {
        "all (100 samples, 100.00%)|10.00|1180.00|all\n",
        "main (100 samples, 100.00%)|10.00|1180.00|main\n",
        "idle (10 samples, 10.00%)|10.00|118.00|idle\n",
        "hot_c (10 samples, 10.00%)|10.00|118.00|hot_c\n",
        "run (90 samples, 90.00%)|128.00|1062.00|run\n",
        "compute (60 samples, 60.00%)|128.00|708.00|compute\n",
        "hot_a (60 samples, 60.00%)|128.00|708.00|hot_a\n",
        "io (30 samples, 30.00%)|836.00|354.00|io\n",
        "hot_b (30 samples, 30.00%)|836.00|354.00|hot_b\n",
        "TITLE|CPU of <app> & \"co\"\n",
        "SUBTITLE|" FIXTURE_NOTE "\n",
    };
    const char *at = frames;
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        cr_assert(!strncmp(at, expect[i], strlen(expect[i])), "line %zu: want %s got:\n%s", i,
                  expect[i], at);
        at += strlen(expect[i]);
    }
    free(frames);
    free(svg);
    profile_free(p);
}

Test(outputs, svg_has_tooltips_and_its_own_script)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    char *svg = svg_text(p, NULL);
    cr_assert_not_null(strstr(svg, "<title>hot_a (60 samples, 60.00%)</title>"));
    cr_assert_not_null(strstr(svg, "<title>hot_b (30 samples, 30.00%)</title>"));
    cr_assert_not_null(strstr(svg, ">Flame Graph</text>"), "default title");
    cr_assert_not_null(strstr(svg, "<script type=\"text/ecmascript\"><![CDATA["));
    cr_assert_not_null(strstr(svg, "onload=\"init()\""));
    cr_assert_not_null(strstr(svg, "function zoom("));
    cr_assert_not_null(strstr(svg, "function unzoom("));
    cr_assert_not_null(strstr(svg, "function search("));
    cr_assert_not_null(strstr(svg, "\"Matched: \""));
    cr_assert_not_null(strstr(svg, "rgb(230,0,230)"), "search highlight");
    cr_assert_not_null(strstr(svg, ">Reset Zoom</text>"));
    cr_assert_not_null(strstr(svg, ">Search</text>"));
    /* Self-contained: nothing fetched from elsewhere. */
    cr_assert_null(strstr(svg, "src="));
    cr_assert_null(strstr(svg, "href"));
    cr_assert_null(strstr(svg, "<script src"));
    free(svg);
    profile_free(p);
}

Test(outputs, svg_escapes_names_and_cuts_labels_to_fit)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    uint64_t wide[2] = {0x10, 0x20}, narrow[2] = {0x30, 0x20};
    for (int i = 0; i < 95; i++)
        profile_add_sample(p, wide, 2, 1, i, 1);
    for (int i = 0; i < 5; i++)
        profile_add_sample(p, narrow, 2, 1, 100 + i, 1);
    profile_name_frame(p, 1, "operator<<(std::ostream&, char const*) 'quoted' \"too\"", NULL, 0);
    profile_name_frame(p, 2, "main]]>", NULL, 0);
    profile_name_frame(p, 3, "a_function_name_far_too_long_for_five_percent_of_the_width",
                       NULL, 0);
    profile_note(p, "note with <angle> & amp");
    char *svg = svg_text(p, "t");
    cr_assert_not_null(strstr(svg, "operator&lt;&lt;(std::ostream&amp;, char const*) "
                                   "&apos;quoted&apos; &quot;too&quot; (95 samples, 95.00%)"));
    cr_assert_not_null(strstr(svg, "note with &lt;angle&gt; &amp; amp"));
    char *frames = svg_parse(svg);
    cr_assert_not_null(strstr(frames, "operator<<(std::ostream&, char const*) 'quoted' \"too\""
                                      " (95 samples, 95.00%)|"));
    /* 5% of 1180 px is 59 px: 7 characters of 7.08 px fit, so 5 and "..";
     * first, as siblings go in name order. */
    cr_assert_not_null(strstr(frames, "(5 samples, 5.00%)|10.00|59.00|a_fun..\n"), "%s",
                       frames);
    cr_assert_not_null(strstr(frames, "(95 samples, 95.00%)|69.00|1121.00|operator<<("), "%s",
                       frames);
    cr_assert_not_null(strstr(frames, "SUBTITLE|note with <angle> & amp\n"));
    free(frames);
    free(svg);
    profile_free(p);
}

Test(outputs, svg_leaves_out_frames_under_a_tenth_of_a_pixel)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    uint64_t big[2] = {0x10, 0x20}, tiny[2] = {0x30, 0x20};
    for (int i = 0; i < 20000; i++)
        profile_add_sample(p, big, 2, 1, i, 1);
    profile_add_sample(p, tiny, 2, 1, 20000, 1);
    profile_name_frame(p, 1, "big", NULL, 0);
    profile_name_frame(p, 2, "main", NULL, 0);
    profile_name_frame(p, 3, "tiny", NULL, 0);
    char *svg = svg_text(p, NULL);
    cr_assert_null(strstr(svg, "<title>tiny"));
    cr_assert_not_null(strstr(svg, "<title>big (20,000 samples, "));
    char *frames = svg_parse(svg);
    cr_assert_eq(count_lines(frames), 3 + 2);
    free(frames);
    free(svg);
    profile_free(p);
}

Test(outputs, svg_of_memory_profile_counts_bytes)
{
    struct profile *p = fixture_memory();
    char *svg = svg_text(p, "Allocations");
    cr_assert_not_null(strstr(svg, "<title>main (6,000 bytes, 100.00%)</title>"), "%s", svg);
    cr_assert_not_null(strstr(svg, "<title>xmalloc (3,000 bytes, 50.00%)</title>"));
    cr_assert_not_null(strstr(svg, "<title>parse (3,000 bytes, 50.00%)</title>"));
    char *frames = svg_parse(svg);
    free(frames);
    free(svg);
    profile_free(p);
}

Test(outputs, svg_of_empty_profile_is_well_formed)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    char *svg = svg_text(p, NULL);
    cr_assert_not_null(strstr(svg, "no samples"));
    char *frames = svg_parse(svg);
    cr_assert_str_eq(frames, "TITLE|Flame Graph\nSUBTITLE|\n");
    free(frames);
    free(svg);
    profile_free(p);
}

/* ---- JSON summary --------------------------------------------------------- */

static double jnum(json_t *o, const char *path)
{
    json_t *v = json_object_get(o, path);
    cr_assert(json_is_number(v), "%s is not a number", path);
    return json_number_value(v);
}

Test(outputs, summary_has_counts_rates_stops_threads_and_top_functions)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    json_t *j = profsum_json(p, 5);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "cpu");
    cr_assert_str_eq(json_string_value(json_object_get(j, "comm")), "app");
    cr_assert_str_eq(json_string_value(json_object_get(j, "unit")), "samples");
    cr_assert_eq(jnum(j, "pid"), 4242);
    cr_assert_eq(jnum(j, "duration_ns"), 1e9);
    cr_assert_eq(jnum(j, "samples"), 100);
    cr_assert_eq(jnum(j, "total"), 1e9);
    cr_assert_eq(jnum(j, "idle_samples"), 7);
    cr_assert_eq(jnum(j, "failed_unwinds"), 0);
    cr_assert_eq(jnum(j, "stopped_ns"), 5e6);
    cr_assert_float_eq(jnum(j, "stopped_share"), 0.005, 1e-9);
    json_t *rate = json_object_get(j, "rate_hz");
    cr_assert_eq(jnum(rate, "asked"), 100);
    cr_assert_float_eq(jnum(rate, "achieved"), 98.5, 1e-9);
    cr_assert(json_is_false(json_object_get(j, "aborted")));

    json_t *th = json_object_get(j, "threads");
    cr_assert_eq(json_array_size(th), 3);
    cr_assert_eq(jnum(json_array_get(th, 0), "tid"), 101);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(th, 0), "name")), "worker");
    cr_assert_eq(jnum(json_array_get(th, 0), "samples"), 70);
    cr_assert_float_eq(jnum(json_array_get(th, 0), "percent"), 70.0, 1e-9);
    cr_assert_eq(jnum(json_array_get(th, 1), "tid"), 102);
    cr_assert_eq(jnum(json_array_get(th, 2), "tid"), 103);
    cr_assert_float_eq(jnum(json_array_get(th, 2), "percent"), 10.0, 1e-9);

    json_t *self = json_object_get(j, "top_self");
    cr_assert_eq(json_array_size(self), 5);
    const char *names[] = {"hot_a", "hot_b", "hot_c"};
    const double pct[] = {60, 30, 10};
    for (size_t i = 0; i < 3; i++) {
        json_t *f = json_array_get(self, i);
        cr_assert_str_eq(json_string_value(json_object_get(f, "name")), names[i]);
        cr_assert_float_eq(jnum(f, "self_percent"), pct[i], 1e-9);
        cr_assert_float_eq(jnum(f, "total_percent"), pct[i], 1e-9);
    }
    json_t *total = json_object_get(j, "top_total");
    cr_assert_eq(json_array_size(total), 5);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(total, 0), "name")), "main");
    cr_assert_float_eq(jnum(json_array_get(total, 0), "total_percent"), 100.0, 1e-9);
    cr_assert_float_eq(jnum(json_array_get(total, 0), "self_percent"), 0.0, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(total, 1), "name")), "run");
    cr_assert_float_eq(jnum(json_array_get(total, 1), "total_percent"), 90.0, 1e-9);
    /* hot_a and compute tie at 60% total; hot_a has the self time. */
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(total, 2), "name")),
                     "hot_a");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(total, 3), "name")),
                     "compute");

    json_t *notes = json_object_get(j, "notes");
    cr_assert_eq(json_array_size(notes), 1);
    cr_assert_str_eq(json_string_value(json_array_get(notes, 0)), FIXTURE_NOTE);
    char *dump = json_dumps(j, JSON_COMPACT);
    cr_assert_not_null(dump, "the summary serializes");
    free(dump);
    json_decref(j);
    profile_free(p);
}

Test(outputs, summary_limits_lists_to_top_n_and_reports_aborts)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_WALL);
    p->aborted = true;
    p->comm[0] = '\xff'; /* the sampler copies comm in itself */
    json_t *j = profsum_json(p, 2);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "wall");
    cr_assert_str_eq(json_string_value(json_object_get(j, "comm")), "?pp");
    cr_assert_eq(json_array_size(json_object_get(j, "threads")), 2);
    cr_assert_eq(json_array_size(json_object_get(j, "top_self")), 2);
    cr_assert_eq(json_array_size(json_object_get(j, "top_total")), 2);
    cr_assert(json_is_true(json_object_get(j, "aborted")));
    json_decref(j);
    profile_free(p);
}

Test(outputs, summary_of_memory_profile_weighs_bytes)
{
    struct profile *p = fixture_memory();
    json_t *j = profsum_json(p, 10);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "memory");
    cr_assert_str_eq(json_string_value(json_object_get(j, "unit")), "bytes");
    cr_assert_eq(jnum(j, "samples"), 4);
    cr_assert_eq(jnum(j, "total"), 6000);
    json_t *total = json_object_get(j, "top_total");
    for (size_t i = 0; i < json_array_size(total); i++) {
        json_t *f = json_array_get(total, i);
        const char *n = json_string_value(json_object_get(f, "name"));
        if (!strcmp(n, "parse") || !strcmp(n, "load"))
            cr_assert_float_eq(jnum(f, "total_percent"), 50.0, 1e-9, "%s", n);
    }
    json_decref(j);
    profile_free(p);
}

Test(outputs, summary_of_empty_profile_has_zeros)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 99);
    json_t *j = profsum_json(p, 10);
    cr_assert_eq(jnum(j, "samples"), 0);
    cr_assert_eq(jnum(j, "stopped_share"), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "top_self")), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "threads")), 0);
    json_decref(j);
    profile_free(p);
}

/* ---- pprof ------------------------------------------------------------------ */

/* pprof_write's bytes, checked to be gzip, inflated and unpacked. */
static PbProfile *pprof_parse(const struct profile *p, const struct pprof_opts *o)
{
    struct membuf m;
    cr_assert_eq(pprof_write_opts(p, o, mem_open(&m)), 0);
    mem_close(&m);
    cr_assert_gt(m.len, 18);
    cr_assert(m.data[0] == '\x1f' && m.data[1] == '\x8b', "gzip magic");

    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
    size_t cap = 1 << 16, len = 0;
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)m.data;
    z.avail_in = (uInt)m.len;
    int zr;
    do {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        zr = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        cr_assert(zr == Z_OK || zr == Z_STREAM_END, "inflate: %d", zr);
    } while (zr != Z_STREAM_END);
    cr_assert_eq(z.avail_in, 0, "nothing after the gzip member");
    inflateEnd(&z);
    free(m.data);

    PbProfile *pb = perftools__profiles__profile__unpack(NULL, len, out);
    free(out);
    cr_assert_not_null(pb, "protobuf-c could not unpack the profile");
    return pb;
}

static const char *pstr(const PbProfile *pb, int64_t i)
{
    cr_assert(i >= 0 && (size_t)i < pb->n_string_table, "string index %lld", (long long)i);
    return pb->string_table[i];
}

static const Perftools__Profiles__Location *ploc(const PbProfile *pb, uint64_t id)
{
    for (size_t i = 0; i < pb->n_location; i++) {
        if (pb->location[i]->id == id)
            return pb->location[i];
    }
    cr_assert_fail("no location %llu", (unsigned long long)id);
    return NULL;
}

/* The function name of a location's first line, or NULL without lines. */
static const char *ploc_name(const PbProfile *pb, uint64_t id)
{
    const Perftools__Profiles__Location *l = ploc(pb, id);
    if (l->n_line == 0)
        return NULL;
    for (size_t i = 0; i < pb->n_function; i++) {
        if (pb->function[i]->id == l->line[0]->function_id)
            return pstr(pb, pb->function[i]->name);
    }
    cr_assert_fail("no function %llu", (unsigned long long)l->line[0]->function_id);
    return NULL;
}

static const char *label_of(const PbProfile *pb, const Perftools__Profiles__Sample *s,
                            const char *key)
{
    for (size_t i = 0; i < s->n_label; i++) {
        if (!strcmp(pstr(pb, s->label[i]->key), key))
            return pstr(pb, s->label[i]->str);
    }
    return NULL;
}

Test(outputs, pprof_cpu_has_types_strings_mappings_and_leaf_first_samples)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    PbProfile *pb = pprof_parse(p, NULL);
    cr_assert_gt(pb->n_string_table, 0);
    cr_assert_str_eq(pb->string_table[0], "");
    cr_assert_eq(pb->n_sample_type, 2);
    cr_assert_str_eq(pstr(pb, pb->sample_type[0]->type), "samples");
    cr_assert_str_eq(pstr(pb, pb->sample_type[0]->unit), "count");
    cr_assert_str_eq(pstr(pb, pb->sample_type[1]->type), "cpu");
    cr_assert_str_eq(pstr(pb, pb->sample_type[1]->unit), "nanoseconds");
    cr_assert_str_eq(pstr(pb, pb->period_type->type), "cpu");
    cr_assert_str_eq(pstr(pb, pb->period_type->unit), "nanoseconds");
    cr_assert_str_eq(pstr(pb, pb->default_sample_type), "cpu");
    cr_assert_eq(pb->period, 10000000);
    cr_assert_eq(pb->duration_nanos, 1000000000);
    cr_assert_eq(pb->time_nanos, 1700000000000000000LL);
    cr_assert_eq(pb->n_comment, 1);
    cr_assert_str_eq(pstr(pb, pb->comment[0]), FIXTURE_NOTE);

    cr_assert_eq(pb->n_mapping, 2);
    cr_assert_eq(pb->mapping[0]->id, 1);
    cr_assert_str_eq(pstr(pb, pb->mapping[0]->filename), "/usr/bin/app");
    cr_assert_str_eq(pstr(pb, pb->mapping[0]->build_id), FIXTURE_APP_BUILD_ID);
    cr_assert_eq(pb->mapping[0]->memory_start, 0x400000);
    cr_assert_eq(pb->mapping[0]->memory_limit, 0x500000);
    cr_assert(pb->mapping[0]->has_functions);
    cr_assert(pb->mapping[0]->has_filenames);
    cr_assert(pb->mapping[0]->has_line_numbers);
    cr_assert_str_eq(pstr(pb, pb->mapping[1]->build_id), FIXTURE_LIBC_BUILD_ID);
    cr_assert_eq(pb->mapping[1]->file_offset, 0x1000);
    cr_assert_not(pb->mapping[1]->has_filenames);

    cr_assert_eq(pb->n_location, 10);
    cr_assert_eq(pb->n_function, 8, "one function per name and file");
    for (size_t i = 0; i < pb->n_location; i++) {
        cr_assert_neq(pb->location[i]->id, 0);
        cr_assert_eq(pb->location[i]->n_line, 1);
    }

    cr_assert_eq(pb->n_sample, 4);
    uint64_t count = 0, ns = 0;
    bool seen_b = false;
    for (size_t i = 0; i < pb->n_sample; i++) {
        const Perftools__Profiles__Sample *s = pb->sample[i];
        cr_assert_eq(s->n_value, 2);
        cr_assert_eq(s->value[1], s->value[0] * 10000000);
        cr_assert_eq(s->n_label, 0);
        count += (uint64_t)s->value[0];
        ns += (uint64_t)s->value[1];
        if (s->value[0] == 30) {
            seen_b = true;
            cr_assert_eq(s->n_location_id, 4);
            cr_assert_str_eq(ploc_name(pb, s->location_id[0]), "hot_b", "leaf first");
            cr_assert_str_eq(ploc_name(pb, s->location_id[1]), "io");
            cr_assert_str_eq(ploc_name(pb, s->location_id[3]), "main");
            const Perftools__Profiles__Location *leaf = ploc(pb, s->location_id[0]);
            cr_assert_eq(leaf->mapping_id, 2);
            cr_assert_eq(leaf->address, FIXTURE_LIBC_START + 0x1000);
        }
    }
    cr_assert(seen_b);
    cr_assert_eq(count, 100);
    cr_assert_eq(ns, 1000000000);
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);
}

Test(outputs, pprof_wall_and_memory_use_their_types)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_WALL);
    PbProfile *pb = pprof_parse(p, NULL);
    cr_assert_str_eq(pstr(pb, pb->sample_type[0]->type), "samples");
    cr_assert_str_eq(pstr(pb, pb->sample_type[1]->type), "wall");
    cr_assert_str_eq(pstr(pb, pb->sample_type[1]->unit), "nanoseconds");
    cr_assert_str_eq(pstr(pb, pb->period_type->type), "wall");
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);

    p = fixture_memory();
    pb = pprof_parse(p, NULL);
    cr_assert_str_eq(pstr(pb, pb->sample_type[0]->type), "alloc_objects");
    cr_assert_str_eq(pstr(pb, pb->sample_type[0]->unit), "count");
    cr_assert_str_eq(pstr(pb, pb->sample_type[1]->type), "alloc_space");
    cr_assert_str_eq(pstr(pb, pb->sample_type[1]->unit), "bytes");
    cr_assert_str_eq(pstr(pb, pb->sample_type[2]->type), "inuse_objects");
    cr_assert_str_eq(pstr(pb, pb->sample_type[2]->unit), "count");
    cr_assert_str_eq(pstr(pb, pb->sample_type[3]->type), "inuse_space");
    cr_assert_str_eq(pstr(pb, pb->sample_type[3]->unit), "bytes");
    cr_assert_eq(pb->n_sample_type, 4);
    cr_assert_str_eq(pstr(pb, pb->period_type->type), "space");
    cr_assert_str_eq(pstr(pb, pb->period_type->unit), "bytes");
    cr_assert_str_eq(pstr(pb, pb->default_sample_type), "inuse_space", "net growth first");
    cr_assert_eq(pb->n_sample, 2);
    for (size_t i = 0; i < pb->n_sample; i++) {
        const Perftools__Profiles__Sample *s = pb->sample[i];
        const char *caller = ploc_name(pb, s->location_id[1]);
        cr_assert_eq(s->n_value, 4);
        if (!strcmp(caller, "parse")) {
            cr_assert_eq(s->value[0], 3);
            cr_assert_eq(s->value[1], 3000);
            cr_assert_eq(s->value[2], 3);
            cr_assert_eq(s->value[3], 3000);
        } else {
            cr_assert_str_eq(caller, "load");
            cr_assert_eq(s->value[0], 1);
            cr_assert_eq(s->value[1], 3000);
        }
    }
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);
}

Test(outputs, pprof_per_thread_labels_samples_with_thread_id_and_name)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    profile_add_sample(p, NULL, 0, 555, 0, 10000000); /* a thread with no name */
    struct pprof_opts o = {.per_thread = true};
    PbProfile *pb = pprof_parse(p, &o);
    cr_assert_eq(pb->n_sample, 5);
    bool seen_102 = false, seen_555 = false;
    for (size_t i = 0; i < pb->n_sample; i++) {
        const Perftools__Profiles__Sample *s = pb->sample[i];
        const char *tid = label_of(pb, s, "thread_id");
        cr_assert_not_null(tid);
        if (!strcmp(tid, "102")) {
            seen_102 = true;
            cr_assert_str_eq(label_of(pb, s, "thread_name"), "worker");
            cr_assert_eq(s->value[0], 20);
            cr_assert_str_eq(ploc_name(pb, s->location_id[0]), "hot_a");
        } else if (!strcmp(tid, "555")) {
            seen_555 = true;
            cr_assert_null(label_of(pb, s, "thread_name"));
            cr_assert_eq(s->n_location_id, 1);
            cr_assert_str_eq(ploc_name(pb, s->location_id[0]), PROFILE_NO_STACK);
        } else if (!strcmp(tid, "101") && s->n_location_id == 4 &&
                   !strcmp(ploc_name(pb, s->location_id[0]), "hot_a")) {
            cr_assert_eq(s->value[0], 40);
            cr_assert_str_eq(label_of(pb, s, "thread_name"), "worker");
        }
    }
    cr_assert(seen_102 && seen_555);
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);
}

Test(outputs, pprof_unnamed_frames_keep_mapping_build_id_and_address)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    profile_add_mapping(p, 0x400000, 0x500000, 0, "/usr/bin/app", FIXTURE_APP_BUILD_ID);
    profile_add_mapping(p, FIXTURE_LIBC_START, FIXTURE_LIBC_START + 0x100000, 0x1000,
                        "/usr/lib/libstripped.so", FIXTURE_LIBC_BUILD_ID);
    uint64_t ips[3] = {FIXTURE_LIBC_START + 0x2345, 0x401000, 0x12};
    profile_add_sample(p, ips, 3, 1, 0, 10000000);
    profile_name_frame(p, 2, "main", "app.c", 3);
    profile_name_unknown(p);
    PbProfile *pb = pprof_parse(p, NULL);
    const Perftools__Profiles__Location *leaf = ploc(pb, pb->sample[0]->location_id[0]);
    cr_assert_eq(leaf->n_line, 0, "left for a symbolizer");
    cr_assert_eq(leaf->mapping_id, 2);
    cr_assert_eq(leaf->address, FIXTURE_LIBC_START + 0x2345);
    const Perftools__Profiles__Mapping *m = pb->mapping[1];
    cr_assert_str_eq(pstr(pb, m->build_id), FIXTURE_LIBC_BUILD_ID);
    cr_assert_eq(m->memory_start, FIXTURE_LIBC_START);
    cr_assert_eq(m->file_offset, 0x1000);
    cr_assert_not(m->has_functions);
    cr_assert(pb->mapping[0]->has_functions);
    const Perftools__Profiles__Location *out = ploc(pb, pb->sample[0]->location_id[2]);
    cr_assert_eq(out->mapping_id, 0);
    cr_assert_eq(out->n_line, 0);
    cr_assert_str_eq(ploc_name(pb, pb->sample[0]->location_id[1]), "main");
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);
}

Test(outputs, pprof_empty_profile_still_parses)
{
    struct profile *p = profile_new(PROFILE_TYPE_CPU, 100);
    PbProfile *pb = pprof_parse(p, NULL);
    cr_assert_eq(pb->n_sample, 0);
    cr_assert_str_eq(pb->string_table[0], "");
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);
}

Test(outputs, pprof_write_file_renames_into_place_and_reports_errors)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    char *dir = tmpdir_new();
    char path[512], tmp[600], err[256] = "";
    snprintf(path, sizeof path, "%s/cpu.pb.gz", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cr_assert_eq(pprof_write_file(p, NULL, path, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_gt(st.st_size, 100);
    cr_assert_eq(stat(tmp, &st), -1, "no temporary left behind");

    snprintf(path, sizeof path, "%s/missing/cpu.pb.gz", dir);
    cr_assert_eq(pprof_write_file(p, NULL, path, err, sizeof err), -ENOENT);
    cr_assert_not_null(strstr(err, "missing/cpu.pb.gz.tmp"), "%s", err);

    /* A symlink where the temporary goes is not followed. */
    char target[512];
    snprintf(path, sizeof path, "%s/link.pb.gz", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    cr_assert_eq(symlink(target, tmp), 0);
    cr_assert_lt(pprof_write_file(p, NULL, path, NULL, 0), 0);
    cr_assert_eq(stat(target, &st), -1, "nothing written through the link");
    tmpdir_free(dir);
    profile_free(p);
}

/* ---- Go's pprof reads it ----------------------------------------------------- */

/* flat% and cum% of func in `pprof -top` output; false when not listed. */
static bool top_row(const char *out, const char *func, char flat[16], char cum[16])
{
    for (const char *line = out; line && *line;) {
        char f[16], c[16], name[256];
        if (sscanf(line, "%*s %15s %*s %*s %15s %255[^\n]", f, c, name) == 3 &&
            !strcmp(name, func)) {
            strcpy(flat, f);
            strcpy(cum, c);
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

/* Run `go tool pprof ARGS FILE` on what pprof_write made of p; returns its
 * stdout (the caller frees). Go gets a HOME, cache and GOPATH of its own in
 * a temporary directory, and no network. */
static char *go_pprof(const struct profile *p, const char *arg)
{
    static const char *const go_fallbacks[] = {"/usr/lib/go/bin/go", "/usr/local/go/bin/go",
                                               NULL};
    const char *go = find_program("go", go_fallbacks);
    cr_assert_not_null(go, "Go is not installed: run deploy/setup.sh (it installs golang-go, "
                           "whose `go tool pprof` must read our pprof output)");
    char *dir = tmpdir_new();
    char path[512], home[600], cache[600], gopath[600];
    snprintf(path, sizeof path, "%s/profile.pb.gz", dir);
    cr_assert_eq(pprof_write_file(p, NULL, path, NULL, 0), 0);
    snprintf(home, sizeof home, "HOME=%s", dir);
    snprintf(cache, sizeof cache, "GOCACHE=%s/cache", dir);
    snprintf(gopath, sizeof gopath, "GOPATH=%s/gopath", dir);
    char *env[] = {home, cache, gopath, "GOPROXY=off", "GOFLAGS=", "GOTOOLCHAIN=local",
                   "GOTELEMETRY=off", "PPROF_BINARY_PATH=/nonexistent", NULL};
    char *argv[] = {(char *)go, "tool", "pprof", (char *)arg, path, NULL};
    struct spawn_result r;
    cr_assert_eq(spawn_capture(argv, env, 120000, &r), 0);
    cr_assert_not(r.timed_out, "go tool pprof timed out");
    cr_assert_eq(r.status, 0, "go tool pprof %s failed (%d):\n%s\n%s", arg, r.status, r.out,
                 r.err);
    char *out = r.out;
    r.out = NULL;
    spawn_result_fini(&r);
    tmpdir_free(dir);
    return out;
}

Test(outputs, go_pprof_top_reads_the_60_30_10_split, .timeout = 150)
{
    struct profile *p = fixture_cpu(PROFILE_TYPE_CPU);
    char *out = go_pprof(p, "-top");
    char flat[16], cum[16];
    cr_assert_not_null(strstr(out, "Type: cpu"), "%s", out);
    cr_assert(top_row(out, "hot_a", flat, cum), "hot_a missing:\n%s", out);
    cr_assert_str_eq(flat, "60.00%");
    cr_assert(top_row(out, "hot_b", flat, cum), "%s", out);
    cr_assert_str_eq(flat, "30.00%");
    cr_assert(top_row(out, "hot_c", flat, cum), "%s", out);
    cr_assert_str_eq(flat, "10.00%");
    cr_assert(top_row(out, "main", flat, cum), "%s", out);
    cr_assert_str_eq(flat, "0%");
    cr_assert_str_eq(cum, "100%");
    cr_assert(top_row(out, "run", flat, cum), "%s", out);
    cr_assert_str_eq(cum, "90.00%");
    /* Hottest first. */
    const char *a = strstr(out, " hot_a\n"), *b = strstr(out, " hot_b\n"),
               *c = strstr(out, " hot_c\n");
    cr_assert(a && b && c && a < b && b < c, "%s", out);
    free(out);
    profile_free(p);
}

Test(outputs, go_pprof_top_reads_memory_bytes, .timeout = 150)
{
    struct profile *p = fixture_memory();
    char *out = go_pprof(p, "-top");
    char flat[16], cum[16];
    cr_assert_not_null(strstr(out, "Type: inuse_space"), "%s", out);
    cr_assert(top_row(out, "xmalloc", flat, cum), "%s", out);
    cr_assert_str_eq(flat, "100%");
    cr_assert(top_row(out, "parse", flat, cum), "%s", out);
    cr_assert_str_eq(cum, "50.00%");
    free(out);
    profile_free(p);
}

/* ---- memory: net and gross ---------------------------------------------- */

/* The memory fixture with parse's three samples given back (two in full,
 * one half), as a capture's ledger would say at the end. */
static struct profile *fixture_memory_churn(void)
{
    struct profile *p = fixture_memory();
    profile_set_inuse(p, 0, 0);
    profile_set_inuse(p, 1, 0);
    profile_set_inuse(p, 2, 500);
    return p;
}

Test(outputs, memory_outputs_weigh_net_growth_unless_asked_for_gross)
{
    struct profile *p = fixture_memory_churn();
    char *text = folded_text(p, false);
    cr_assert_str_eq(text, "main;load;xmalloc 3000\n"
                           "main;parse;xmalloc 500\n");
    free(text);
    text = folded_text(p, true);
    cr_assert_str_eq(text, "mem [7];main;load;xmalloc 3000\n"
                           "mem [7];main;parse;xmalloc 500\n");
    free(text);

    json_t *j = profsum_json(p, 10);
    cr_assert_eq(jnum(j, "total"), 3500);
    json_t *top = json_array_get(json_object_get(j, "top_stacks"), 0);
    cr_assert_eq(jnum(top, "bytes"), 3000);
    cr_assert_eq(jnum(top, "gross_bytes"), 3000);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(top, "frames"), 1)), "load");
    json_t *second = json_array_get(json_object_get(j, "top_stacks"), 1);
    cr_assert_eq(jnum(second, "bytes"), 500);
    cr_assert_eq(jnum(second, "gross_bytes"), 3000);
    cr_assert_float_eq(jnum(second, "share"), 500.0 / 3500.0, 1e-4);
    json_decref(j);

    PbProfile *pb = pprof_parse(p, NULL);
    for (size_t i = 0; i < pb->n_sample; i++) {
        const Perftools__Profiles__Sample *s = pb->sample[i];
        if (!strcmp(ploc_name(pb, s->location_id[1]), "parse")) {
            cr_assert_eq(s->value[0], 3, "alloc_objects");
            cr_assert_eq(s->value[1], 3000, "alloc_space");
            cr_assert_eq(s->value[2], 1, "inuse_objects");
            cr_assert_eq(s->value[3], 500, "inuse_space");
        }
    }
    perftools__profiles__profile__free_unpacked(pb, NULL);

    p->gross = true;
    text = folded_text(p, false);
    cr_assert_str_eq(text, "main;load;xmalloc 3000\n"
                           "main;parse;xmalloc 3000\n");
    free(text);
    pb = pprof_parse(p, NULL);
    cr_assert_str_eq(pstr(pb, pb->default_sample_type), "alloc_space");
    perftools__profiles__profile__free_unpacked(pb, NULL);
    profile_free(p);
}

Test(outputs, memory_stack_given_back_in_full_is_left_out)
{
    struct profile *p = fixture_memory();
    for (size_t i = 0; i < 3; i++)
        profile_set_inuse(p, i, 0);
    char *text = folded_text(p, false);
    cr_assert_str_eq(text, "main;load;xmalloc 3000\n");
    free(text);
    json_t *j = profsum_json(p, 10);
    cr_assert_eq(json_array_size(json_object_get(j, "top_stacks")), 1);
    json_decref(j);
    profile_free(p);
}

Test(outputs, summary_of_memory_profile_says_how_the_calls_were_seen)
{
    struct profile *p = fixture_memory();
    struct prof_memory *m = profile_memory(p);
    snprintf(m->method, sizeof m->method, "ptrace");
    m->calls = 12;
    m->stopped_share = 0.04213;
    json_t *j = profsum_json(p, 10);
    json_t *mem = json_object_get(j, "memory");
    cr_assert_not_null(mem);
    cr_assert_str_eq(json_string_value(json_object_get(mem, "method")), "ptrace");
    cr_assert_eq(jnum(mem, "calls"), 12);
    cr_assert_float_eq(jnum(mem, "stopped_share"), 0.04213, 1e-9);
    json_decref(j);
    profile_free(p);
}
