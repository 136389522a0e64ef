/* tests/test_webhook.c - what each webhook format sends (sidecar/webhook), for
 * the fixture's bundle stored the way the spool stores it (bundle.json and
 * the attachment files in one directory), and the Standard Webhooks
 * signature, checked against OpenSSL's HMAC computed here independently. */
#include "alert_fixture.h"
#include "webhook.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PPROF_BYTES 3000
#define NOW_S 1795536730LL

/* A spool directory holding the fixture's bundle and its three files. */
struct stored {
    char dir[64];
    char *bytes[3]; /* what each attachment file holds */
    size_t len[3];
    json_t *bundle;
};

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void store(struct stored *s, void (*tweak)(struct alert_input *in))
{
    struct alert_fixture fx;
    static const char folded[] = "main;work;beta 60\nmain;work;gamma 30\nmain;work;alpha 10\n";
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n";

    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/test_webhook.XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    s->len[0] = PPROF_BYTES;
    s->bytes[0] = malloc(PPROF_BYTES);
    for (size_t i = 0; i < PPROF_BYTES; i++)
        s->bytes[0][i] = (char)(i * 7 + 3); /* binary, NULs included */
    s->bytes[1] = strdup(folded);
    s->len[1] = strlen(folded);
    s->bytes[2] = strdup(svg);
    s->len[2] = strlen(svg);

    alert_fixture_init(&fx);
    for (size_t i = 0; i < 3; i++) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)s->bytes[i], s->len[i], md);
        for (size_t k = 0; k < sizeof md; k++)
            snprintf(fx.att[i].sha256 + 2 * k, 3, "%02x", md[k]);
        fx.att[i].size = s->len[i];
        write_file(s->dir, fx.att[i].name, s->bytes[i], s->len[i]);
    }
    if (tweak)
        tweak(&fx.in);
    s->bundle = bundle_build(&fx.in);
    char *text = json_dumps(s->bundle, JSON_INDENT(2) | BUNDLE_JSON_FLAGS);
    write_file(s->dir, BUNDLE_FILE, text, strlen(text));
    free(text);
    alert_fixture_fini(&fx);
}

static void unstore(struct stored *s)
{
    static const char *const names[] = {BUNDLE_FILE, "profile.pb.gz", "stacks.folded", "flame.svg"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", s->dir, names[i]);
        unlink(path);
    }
    rmdir(s->dir);
    for (size_t i = 0; i < 3; i++)
        free(s->bytes[i]);
    json_decref(s->bundle);
}

static struct webhook_spec hook(enum webhook_format f)
{
    return (struct webhook_spec){.url = "http://127.0.0.1:9/",
                                 .format = f,
                                 .max_inline_bytes = CONFIG_DEFAULT_MAX_INLINE_BYTES};
}

static json_t *body_json(const struct webhook_request *r)
{
    json_error_t e;
    cr_assert_not_null(r->body, "the request has a body in memory");
    cr_assert_str_eq(r->content_type, "application/json");
    json_t *doc = json_loadb(r->body, r->body_len, 0, &e);
    cr_assert_not_null(doc, "body is not JSON: %s", e.text);
    return doc;
}

static const char *header(const struct webhook_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return r->headers[i] + n + 2;
    }
    return NULL;
}

static bool rfc3339(const char *s)
{
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    int rc = s ? regexec(&re, s, 0, NULL, 0) : 1;
    regfree(&re);
    return rc == 0;
}

static unsigned char *unbase64(const char *in, size_t *len)
{
    size_t n = strlen(in);
    unsigned char *out = malloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    cr_assert_geq(got, 0, "not base64");
    size_t pad = (n && in[n - 1] == '=') + (n > 1 && in[n - 2] == '=');
    *len = (size_t)got - pad;
    return out;
}

/* "v1," + base64(HMAC-SHA256(key, id.ts.body)), with OpenSSL's one-shot HMAC. */
static void expected_signature(const unsigned char *key, size_t keylen, const char *id,
                               long long ts, const char *body, size_t len, char *out)
{
    char *msg = NULL;
    size_t mlen = 0;
    FILE *m = open_memstream(&msg, &mlen);
    fprintf(m, "%s.%lld.", id, ts);
    fwrite(body, 1, len, m);
    fclose(m);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, mlen, mac, &maclen);
    cr_assert_eq(maclen, 32);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, 32);
    free(msg);
}

