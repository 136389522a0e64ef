/* tests/test_cli.c - the stakeout binary: subcommands, help, exit codes, and
 * `stakeout check` over every file shipped in rules/. */
#include <criterion/criterion.h>

#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>

#include "support/spawn.h"

/* Run stakeout with up to 8 arguments. */
static struct spawn_result run(const char *a1, const char *a2, const char *a3)
{
    char *argv[5] = {(char *)spawn_stakeout_bin(), (char *)a1, (char *)a2, (char *)a3, NULL};
    struct spawn_result r;
    cr_assert_eq(spawn_capture(argv, NULL, 10000, &r), 0);
    cr_assert_not(r.timed_out);
    return r;
}

Test(cli, no_arguments_is_usage_error)
{
    struct spawn_result r = run(NULL, NULL, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "usage: stakeout <command>"), "%s", r.err);
    spawn_result_fini(&r);
}

Test(cli, help_lists_commands_and_exits_zero)
{
    struct spawn_result r = run("--help", NULL, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "check"));
    cr_assert(strstr(r.out, "version"));
    spawn_result_fini(&r);
    r = run("help", NULL, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "commands:"));
    spawn_result_fini(&r);
}

Test(cli, every_command_has_help)
{
    static const char *cmds[] = {"check", "version", "help"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct spawn_result r = run(cmds[i], "--help", NULL);
        cr_assert_eq(r.status, 0, "%s --help: %d", cmds[i], r.status);
        cr_assert(strstr(r.out, "usage: stakeout"), "%s --help: %s", cmds[i], r.out);
        spawn_result_fini(&r);
        r = run("help", cmds[i], NULL);
        cr_assert_eq(r.status, 0, "help %s", cmds[i]);
        spawn_result_fini(&r);
    }
}

Test(cli, version_prints_version)
{
    struct spawn_result r = run("version", NULL, NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "stakeout ", 9) == 0 && strchr(r.out, '.'), "%s", r.out);
    cr_assert(strstr(r.out, "\nx86-64 Linux only"), "the one architecture: %s", r.out);
    spawn_result_fini(&r);
    r = run("version", "extra", NULL);
    cr_assert_eq(r.status, 2);
    spawn_result_fini(&r);
}

Test(cli, unknown_command_is_usage_error)
{
    struct spawn_result r = run("frobnicate", NULL, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown command 'frobnicate'"), "%s", r.err);
    spawn_result_fini(&r);
    r = run("help", "frobnicate", NULL);
    cr_assert_eq(r.status, 2);
    spawn_result_fini(&r);
}

Test(cli, check_without_file_or_with_bad_option_is_usage_error)
{
    struct spawn_result r = run("check", NULL, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "no rules file"), "%s", r.err);
    spawn_result_fini(&r);
    r = run("check", "--bogus", "x.yaml");
    cr_assert_eq(r.status, 2);
    spawn_result_fini(&r);
}

Test(cli, check_missing_file_fails_naming_it)
{
    struct spawn_result r = run("check", "/nonexistent/r.yaml", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "/nonexistent/r.yaml: cannot open: No such file or directory"), "%s",
              r.err);
    spawn_result_fini(&r);
}

/* Every rules file we ship must be valid: rules/ and rules/examples/. */
Test(cli, check_accepts_every_shipped_rules_file, .timeout = 60)
{
    static const char *patterns[] = {"rules/*.yaml", "rules/examples/*.yaml"};
    size_t total = 0;
    for (size_t p = 0; p < 2; p++) {
        char pat[4096];
        glob_t g;
        snprintf(pat, sizeof pat, "%s/%s", spawn_source_dir(), patterns[p]);
        int rc = glob(pat, 0, NULL, &g);
        cr_assert_eq(rc, 0, "no files match %s", pat);
        for (size_t i = 0; i < g.gl_pathc; i++) {
            struct spawn_result r = run("check", g.gl_pathv[i], NULL);
            cr_assert_eq(r.status, 0, "%s:\n%s", g.gl_pathv[i], r.err);
            cr_assert(strstr(r.out, ": ok ("), "%s", r.out);
            spawn_result_fini(&r);
            total++;
        }
        globfree(&g);
    }
    cr_assert_geq(total, 3, "rules/ must hold default.yaml, demo.yaml and examples");
}

Test(cli, check_reports_all_files_and_fails_if_any_is_bad)
{
    char good[4096], bad[] = "/tmp/stakeout-cli-bad-XXXXXX";
    snprintf(good, sizeof good, "%s/rules/default.yaml", spawn_source_dir());
    int fd = mkstemp(bad);
    cr_assert_neq(fd, -1);
    const char text[] = "version: 1\ntargets: []\nrules: [{name: x, when: 'cpu >> 5'}]\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct spawn_result r = run("check", bad, good);
    unlink(bad);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "default.yaml: ok"), "the valid file is still reported: %s", r.out);
    char want[256];
    snprintf(want, sizeof want, "%s:2:10: targets is empty", bad);
    cr_assert(strstr(r.err, want), "%s", r.err);
    snprintf(want, sizeof want, "%s:3:31: when: expected a value after '>'", bad);
    cr_assert(strstr(r.err, want), "%s", r.err);
    spawn_result_fini(&r);
}

