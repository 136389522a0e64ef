/* tests/test_spool.c - bundles on disk (sidecar/spool): atomic puts, disk full
 * on a real 1 MiB tmpfs, leftovers of interrupted writes, resume of pending
 * deliveries, and the order in which the size cap removes bundles.
 *
 * Every test works in its own directory under /tmp and checks the disk
 * itself (readdir, stat), not only what the spool says. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define S 1000000000LL
#define T0 (1700000000LL * S)

static char root[256];
static char dir[512];
static bool mounted;

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/stakeout-spool-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/spool", root);
    mounted = false;
}

static void teardown(void)
{
    if (mounted)
        umount2(root, MNT_DETACH);
    rm_rf(root);
}

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 60);

static struct spool *open_spool(uint64_t max, size_t nhooks)
{
    struct spool *s = NULL;
    char err[256] = "";
    int rc = spool_open(dir, max, nhooks, &s, err, sizeof err);
    cr_assert_eq(rc, 0, "spool_open: %d %s", rc, err);
    return s;
}

static json_t *bundle(const char *id)
{
    return json_pack("{s:s, s:s, s:s}", "schema", "stakeout.alert/v1", "id", id, "state", "firing");
}

static int put_mem(struct spool *s, const char *id, size_t bytes, int64_t created)
{
    char *data = malloc(bytes ? bytes : 1);
    memset(data, 'x', bytes);
    struct spool_file f = {.name = "profile.pb.gz", .data = data, .len = bytes};
    json_t *b = bundle(id);
    char err[256];
    int rc = spool_put(s, id, b, &f, 1, created, err, sizeof err);
    json_decref(b);
    free(data);
    return rc;
}

static bool exists(const char *rel)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return stat(p, &st) == 0;
}

/* Names under the spool directory, sorted, joined with ' '. */
static void listing(char *out, size_t len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.' || strncmp(names[i]->d_name, ".tmp", 4) == 0) {
            if (out[0])
                strncat(out, " ", len - strlen(out) - 1);
            strncat(out, names[i]->d_name, len - strlen(out) - 1);
        }
        free(names[i]);
    }
    free(names);
}

/* Sum of the sizes of the files under the spool's bundle directories. */
static uint64_t du(void)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        DIR *b = opendir(sub);
        struct dirent *f;
        while (b && (f = readdir(b)) != NULL) {
            char p[2048];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
                total += (uint64_t)st.st_size;
        }
        if (b)
            closedir(b);
    }
    closedir(d);
    return total;
}

static void deliver_ok(struct spool *s, size_t hook, const char *want_id, int64_t now)
{
    struct spool_work w;
    int64_t next;
    cr_assert(spool_claim(s, hook, now, &w, &next), "nothing due for hook %zu", hook);
    cr_assert_str_eq(w.id, want_id);
    struct spool_record r = w.rec;
    r.state = SPOOL_DELIVERED;
    r.attempts++;
    r.last_status = 200;
    r.updated_ns = now;
    cr_assert_eq(spool_update(s, w.id, hook, &r), 0);
}

Test(spool, put_writes_bundle_attachments_and_pending_records)
{
    struct spool *s = open_spool(0, 2);
    char src[600];
    snprintf(src, sizeof src, "%s/flame.svg", root);
    FILE *f = fopen(src, "w");
    fputs("<svg/>", f);
    fclose(f);
    struct spool_file files[] = {
        {.name = "profile.pb.gz", .data = "\x1f\x8b\x08", .len = 3},
        {.name = "flame.svg", .path = src},
    };
    json_t *b = bundle("b1");
    char err[256] = "";
    int rc = spool_put(s, "b1", b, files, 2, T0 + 123456789, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    json_decref(b);

    char names[512];
    listing(names, sizeof names);
    cr_expect_str_eq(names, "b1", "no temporary directory is left");
    cr_expect(exists("b1/bundle.json") && exists("b1/profile.pb.gz") && exists("b1/flame.svg"));
    cr_expect(exists("b1/delivery-0.json") && exists("b1/delivery-1.json"));
    cr_expect_eq(access(src, F_OK), -1, "the attachment was moved, not copied");

    char p[1024];
    snprintf(p, sizeof p, "%s/b1/bundle.json", dir);
    json_error_t je;
    json_t *back = json_load_file(p, 0, &je);
    cr_assert_not_null(back, "%s", je.text);
    cr_expect_str_eq(json_string_value(json_object_get(back, "id")), "b1");
    json_decref(back);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(st.st_mtim.tv_sec, (T0 + 123456789) / S, "mtime is the creation time");
    snprintf(p, sizeof p, "%s/b1", dir);
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700, "bundles may hold secrets: owner only");

    struct spool_record r;
    cr_assert_eq(spool_record_read(s, "b1", 1, &r), 0);
    cr_expect_eq(r.state, SPOOL_PENDING);
    cr_expect_eq(r.attempts, 0);
    cr_expect_eq(r.next_attempt_ns, (T0 + 123456789) / 1000000 * 1000000);

    struct spool_counters c;
    spool_counters(s, &c);
    cr_expect_eq(c.puts, 1);
    cr_expect_eq(c.bundles, 1);
    cr_expect_eq(c.pending, 2);
    cr_expect_eq(c.bytes, du(), "accounted %llu, on disk %llu", (unsigned long long)c.bytes,
                 (unsigned long long)du());
    spool_free(s);
}

