/* sidecar/httpapi.c - libmicrohttpd listener; see httpapi.h. */
#include "httpapi.h"

#include "slog.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct httpapi {
    struct MHD_Daemon *mhd;
    http_handler_fn fn;
    void *ctx;
    unsigned port;
};

struct http_req {
    struct MHD_Connection *conn;
    const char *method, *path;
};

const char *http_req_method(const struct http_req *r)
{
    return r->method;
}

const char *http_req_path(const struct http_req *r)
{
    return r->path;
}

const char *http_req_query(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_resp_text(struct http_resp *resp, int status, const char *content_type, const char *text)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "%s", content_type);
    free(resp->body);
    resp->len = strlen(text);
    resp->body = xstrndup(text, resp->len);
}

/* Queue resp (its body is taken) on conn. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, struct http_resp *resp)
{
    if (!resp->body) {
        resp->body = xstrdup("");
        resp->len = 0;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(resp->body);
        resp->body = NULL;
        return MHD_NO;
    }
    resp->body = NULL; /* the response's now */
    if (resp->content_type[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    if (resp->www_authenticate[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, resp->www_authenticate);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The status refusing the body the headers announce, 0 when it may come:
 * none of the endpoints reads one, so only a small one is let through. */
static unsigned refuse_body(struct MHD_Connection *conn)
{
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (te)
        return MHD_HTTP_LENGTH_REQUIRED;
    if (!cl)
        return 0;
    /* libmicrohttpd has refused a malformed Content-Length already */
    errno = 0;
    unsigned long long n = strtoull(cl, NULL, 10);
    return errno != 0 || n > HTTPAPI_MAX_BODY ? MHD_HTTP_CONTENT_TOO_LARGE : 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct httpapi *h = cls;
    static int first_call, refused;
    (void)version;
    (void)upload_data;

    if (*con_cls == NULL) {
        /* the headers are in: a body too big is refused before it is
         * read (the connection is then closed); a small one is ignored */
        unsigned refuse = refuse_body(conn);
        *con_cls = refuse ? &refused : &first_call;
        if (refuse == 0)
            return MHD_YES;
        struct http_resp resp = {0};
        char msg[128] = "a request body needs a Content-Length\n";
        if (refuse == MHD_HTTP_CONTENT_TOO_LARGE)
            snprintf(msg, sizeof msg, "request bodies are limited to %d bytes\n", HTTPAPI_MAX_BODY);
        http_resp_text(&resp, (int)refuse, "text/plain", msg);
        return send_resp(conn, &resp);
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is ignored */
        return MHD_YES;
    }
    if (*con_cls == &refused)
        return MHD_YES; /* answered already */
    struct http_req req = {conn, method, url};
    struct http_resp resp = {0};
    resp.status = 500;
    h->fn(h->ctx, &req, &resp);
    return send_resp(conn, &resp);
}

/* libmicrohttpd's own messages (a connection refused over a limit, an
 * accept that failed) as log lines, not bare text on stderr. */
__attribute__((format(printf, 2, 0))) /* fmt is libmicrohttpd's */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    slog(SLOG_WARN, "http listener", "detail", msg, NULL);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host) {
        snprintf(err, errlen, "listen '%s' is not HOST:PORT", listen);
        return -EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "listen '%s': bad port", listen);
        return -EINVAL;
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(err, errlen, "listen '%s': '%s' is not an IPv4 address", listen, host);
        return -EINVAL;
    }
    return 0;
}

int httpapi_start(const char *listen, http_handler_fn fn, void *ctx, struct httpapi **out,
                  char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int rc = parse_listen(listen, &sa, err, errlen);
    if (rc != 0)
        return rc;
    struct httpapi *h = xcalloc(1, sizeof *h);
    h->fn = fn;
    h->ctx = ctx;
    /* epoll: connections may have any descriptor number; the logger first,
     * or libmicrohttpd prints what the options say on its own */
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPAPI_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTPAPI_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)HTTPAPI_MAX_PER_CLIENT, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno ? errno : EADDRINUSE));
        free(h);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : ntohs(sa.sin_port);
    *out = h;
    return 0;
}

void httpapi_stop(struct httpapi *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    free(h);
}

unsigned httpapi_port(const struct httpapi *h)
{
    return h->port;
}
