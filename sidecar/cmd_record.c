/* sidecar/cmd_record.c - `stakeout record`: capture one CPU, wall or memory
 * profile of a running process, or of a command for its life, and write it.
 *
 *   stakeout record -p PID [-d 5s] [-r 99] [--mode cpu|wall|memory] [--threads] -o FILE
 *   stakeout record [options] -o FILE -- CMD ARGS...
 *
 * The format follows the file's extension (.pb.gz pprof, .folded folded
 * stacks, .svg flame graph, .json summary) or -f. Progress goes to a
 * terminal on stderr; a summary of the top functions is printed at the end.
 * SIGINT, SIGTERM and SIGHUP end the capture early: the profile is still
 * written and the target is detached (the sampler's contract). Names are
 * resolved after the capture, with the target running again. */
#include "cmd.h"

#include "flamegraph.h"
#include "folded.h"
#include "memcapture.h"
#include "memptrace.h"
#include "pprof.h"
#include "profile.h"
#include "profsum.h"
#include "sampler.h"
#include "symbols.h"
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RECORD_TOP 10

enum record_format { FMT_NONE, FMT_PPROF, FMT_FOLDED, FMT_SVG, FMT_JSON };

struct record_args {
    int pid;
    int64_t duration_ns;
    bool duration_set;
    unsigned rate;
    enum profile_type mode;
    bool rate_set, method_set;
    enum memcapture_method method; /* memory mode */
    bool gross;                    /* memory: weigh by bytes grown, not held */
    bool threads, quiet;
    double max_stopped;
    const char *output;
    enum record_format format;
    char **cmd;                    /* borrowed from argv; NULL without "--" */
};

/* Set from the signal handler only. */
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_requested = 1;
    stop_signal = sig;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stakeout record -p PID [-d 5s] [-r 99] [--mode cpu|wall|memory] [--threads]\n"
            "                       -o FILE\n"
            "       stakeout record [options] -o FILE -- CMD [ARGS...]\n"
            "\n"
            "Attach to a process for a moment and write a CPU, wall or memory profile of\n"
            "it; or start CMD and profile it for its life. CPU and wall: ptrace, one thread\n"
            "stopped at a time. Memory: every mmap, munmap, brk, mremap and mprotect of\n"
            "the window with its stack, growth charged to the stack, net of what is\n"
            "given back.\n"
            "\n"
            "options:\n"
            "  -p, --pid PID           process to profile\n"
            "  -d, --duration DUR      how long (\"5s\", \"1m\", \"250ms\"); default 5s, or\n"
            "                          until CMD exits\n"
            "  -r, --rate HZ           samples per second per thread, 1..%u (default %u)\n"
            "      --mode MODE         cpu (default): running threads only, the others count\n"
            "                          as idle; wall: every thread, for latency and lock\n"
            "                          waits; memory: what grew the address space, and holds it\n"
            "      --method METHOD     memory: tracepoint (the kernel's syscall tracepoints;\n"
            "                          the target never stops), ptrace, or auto (default:\n"
            "                          tracepoints where allowed)\n"
            "      --gross             memory: weigh stacks by bytes grown, not bytes still\n"
            "                          held at the end\n"
            "      --threads           keep threads apart (folded: a frame per thread; pprof:\n"
            "                          one sample per thread, labelled)\n"
            "  -o, --output FILE       where to write (\"-\": stdout, needs -f)\n"
            "  -f, --format FMT        pprof, folded, svg or json; default: from FILE's\n"
            "                          extension (.pb.gz, .folded, .svg, .json)\n"
            "      --max-stopped PCT   share of time the target may spend stopped before the\n"
            "                          rate is lowered (default 1); memory by ptrace: of each\n"
            "                          500 ms, before the capture ends (default 5)\n"
            "  -q, --quiet             no progress and no summary\n"
            "  -h, --help              show this help\n"
            "\n"
            "Ctrl-C (or SIGTERM, SIGHUP) ends the capture early and still writes the profile.\n"
            "Exit codes: 0 written, 1 failure (no permission, target gone or traced, write\n"
            "error, capture skipped), 2 usage error.\n",
            SAMPLER_MAX_RATE_HZ, SAMPLER_DEFAULT_RATE_HZ);
}

static const char *mode_title(const struct profile *p)
{
    switch (p->type) {
    case PROFILE_TYPE_WALL: return "wall";
    case PROFILE_TYPE_MEMORY: return p->gross ? "memory grown" : "memory held";
    default: return "cpu";
    }
}