Test(spool, put_rejects_bad_ids_names_and_duplicates)
{
    struct spool *s = open_spool(0, 1);
    cr_expect_eq(put_mem(s, "../x", 1, T0), -EINVAL);
    cr_expect_eq(put_mem(s, "", 1, T0), -EINVAL);
    cr_expect_eq(put_mem(s, ".tmp-a", 1, T0), -EINVAL);
    json_t *b = bundle("a");
    const char *bad[] = {"bundle.json", "delivery-0.json", ".hidden", "a/b", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spool_file f = {.name = bad[i], .data = "x", .len = 1};
        cr_expect_eq(spool_put(s, "a", b, &f, 1, T0, NULL, 0), -EINVAL, "name '%s'", bad[i]);
    }
    struct spool_file twice[] = {{.name = "p", .data = "x", .len = 1},
                                 {.name = "p", .data = "y", .len = 1}};
    cr_expect_eq(spool_put(s, "a", b, twice, 2, T0, NULL, 0), -EINVAL);
    json_decref(b);
    cr_expect_eq(put_mem(s, "a", 10, T0), 0);
    cr_expect_eq(put_mem(s, "a", 10, T0), -EEXIST);
    char names[512];
    listing(names, sizeof names);
    cr_expect_str_eq(names, "a");
    spool_free(s);
}

Test(spool, second_open_of_the_same_dir_is_refused)
{
    struct spool *s = open_spool(0, 1);
    struct spool *t = NULL;
    char err[256] = "";
    cr_expect_eq(spool_open(dir, 0, 1, &t, err, sizeof err), -EBUSY);
    cr_expect_null(t);
    cr_expect(strstr(err, "in use") != NULL, "%s", err);
    spool_free(s);
    t = open_spool(0, 1);
    spool_free(t);
}

/* A real full disk: a 1 MiB tmpfs. The put fails part way through writing
 * its attachment; nothing may be left under the id or as a temporary. */
Test(spool, disk_full_during_put_leaves_no_torn_bundle)
{
    int rc = mount("stakeout-test", root, "tmpfs", 0, "size=1m,mode=0700");
    if (rc == -1 && getenv("CI"))
        cr_assert_fail("cannot mount a tmpfs (%s); needed in CI", strerror(errno));
    if (rc == -1)
        cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
    mounted = true;
    struct spool *s = open_spool(0, 1);
    cr_assert_eq(put_mem(s, "small", 1000, T0), 0);

    /* moved-in attachment on the same tmpfs: it must come back on failure */
    char src[600];
    snprintf(src, sizeof src, "%s/flame.svg", root);
    FILE *f = fopen(src, "w");
    fputs("<svg/>", f);
    fclose(f);
    size_t big = 2 * 1024 * 1024;
    char *data = malloc(big);
    memset(data, 'y', big);
    struct spool_file files[] = {{.name = "flame.svg", .path = src},
                                 {.name = "profile.pb.gz", .data = data, .len = big}};
    json_t *b = bundle("big");
    char err[256] = "";
    rc = spool_put(s, "big", b, files, 2, T0 + S, err, sizeof err);
    json_decref(b);
    free(data);
    cr_expect_eq(rc, -ENOSPC, "rc %d: %s", rc, err);
    cr_expect(strstr(err, "profile.pb.gz") != NULL, "the message says what: %s", err);

    char names[512];
    listing(names, sizeof names);
    cr_expect_str_eq(names, "small", "nothing but the first bundle: %s", names);
    cr_expect_eq(access(src, F_OK), 0, "the moved attachment is back where it was");
    struct spool_counters c;
    spool_counters(s, &c);
    cr_expect_eq(c.put_failures, 1);
    cr_expect_eq(c.bundles, 1);
    cr_expect_eq(c.bytes, du());

    /* the disk has room again for a small one */
    cr_expect_eq(put_mem(s, "after", 1000, T0 + 2 * S), 0);
    spool_free(s);
}

