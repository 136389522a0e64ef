/* sidecar/config.h - the rules file (schema version 1) as typed structs.
 *
 * Owns: struct config and everything it points to, freed by config_free,
 * including the compiled PCRE2 patterns. config_parse is pure (buffer in,
 * structs and diagnostics out; environment variables come through a lookup
 * callback); config_load reads the file, and checks who could have written it
 * (privs.h) on the descriptor it reads. Every mistake in a file is reported
 * as a diagnostic with its line and column, all of them in one pass. */
#ifndef STAKEOUT_CONFIG_H
#define STAKEOUT_CONFIG_H

#include "diag.h"
#include "envsubst.h"
#include "rule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define CONFIG_MIN_POLL_NS (100LL * 1000000LL)
#define CONFIG_MAX_HISTORY_SAMPLES 100000
#define CONFIG_DEFAULT_POLL_NS (1LL * 1000000000LL)
#define CONFIG_DEFAULT_HISTORY_NS (900LL * 1000000000LL)
#define CONFIG_DEFAULT_COOLDOWN_NS (600LL * 1000000000LL)
#define CONFIG_DEFAULT_ERROR_PATTERN "\\b(ERROR|FATAL|panic)\\b"
#define CONFIG_DEFAULT_SPOOL_DIR "/var/lib/stakeout"
#define CONFIG_DEFAULT_SPOOL_MAX_BYTES (256ULL * 1024 * 1024)
#define CONFIG_DEFAULT_WEBHOOK_TIMEOUT_NS (5LL * 1000000000LL)
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_NS (5LL * 1000000000LL) /* at most the hook's timeout */
#define CONFIG_DEFAULT_MAX_AGE_NS (86400LL * 1000000000LL)
#define CONFIG_DEFAULT_MAX_INLINE_BYTES (1024ULL * 1024)
#define CONFIG_DEFAULT_SYMBOL_CACHE_MAX_BYTES (64ULL * 1024 * 1024)
#define CONFIG_MIN_SYMBOL_CACHE_MAX_BYTES (1ULL * 1024 * 1024)
#define CONFIG_MAX_SYMBOL_CACHE_MAX_BYTES (64ULL * 1024 * 1024 * 1024)
#define CONFIG_MAX_WEBHOOKS 64

enum match_kind { MATCH_PID, MATCH_PID_FILE, MATCH_PROCESS, MATCH_CGROUP };

enum log_format { LOG_FORMAT_PLAIN, LOG_FORMAT_CRI };

/* Whose filesystem a log's path is in. TARGET: the target's, as it sees it
 * (read confined to its root when it has one of its own); HOST: stakeout's
 * own (a DaemonSet reading the node's /var/log/containers), where the path
 * may hold the placeholders below and is then a glob(3) pattern. */
enum log_root { LOG_ROOT_TARGET, LOG_ROOT_HOST };

/* In a host log's path: the target's container id (the 64 hex digits in
 * its cgroup path) and its Kubernetes pod's uid (also from the cgroup path).
 * They are filled in when the target's process is known. */
#define LOG_PLACEHOLDER_CONTAINER_ID "${container_id}"
#define LOG_PLACEHOLDER_POD_UID "${pod_uid}"

struct log_spec {
    char *path;               /* owned; HOST: may hold the placeholders */
    enum log_root root;
    enum log_format format;
    char *error_pattern;      /* owned, source text */
    pcre2_code *error_re;     /* owned */
};

struct target_spec {
    char *name;               /* owned */
    enum match_kind match;
    int pid;                  /* MATCH_PID */
    char *match_arg;          /* owned: pid_file path, process regex or cgroup path */
    pcre2_code *process_re;   /* owned, MATCH_PROCESS only */
    struct label *labels;     /* owned */
    size_t nlabels;
    struct log_spec *logs;    /* owned */
    size_t nlogs;
    unsigned line, col;
};

enum webhook_format { WEBHOOK_JSON, WEBHOOK_SLACK, WEBHOOK_ALERTMANAGER, WEBHOOK_MULTIPART };

struct webhook_tls {
    bool insecure_skip_verify; /* certificate checks off for this hook (logged as a warning) */
    char *ca_file;             /* owned, NULL: the system's CA certificates */
};

struct webhook_spec {
    char *url;                /* owned; may hold a secret itself (Slack), never logged */
    enum webhook_format format;
    char *secret;             /* owned, may be NULL; never logged */
    int64_t timeout_ns;       /* one attempt, connection included */
    int64_t connect_timeout_ns; /* <= timeout_ns */
    int64_t max_age_ns;       /* a bundle older than this is given up for this hook */
    uint64_t max_inline_bytes; /* json: attachments inline up to this many bytes in all */
    struct webhook_tls tls;
    unsigned line, col;       /* where the hook starts in its file */
};

struct alert_spec {
    struct webhook_spec *webhooks; /* owned, may be empty: bundles stay in the spool */
    size_t nwebhooks;              /* alert.webhook: 1; alert.webhooks: each, in order */
    char *spool_dir;               /* owned */
    uint64_t spool_max_bytes;
    unsigned max_captures_per_hour;
    char **redact;                 /* owned: extra redaction patterns (PCRE2 sources) */
    size_t nredact;
};

struct config {
    char *path;               /* owned: the file it came from */
    int64_t poll_interval_ns;
    int64_t history_ns;
    struct target_spec *targets; /* owned */
    size_t ntargets;
    struct rule_spec *rules;     /* owned */
    size_t nrules;
    struct alert_spec alert;
    char *listen;             /* owned: "HOST:PORT" of the HTTP endpoint, NULL: off */
    char *capture_token;      /* owned: bearer token of POST /capture, NULL: refused */
    bool dac_read_search;     /* keep CAP_DAC_READ_SEARCH (logs of other users) */
    uint64_t symbol_cache_max_bytes; /* budget of the captures' symbol cache (symbols.h) */
};

/* Parse a rules file held in buf[0..len). name is used for nothing but
 * config->path. lookup (NULL: the process environment) resolves ${VAR}.
 * Returns 0 with *out set, or -EINVAL with every problem in diags. */
int config_parse(const char *name, const char *buf, size_t len, envsubst_lookup_fn lookup,
                 void *lookup_ctx, struct config **out, struct diag_list *diags)
    __attribute__((warn_unused_result));

/* What config_load asks of who could have written the file. */
enum config_trust {
    CONFIG_TRUST_ANY,     /* nothing: the caller vouches for the file (tests, tools) */
    CONFIG_TRUST_WARN,    /* read it, with a warning diagnostic when run would refuse it */
    CONFIG_TRUST_REQUIRE, /* refuse it unless privs_check_rules_fd accepts it */
};

/* Read and parse a file. The file is opened once: the descriptor that
 * privs_check_rules_fd checks (unless trust is CONFIG_TRUST_ANY) is the one
 * that is read, so nothing can be swapped in between. Returns 0, -EINVAL
 * for an invalid file, privs_check_rules_fd's error (-EPERM: others could
 * have written it) with CONFIG_TRUST_REQUIRE, or a negative errno when it
 * cannot be read; with a diagnostic without position for the file as a
 * whole, or diagnostics at their lines, either way. A warning (a diagnostic
 * that starts with "warning: ") may come with a 0. */
int config_load(const char *path, enum config_trust trust, struct config **out,
                struct diag_list *diags) __attribute__((warn_unused_result));

void config_free(struct config *c);

/* Find a target by name, or NULL. */
const struct target_spec *config_target(const struct config *c, const char *name);

const char *webhook_format_name(enum webhook_format f);
const char *match_kind_name(enum match_kind m);

#endif