/* "12.3MiB", for the summary */
struct bytes_buf {
    char s[32];
};

static struct bytes_buf bytes_text(uint64_t b)
{
    struct bytes_buf out;
    units_format_size((double)b, out.s, sizeof out.s);
    return out;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static enum record_format format_by_name(const char *s)
{
    if (strcmp(s, "pprof") == 0)
        return FMT_PPROF;
    if (strcmp(s, "folded") == 0)
        return FMT_FOLDED;
    if (strcmp(s, "svg") == 0)
        return FMT_SVG;
    if (strcmp(s, "json") == 0)
        return FMT_JSON;
    return FMT_NONE;
}

static enum record_format format_by_extension(const char *path)
{
    if (ends_with(path, ".pb.gz"))
        return FMT_PPROF;
    if (ends_with(path, ".folded"))
        return FMT_FOLDED;
    if (ends_with(path, ".svg"))
        return FMT_SVG;
    if (ends_with(path, ".json"))
        return FMT_JSON;
    return FMT_NONE;
}

static bool parse_uint(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Returns 0, or EXIT_USAGE after saying why. */
static int parse_args(int argc, char **argv, struct record_args *a)
{
    enum { OPT_MODE = 256, OPT_THREADS, OPT_MAX_STOPPED, OPT_METHOD, OPT_GROSS };
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},
        {"duration", required_argument, NULL, 'd'},
        {"rate", required_argument, NULL, 'r'},
        {"mode", required_argument, NULL, OPT_MODE},
        {"threads", no_argument, NULL, OPT_THREADS},
        {"method", required_argument, NULL, OPT_METHOD},
        {"gross", no_argument, NULL, OPT_GROSS},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"max-stopped", required_argument, NULL, OPT_MAX_STOPPED},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct record_args){.rate = SAMPLER_DEFAULT_RATE_HZ, .mode = PROFILE_TYPE_CPU,
                              .duration_ns = SAMPLER_DEFAULT_DURATION_NS};
    const char *fmt = NULL;
    optind = 0; /* reset getopt: argv[0] is "record" */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+p:d:r:o:f:qh", longopts, NULL)) != -1) {
        long v;
        char err[128];
        switch (ch) {
        case 'p':
            if (!parse_uint(optarg, 1, INT_MAX, &v)) {
                fprintf(stderr, "stakeout record: -p: '%s' is not a process id\n", optarg);
                return EXIT_USAGE;
            }
            a->pid = (int)v;
            break;
        case 'd':
            if (units_parse_duration(optarg, strlen(optarg), &a->duration_ns, NULL, err,
                                     sizeof err) < 0) {
                fprintf(stderr, "stakeout record: -d: %s\n", err);
                return EXIT_USAGE;
            }
            if (a->duration_ns <= 0) {
                fprintf(stderr, "stakeout record: -d: the duration must be more than 0\n");
                return EXIT_USAGE;
            }
            a->duration_set = true;
            break;
        case 'r':
            if (!parse_uint(optarg, 1, SAMPLER_MAX_RATE_HZ, &v)) {
                fprintf(stderr, "stakeout record: -r: the rate must be a whole number of Hz "
                                "from 1 to %u\n",
                        SAMPLER_MAX_RATE_HZ);
                return EXIT_USAGE;
            }
            a->rate = (unsigned)v;
            a->rate_set = true;
            break;
        case OPT_MODE:
            if (strcmp(optarg, "cpu") == 0) {
                a->mode = PROFILE_TYPE_CPU;
            } else if (strcmp(optarg, "wall") == 0) {
                a->mode = PROFILE_TYPE_WALL;
            } else if (strcmp(optarg, "memory") == 0) {
                a->mode = PROFILE_TYPE_MEMORY;
            } else {
                fprintf(stderr, "stakeout record: --mode: '%s' is not cpu, wall or memory\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_METHOD:
            if (!memcapture_method_parse(optarg, &a->method)) {
                fprintf(stderr,
                        "stakeout record: --method: '%s' is not auto, tracepoint or ptrace\n",
                        optarg);
                return EXIT_USAGE;
            }
            a->method_set = true;
            break;
        case OPT_GROSS:
            a->gross = true;
            break;
        case OPT_THREADS:
            a->threads = true;
            break;
        case 'o':
            a->output = optarg;
            break;
        case 'f':
            fmt = optarg;
            break;
        case OPT_MAX_STOPPED: {
            char *end;
            double pct = strtod(optarg, &end);
            if (end == optarg || (*end != '\0' && strcmp(end, "%") != 0) || !(pct > 0) ||
                pct > 50) {
                fprintf(stderr, "stakeout record: --max-stopped: '%s' is not a percentage "
                                "above 0 and at most 50\n",
                        optarg);
                return EXIT_USAGE;
            }
            a->max_stopped = pct / 100;
            break;
        }
        case 'q':
            a->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            fprintf(stderr, "stakeout record: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        if (strcmp(argv[optind - 1], "--") != 0) {
            fprintf(stderr, "stakeout record: unexpected argument '%s' (a command goes after "
                            "\"--\")\n",
                    argv[optind]);
            return EXIT_USAGE;
        }
        a->cmd = argv + optind;
    }
    if (a->pid && a->cmd) {
        fprintf(stderr, "stakeout record: give -p PID or a command after \"--\", not both\n");
        return EXIT_USAGE;
    }
    if (!a->pid && !a->cmd) {
        fprintf(stderr, "stakeout record: which process? give -p PID or -- CMD ARGS\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (a->cmd && !a->duration_set)
        a->duration_ns = INT64_MAX; /* for the command's life */
    bool mem = a->mode == PROFILE_TYPE_MEMORY;
    if (mem && a->rate_set) {
        fprintf(stderr, "stakeout record: -r: a memory capture sees every call, at no rate\n");
        return EXIT_USAGE;
    }
    if (!mem && (a->method_set || a->gross)) {
        fprintf(stderr, "stakeout record: %s is for --mode memory\n",
                a->method_set ? "--method" : "--gross");
        return EXIT_USAGE;
    }
    if (!a->output) {
        fprintf(stderr, "stakeout record: -o FILE is required\n");
        return EXIT_USAGE;
    }
    if (fmt) {
        a->format = format_by_name(fmt);
        if (a->format == FMT_NONE) {
            fprintf(stderr, "stakeout record: -f: '%s' is not pprof, folded, svg or json\n", fmt);
            return EXIT_USAGE;
        }
    } else {
        a->format = format_by_extension(a->output);
        if (a->format == FMT_NONE) {
            fprintf(stderr,
                    "stakeout record: cannot tell the format of '%s': use .pb.gz, .folded, "
                    ".svg or .json, or -f\n",
                    a->output);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Fail before attaching when the output cannot be written at all. */
static bool output_writable(const char *path)
{
    if (strcmp(path, "-") == 0)
        return true;
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    return access(dirname(copy), W_OK) == 0;
}

static int write_stream(const struct profile *p, const struct record_args *a, FILE *f,
                        const char *title)
{
    switch (a->format) {
    case FMT_PPROF: {
        struct pprof_opts po = {.per_thread = a->threads};
        return pprof_write_opts(p, &po, f);
    }
    case FMT_FOLDED:
        return folded_write(p, f, a->threads);
    case FMT_SVG:
        return flamegraph_write(p, f, title);
    case FMT_JSON: {
        json_t *j = profsum_json(p, 50);
        int rc = json_dumpf(j, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF ? 0 : -EIO;
        json_decref(j);
        return rc;
    }
    case FMT_NONE:
        break;
    }
    return -EINVAL;
}

/* Write into PATH.tmp, then rename: a reader never sees half a profile. */
static int write_output(const struct profile *p, const struct record_args *a, char *err,
                        size_t errlen)
{
    char title[160];
    snprintf(title, sizeof title, "%s (pid %d), %s", p->comm, p->pid, mode_title(p));
    if (strcmp(a->output, "-") == 0) {
        int rc = write_stream(p, a, stdout, title);
        if (fflush(stdout) == EOF)
            rc = -EIO;
        if (rc < 0)
            snprintf(err, errlen, "cannot write the profile to stdout");
        return rc;
    }
    if (a->format == FMT_PPROF) {
        struct pprof_opts po = {.per_thread = a->threads};
        return pprof_write_file(p, &po, a->output, err, errlen);
    }
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", a->output) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", a->output);
        return -ENAMETOOLONG;
    }
    FILE *f = fopen(tmp, "we");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(e));
        return -e;
    }
    int rc = write_stream(p, a, f, title);
    if (fclose(f) == EOF && rc == 0)
        rc = -EIO;
    if (rc == 0 && rename(tmp, a->output) == -1)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", a->output, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

struct progress {
    const struct record_args *a;
    bool shown;
};

static void show_progress(void *ctx, int64_t elapsed_ns, uint64_t samples)
{
    struct progress *pr = ctx;
    const char *what = pr->a->mode == PROFILE_TYPE_MEMORY ? "calls" : "samples";
    if (pr->a->duration_ns == INT64_MAX)
        fprintf(stderr, "\rrecording: %.1fs, %llu %s   ", (double)elapsed_ns / 1e9,
                (unsigned long long)samples, what);
    else
        fprintf(stderr, "\rrecording: %.1fs / %.1fs, %llu %s   ", (double)elapsed_ns / 1e9,
                (double)pr->a->duration_ns / 1e9, (unsigned long long)samples, what);
    pr->shown = true;
}

static void memory_summary(const struct profile *p, FILE *out)
{
    const struct prof_memory *m = p->mem;
    fprintf(out, "stakeout record: memory of pid %d (%s) in %.2fs by %s: %llu calls, %s grown,",
            p->pid, p->comm, (double)p->duration_ns / 1e9, m ? m->method : "?",
            m ? (unsigned long long)m->calls : 0ULL, bytes_text(m ? m->charged : 0).s);
    fprintf(out, " %s given back, %s still held\n", bytes_text(m ? m->credited : 0).s,
            bytes_text(profile_total_weight(p)).s);
    if (m && m->rss_after)
        fprintf(out, "  resident: %s before, %s after\n", bytes_text(m->rss_before).s,
                bytes_text(m->rss_after).s);
    if (m && strcmp(m->method, "ptrace") == 0)
        fprintf(out, "  stopped: at most %.2f%% of a %lld ms window (a thread of the target)\n",
                m->stopped_share * 100, MEMPTRACE_WINDOW_NS / 1000000);
    for (size_t i = 0; i < p->nnotes; i++)
        fprintf(out, "  note: %s\n", p->notes[i]);
    struct prof_func_share top[RECORD_TOP];
    size_t n = profile_top_functions_by_value(p, top, RECORD_TOP);
    if (n > 0) {
        fprintf(out, "top functions (bytes %s):    self   total\n", p->gross ? "grown" : "held");
        for (size_t i = 0; i < n; i++)
            fprintf(out, "  %6.1f%%  %6.1f%%  %s\n", top[i].self * 100, top[i].total * 100,
                    top[i].function);
    }
}

static void summary(const struct profile *p, const struct record_args *a, FILE *out)
{
    if (p->type == PROFILE_TYPE_MEMORY) {
        memory_summary(p, out);
        if (strcmp(a->output, "-") != 0)
            fprintf(out, "written to %s\n", a->output);
        return;
    }
    double secs = (double)p->duration_ns / 1e9;
    fprintf(out, "stakeout record: %llu samples of pid %d (%s) in %.2fs, %s mode, %u Hz asked, "
                 "%.1f Hz achieved",
            (unsigned long long)profile_total_count(p), p->pid, p->comm, secs,
            p->type == PROFILE_TYPE_WALL ? "wall" : "cpu", p->rate_hz, p->rate_achieved_hz);
    if (p->type == PROFILE_TYPE_CPU)
        fprintf(out, ", %llu idle", (unsigned long long)p->idle_samples);
    fprintf(out, "\n");
    if (p->duration_ns > 0)
        fprintf(out, "  target stopped %.3f%% of the time per sampled thread (%.0f us per stop)\n",
                p->nsamples ? 100.0 * (double)p->stopped_ns / (double)p->nsamples *
                                  p->rate_achieved_hz / 1e9
                            : 0.0,
                p->nsamples ? (double)p->stopped_ns / (double)p->nsamples / 1e3 : 0.0);
    if (p->failed_unwinds)
        fprintf(out, "  %llu samples without a stack\n", (unsigned long long)p->failed_unwinds);
    for (size_t i = 0; i < p->nnotes; i++)
        fprintf(out, "  note: %s\n", p->notes[i]);
    struct prof_func_share top[RECORD_TOP];
    size_t n = profile_top_functions(p, top, RECORD_TOP);
    if (n > 0) {
        fprintf(out, "top functions:    self   total\n");
        for (size_t i = 0; i < n; i++)
            fprintf(out, "  %6.1f%%  %6.1f%%  %s\n", top[i].self * 100, top[i].total * 100,
                    top[i].function);
    }
    if (strcmp(a->output, "-") != 0)
        fprintf(out, "written to %s\n", a->output);
}

/* Start the command; returns its pid once it has exec'd, or -1. */
static pid_t start_command(char **cmd)
{
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) == -1) {
        fprintf(stderr, "stakeout record: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == -1) {
        fprintf(stderr, "stakeout record: fork: %s\n", strerror(errno));
        close(sync[0]);
        close(sync[1]);
        return -1;
    }
    if (pid == 0) {
        close(sync[0]);
        execvp(cmd[0], cmd);
        int e = errno;
        ssize_t w = write(sync[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(sync[1]);
    int e = 0;
    ssize_t r;
    do
        r = read(sync[0], &e, sizeof e);
    while (r == -1 && errno == EINTR);
    close(sync[0]);
    if (r > 0) {
        fprintf(stderr, "stakeout record: cannot run %s: %s\n", cmd[0], strerror(e));
        while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
            ;
        return -1;
    }
    return pid; /* the pipe closed on exec */
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a wait ends at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int cmd_record(int argc, char **argv)
{
    struct record_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!output_writable(a.output)) {
        fprintf(stderr, "stakeout record: cannot write into the directory of %s: %s\n", a.output,
                strerror(errno));
        return 1;
    }
    if (strcmp(a.output, "-") == 0 && a.format == FMT_PPROF && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "stakeout record: not writing gzipped pprof to a terminal\n");
        return EXIT_USAGE;
    }

    int exit_code = 1;
    pid_t child = -1;
    int child_status = -1;
    install_handlers();
    if (a.cmd) {
        child = start_command(a.cmd);
        if (child < 0)
            return 1;
        a.pid = child;
    }

    struct symcache *sc = symcache_new();
    struct progress pr = {.a = &a};
    bool show = !a.quiet && isatty(STDERR_FILENO);
    struct profile *p = NULL;
    char err[PATH_MAX + 512] = "";
    if (a.mode == PROFILE_TYPE_MEMORY) {
        struct memcapture_opts mo = {
            .pid = a.pid, .duration_ns = a.duration_ns, .method = a.method,
            .stop = &stop_requested, .progress = show ? show_progress : NULL,
            .progress_ctx = &pr, .symbols = sc, .max_stopped = a.max_stopped,
            .target_status = child > 0 ? &child_status : NULL,
        };
        rc = memcapture_run(&mo, &p, err, sizeof err);
        if (rc == 0)
            p->gross = a.gross;
    } else {
        struct sampler_opts o = {
            .pid = a.pid, .mode = a.mode, .rate_hz = a.rate, .duration_ns = a.duration_ns,
            .max_stopped = a.max_stopped, .stop = &stop_requested,
            .progress = show ? show_progress : NULL, .progress_ctx = &pr,
            .symbols = sc, .target_status = child > 0 ? &child_status : NULL,
        };
        rc = sampler_capture(&o, &p, err, sizeof err);
    }
    if (pr.shown)
        fprintf(stderr, "\n");
    if (rc < 0) {
        fprintf(stderr, "stakeout record: %s\n", err[0] ? err : strerror(-rc));
        goto out_child;
    }

    symbols_resolve(sc, p);
    if (p->nsamples == 0 && p->aborted) {
        for (size_t i = 0; i < p->nnotes; i++)
            fprintf(stderr, "stakeout record: %s\n", p->notes[i]);
        fprintf(stderr, "stakeout record: no samples captured\n");
    }
    if (write_output(p, &a, err, sizeof err) < 0) {
        fprintf(stderr, "stakeout record: %s\n", err);
        goto out_profile;
    }
    if (!a.quiet)
        summary(p, &a, strcmp(a.output, "-") == 0 ? stderr : stdout);
    exit_code = p->nsamples == 0 && p->aborted ? 1 : 0;

out_profile:
    profile_free(p);
out_child:
    symcache_free(sc);
    if (child > 0 && child_status == -1) {
        /* the command outlived the capture: pass our stop on, then wait for it */
        if (stop_requested)
            kill(child, stop_signal ? stop_signal : SIGTERM);
        while (waitpid(child, &child_status, 0) == -1 && errno == EINTR)
            ;
    }
    if (child > 0 && !a.quiet && child_status != -1) {
        if (WIFEXITED(child_status) && WEXITSTATUS(child_status) != 0)
            fprintf(stderr, "stakeout record: %s exited with status %d\n", a.cmd[0],
                    WEXITSTATUS(child_status));
        else if (WIFSIGNALED(child_status))
            fprintf(stderr, "stakeout record: %s was killed by signal %d\n", a.cmd[0],
                    WTERMSIG(child_status));
    }
    return exit_code;
}
