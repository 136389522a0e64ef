/* tests/targets/receiver.c - a webhook receiver on 127.0.0.1 that misbehaves on cue.
 *
 *   receiver [--port N] [--dir DIR] [--script LIST] [--repeat] [--discard]
 *            [--fail-first CODE] [--tls CERT KEY]
 *
 * Listens on 127.0.0.1 (port 0: the kernel picks) and prints "listening PORT"
 * on stdout. Requests, in the order they arrive, follow the script, a comma
 * separated list; after its end every request gets 200 (--repeat: the
 * script starts over). Steps:
 *   CODE       answer with that HTTP status (200, 400, 408, 500, ...)
 *   CODE:SECS  answer CODE with "Retry-After: SECS" (429:2, 503:1)
 *   hang       read the request, never answer
 *   close      close the connection in the middle of the body
 *   redirect   302 to /redirected on this server
 * The answer comes after the whole body was read (but for close).
 * --tls serves HTTPS with the PEM certificate and key in those files.
 * --fail-first CODE answers CODE to the first request of each webhook-id
 * (then the script applies): half the requests fail, every bundle recovers.
 *
 * Each request is written to DIR as NNNNNN.body (the raw body; not with
 * --discard) and then NNNNNN.head, renamed into place last, so a test that
 * sees a .head file sees the whole request:
 *   method POST / path /a / step 500 / complete 1 / bytes N
 *   header <name>: <value>            one line per header
 *   part <name> <filename|-> <type|-> <bytes>   multipart/form-data parts,
 *                                     each also in NNNNNN.part.<name>
 * A closed request has complete 0 and no body. Stops at EOF on stdin. */
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum step_kind { STEP_CODE, STEP_HANG, STEP_CLOSE, STEP_REDIRECT };

struct step {
    enum step_kind kind;
    unsigned code;
    int retry_after; /* -1: none */
};

struct part {
    char name[64];
    char filename[128];
    char type[96];
    size_t bytes;
    FILE *f;
};

struct req {
    unsigned seq;
    struct step step;
    char *head; /* header lines so far, owned */
    size_t head_len;
    FILE *body; /* NNNNNN.body.tmp, or NULL with --discard */
    size_t bytes;
    struct MHD_PostProcessor *pp;
    struct part parts[16];
    size_t nparts;
};

static struct step *script;
static size_t nscript;
static bool repeat;
static bool discard;
static const char *dir = ".";
static unsigned port;
static const char *scheme = "http";
static atomic_uint next_seq;
static unsigned fail_first;
static char **seen_ids; /* webhook-ids seen, for --fail-first */
static size_t nseen;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0;
    if (!f)
        return NULL;
    for (;;) {
        buf = realloc(buf, len + 4097);
        if (!buf)
            break;
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0) {
            buf[len] = '\0';
            break;
        }
    }
    fclose(f);
    return buf;
}

static void die(const char *what)
{
    fprintf(stderr, "receiver: %s: %s\n", what, strerror(errno));
    exit(1);
}

static bool parse_step(const char *s, struct step *out)
{
    struct step st = {STEP_CODE, 200, -1};
    if (strcmp(s, "hang") == 0) {
        st.kind = STEP_HANG;
    } else if (strcmp(s, "close") == 0) {
        st.kind = STEP_CLOSE;
    } else if (strcmp(s, "redirect") == 0) {
        st.kind = STEP_REDIRECT;
    } else {
        char *end;
        unsigned long code = strtoul(s, &end, 10);
        if (end == s || code < 100 || code > 599)
            return false;
        st.code = (unsigned)code;
        if (*end == ':') {
            char *e2;
            long ra = strtol(end + 1, &e2, 10);
            if (e2 == end + 1 || *e2 || ra < 0)
                return false;
            st.retry_after = (int)ra;
        } else if (*end) {
            return false;
        }
    }
    *out = st;
    return true;
}

