/* sidecar/webhook.c - the request one webhook gets for one bundle; see webhook.h.
 *
 * Everything is derived from the bundle as stored (bundle.json in its spool
 * directory), never from live state, so a retry an hour later or after a
 * restart sends what the first attempt would have. The bundle was built
 * from redacted text, so no format has to redact again; the hook's secret
 * and URL are never written into a body. */
#include "webhook.h"

#include "bundle.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BUNDLE_BYTES (64ULL * 1024 * 1024)
#define SLACK_HEADER_MAX 150   /* Block Kit: plain_text of a header block */
#define SLACK_SECTION_MAX 3000 /* Block Kit: text of a section */
#define SLACK_FIELD_MAX 2000   /* Block Kit: each field of a section */
#define SLACK_TOP_FUNCTIONS 5
#define NAME_MAX_SHOWN 90 /* characters of a function name in chat text */

/* ---- small helpers ---------------------------------------------------------- */

static void put(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v ? v : json_null());
}

static int path_join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A file name of the bundle directory an attachment may have: no path, no
 * hidden file, nothing a Content-Disposition header would need to quote. */
static bool attachment_name_ok(const char *s)
{
    if (!s || !*s || *s == '.' || strlen(s) >= 64 || strcmp(s, BUNDLE_FILE) == 0)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

/* A content type as a header value: printable ASCII, no CR or LF. */
static bool content_type_ok(const char *s)
{
    if (!s || !*s || strlen(s) >= 96)
        return false;
    for (; *s; s++) {
        if (*s < 0x20 || *s > 0x7e)
            return false;
    }
    return true;
}

/* Read a whole file (at most max bytes). Returns 0 or a negative errno:
 * -EFBIG beyond max. */
static int read_file(const char *path, uint64_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t used = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1)
        return -errno;
    if (fstat(fd, &st) == -1) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    while (used < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + used, (size_t)st.st_size - used);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break; /* shrank under us: what is there */
        used += (size_t)r;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static char *base64(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    size_t o = 0;

    /* EVP_EncodeBlock takes an int: encode in slices of whole triples */
    while (n > 0) {
        size_t chunk = n > 48 * 1024 * 1024 ? 48 * 1024 * 1024 : n;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in, (int)chunk);
        in += chunk;
        n -= chunk;
    }
    out[o] = '\0';
    return out;
}

/* Standard base64 with padding; -EINVAL for anything else. */
static int base64_decode(const char *in, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(in), pad = 0;

    if (n == 0 || n % 4 != 0 || n > 4096)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '=' && i >= n - 2)
            pad++;
        else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return -EINVAL;
    }
    unsigned char *buf = xmalloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
    if (got < 0 || (size_t)got < pad) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    *outlen = (size_t)got - pad; /* EVP_DecodeBlock counts padding as zero bytes */
    return 0;
}

/* Values of the stored bundle: NULL or 0 when missing or of another type. */
static json_t *jpath(json_t *o, ...)
{
    va_list ap;

    va_start(ap, o);
    for (const char *key = va_arg(ap, const char *); o && key; key = va_arg(ap, const char *))
        o = json_object_get(o, key);
    va_end(ap);
    return o;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *jstr_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = jstr(o, key);
    return s ? s : dflt;
}

static void add_header(struct webhook_request *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_header(struct webhook_request *r, const char *fmt, ...)
{
    va_list ap;
    char *h;

    va_start(ap, fmt);
    if (vasprintf(&h, fmt, ap) == -1) {
        fprintf(stderr, "stakeout: out of memory\n");
        abort();
    }
    va_end(ap);
    r->headers = xreallocarray(r->headers, r->nheaders + 1, sizeof *r->headers);
    r->headers[r->nheaders++] = h;
}

static void remove_header(struct webhook_request *r, const char *name)
{
    size_t len = strlen(name), kept = 0;

    for (size_t i = 0; i < r->nheaders; i++) {
        if (strncasecmp(r->headers[i], name, len) == 0 && r->headers[i][len] == ':')
            free(r->headers[i]);
        else
            r->headers[kept++] = r->headers[i];
    }
    r->nheaders = kept;
}

static int set_body(struct webhook_request *r, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | BUNDLE_JSON_FLAGS);
    if (!s)
        return -EINVAL;
    r->body = s;
    r->body_len = strlen(s);
    snprintf(r->content_type, sizeof r->content_type, "application/json");
    return 0;
}

