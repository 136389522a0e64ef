/* tests/alert_fixture.h - one alert's inputs, built by hand, shared by
 * test_bundle and test_webhook.
 *
 * Owns everything in struct alert_fixture (alert_fixture_fini). The alert:
 * rule "cpu-hot" (when: cpu > 80% and rss > 1GiB, for: 30s, critical, labels
 * team=payments, annotation runbook_url) fired on target "api" (labels
 * service=api and version=${APP_VERSION} = "2.4.1"), pid 4242 on host
 * "node-7", created at FIXTURE_CREATED (2026-11-24T16:12:03.250Z); rule
 * "rss-high" co-fired; 2 firings were suppressed by cooldown and 1 by the
 * budget. Observed: cpu 93.14% > 80% (holds), rss not measured (NaN).
 * The command line and one log line carry secrets (FIXTURE_SECRET_*).
 *
 * The CPU profile (100 samples, leaf first): main;work;alpha 10,
 * main;work;beta 60, main;work;gamma 30. Its baseline: alpha 50, beta 50.
 * So self shares grew for gamma (0 -> 0.3) and beta (0.5 -> 0.6) and fell
 * for alpha; main and work are never a leaf. */
#ifndef STAKEOUT_TEST_ALERT_FIXTURE_H
#define STAKEOUT_TEST_ALERT_FIXTURE_H

#include "bundle.h"

#define FIXTURE_CREATED 1795536723250000000LL /* 2026-11-24T16:12:03.250Z */
#define FIXTURE_CREATED_TEXT "2026-11-24T16:12:03.250Z"
#define FIXTURE_MONO 5000000000000LL        /* the monotonic clock at FIXTURE_CREATED */
#define FIXTURE_START 1795533123000000000LL /* process start, an hour earlier */
#define FIXTURE_SECRET_CMDLINE "hunter2-cmdline"
#define FIXTURE_SECRET_URL "pw-in-url"
#define FIXTURE_SECRET_LOG "tok-in-log-123"
#define FIXTURE_INCIDENT "cpu-hot/api/20261124T161133.250Z"
#define FIXTURE_COFIRING_INCIDENT "rss-high/api/20261124T161153.250Z"

struct alert_fixture {
    struct config *cfg;
    struct event ev;
    struct instance inst;
    struct sample before[3];
    struct sample during[2];
    struct logscan *scan;
    struct alert_log log;
    struct profile *profile, *baseline;
    struct alert_attachment att[3];
    struct redactor *redact;
    struct alert_input in;
};

void alert_fixture_init(struct alert_fixture *fx);
void alert_fixture_fini(struct alert_fixture *fx);

/* A profile of n stacks main;work;<leaf[i]> with count[i] samples each. */
struct profile *alert_fixture_profile(const char *const *leaf, const unsigned *count, size_t n);

#endif