Test(spool, open_removes_leftovers_of_interrupted_writes)
{
    struct spool *s = open_spool(0, 1);
    cr_assert_eq(put_mem(s, "kept", 10, T0), 0);
    spool_free(s);
    /* what a crash leaves: a temporary bundle, a half-written record */
    char p[1024];
    snprintf(p, sizeof p, "%s/.tmp-lost", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/.tmp-lost/bundle.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"torn\":", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/kept/.delivery-0.json.tmp", dir);
    f = fopen(p, "w");
    fputs("{\"sta", f);
    fclose(f);
    /* and a directory that is not a bundle: left alone */
    snprintf(p, sizeof p, "%s/notes", dir);
    cr_assert_eq(mkdir(p, 0700), 0);

    s = open_spool(0, 1);
    char names[512];
    listing(names, sizeof names);
    cr_expect_str_eq(names, "kept notes");
    cr_expect(!exists("kept/.delivery-0.json.tmp"));
    struct spool_counters c;
    spool_counters(s, &c);
    cr_expect_eq(c.leftovers_removed, 2);
    cr_expect_eq(c.bundles, 1);
    cr_expect_eq(c.pending, 1);
    spool_free(s);
}

Test(spool, reopen_resumes_pending_deliveries_oldest_first)
{
    struct spool *s = open_spool(0, 2);
    cr_assert_eq(put_mem(s, "c", 10, T0 + 3 * S), 0);
    cr_assert_eq(put_mem(s, "a", 10, T0 + 1 * S), 0);
    cr_assert_eq(put_mem(s, "b", 10, T0 + 2 * S), 0);
    deliver_ok(s, 0, "a", T0 + 10 * S);
    /* b on hook 1: failed once, to be retried later */
    struct spool_work w;
    int64_t next;
    cr_assert(spool_claim(s, 1, T0 + 10 * S, &w, &next));
    cr_assert_str_eq(w.id, "a");
    spool_unclaim(s, "a", 1);
    cr_assert(spool_claim(s, 1, T0 + 10 * S, &w, &next));
    cr_assert_str_eq(w.id, "a", "unclaimed work is due again");
    struct spool_record r = w.rec;
    r.attempts = 1;
    r.last_status = 503;
    snprintf(r.last_error, sizeof r.last_error, "HTTP 503");
    r.next_attempt_ns = T0 + 60 * S;
    cr_assert_eq(spool_update(s, "a", 1, &r), 0);
    spool_free(s);

    s = open_spool(0, 2);
    struct spool_work all[8];
    size_t n = spool_pending(s, all, 8);
    cr_assert_eq(n, 5, "3 bundles x 2 hooks, less a's delivery on hook 0: %zu", n);
    const char *want_id[] = {"a", "b", "b", "c", "c"};
    size_t want_hook[] = {1, 0, 1, 0, 1};
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(all[i].id, want_id[i], "entry %zu", i);
        cr_expect_eq(all[i].hook, want_hook[i], "entry %zu", i);
    }
    cr_expect_eq(all[0].rec.attempts, 1);
    cr_expect_eq(all[0].rec.last_status, 503);
    cr_expect_str_eq(all[0].rec.last_error, "", "the index does not keep the text");
    cr_assert_eq(spool_record_read(s, "a", 1, &r), 0);
    cr_expect_str_eq(r.last_error, "HTTP 503");
    cr_expect_eq(all[1].created_ns, T0 + 2 * S, "creation time survives the restart");

    /* claim order on hook 1: b (due since T0+2s), c, then a at T0+60s */
    cr_assert(spool_claim(s, 1, T0 + 20 * S, &w, &next));
    cr_expect_str_eq(w.id, "b");
    cr_assert(spool_claim(s, 1, T0 + 20 * S, &w, &next));
    cr_expect_str_eq(w.id, "c");
    cr_expect_not(spool_claim(s, 1, T0 + 20 * S, &w, &next));
    cr_expect_eq(next, T0 + 60 * S);
    cr_expect_not(spool_claim(s, 0, T0, &w, &next), "nothing due before creation");
    spool_free(s);
}

