/* sidecar/httpapi.h - the small HTTP listener: metrics, health, control.
 *
 * Owns: the libmicrohttpd daemon and its thread. Borrows: the handler and
 * its context, which must outlive the listener. The handler runs on the
 * listener's thread: it must take whatever lock guards the state it reads.
 * Off unless the rules file says `listen:`.
 *
 * What a client may take: HTTPAPI_MAX_CONNECTIONS connections in all, and
 * HTTPAPI_MAX_PER_CLIENT of them from one address (more are closed at
 * once), so one host cannot hold every slot until the liveness probe
 * fails; a connection idle for HTTPAPI_TIMEOUT_S is closed. No endpoint
 * reads a body: one over HTTPAPI_MAX_BODY bytes is refused with 413 before
 * it is read, one of unknown length (chunked) with 411. The listener polls
 * with epoll, so a connection's descriptor may be any number (select(2)
 * refuses those from FD_SETSIZE, 1,024, on). */
#ifndef STAKEOUT_HTTPAPI_H
#define STAKEOUT_HTTPAPI_H

#include <stddef.h>

#define HTTPAPI_MAX_CONNECTIONS 32
#define HTTPAPI_MAX_PER_CLIENT 4 /* two kubelet probes, a scraper and a curl */
#define HTTPAPI_MAX_BODY 4096
#define HTTPAPI_TIMEOUT_S 10

struct http_req;

struct http_resp {
    int status;
    char content_type[96];
    char *body;                    /* owned by the listener once returned (malloc'd) */
    size_t len;
    char www_authenticate[64];     /* sent when not empty (401) */
};

typedef void (*http_handler_fn)(void *ctx, const struct http_req *req, struct http_resp *resp);

struct httpapi;

/* Listen on "HOST:PORT" (port 0: any free port). Returns 0 with *out set, or
 * a negative errno with a message in err. */
int httpapi_start(const char *listen, http_handler_fn fn, void *ctx, struct httpapi **out,
                  char *err, size_t errlen) __attribute__((warn_unused_result));
void httpapi_stop(struct httpapi *h);

/* The port actually bound. */
unsigned httpapi_port(const struct httpapi *h);

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);
/* A query argument or a header, NULL when absent. */
const char *http_req_query(const struct http_req *r, const char *name);
const char *http_req_header(const struct http_req *r, const char *name);

/* Fill resp with a text body (copied). */
void http_resp_text(struct http_resp *resp, int status, const char *content_type, const char *text);

#endif
