/* sidecar/httpapi.h - the small HTTP listener: metrics, health, control.
 *
 * Owns: the libmicrohttpd daemon and its thread. Borrows: the handler and
 * its context, which must outlive the listener. The handler runs on the
 * listener's thread: it must take whatever lock guards the state it reads.
 * Off unless the rules file says `listen:`. */
#ifndef STAKEOUT_HTTPAPI_H
#define STAKEOUT_HTTPAPI_H

#include <stddef.h>

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