/* A growing string for chat text. */
struct text {
    char *s;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    char *piece;

    va_start(ap, fmt);
    int n = vasprintf(&piece, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "stakeout: out of memory\n");
        abort();
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = 2 * (t->len + (size_t)n + 1);
        t->s = xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, piece, (size_t)n + 1);
    t->len += (size_t)n;
    free(piece);
}

static const char *text_str(const struct text *t)
{
    return t->s ? t->s : "";
}

/* Cut s to at most max bytes on a UTF-8 boundary, ending in "..." when cut. */
static char *cut_utf8(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return xstrdup(s);
    size_t end = max > 3 ? max - 3 : 0;
    while (end > 0 && ((unsigned char)s[end] & 0xC0) == 0x80)
        end--;
    char *out = xmalloc(end + 4);
    memcpy(out, s, end);
    memcpy(out + end, "...", 4);
    return out;
}

/* Slack mrkdwn: &, < and > are control characters and must be escaped
 * (a log line holding "<!channel>" must not page a channel). */
static char *slack_escape(const char *s)
{
    char *out = xmalloc(5 * strlen(s) + 1);
    size_t o = 0;

    for (; *s; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (rep) {
            memcpy(out + o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

static json_t *mrkdwn(const char *s, size_t max)
{
    char *c = cut_utf8(s, max);
    json_t *o = json_pack("{s:s, s:s}", "type", "mrkdwn", "text", c);
    free(c);
    return o;
}

/* ---- signing ------------------------------------------------------------------ */

/* The HMAC key of a Standard Webhooks secret. */
static int secret_key(const char *secret, unsigned char **key, size_t *len)
{
    if (strncmp(secret, "whsec_", 6) == 0)
        return base64_decode(secret + 6, key, len);
    *len = strlen(secret);
    *key = xmalloc(*len + 1);
    memcpy(*key, secret, *len);
    return 0;
}

/* The signed content comes from memory, or streamed from a file. */
static int hmac_feed_file(EVP_MAC_CTX *ctx, const char *path)
{
    unsigned char buf[65536];
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1)
        return -errno;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        if (!EVP_MAC_update(ctx, buf, (size_t)r)) {
            rc = -EIO;
            break;
        }
    }
    close(fd);
    return rc;
}

int webhook_sign(const char *secret, const char *id, int64_t ts, const char *body, size_t len,
                 const char *body_path, char *out, size_t outlen)
{
    unsigned char *key = NULL, mac[EVP_MAX_MD_SIZE];
    size_t keylen = 0, maclen = 0;
    char stamp[32];
    EVP_MAC *hmac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    int rc;

    if (!secret || !id || (!body && (!body_path || !*body_path)))
        return -EINVAL;
    rc = secret_key(secret, &key, &keylen);
    if (rc != 0)
        return rc;
    snprintf(stamp, sizeof stamp, "%" PRId64, ts);
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!ctx || !EVP_MAC_init(ctx, key, keylen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)stamp, strlen(stamp)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1)) {
        rc = -EIO;
        goto out;
    }
    if (body) {
        if (!EVP_MAC_update(ctx, (const unsigned char *)body, len)) {
            rc = -EIO;
            goto out;
        }
    } else {
        rc = hmac_feed_file(ctx, body_path);
        if (rc != 0)
            goto out;
    }
    if (!EVP_MAC_final(ctx, mac, &maclen, sizeof mac)) {
        rc = -EIO;
        goto out;
    }
    char *b64 = base64(mac, maclen);
    if (strlen(b64) + 4 > outlen) {
        rc = -ENOSPC;
    } else {
        snprintf(out, outlen, "v1,%s", b64);
    }
    free(b64);
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    OPENSSL_cleanse(key, keylen);
    free(key);
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

int webhook_request_sign(const char *secret, const char *id, int64_t now_s,
                         struct webhook_request *r)
{
    char sig[128];
    int rc;

    if (r->parts && r->nparts > 0) {
        const struct webhook_part *p = &r->parts[0];
        rc = webhook_sign(secret, id, now_s, p->path[0] ? NULL : p->data, p->len, p->path, sig,
                          sizeof sig);
    } else {
        rc = webhook_sign(secret, id, now_s, r->body, r->body_len, r->body_path, sig, sizeof sig);
    }
    if (rc != 0)
        return rc;
    remove_header(r, "webhook-id");
    remove_header(r, "webhook-timestamp");
    remove_header(r, "webhook-signature");
    add_header(r, "webhook-id: %s", id);
    add_header(r, "webhook-timestamp: %" PRId64, now_s);
    add_header(r, "webhook-signature: %s", sig);
    return 0;
}

/* ---- json ------------------------------------------------------------------------ */

/* Attachments inline as base64 while their bytes fit under the hook's cap;
 * the others say why not and where they are. */
static void inline_attachments(const struct webhook_spec *h, const char *dir, json_t *doc)
{
    json_t *list = json_object_get(doc, "attachments");
    uint64_t used = 0;
    size_t i;
    json_t *a;

    json_array_foreach (list, i, a) {
        const char *name = jstr(a, "name");
        char path[4096];
        struct stat st;
        char *data = NULL;
        size_t len = 0;

        if (!json_is_object(a))
            continue;
        if (!attachment_name_ok(name) || path_join(path, sizeof path, dir, name) != 0) {
            put(a, "inline", json_false());
            put(a, "reason", json_string("not a plain file name"));
            continue;
        }
        put(a, "path", json_string(path));
        if (stat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
            put(a, "inline", json_false());
            put(a, "reason", json_string("missing from the spool"));
            continue;
        }
        if (used + (uint64_t)st.st_size > h->max_inline_bytes) {
            put(a, "inline", json_false());
            put(a, "reason", json_string("over the inline cap"));
            put(a, "max_inline_bytes", json_integer((json_int_t)h->max_inline_bytes));
            continue;
        }
        int rc = read_file(path, h->max_inline_bytes - used, &data, &len);
        if (rc != 0) {
            put(a, "inline", json_false());
            put(a, "reason", json_string(rc == -EFBIG ? "over the inline cap" : strerror(-rc)));
            continue;
        }
        char *b64 = base64((const unsigned char *)data, len);
        used += len;
        put(a, "inline", json_true());
        put(a, "encoding", json_string("base64"));
        put(a, "data", json_string(b64));
        free(b64);
        free(data);
    }
}

static int build_json(const struct webhook_spec *h, const char *dir, json_t *bundle,
                      struct webhook_request *r)
{
    json_t *doc = json_deep_copy(bundle);
    inline_attachments(h, dir, doc);
    int rc = set_body(r, doc);
    json_decref(doc);
    return rc;
}

/* ---- multipart -------------------------------------------------------------------- */

static int build_multipart(const char *dir, json_t *bundle, struct webhook_request *r)
{
    json_t *list = json_object_get(bundle, "attachments");
    size_t n = json_array_size(list), i;
    struct stat st;
    json_t *a;
    int rc;

    r->parts = xcalloc(n + 1, sizeof *r->parts);
    /* the alert first, as stored: what the signature covers */
    struct webhook_part *p = &r->parts[r->nparts];
    snprintf(p->name, sizeof p->name, "alert");
    snprintf(p->filename, sizeof p->filename, "alert.json");
    snprintf(p->content_type, sizeof p->content_type, "application/json");
    rc = path_join(p->path, sizeof p->path, dir, BUNDLE_FILE);
    if (rc != 0)
        return rc;
    if (stat(p->path, &st) == -1)
        return -errno;
    p->len = (size_t)st.st_size;
    r->nparts++;

    json_array_foreach (list, i, a) {
        const char *name = jstr(a, "name"), *type = jstr(a, "content_type");
        p = &r->parts[r->nparts];
        if (!attachment_name_ok(name) || path_join(p->path, sizeof p->path, dir, name) != 0 ||
            stat(p->path, &st) == -1 || !S_ISREG(st.st_mode)) {
            memset(p, 0, sizeof *p); /* listed in alert.json, but not sent */
            continue;
        }
        snprintf(p->name, sizeof p->name, "%s", name);
        snprintf(p->filename, sizeof p->filename, "%s", name);
        snprintf(p->content_type, sizeof p->content_type, "%s",
                 content_type_ok(type) ? type : bundle_content_type(name));
        p->len = (size_t)st.st_size;
        r->nparts++;
    }
    snprintf(r->content_type, sizeof r->content_type, "multipart/form-data");
    return 0;
}

/* ---- chat text shared by slack and alertmanager ---------------------------------- */

/* "cpu-hot", or what stands in for a rule. */
static const char *alert_name(json_t *b)
{
    const char *rule = json_string_value(jpath(b, "rule", "name", NULL));
    const char *kind = jstr_or(b, "kind", "rule");

    if (rule)
        return rule;
    if (strcmp(kind, "restarted") == 0)
        return "stakeout_restart";
    if (strcmp(kind, "on_demand") == 0)
        return "stakeout_capture";
    return "stakeout";
}

/* "api (pid 1234) on host-1" */
static void target_text(json_t *b, struct text *t)
{
    json_t *tg = json_object_get(b, "target");
    json_t *pid = json_object_get(tg, "pid");
    const char *host = jstr(tg, "host");

    text_add(t, "%s", jstr_or(tg, "name", "?"));
    if (json_is_integer(pid))
        text_add(t, " (pid %" JSON_INTEGER_FORMAT ")", json_integer_value(pid));
    if (host)
        text_add(t, " on %s", host);
}

/* One line per observed value: "cpu 93.1% > 80%". */
static void observed_text(json_t *b, const char *bullet, struct text *t)
{
    json_t *obs = jpath(b, "rule", "observed", NULL), *o;
    size_t i;

    json_array_foreach (obs, i, o) {
        const char *s = jstr(o, "text");
        bool unmet = !json_is_true(json_object_get(o, "holds")) &&
                     !json_is_null(json_object_get(o, "value"));
        if (s)
            text_add(t, "%s%s%s\n", bullet, s, unmet ? " (not met)" : "");
    }
}

/* The top functions of the profile by self share, one per line
 * ("41.2%  hot_loop"); functions never at the leaf are left out. */
static size_t top_functions_text(json_t *b, size_t max, struct text *t)
{
    json_t *fs = jpath(b, "profile", "summary", "top_self", NULL), *f;
    size_t i, n = 0;

    json_array_foreach (fs, i, f) {
        if (n == max)
            break;
        if (!(json_number_value(json_object_get(f, "self_percent")) > 0.0))
            continue;
        char *name = cut_utf8(jstr_or(f, "name", "?"), NAME_MAX_SHOWN);
        text_add(t, "%5.1f%%  %s\n", json_number_value(json_object_get(f, "self_percent")), name);
        free(name);
        n++;
    }
    return n;
}

/* "host-1:/var/lib/stakeout/ID (profile.pb.gz, flame.svg)" */
static void artifacts_text(json_t *b, const char *dir, struct text *t)
{
    json_t *list = json_object_get(b, "attachments"), *a;
    size_t i;

    text_add(t, "%s:%s", jstr_or(jpath(b, "target", NULL), "host", "localhost"), dir);
    json_array_foreach (list, i, a)
        text_add(t, "%s%s", i ? ", " : " (", jstr_or(a, "name", "?"));
    if (json_array_size(list))
        text_add(t, ")");
}

static void summary_text(json_t *b, struct text *t)
{
    bool resolved = strcmp(jstr_or(b, "state", "firing"), "resolved") == 0;
    const char *kind = jstr_or(b, "kind", "rule");

    if (strcmp(kind, "restarted") == 0) {
        text_add(t, "%s restarted: ", jstr_or(jpath(b, "target", NULL), "name", "?"));
        text_add(t, "%s", jstr_or(jpath(b, "target", "restart", NULL), "reason", "?"));
        return;
    }
    if (strcmp(kind, "baseline") == 0)
        text_add(t, "baseline profile %s of ", alert_name(b));
    else if (strcmp(kind, "on_demand") == 0)
        text_add(t, "on-demand profile of ");
    else
        text_add(t, "%s %s on ", alert_name(b), resolved ? "resolved" : "firing");
    target_text(b, t);
}

/* ---- slack ---------------------------------------------------------------------------- */

static const char *slack_emoji(json_t *b)
{
    const char *sev = jstr_or(b, "severity", "warning");
    if (strcmp(jstr_or(b, "state", "firing"), "resolved") == 0)
        return ":white_check_mark:";
    if (strcmp(sev, "critical") == 0)
        return ":red_circle:";
    if (strcmp(sev, "warning") == 0)
        return ":large_orange_circle:";
    return ":large_blue_circle:";
}

static json_t *slack_section(const char *raw)
{
    char *esc = slack_escape(raw);
    json_t *o = json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn(esc, SLACK_SECTION_MAX));
    free(esc);
    return o;
}