/* ---- json ---------------------------------------------------------------- */

Test(webhook, json_round_trips_and_inlines_attachments_as_base64)
{
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_JSON);

    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-1", NOW_S, &r), 0);
    json_t *doc = body_json(&r);
    cr_assert_null(header(&r, "webhook-signature"), "no secret, no signature");

    /* everything but the attachments is the stored bundle, unchanged */
    json_t *a = json_deep_copy(doc), *b = json_deep_copy(s.bundle);
    json_object_del(a, "attachments");
    json_object_del(b, "attachments");
    cr_assert(json_equal(a, b), "the json body is the bundle");
    json_decref(a);
    json_decref(b);

    json_t *list = json_object_get(doc, "attachments");
    cr_assert_eq(json_array_size(list), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(list, i);
        size_t len = 0;
        cr_assert(json_is_true(json_object_get(x, "inline")), "attachment %zu inline", i);
        cr_assert_str_eq(json_string_value(json_object_get(x, "encoding")), "base64");
        unsigned char *data = unbase64(json_string_value(json_object_get(x, "data")), &len);
        cr_assert_eq(len, s.len[i], "attachment %zu: %zu bytes decoded", i, len);
        cr_assert_arr_eq(data, s.bytes[i], len, "attachment %zu decodes to the file", i);
        free(data);
        cr_assert_eq(json_integer_value(json_object_get(x, "size")), (json_int_t)s.len[i]);
    }
    json_decref(doc);
    webhook_request_fini(&r);
    unstore(&s);
}

Test(webhook, json_over_the_inline_cap_says_so_and_points_at_the_file)
{
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_JSON);
    char path[256];

    h.max_inline_bytes = 80; /* pprof (3000) no, folded (56) fits, svg (47) not after it */
    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-1", NOW_S, &r), 0);
    json_t *doc = body_json(&r), *list = json_object_get(doc, "attachments");
    json_t *pprof = json_array_get(list, 0), *folded = json_array_get(list, 1),
           *svg = json_array_get(list, 2);

    cr_assert(json_is_false(json_object_get(pprof, "inline")));
    cr_assert_str_eq(json_string_value(json_object_get(pprof, "reason")), "over the inline cap");
    cr_assert_null(json_object_get(pprof, "data"));
    snprintf(path, sizeof path, "%s/profile.pb.gz", s.dir);
    cr_assert_str_eq(json_string_value(json_object_get(pprof, "path")), path, "kept on disk");
    cr_assert(json_is_true(json_object_get(folded, "inline")), "a small one still fits");
    cr_assert(s.len[1] <= 80 && s.len[2] <= 80 && s.len[1] + s.len[2] > 80);
    cr_assert(json_is_false(json_object_get(svg, "inline")), "the cap counts every file");
    cr_assert_str_eq(json_string_value(json_object_get(svg, "reason")), "over the inline cap");
    json_decref(doc);
    webhook_request_fini(&r);

    h.max_inline_bytes = 0;
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-1", NOW_S, &r), 0);
    doc = body_json(&r);
    cr_assert(json_is_false(json_object_get(json_array_get(json_object_get(doc, "attachments"), 1),
                                            "inline")),
              "0: nothing inline");
    json_decref(doc);
    webhook_request_fini(&r);
    unstore(&s);
}

/* ---- multipart ----------------------------------------------------------- */

Test(webhook, multipart_parts_point_at_the_files_with_their_content_types)
{
    static const struct {
        const char *name, *type;
    } want[] = {
        {"alert", "application/json"},
        {"profile.pb.gz", "application/vnd.google.protobuf+gzip"},
        {"stacks.folded", "text/plain; charset=utf-8"},
        {"flame.svg", "image/svg+xml"},
    };
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_MULTIPART);
    char path[256];
    struct stat st;

    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-1", NOW_S, &r), 0);
    cr_assert_null(r.body);
    cr_assert_str_eq(r.body_path, "");
    cr_assert_str_eq(r.content_type, "multipart/form-data");
    cr_assert_eq(r.nparts, 4);
    for (size_t i = 0; i < 4; i++) {
        const struct webhook_part *p = &r.parts[i];
        cr_assert_str_eq(p->name, want[i].name);
        cr_assert_str_eq(p->content_type, want[i].type, "part %s", p->name);
        snprintf(path, sizeof path, "%s/%s", s.dir, i == 0 ? BUNDLE_FILE : want[i].name);
        cr_assert_str_eq(p->path, path, "streamed from the spool");
        cr_assert_null(p->data);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(p->len, (size_t)st.st_size);
    }
    cr_assert_str_eq(r.parts[0].filename, "alert.json");
    cr_assert_str_eq(r.parts[1].filename, "profile.pb.gz");
    webhook_request_fini(&r);
    unstore(&s);
}