static char env_dir[] = "/tmp/stakeout-cli-env-XXXXXX", env_rules[64];

static void env_cleanup(void)
{
    unlink(env_rules);
    rmdir(env_dir);
}

/* A variable may hold a secret (a Slack webhook URL holds a token): every
 * command that reads a rules file reports a mistake in an expanded value at
 * its FILE:LINE:COL, naming the variable and never printing its value. */
Test(cli, expanded_secret_is_never_printed, .timeout = 60, .fini = env_cleanup)
{
    static const char text[] = "version: 1\n"
                               "targets: [{name: api, match: {pid: 1}}]\n"
                               "rules: []\n"
                               "alert:\n"
                               "  webhook:\n"
                               "    url: '${SLACK_HOOK_URL}'\n";
    char *path = env_rules, want[160];
    char *env[] = {"SLACK_HOOK_URL=https://hooks.slack.com:99999/services/T0001/B0001/xoxsecret42",
                   NULL};
    cr_assert_not_null(mkdtemp(env_dir));
    snprintf(env_rules, sizeof env_rules, "%s/rules.yaml", env_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    snprintf(want, sizeof want, "%s:6:10: webhook url '${SLACK_HOOK_URL}'", path);

    char *const cmds[][4] = {
        {"check", path, NULL, NULL}, {"status", "-c", path, NULL}, {"run", "-c", path, NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *argv[] = {(char *)spawn_stakeout_bin(), cmds[i][0], cmds[i][1], cmds[i][2], NULL};
        struct spawn_result r;
        cr_assert_eq(spawn_capture(argv, env, 20000, &r), 0);
        cr_assert_not(r.timed_out, "%s", cmds[i][0]);
        cr_assert_eq(r.status, 1, "%s: exit %d\n%s", cmds[i][0], r.status, r.err);
        cr_assert(strstr(r.err, want), "%s: no '%s' in:\n%s", cmds[i][0], want, r.err);
        cr_assert(strstr(r.err, "not a valid URL"), "%s: %s", cmds[i][0], r.err);
        for (size_t k = 0; k < 2; k++) {
            const char *printed = k ? r.err : r.out;
            cr_assert_null(strstr(printed, "xoxsecret42"), "%s printed the secret:\n%s", cmds[i][0],
                           printed);
            cr_assert_null(strstr(printed, "T0001"), "%s printed the URL:\n%s", cmds[i][0],
                           printed);
        }
        spawn_result_fini(&r);
    }
}

static char own_dir[] = "/tmp/stakeout-cli-own-XXXXXX", own_rules[64];

static void own_cleanup(void)
{
    unlink(own_rules);
    rmdir(own_dir);
}

/* Whoever owns the rules file decides what stakeout attaches to: `run` and
 * `status` refuse a file another user owns; `check`, which judges what a
 * file says (often far from where it is deployed), warns and still
 * validates. Once the file is root's, the warning is gone. */
Test(cli, file_another_user_owns_is_refused_by_run_and_status_and_warned_by_check, .timeout = 60,
     .fini = own_cleanup)
{
    static const char text[] = "version: 1\ntargets: [{name: api, match: {pid: 1}}]\nrules: []\n";
    char want[200];
    if (geteuid() != 0) {
        cr_assert_null(getenv("CI"), "changing a file's owner needs root");
        cr_skip_test("changing a file's owner needs root");
    }
    cr_assert_not_null(mkdtemp(own_dir));
    snprintf(own_rules, sizeof own_rules, "%s/rules.yaml", own_dir);
    FILE *f = fopen(own_rules, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chown(own_rules, 65534, 65534), 0);

    struct spawn_result r = run("check", own_rules, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    snprintf(want, sizeof want, "%s: ok (1 target, 0 rules)", own_rules);
    cr_assert(strstr(r.out, want), "%s", r.out);
    snprintf(want, sizeof want,
             "%s: warning: stakeout run would refuse this file: the rules file is owned by "
             "uid 65534",
             own_rules);
    cr_assert(strstr(r.err, want), "%s", r.err);
    spawn_result_fini(&r);

    snprintf(want, sizeof want, "%s: the rules file is owned by uid 65534", own_rules);
    r = run("status", "-c", own_rules);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, want), "%s", r.err);
    cr_assert_str_eq(r.out, "");
    spawn_result_fini(&r);
    r = run("run", "-c", own_rules);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, want), "%s", r.err);
    cr_assert(strstr(r.err, "refusing to start"), "%s", r.err);
    spawn_result_fini(&r);

    cr_assert_eq(chown(own_rules, 0, 0), 0);
    r = run("check", own_rules, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.err, "");
    spawn_result_fini(&r);
}