static int build_slack(const char *dir, json_t *b, struct webhook_request *r)
{
    struct text summary = {0}, head = {0}, rule = {0}, target = {0}, obs = {0}, top = {0},
                art = {0}, fallback = {0};
    json_t *blocks = json_array(), *fields = json_array();
    const char *expr = json_string_value(jpath(b, "rule", "expression", NULL));
    const char *incident = jstr(b, "incident");

    summary_text(b, &summary);
    text_add(&head, "%s %s", slack_emoji(b), text_str(&summary));
    char *header = cut_utf8(text_str(&head), SLACK_HEADER_MAX);
    json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "header", "text",
                                            "type", "plain_text", "text", header, "emoji", 1));
    free(header);

    text_add(&rule, "*Rule*\n%s (%s)", alert_name(b), jstr_or(b, "severity", "?"));
    if (expr)
        text_add(&rule, "\n`%s`", expr);
    text_add(&target, "*Target*\n");
    target_text(b, &target);
    json_t *tg = json_object_get(b, "target");
    if (jstr(tg, "build_id"))
        text_add(&target, "\nbuild-id %.12s", jstr(tg, "build_id"));
    if (json_is_true(json_object_get(tg, "binary_changed")))
        text_add(&target, "\nbinary changed since the baseline (a deploy)");
    const char *raw_fields[] = {text_str(&rule), text_str(&target)};
    for (size_t i = 0; i < 2; i++) {
        char *esc = slack_escape(raw_fields[i]);
        json_array_append_new(fields, mrkdwn(esc, SLACK_FIELD_MAX));
        free(esc);
    }
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));

    observed_text(b, "- ", &obs);
    if (obs.len) {
        struct text sec = {0};
        text_add(&sec, "*Observed*\n%s", text_str(&obs));
        json_array_append_new(blocks, slack_section(text_str(&sec)));
        free(sec.s);
    }

    struct text sec = {0};
    if (top_functions_text(b, SLACK_TOP_FUNCTIONS, &top) > 0) {
        text_add(&sec, "*Top functions* (self, %s profile)\n```\n%s```",
                 jstr_or(json_object_get(b, "profile"), "type", "?"), text_str(&top));
    } else if (jstr(b, "capture_skipped")) {
        text_add(&sec, "*No profile*: %s", jstr(b, "capture_skipped"));
    } else if (json_is_object(json_object_get(b, "profile"))) {
        text_add(&sec, "*Profile*: no samples");
    }
    if (sec.len)
        json_array_append_new(blocks, slack_section(text_str(&sec)));
    free(sec.s);

    artifacts_text(b, dir, &art);
    struct text ctx = {0};
    text_add(&ctx, "Artifacts: `%s`", text_str(&art));
    if (incident)
        text_add(&ctx, " | incident `%s`", incident);
    text_add(&ctx, " | bundle `%s`", jstr_or(b, "id", "?"));
    char *esc = slack_escape(text_str(&ctx));
    json_array_append_new(blocks, json_pack("{s:s, s:[o]}", "type", "context", "elements",
                                            mrkdwn(esc, SLACK_FIELD_MAX)));
    free(esc);
    free(ctx.s);

    /* the notification text: what a phone shows */
    text_add(&fallback, "[%s] %s", jstr_or(b, "severity", "?"), text_str(&summary));
    json_t *o, *obs_list = jpath(b, "rule", "observed", NULL);
    size_t i;
    json_array_foreach (obs_list, i, o) {
        if (json_is_true(json_object_get(o, "holds")) && jstr(o, "text"))
            text_add(&fallback, "%s%s", i ? ", " : ": ", jstr(o, "text"));
    }
    char *fb = slack_escape(text_str(&fallback));
    char *fbcut = cut_utf8(fb, SLACK_SECTION_MAX);
    json_t *doc = json_pack("{s:s, s:o}", "text", fbcut, "blocks", blocks);
    int rc = set_body(r, doc);
    json_decref(doc);
    free(fbcut);
    free(fb);
    free(summary.s);
    free(head.s);
    free(rule.s);
    free(target.s);
    free(obs.s);
    free(top.s);
    free(art.s);
    free(fallback.s);
    return rc;
}