/* ---- slack --------------------------------------------------------------- */

static bool text_object_ok(json_t *t)
{
    const char *type = json_string_value(json_object_get(t, "type"));
    return type && (strcmp(type, "mrkdwn") == 0 || strcmp(type, "plain_text") == 0) &&
           json_is_string(json_object_get(t, "text"));
}

Test(webhook, slack_message_has_text_and_blocks_of_documented_types)
{
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_SLACK);

    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-1", NOW_S, &r), 0);
    json_t *doc = body_json(&r);
    const char *text = json_string_value(json_object_get(doc, "text"));
    cr_assert_not_null(text, "text: the notification fallback");
    cr_assert(strstr(text, "cpu-hot") && strstr(text, "api"), "%s", text);
    cr_assert(strstr(text, "cpu 93.1% &gt; 80%"), "values, escaped for mrkdwn: %s", text);

    json_t *blocks = json_object_get(doc, "blocks"), *b;
    size_t i;
    cr_assert(json_is_array(blocks) && json_array_size(blocks) >= 4);
    char *all = json_dumps(blocks, 0);
    json_array_foreach (blocks, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        cr_assert_not_null(type);
        if (strcmp(type, "header") == 0) {
            json_t *t = json_object_get(b, "text");
            cr_assert(text_object_ok(t));
            cr_assert_str_eq(json_string_value(json_object_get(t, "type")), "plain_text");
        } else if (strcmp(type, "section") == 0) {
            json_t *t = json_object_get(b, "text"), *fields = json_object_get(b, "fields"), *f;
            size_t k;
            cr_assert(t || fields, "a section has text or fields");
            if (t)
                cr_assert(text_object_ok(t));
            json_array_foreach (fields, k, f)
                cr_assert(text_object_ok(f));
        } else if (strcmp(type, "context") == 0) {
            json_t *el = json_object_get(b, "elements"), *e;
            size_t k;
            cr_assert(json_array_size(el) > 0);
            json_array_foreach (el, k, e)
                cr_assert(text_object_ok(e));
        } else {
            cr_assert_fail("block type %s is not one stakeout documents", type);
        }
    }
    /* rule, target, top five functions, where the artifacts are */
    cr_assert(strstr(all, "cpu-hot") && strstr(all, "pid 4242") && strstr(all, "node-7"), "%s",
              all);
    cr_assert(strstr(all, "beta") && strstr(all, "gamma") && strstr(all, "alpha"), "%s", all);
    cr_assert_null(strstr(all, "main"), "never a leaf: not a top function: %s", all);
    cr_assert(strstr(all, s.dir) && strstr(all, "profile.pb.gz"), "artifact location: %s", all);
    free(all);
    json_decref(doc);
    webhook_request_fini(&r);
    unstore(&s);
}

/* ---- alertmanager -------------------------------------------------------- */

static void resolve(struct alert_input *in)
{
    in->state = ALERT_RESOLVED;
}

static void scheduled(struct alert_input *in)
{
    in->kind = ALERT_BASELINE;
    in->event = NULL;
}

