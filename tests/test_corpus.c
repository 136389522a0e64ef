/* tests/test_corpus.c - the corpus of malformed rules files in tests/config/bad/.
 *
 * Each file NN-short-name.yaml (NN: two digits or more) opens with one or more comment lines
 *     # expect: LINE:COL: message substring
 * and config_load must reject it with, for every such line, a diagnostic at
 * exactly that line and column whose message contains the substring. A few
 * files also go through the real binary: `stakeout check FILE` must exit 1 and
 * print FILE:LINE:COL: substring on stderr.
 *
 * Files that test unset ${VAR}s use names starting with STAKEOUT_CORPUS_UNSET;
 * the tests remove such variables from the environment first. */
#include "config.h"
#include "diag.h"
#include "xalloc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CORPUS_MIN_FILES 40
#define CORPUS_MAX_EXPECT 32
#define CORPUS_UNSET_PREFIX "STAKEOUT_CORPUS_UNSET"
#define CHILD_DEADLINE_MS 10000

extern char **environ;

struct expect {
    unsigned line, col;
    char text[256];
};

/* The expectations of one corpus file. */
struct corpus_file {
    const char *path; /* borrowed from the glob */
    const char *name; /* basename, within path */
    struct expect expects[CORPUS_MAX_EXPECT];
    size_t nexpects;
};

/* Every .yaml file of tests/config/bad under $STAKEOUT_SOURCE_DIR, sorted.
 * The caller frees g with globfree. */
static void corpus_glob(glob_t *g)
{
    const char *src = getenv("STAKEOUT_SOURCE_DIR");
    char pattern[4096];

    cr_assert_not_null(src, "STAKEOUT_SOURCE_DIR is not set (run the tests through ctest)");
    snprintf(pattern, sizeof pattern, "%s/tests/config/bad/*.yaml", src);
    int rc = glob(pattern, 0, NULL, g);
    cr_assert_eq(rc, 0, "no files match %s", pattern);
}

/* Remove every STAKEOUT_CORPUS_UNSET* variable, for this process and the
 * children it starts. */
static void corpus_clear_env(void)
{
    bool again = true;

    while (again) {
        again = false;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, CORPUS_UNSET_PREFIX, strlen(CORPUS_UNSET_PREFIX)) == 0) {
                char name[256];
                size_t n = strcspn(*e, "=");
                snprintf(name, sizeof name, "%.*s", (int)n, *e);
                cr_assert_eq(unsetenv(name), 0, "unsetenv %s", name);
                again = true; /* environ changed under us: scan again */
                break;
            }
        }
    }
}

/* Read the leading comment lines of path into f. A malformed expect line
 * fails the test (the corpus would silently check less). */
static void corpus_read(const char *path, struct corpus_file *f)
{
    FILE *in = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;

    cr_assert_not_null(in, "%s: %s", path, strerror(errno));
    memset(f, 0, sizeof *f);
    f->path = path;
    f->name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    for (;;) {
        unsigned l, c;
        int used = 0;
        ssize_t len = getline(&line, &cap, in);
        if (len == -1 || line[0] != '#')
            break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (strncmp(line, "# expect:", 9) != 0)
            continue;
        cr_assert(sscanf(line, "# expect: %u:%u: %n", &l, &c, &used) == 2 && used > 0 &&
                      line[used] != '\0' && l > 0 && c > 0,
                  "%s: malformed line '%s' (want '# expect: LINE:COL: text')", f->name, line);
        cr_assert_lt(f->nexpects, CORPUS_MAX_EXPECT, "%s: more than %d expect lines", f->name,
                     CORPUS_MAX_EXPECT);
        struct expect *x = &f->expects[f->nexpects++];
        x->line = l;
        x->col = c;
        cr_assert_lt(strlen(line + used), sizeof x->text, "%s: expect text too long", f->name);
        snprintf(x->text, sizeof x->text, "%s", line + used);
    }
    free(line);
    fclose(in);
}

/* Every diagnostic as "LINE:COL: message" lines, for failure messages. */
static void diags_text(const struct diag_list *d, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < d->n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "  %u:%u: %s\n", d->items[i].line, d->items[i].col,
                         d->items[i].msg);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static bool diag_at(const struct diag_list *d, const struct expect *x)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct diag *e = &d->items[i];
        if (e->line == x->line && e->col == x->col && strstr(e->msg, x->text))
            return true;
    }
    return false;
}

Test(corpus, dir_listed_holds_enough_files_each_with_expect_lines)
{
    glob_t g;

    corpus_glob(&g);
    cr_expect_geq(g.gl_pathc, CORPUS_MIN_FILES, "only %zu files in tests/config/bad", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct corpus_file f;
        corpus_read(g.gl_pathv[i], &f);
        cr_expect_geq(f.nexpects, 1, "%s: no '# expect: LINE:COL: text' line", f.name);
        /* NN-short-name.yaml (two digits or more) */
        size_t n = strlen(f.name), d = strspn(f.name, "0123456789");
        bool named = d >= 2 && n > d + 6 && f.name[d] == '-' &&
                     strspn(f.name + d + 1, "abcdefghijklmnopqrstuvwxyz0123456789-") == n - d - 6;
        cr_expect(named, "%s: name is not NN-short-name.yaml", f.name);
    }
    globfree(&g);
}