/* ---- alertmanager ---------------------------------------------------------------------- */

static void copy_strings(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;

    json_object_foreach (src, k, v) {
        if (json_is_string(v))
            json_object_set(dst, k, v);
    }
}

static int build_alertmanager(const char *dir, json_t *b, struct webhook_request *r)
{
    json_t *labels = json_object(), *ann = json_object(), *alert = json_object();
    struct text summary = {0}, desc = {0}, top = {0}, art = {0};
    bool resolved = strcmp(jstr_or(b, "state", "firing"), "resolved") == 0;
    const char *starts = json_string_value(jpath(b, "rule", "active_since", NULL));
    const char *kind = jstr_or(b, "kind", "rule");

    /* identity: the target's labels, the rule's over them, ours over both */
    copy_strings(labels, jpath(b, "target", "labels", NULL));
    copy_strings(labels, jpath(b, "rule", "labels", NULL));
    put(labels, "alertname", json_string(alert_name(b)));
    put(labels, "target", json_string(jstr_or(jpath(b, "target", NULL), "name", "unknown")));
    put(labels, "severity", json_string(jstr_or(b, "severity", "warning")));

    summary_text(b, &summary);
    observed_text(b, "", &desc);
    if (jstr(b, "capture_skipped"))
        text_add(&desc, "no profile: %s\n", jstr(b, "capture_skipped"));
    if (json_is_true(jpath(b, "target", "binary_changed", NULL)))
        text_add(&desc, "the binary changed since the last baseline (a deploy)\n");
    if (desc.len)
        desc.s[--desc.len] = '\0'; /* the last newline */
    top_functions_text(b, SLACK_TOP_FUNCTIONS, &top);
    if (top.len)
        top.s[--top.len] = '\0';
    artifacts_text(b, dir, &art);
    put(ann, "summary", json_string(text_str(&summary)));
    put(ann, "description", json_string(text_str(&desc)));
    put(ann, "top_functions", json_string(text_str(&top)));
    put(ann, "artifacts", json_string(text_str(&art)));
    if (jstr(b, "incident"))
        put(ann, "incident", json_string(jstr(b, "incident")));
    put(ann, "bundle_id", json_string(jstr_or(b, "id", "")));
    copy_strings(ann, jpath(b, "rule", "annotations", NULL)); /* the user's words win */

    put(alert, "labels", labels);
    put(alert, "annotations", ann);
    put(alert, "startsAt", json_string(starts ? starts : jstr_or(b, "created", "")));
    /* a scheduled or on-demand capture is news, not a condition: it ends
     * where it starts, so nothing stays firing in Alertmanager */
    if (resolved || !strcmp(kind, "baseline") || !strcmp(kind, "on_demand"))
        put(alert, "endsAt", json_string(jstr_or(b, "created", "")));
    json_t *doc = json_array();
    json_array_append_new(doc, alert);
    int rc = set_body(r, doc);
    json_decref(doc);
    free(summary.s);
    free(desc.s);
    free(top.s);
    free(art.s);
    return rc;
}