Test(webhook, alertmanager_payload_is_an_array_of_postable_alerts)
{
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_ALERTMANAGER);

    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-1", NOW_S, &r), 0);
    json_t *doc = body_json(&r);
    cr_assert(json_is_array(doc) && json_array_size(doc) == 1);
    json_t *a = json_array_get(doc, 0);
    json_t *labels = json_object_get(a, "labels"), *ann = json_object_get(a, "annotations");
    cr_assert(json_is_object(labels), "labels are required");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "alertname")), "cpu-hot");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "target")), "api");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "severity")), "critical");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "team")), "payments", "rule label");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "version")), "2.4.1",
                     "target label");
    const char *k;
    json_t *v;
    json_object_foreach (labels, k, v)
        cr_assert(json_is_string(v), "label %s is a string", k);
    json_object_foreach (ann, k, v)
        cr_assert(json_is_string(v), "annotation %s is a string", k);
    cr_assert(strstr(json_string_value(json_object_get(ann, "summary")), "cpu-hot"));
    cr_assert(strstr(json_string_value(json_object_get(ann, "description")), "cpu 93.1% > 80%"));
    cr_assert(strstr(json_string_value(json_object_get(ann, "top_functions")), "beta"));
    cr_assert(strstr(json_string_value(json_object_get(ann, "artifacts")), s.dir));
    cr_assert_str_eq(json_string_value(json_object_get(ann, "runbook_url")),
                     "https://runbooks.example.com/cpu", "the rule's annotations");
    cr_assert_str_eq(json_string_value(json_object_get(a, "startsAt")), "2026-11-24T16:11:33.250Z",
                     "starts when the episode began");
    cr_assert(rfc3339(json_string_value(json_object_get(a, "startsAt"))));
    cr_assert_null(json_object_get(a, "endsAt"), "firing: no end yet");
    json_decref(doc);
    webhook_request_fini(&r);
    unstore(&s);

    store(&s, resolve);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-2", NOW_S, &r), 0);
    doc = body_json(&r);
    a = json_array_get(doc, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "endsAt")), FIXTURE_CREATED_TEXT,
                     "resolved: endsAt is set");
    cr_assert(rfc3339(json_string_value(json_object_get(a, "endsAt"))));
    json_decref(doc);
    webhook_request_fini(&r);
    unstore(&s);

    /* a baseline capture is not a condition: it ends where it starts */
    store(&s, scheduled);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-3", NOW_S, &r), 0);
    doc = body_json(&r);
    a = json_array_get(doc, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "startsAt")), FIXTURE_CREATED_TEXT);
    cr_assert_str_eq(json_string_value(json_object_get(a, "endsAt")), FIXTURE_CREATED_TEXT);
    json_decref(doc);
    webhook_request_fini(&r);
    unstore(&s);
}

/* ---- signing ------------------------------------------------------------- */

Test(webhook, signature_matches_hmac_of_id_timestamp_body_with_whsec_key)
{
    static const unsigned char key[24] = "0123456789abcdefghijklmn";
    char secret[64] = "whsec_", sig[64], want[64];
    const char *body = "{\"a\":1}";

    EVP_EncodeBlock((unsigned char *)secret + 6, key, sizeof key);
    cr_assert_eq(
        webhook_sign(secret, "msg_1", 1700000000, body, strlen(body), NULL, sig, sizeof sig), 0);
    expected_signature(key, sizeof key, "msg_1", 1700000000, body, strlen(body), want);
    cr_assert_str_eq(sig, want, "the key is the base64-decoded bytes after whsec_");

    /* not whsec_: the secret's own bytes */
    cr_assert_eq(webhook_sign("plain-secret", "msg_1", 1700000000, body, strlen(body), NULL, sig,
                              sizeof sig),
                 0);
    expected_signature((const unsigned char *)"plain-secret", 12, "msg_1", 1700000000, body,
                       strlen(body), want);
    cr_assert_str_eq(sig, want);
}

Test(webhook, signature_matches_the_standard_webhooks_reference_vector)
{
    /* standard-webhooks/standard-webhooks, libraries' test suites */
    char sig[64];
    const char *body = "{\"test\": 2432232314}";
    cr_assert_eq(webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                              "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body), NULL,
                              sig, sizeof sig),
                 0);
    cr_assert_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

Test(webhook, signature_reads_the_body_from_a_file)
{
    char path[] = "/tmp/test_webhook_body.XXXXXX", a[64], b[64];
    const char *body = "streamed body";
    int fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    cr_assert_eq(webhook_sign("k", "id", 5, NULL, 0, path, a, sizeof a), 0);
    cr_assert_eq(webhook_sign("k", "id", 5, body, strlen(body), NULL, b, sizeof b), 0);
    cr_assert_str_eq(a, b);
    unlink(path);
    cr_assert_eq(webhook_sign("k", "id", 5, NULL, 0, path, a, sizeof a), -ENOENT);
}