Test(corpus, every_file_loaded_fails_with_each_expected_diagnostic)
{
    glob_t g;

    corpus_clear_env();
    corpus_glob(&g);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct corpus_file f;
        struct diag_list d;
        struct config *cfg = NULL;
        char got[8192];

        corpus_read(g.gl_pathv[i], &f);
        diag_init(&d);
        int rc = config_load(f.path, CONFIG_TRUST_ANY, &cfg, &d);
        diags_text(&d, got, sizeof got);
        cr_expect_eq(rc, -EINVAL, "%s: config_load returned %d, want -EINVAL; diagnostics:\n%s",
                     f.name, rc, got);
        for (size_t k = 0; k < f.nexpects; k++) {
            const struct expect *x = &f.expects[k];
            cr_expect(diag_at(&d, x), "%s: no diagnostic at %u:%u containing '%s'; got:\n%s",
                      f.name, x->line, x->col, x->text, got);
        }
        config_free(cfg);
        diag_fini(&d);
    }
    globfree(&g);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct check_run {
    int status;     /* wait status */
    bool timed_out; /* killed at the deadline */
    char *err;      /* stderr, NUL-terminated, owned */
};

/* Run `$STAKEOUT_BIN check path` with stdin and stdout on /dev/null and
 * stderr on a pipe, read the pipe to its end, and reap the child. A child
 * still running at the deadline is killed with SIGKILL, then reaped. No test
 * assertion runs between fork and waitpid, so no child is left behind. */
static void run_check(const char *path, struct check_run *out)
{
    const char *bin = getenv("STAKEOUT_BIN");
    size_t len = 0, cap = 4096;
    int fds[2];
    int read_errno = 0;

    cr_assert_not_null(bin, "STAKEOUT_BIN is not set (run the tests through ctest)");
    cr_assert_neq(pipe2(fds, O_CLOEXEC), -1, "pipe2: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null == -1 || dup2(null, STDIN_FILENO) == -1 || dup2(null, STDOUT_FILENO) == -1 ||
            dup2(fds[1], STDERR_FILENO) == -1)
            _exit(126);
        execl(bin, bin, "check", path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);

    memset(out, 0, sizeof *out);
    out->err = xmalloc(cap);
    long long deadline = now_ms() + CHILD_DEADLINE_MS;
    for (;;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        long long left = deadline - now_ms();
        int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (pr == -1 && errno == EINTR)
            continue;
        if (pr == 0) {
            out->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (pr == -1) {
            read_errno = errno;
            break;
        }
        if (len + 1024 > cap) {
            cap *= 2;
            out->err = xrealloc(out->err, cap);
        }
        ssize_t r = read(fds[0], out->err + len, cap - len - 1);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            read_errno = errno;
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    out->err[len] = '\0';
    close(fds[0]);
    if (read_errno)
        kill(pid, SIGKILL); /* do not wait for a child we stopped listening to */
    pid_t w;
    do {
        w = waitpid(pid, &out->status, 0);
    } while (w == -1 && errno == EINTR);
    cr_assert_eq(w, pid, "waitpid: %s", strerror(errno));
    cr_assert_eq(read_errno, 0, "reading the child's stderr: %s", strerror(read_errno));
}

/* A handful of files through the binary: YAML-level, positions through
 * escapes, expressions, the environment, and many mistakes in one file. */
Test(corpus, check_cli_run_on_bad_file_exits_1_printing_file_line_col, .timeout = 60)
{
    static const char *names[] = {
        "03-yaml-tab-indentation.yaml",        "13-unknown-top-key.yaml",
        "49-regex-error-pattern-escapes.yaml", "56-expr-unclosed-paren.yaml",
        "77-envsubst-unset-variable.yaml",     "91-all-mistakes-at-once.yaml",
    };
    const char *src = getenv("STAKEOUT_SOURCE_DIR");

    cr_assert_not_null(src, "STAKEOUT_SOURCE_DIR is not set (run the tests through ctest)");
    corpus_clear_env();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        struct corpus_file f;
        struct check_run run;

        snprintf(path, sizeof path, "%s/tests/config/bad/%s", src, names[i]);
        corpus_read(path, &f);
        cr_assert_geq(f.nexpects, 1, "%s: no expect lines", names[i]);
        run_check(path, &run);
        cr_expect_not(run.timed_out, "%s: stakeout check did not finish in %d ms", names[i],
                      CHILD_DEADLINE_MS);
        cr_expect(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 1,
                  "%s: wait status 0x%x, want exit code 1; stderr:\n%s", names[i],
                  (unsigned)run.status, run.err);
        for (size_t k = 0; k < f.nexpects; k++) {
            char want[4096 + 300];
            snprintf(want, sizeof want, "%s:%u:%u: %s", path, f.expects[k].line, f.expects[k].col,
                     f.expects[k].text);
            cr_expect(strstr(run.err, want), "%s: stderr lacks '%s'; stderr:\n%s", names[i], want,
                      run.err);
        }
        free(run.err);
    }
}
