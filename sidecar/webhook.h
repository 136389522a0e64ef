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
 * webhook-timestamp and webhook-signature (v1, HMAC-SHA256, OpenSSL).
 *
 * What each format sends (the README, "Alerts", has examples):
 *   json          body: the bundle, each attachments[] entry completed with
 *                 "path" (on the host) and either "inline": true, "encoding":
 *                 "base64", "data", or "inline": false and a "reason" ("over
 *                 the inline cap" once the attachments inlined so far and
 *                 this one would exceed h->max_inline_bytes).
 *   multipart     parts[0]: name "alert", filename "alert.json", the stored
 *                 bundle.json streamed from path; then one part per
 *                 attachment present on disk, name and filename its file
 *                 name, with its content type, streamed from path. The
 *                 request's content_type is plain "multipart/form-data": the
 *                 sender (curl_mime) picks the boundary.
 *   slack         body: {"text", "blocks"}: a header, a section with rule and
 *                 target fields, the observed values, the top five functions
 *                 (or why there is no profile), and a context block naming
 *                 where the artifacts are (host:dir and file names).
 *   alertmanager  body: [postableAlert] with labels (the target's, the
 *                 rule's, then alertname, target and severity), annotations
 *                 (summary, description, top_functions, artifacts, incident,
 *                 bundle_id, then the rule's own, which win), startsAt (when
 *                 the episode began) and, once resolved, endsAt.
 *
 * Signed content is "<id>.<timestamp>.<body>": for multipart the body is
 * the alert.json part (it lists every attachment's size and sha256, so the
 * files are covered through it). Secrets never appear in a body or header
 * other than as the signature. */
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
    size_t len;                    /* bytes of data, or of the file when it was built */
};

struct webhook_request {
    char content_type[128];        /* of the body (not in headers); "multipart/form-data" for parts */
    char *body;                    /* owned; NULL when the request is multipart */
    size_t body_len;
    char body_path[4096];          /* or streamed from this file ("" when body is used) */
    struct webhook_part *parts;    /* owned, multipart only */
    size_t nparts;
    char **headers;                /* owned, "Name: value": User-Agent, and webhook-id,
                                      webhook-timestamp, webhook-signature when signed */
    size_t nheaders;
};

/* Build the request of hook h for the bundle stored in dir (bundle.json and
 * its attachments), at wall time now_s (for the signature timestamp). id is
 * the webhook-id: the bundle id, the same for every attempt. Signed when
 * h->secret is set. Returns 0 or a negative errno: -ENOENT without
 * bundle.json, -EINVAL when it does not parse or the secret is a "whsec_"
 * one that is not base64, -EFBIG for a bundle.json over 64 MiB. */
int webhook_request_build(const struct webhook_spec *h, const char *dir, const char *id,
                          int64_t now_s, struct webhook_request *out)
    __attribute__((warn_unused_result));

void webhook_request_fini(struct webhook_request *r);

/* (Re)sign a built request at now_s, replacing its webhook-* headers: a
 * retry long after the build must carry a fresh timestamp (receivers allow
 * five minutes). Returns 0 or a negative errno. */
int webhook_request_sign(const char *secret, const char *id, int64_t now_s,
                         struct webhook_request *r) __attribute__((warn_unused_result));

/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" for a Standard Webhooks
 * secret ("whsec_<base64>" or raw bytes). body may be read from body_path
 * when body is NULL. out needs 48 bytes. Returns 0 or a negative errno
 * (-EINVAL for a whsec_ secret that is not base64, -ENOSPC when out is too
 * small, the errno of reading body_path). */
int webhook_sign(const char *secret, const char *id, int64_t ts, const char *body, size_t len,
                 const char *body_path, char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
