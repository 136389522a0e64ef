/* tests/test_logwatch.c - all the logs of a rules file (sidecar/logwatch):
 * the one total that the lines every log keeps for alerts share, checked
 * on real files followed through logtail. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "logwatch.h"

#define S 1000000000LL

static char dir[256];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_logwatch.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TestSuite(logwatch, .init = setup, .fini = teardown, .timeout = 60);

Test(logwatch, kept_max_shares_the_total_among_logs)
{
    cr_assert_eq(logwatch_kept_max(0), LOGSCAN_KEPT_MAX);
    cr_assert_eq(logwatch_kept_max(1), LOGSCAN_KEPT_MAX);
    cr_assert_eq(logwatch_kept_max(28), LOGSCAN_KEPT_MAX);
    cr_assert_lt(logwatch_kept_max(29), LOGSCAN_KEPT_MAX);
    size_t prev = LOGSCAN_KEPT_MAX;
    for (size_t n = 1; n <= 4000; n++) {
        size_t k = logwatch_kept_max(n);
        cr_assert_leq(k, prev, "more logs, longer lines at %zu", n);
        cr_assert_geq(k, LOGWATCH_KEPT_MIN);
        if (k > LOGWATCH_KEPT_MIN)
            cr_assert_leq((unsigned long long)n * LOGSCAN_KEPT_LINES * (k + 1), LOGWATCH_KEPT_BYTES,
                          "%zu logs of %zu bytes a line", n, k);
        prev = k;
    }
    cr_assert_eq(logwatch_kept_max(4000), LOGWATCH_KEPT_MIN);
}

/* A rules file with ntargets targets of nper logs each, DIR/T-L.log. */
static struct config *config_with_logs(size_t ntargets, size_t nper)
{
    size_t cap = 256 + ntargets * (64 + nper * 320), len = 0;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    len += (size_t)snprintf(text + len, cap - len, "version: 1\nrules: []\ntargets:\n");
    for (size_t t = 0; t < ntargets; t++) {
        len += (size_t)snprintf(text + len, cap - len,
                                "  - name: t%zu\n    match: {pid: 1}\n    logs:\n", t);
        for (size_t l = 0; l < nper; l++)
            len += (size_t)snprintf(text + len, cap - len, "      - path: %s/%zu-%zu.log\n", dir, t,
                                    l);
    }
    cr_assert_lt(len, cap);
    struct diag_list d;
    struct config *c = NULL;
    diag_init(&d);
    int rc = config_parse("logs.yaml", text, len, NULL, NULL, &c, &d);
    cr_assert_eq(rc, 0, "%s", d.n ? d.items[0].msg : "");
    diag_fini(&d);
    free(text);
    return c;
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "ae");
    cr_assert_not_null(f, "%s", path);
    cr_assert_geq(fputs(text, f), 0);
    cr_assert_eq(fclose(f), 0);
}

Test(logwatch, all_logs_together_keep_at_most_the_total)
{
    const size_t ntargets = 3, nper = 20, nlogs = ntargets * nper;
    struct config *cfg = config_with_logs(ntargets, nper);
    char err[256] = "", path[512];
    struct logwatch *lw = logwatch_new(cfg, err, sizeof err);
    cr_assert_not_null(lw, "%s", err);
    size_t each = logwatch_kept_max(nlogs);
    cr_assert_lt(each, LOGSCAN_KEPT_MAX, "%zu logs share the total", nlogs);

    for (size_t t = 0; t < ntargets; t++) {
        for (size_t l = 0; l < nper; l++) {
            snprintf(path, sizeof path, "%s/%zu-%zu.log", dir, t, l);
            append(path, "");
        }
    }
    logwatch_poll(lw, 1 * S, 1 * S); /* follows each file from its end */

    /* 40 lines of 3000 bytes in every log, every other one a match */
    char *line = malloc(3002);
    cr_assert_not_null(line);
    memset(line, 'x', 3000);
    line[3000] = '\n';
    line[3001] = '\0';
    for (size_t t = 0; t < ntargets; t++) {
        for (size_t l = 0; l < nper; l++) {
            snprintf(path, sizeof path, "%s/%zu-%zu.log", dir, t, l);
            for (int k = 0; k < 40; k++) {
                memcpy(line, k % 2 ? "ERROR " : "info  ", 6);
                append(path, line);
            }
        }
    }
    logwatch_poll(lw, 2 * S, 2 * S);

    size_t total = 0, seen = 0;
    for (size_t t = 0; t < ntargets; t++) {
        for (size_t i = 0;; i++) {
            const char *p = NULL;
            const struct logscan *s = logwatch_scanner(lw, t, i, &p);
            if (!s)
                break;
            struct logscan_stats st;
            logscan_stats(s, &st);
            cr_assert_eq(st.matched, 20, "%s: %llu matches", p, (unsigned long long)st.matched);
            cr_assert_eq(logscan_kept_max(s), each);
            cr_assert_eq(logscan_nmatches(s), LOGSCAN_KEEP);
            const struct logscan_match *m = logscan_match_at(s, LOGSCAN_KEEP - 3);
            cr_assert_eq(m->line.len, each);
            cr_assert(m->line.cut);
            cr_assert_eq(m->nbefore, LOGSCAN_CONTEXT);
            cr_assert_eq(m->nafter, LOGSCAN_CONTEXT);
            total += logscan_kept_bytes(s);
            seen++;
        }
    }
    cr_log_info("%zu logs keep %zu bytes of lines (%zu of each line)", seen, total, each);
    cr_assert_eq(seen, nlogs);
    cr_assert_leq(total, LOGWATCH_KEPT_BYTES);
    cr_assert_gt(total, LOGWATCH_KEPT_BYTES / 10 * 9, "the logs did keep their lines");

    free(line);
    logwatch_free(lw);
    config_free(cfg);
}