/* ---- the request ------------------------------------------------------------------------ */

int webhook_request_build(const struct webhook_spec *h, const char *dir, const char *id,
                          int64_t now_s, struct webhook_request *out)
{
    struct webhook_request r;
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    json_t *bundle = NULL;
    json_error_t jerr;
    int rc;

    memset(&r, 0, sizeof r);
    rc = path_join(path, sizeof path, dir, BUNDLE_FILE);
    if (rc != 0)
        goto out;
    rc = read_file(path, MAX_BUNDLE_BYTES, &text, &len);
    if (rc != 0)
        goto out;
    bundle = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(bundle)) {
        rc = -EINVAL;
        goto out;
    }
    switch (h->format) {
    case WEBHOOK_JSON:
        rc = build_json(h, dir, bundle, &r);
        break;
    case WEBHOOK_MULTIPART:
        rc = build_multipart(dir, bundle, &r);
        break;
    case WEBHOOK_SLACK:
        rc = build_slack(dir, bundle, &r);
        break;
    case WEBHOOK_ALERTMANAGER:
        rc = build_alertmanager(dir, bundle, &r);
        break;
    default:
        rc = -EINVAL;
    }
    if (rc != 0)
        goto out;
    add_header(&r, "User-Agent: stakeout/%s", STAKEOUT_VERSION);
    if (h->secret) {
        rc = webhook_request_sign(h->secret, id, now_s, &r);
        if (rc != 0)
            goto out;
    }
    *out = r;
    memset(&r, 0, sizeof r);
out:
    webhook_request_fini(&r);
    json_decref(bundle);
    free(text);
    return rc;
}

void webhook_request_fini(struct webhook_request *r)
{
    if (!r)
        return;
    free(r->body);
    for (size_t i = 0; i < r->nparts; i++)
        free(r->parts[i].data);
    free(r->parts);
    for (size_t i = 0; i < r->nheaders; i++)
        free(r->headers[i]);
    free(r->headers);
    memset(r, 0, sizeof *r);
}
