/* sidecar/cmd_check.c - `stakeout check FILE...`: validate rules files.
 *
 * Reads each file with config_load and prints every problem as
 * FILE:LINE:COL: message on stderr; a valid file gets one summary line on
 * stdout. A file that `stakeout run` would refuse for who could have written
 * it (privs.h) gets a warning, not a failure: check judges what a file says,
 * and is often run where the file is not deployed (a checkout, CI). Starts
 * nothing and touches no process. */
#include "cmd.h"

#include "config.h"

#include <getopt.h>
#include <stdio.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: stakeout check [options] FILE...\n"
            "\n"
            "Validate rules files. Every mistake is reported as FILE:LINE:COL: message,\n"
            "all of them at once. Exits 0 when every file is valid, 1 otherwise. A file\n"
            "that `stakeout run` would refuse (owned by another user, or that others could\n"
            "write or replace) gets a warning.\n"
            "\n"
            "options:\n"
            "  -q, --quiet   print nothing for valid files\n"
            "  -h, --help    show this help\n");
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool quiet = false;
    int failed = 0;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "stakeout check: no rules file given\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        struct diag_list diags;
        struct config *cfg = NULL;

        diag_init(&diags);
        int rc = config_load(argv[i], CONFIG_TRUST_WARN, &cfg, &diags);
        diag_sort(&diags);
        diag_print(&diags, argv[i], stderr); /* errors, or warnings only */
        if (rc != 0) {
            failed++;
        } else if (!quiet) {
            printf("%s: ok (%zu target%s, %zu rule%s)\n", argv[i], cfg->ntargets,
                   cfg->ntargets == 1 ? "" : "s", cfg->nrules, cfg->nrules == 1 ? "" : "s");
        }
        config_free(cfg);
        diag_fini(&diags);
    }
    fflush(stdout);
    return failed ? 1 : 0;
}