static void parse_script(char *list)
{
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        script = realloc(script, (nscript + 1) * sizeof *script);
        if (!script)
            die("realloc");
        if (!parse_step(tok, &script[nscript])) {
            fprintf(stderr, "receiver: bad script step '%s'\n", tok);
            exit(2);
        }
        nscript++;
    }
}

static struct step step_for(unsigned seq)
{
    struct step ok = {STEP_CODE, 200, -1};
    if (nscript == 0)
        return ok;
    if (seq < nscript)
        return script[seq];
    return repeat ? script[seq % nscript] : ok;
}

/* True the first time id is seen. */
static bool first_time(const char *id)
{
    bool first = true;
    pthread_mutex_lock(&seen_mu);
    for (size_t i = 0; i < nseen && first; i++)
        first = strcmp(seen_ids[i], id) != 0;
    if (first) {
        seen_ids = realloc(seen_ids, (nseen + 1) * sizeof *seen_ids);
        if (!seen_ids || !(seen_ids[nseen] = strdup(id)))
            die("realloc");
        nseen++;
    }
    pthread_mutex_unlock(&seen_mu);
    return first;
}

static void head_add(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void head_add(struct req *r, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    r->head = realloc(r->head, r->head_len + (size_t)n + 1);
    if (!r->head)
        die("realloc");
    memcpy(r->head + r->head_len, line, (size_t)n + 1);
    r->head_len += (size_t)n;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    head_add(cls, "header %s: %s\n", key, value ? value : "");
    return MHD_YES;
}

static void path_of(const struct req *r, const char *suffix, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%06u.%s", dir, r->seq, suffix);
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    (void)off;
    struct req *r = cls;
    struct part *p = NULL;
    for (size_t i = 0; i < r->nparts; i++) {
        if (strcmp(r->parts[i].name, key) == 0)
            p = &r->parts[i];
    }
    if (!p) {
        if (r->nparts == sizeof r->parts / sizeof r->parts[0])
            return MHD_YES;
        p = &r->parts[r->nparts++];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", key);
        snprintf(p->filename, sizeof p->filename, "%s", filename ? filename : "-");
        snprintf(p->type, sizeof p->type, "%s", content_type ? content_type : "-");
        for (char *c = p->name; *c; c++) {
            if (*c == '/' || *c == ' ')
                *c = '_';
        }
        if (!discard) {
            char path[4096], suffix[96];
            snprintf(suffix, sizeof suffix, "part.%s", p->name);
            path_of(r, suffix, path, sizeof path);
            p->f = fopen(path, "we");
            if (!p->f)
                die(path);
        }
    }
    if (p->f && size > 0 && fwrite(data, 1, size, p->f) != size)
        die("fwrite part");
    p->bytes += size;
    return MHD_YES;
}

/* Write the head file (and put the body in place first). */
static void finish_files(struct req *r, bool complete)
{
    char tmp[4096], final[4096];
    if (r->body) {
        if (fclose(r->body) != 0)
            die("fclose body");
        r->body = NULL;
        path_of(r, "body.tmp", tmp, sizeof tmp);
        path_of(r, "body", final, sizeof final);
        if (!complete)
            unlink(tmp);
        else if (rename(tmp, final) == -1)
            die("rename body");
    }
    head_add(r, "complete %d\nbytes %zu\n", complete ? 1 : 0, r->bytes);
    for (size_t i = 0; i < r->nparts; i++) {
        struct part *p = &r->parts[i];
        if (p->f)
            fclose(p->f);
        p->f = NULL;
        head_add(r, "part %s %s %s %zu\n", p->name, p->filename, p->type, p->bytes);
    }
    path_of(r, "head.tmp", tmp, sizeof tmp);
    path_of(r, "head", final, sizeof final);
    FILE *f = fopen(tmp, "we");
    if (!f || fwrite(r->head, 1, r->head_len, f) != r->head_len || fclose(f) != 0)
        die("write head");
    if (rename(tmp, final) == -1)
        die("rename head");
}

static enum MHD_Result respond(struct MHD_Connection *c, const struct step *st)
{
    const char *text = st->code / 100 == 2 ? "ok" : "no";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    unsigned code = st->code;
    if (st->kind == STEP_REDIRECT) {
        char loc[128];
        snprintf(loc, sizeof loc, "%s://127.0.0.1:%u/redirected", scheme, port);
        MHD_add_response_header(resp, "Location", loc);
        code = 302;
    }
    if (st->retry_after >= 0) {
        char ra[32];
        snprintf(ra, sizeof ra, "%d", st->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    enum MHD_Result rc = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    (void)cls;
    (void)version;
    struct req *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            die("calloc");
        r->seq = atomic_fetch_add(&next_seq, 1);
        const char *wid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
        if (fail_first && wid && first_time(wid))
            r->step = (struct step){STEP_CODE, fail_first, -1};
        else
            r->step = step_for(r->seq);
        const char *names[] = {"code", "hang", "close", "redirect"};
        head_add(r, "method %s\npath %s\nstep %s %u\n", method, url, names[r->step.kind],
                 r->step.code);
        MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, r);
        if (!discard) {
            char path[4096];
            path_of(r, "body.tmp", path, sizeof path);
            r->body = fopen(path, "we");
            if (!r->body)
                die(path);
        }
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (ct && strncmp(ct, "multipart/form-data", 19) == 0)
            r->pp = MHD_create_post_processor(c, 64 * 1024, on_part, r);
        *req_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (r->step.kind == STEP_CLOSE) {
            finish_files(r, false);
            return MHD_NO; /* the connection is closed mid-body */
        }
        if (r->body && fwrite(upload, 1, *upload_size, r->body) != *upload_size)
            die("fwrite body");
        if (r->pp)
            MHD_post_process(r->pp, upload, *upload_size);
        r->bytes += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->step.kind == STEP_CLOSE) {
        finish_files(r, false);
        return MHD_NO;
    }
    if (r->pp) {
        MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
    }
    finish_files(r, true);
    if (r->step.kind == STEP_HANG) {
        MHD_suspend_connection(c); /* never resumed */
        return MHD_YES;
    }
    return respond(c, &r->step);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *r = *req_cls;
    if (!r)
        return;
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    if (r->body)
        fclose(r->body);
    for (size_t i = 0; i < r->nparts; i++) {
        if (r->parts[i].f)
            fclose(r->parts[i].f);
    }
    free(r->head);
    free(r);
    *req_cls = NULL;
}

int main(int argc, char **argv)
{
    unsigned want = 0;
    const char *cert_path = NULL, *key_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            want = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--script") == 0 && i + 1 < argc) {
            parse_script(argv[++i]);
        } else if (strcmp(argv[i], "--repeat") == 0) {
            repeat = true;
        } else if (strcmp(argv[i], "--discard") == 0) {
            discard = true;
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cert_path = argv[++i];
            key_path = argv[++i];
        } else if (strcmp(argv[i], "--fail-first") == 0 && i + 1 < argc) {
            fail_first = (unsigned)atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: receiver [--port N] [--dir DIR] [--script LIST] "
                            "[--repeat] [--discard] [--fail-first CODE] [--tls CERT KEY]\n");
            return 2;
        }
    }
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)want);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
    if (cert_path) {
        char *cert = slurp(cert_path), *key = slurp(key_path);
        if (!cert || !key)
            die("--tls");
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
        tls[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
        flags |= MHD_USE_TLS;
        scheme = "https";
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)want, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sin, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d)
        die("MHD_start_daemon");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    port = info ? info->port : want;
    printf("listening %u\n", port);
    fflush(stdout);
    char buf[256];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0 || (n == -1 && errno != EINTR))
            break;
    }
    /* no MHD_stop_daemon: it refuses to stop with hung (suspended) requests */
    fflush(stdout);
    _exit(0);
}
