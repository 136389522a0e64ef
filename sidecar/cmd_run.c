/* sidecar/cmd_run.c - `stakeout run -c FILE`: the daemon (daemon.c). */
#include "cmd.h"

#include "daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stakeout run -c FILE [options]\n"
            "\n"
            "Watch the targets of a rules file, evaluate its rules, capture profiles when\n"
            "they fire and deliver alerts. Logs one line per event on stderr. SIGHUP (or an\n"
            "edit of the file) reloads the rules; SIGTERM or SIGINT stops within seconds,\n"
            "detaching from any target cleanly.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE        rules file (required)\n"
            "      --log-level LEVEL    debug, info (default), warn or error\n"
            "      --log-format FORMAT  logfmt (default) or json\n"
            "      --keep-privileges    do not drop capabilities (tests only)\n"
            "  -h, --help               show this help\n");
}

int cmd_run(int argc, char **argv)
{
    enum { OPT_LEVEL = 256, OPT_FORMAT, OPT_KEEP };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"log-format", required_argument, NULL, OPT_FORMAT},
        {"keep-privileges", no_argument, NULL, OPT_KEEP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct daemon_opts o = {.log_level = SLOG_INFO, .log_format = SLOG_LOGFMT};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.config_path = optarg;
            break;
        case OPT_LEVEL:
            if (!slog_parse_level(optarg, &o.log_level)) {
                fprintf(stderr, "stakeout run: --log-level %s: use debug, info, warn or error\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_FORMAT:
            if (!slog_parse_format(optarg, &o.log_format)) {
                fprintf(stderr, "stakeout run: --log-format %s: use logfmt or json\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_KEEP:
            o.keep_privileges = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!o.config_path || optind < argc) {
        fprintf(stderr, "stakeout run: %s\n",
                o.config_path ? "unexpected argument" : "-c FILE is required");
        usage(stderr);
        return EXIT_USAGE;
    }
    return daemon_run(&o);
}