Test(spool, cap_removes_finished_bundles_first_then_oldest_pending)
{
    /* each bundle is about 10 KB; the cap holds three */
    struct spool *s = open_spool(35000, 1);
    cr_assert_eq(put_mem(s, "a", 10000, T0 + 1 * S), 0);
    cr_assert_eq(put_mem(s, "b", 10000, T0 + 2 * S), 0);
    cr_assert_eq(put_mem(s, "c", 10000, T0 + 3 * S), 0);
    /* b and c delivered, a still pending (the oldest) */
    struct spool_work w;
    int64_t next;
    cr_assert(spool_claim(s, 0, T0 + 10 * S, &w, &next));
    cr_assert_str_eq(w.id, "a");
    struct spool_record later = w.rec;
    later.attempts = 1;
    later.next_attempt_ns = T0 + 1000 * S;
    cr_assert_eq(spool_update(s, "a", 0, &later), 0);
    deliver_ok(s, 0, "b", T0 + 10 * S);
    deliver_ok(s, 0, "c", T0 + 10 * S);

    char names[512];
    cr_assert_eq(put_mem(s, "d", 10000, T0 + 4 * S), 0);
    listing(names, sizeof names);
    cr_expect_str_eq(names, "a c d", "the oldest delivered goes, not the older pending");
    cr_assert_eq(put_mem(s, "e", 10000, T0 + 5 * S), 0);
    listing(names, sizeof names);
    cr_expect_str_eq(names, "a d e");

    /* nothing finished is left: the oldest pending goes, unless claimed */
    cr_assert(spool_claim(s, 0, T0 + 10 * S, &w, &next));
    cr_assert_str_eq(w.id, "d");
    cr_assert_eq(put_mem(s, "f", 10000, T0 + 6 * S), 0);
    listing(names, sizeof names);
    cr_expect_str_eq(names, "d e f", "a (oldest, pending) removed, d (claimed) kept");

    struct spool_counters c;
    spool_counters(s, &c);
    cr_expect_eq(c.evicted_finished, 2);
    cr_expect_eq(c.evicted_pending, 1);
    cr_expect_eq(c.bytes, du());
    cr_expect_leq(c.bytes, 35000);

    /* larger than the whole cap: refused, nothing removed for it */
    cr_expect_eq(put_mem(s, "huge", 40000, T0 + 7 * S), -EFBIG);
    listing(names, sizeof names);
    cr_expect_str_eq(names, "d e f");
    spool_unclaim(s, "d", 0);
    spool_free(s);

    /* a smaller cap at the next start applies at once */
    s = open_spool(25000, 1);
    listing(names, sizeof names);
    cr_expect_str_eq(names, "e f");
    spool_free(s);
}

Test(spool, update_replaces_the_record_atomically_and_keeps_bytes_exact)
{
    struct spool *s = open_spool(0, 1);
    cr_assert_eq(put_mem(s, "a", 100, T0), 0);
    struct spool_work w;
    int64_t next;
    for (int i = 1; i <= 3; i++) {
        cr_assert(spool_claim(s, 0, T0 + 1000 * S, &w, &next));
        struct spool_record r = w.rec;
        r.attempts = (uint32_t)i;
        r.last_status = 500;
        snprintf(r.last_error, sizeof r.last_error, "HTTP 500 \"quoted\" %d", i);
        r.next_attempt_ns = T0 + i * S;
        cr_assert_eq(spool_update(s, "a", 0, &r), 0);
        cr_expect_eq(spool_bytes(s), du());
    }
    struct spool_record back;
    cr_assert_eq(spool_record_read(s, "a", 0, &back), 0);
    cr_expect_eq(back.attempts, 3);
    cr_expect_str_eq(back.last_error, "HTTP 500 \"quoted\" 3");
    cr_expect_eq(back.next_attempt_ns, T0 + 3 * S);
    char names[512];
    listing(names, sizeof names);
    cr_expect_str_eq(names, "a");
    cr_expect(!exists("a/.delivery-0.json.tmp"));
    spool_free(s);
}

Test(spool, unreadable_record_is_delivered_again)
{
    struct spool *s = open_spool(0, 1);
    cr_assert_eq(put_mem(s, "a", 10, T0), 0);
    deliver_ok(s, 0, "a", T0);
    spool_free(s);
    char p[1024];
    snprintf(p, sizeof p, "%s/a/delivery-0.json", dir);
    FILE *f = fopen(p, "w");
    fputs("garbage", f);
    fclose(f);
    s = open_spool(0, 1);
    struct spool_work w[2];
    cr_expect_eq(spool_pending(s, w, 2), 1, "at least once: a lost record means resend");
    spool_free(s);
}

Test(spool, hooks_added_later_do_not_receive_old_bundles)
{
    struct spool *s = open_spool(0, 1);
    cr_assert_eq(put_mem(s, "a", 10, T0), 0);
    spool_free(s);
    s = open_spool(0, 2);
    struct spool_work w[4];
    cr_assert_eq(spool_pending(s, w, 4), 1);
    cr_expect_eq(w[0].hook, 0);
    spool_free(s);
}
