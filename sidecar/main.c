/* sidecar/main.c - the stakeout binary: dispatch argv to a subcommand.
 *
 * Nothing else lives here; each subcommand is in its cmd_*.c file. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#ifndef STAKEOUT_VERSION
#define STAKEOUT_VERSION "0.0.0-dev"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"check", cmd_check, "validate rules files (FILE:LINE:COL: message for each mistake)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: stakeout <command> [options]\n"
                 "\n"
                 "stakeout watches a production process, evaluates YAML trigger rules and,\n"
                 "when one fires, captures a profile and delivers it with context.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "version", "print the version");
    fprintf(out, "  %-10s %s\n", "help", "show this help, or a command's (help COMMAND)");
    fprintf(out, "\n"
                 "Run 'stakeout <command> --help' for a command's options.\n"
                 "Exit codes: 0 success, 1 failure or invalid input, 2 usage error.\n");
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && strcmp(argv[2], "--help") != 0 && strcmp(argv[2], "-h") != 0) {
            fprintf(stderr, "stakeout version: takes no arguments\n");
            return EXIT_USAGE;
        }
        if (argc > 2) {
            printf("usage: stakeout version\n\nPrint the version of stakeout.\n");
            return 0;
        }
        printf("stakeout %s\n", STAKEOUT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return 0;
        }
        const struct command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "stakeout help: unknown command '%s'\n", argv[2]);
            return EXIT_USAGE;
        }
        char *help_argv[] = {(char *)c->name, "--help", NULL};
        return c->run(2, help_argv);
    }
    const struct command *c = find(cmd);
    if (!c) {
        fprintf(stderr, "stakeout: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