Test(webhook, signature_refuses_bad_whsec_and_short_buffers)
{
    char sig[64];
    cr_assert_eq(webhook_sign("whsec_not base64!", "id", 1, "x", 1, NULL, sig, sizeof sig),
                 -EINVAL);
    cr_assert_eq(webhook_sign("k", "id", 1, "x", 1, NULL, sig, 20), -ENOSPC);
}

Test(webhook, signed_request_carries_standard_webhooks_headers)
{
    static const unsigned char key[32] = "abcdefghijklmnopqrstuvwxyz012345";
    char secret[80] = "whsec_", want[64];
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_SLACK);

    EVP_EncodeBlock((unsigned char *)secret + 6, key, sizeof key);
    h.secret = secret;
    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "0b9a3f2e-id", NOW_S, &r), 0);
    cr_assert_str_eq(header(&r, "webhook-id"), "0b9a3f2e-id");
    cr_assert_str_eq(header(&r, "webhook-timestamp"), "1795536730");
    expected_signature(key, sizeof key, "0b9a3f2e-id", NOW_S, r.body, r.body_len, want);
    cr_assert_str_eq(header(&r, "webhook-signature"), want);
    cr_assert_null(strstr(r.body, secret + 6), "the secret is not in the body");

    /* a retry later: fresh timestamp, one set of headers */
    size_t n = r.nheaders;
    cr_assert_eq(webhook_request_sign(secret, "0b9a3f2e-id", NOW_S + 600, &r), 0);
    cr_assert_eq(r.nheaders, n);
    cr_assert_str_eq(header(&r, "webhook-timestamp"), "1795537330");
    expected_signature(key, sizeof key, "0b9a3f2e-id", NOW_S + 600, r.body, r.body_len, want);
    cr_assert_str_eq(header(&r, "webhook-signature"), want);
    webhook_request_fini(&r);
    unstore(&s);
}

Test(webhook, signed_multipart_covers_the_alert_json_part)
{
    char want[64], path[256], *text;
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_MULTIPART);
    FILE *f;
    long len;

    h.secret = "raw-key";
    store(&s, NULL);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id-9", NOW_S, &r), 0);
    snprintf(path, sizeof path, "%s/%s", s.dir, BUNDLE_FILE);
    f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = malloc((size_t)len);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    expected_signature((const unsigned char *)"raw-key", 7, "id-9", NOW_S, text, (size_t)len, want);
    cr_assert_str_eq(header(&r, "webhook-signature"), want);
    free(text);
    webhook_request_fini(&r);
    unstore(&s);
}

/* ---- failures ------------------------------------------------------------ */

Test(webhook, missing_or_broken_bundle_is_an_error)
{
    char dir[] = "/tmp/test_webhook_empty.XXXXXX";
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_JSON);

    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(webhook_request_build(&h, dir, "id", NOW_S, &r), -ENOENT);
    write_file(dir, BUNDLE_FILE, "{not json", 9);
    cr_assert_eq(webhook_request_build(&h, dir, "id", NOW_S, &r), -EINVAL);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, BUNDLE_FILE);
    unlink(path);
    rmdir(dir);
}

Test(webhook, attachment_names_cannot_leave_the_bundle_directory)
{
    struct stored s;
    struct webhook_request r;
    struct webhook_spec h = hook(WEBHOOK_MULTIPART);

    store(&s, NULL);
    /* a tampered bundle.json naming a file elsewhere */
    json_t *list = json_object_get(s.bundle, "attachments");
    json_object_set_new(json_array_get(list, 0), "name", json_string("../../etc/passwd"));
    char *text = json_dumps(s.bundle, 0);
    write_file(s.dir, BUNDLE_FILE, text, strlen(text));
    free(text);
    cr_assert_eq(webhook_request_build(&h, s.dir, "id", NOW_S, &r), 0);
    cr_assert_eq(r.nparts, 3, "the bad entry is left out");
    for (size_t i = 0; i < r.nparts; i++)
        cr_assert_null(strstr(r.parts[i].path, ".."));
    webhook_request_fini(&r);
    unstore(&s);
}
