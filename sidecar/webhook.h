/* sidecar/webhook.h - what one webhook receives for one bundle.
 *
 * Owns: the request it builds (webhook_request_fini). Pure apart from reading
 * the bundle's files from the spool directory it is given. Formats:
 *   json          the bundle, attachments inline as base64 up to a size cap
 *                 (beyond it: left out, said so, kept on disk);
 *   multipart     multipart/form-data: alert.json plus one part per
 *                 attachment, each with its content type (streamed from disk);
 *   slack         a Slack incoming-webhook message (text plus blocks);
 *   alertmanager  an Alertmanager POST /api/v2/alerts array.
 * Signing: with a secret, Standard Webhooks headers webhook-id,
 * webhook-timestamp and webhook-signature (v1, HMAC-SHA256, OpenSSL). */
#ifndef STAKEOUT_WEBHOOK_H
#define STAKEOUT_WEBHOOK_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct webhook_part {
    char name[64];                 /* form field name */
    char filename[256];            /* "" for a plain field */
    char content_type[96];
    char path[4096];               /* streamed from this file, or ... */
    char *data;                    /* ... from memory (owned), when path is "" */
    size_t len;
};

struct webhook_request {
    char content_type[128];        /* of the body; "multipart/form-data" for parts */
    char *body;                    /* owned; NULL when the request is multipart */
    size_t body_len;
    char body_path[4096];          /* or streamed from this file ("" when body is used) */
    struct webhook_part *parts;    /* owned, multipart only */
    size_t nparts;
    char **headers;                /* owned, "Name: value" */
    size_t nheaders;
};

/* Build the request of hook h for the bundle stored in dir (bundle.json and
 * its attachments), at wall time now_s (for the signature timestamp).
 * Returns 0 or a negative errno. */
int webhook_request_build(const struct webhook_spec *h, const char *dir, const char *id,
                          int64_t now_s, struct webhook_request *out)
    __attribute__((warn_unused_result));

void webhook_request_fini(struct webhook_request *r);

/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" for a Standard Webhooks
 * secret ("whsec_<base64>" or raw bytes). body may be read from body_path
 * when body is NULL. Returns 0 or a negative errno. */
int webhook_sign(const char *secret, const char *id, int64_t ts, const char *body, size_t len,
                 const char *body_path, char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
