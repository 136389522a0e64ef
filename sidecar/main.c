/* sidecar/main.c - the stakeout binary: dispatch argv to a subcommand.
 *
 * Nothing else lives here; each real subcommand is in its cmd_*.c file.
 * `version` and `help` are small enough to stay. */
#include "cmd.h"

#include <stdbool.h>
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

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"check", cmd_check, "validate rules files (FILE:LINE:COL: message for each mistake)"},
    {"status", cmd_status, "show the processes a rules file matches, their metrics and rules"},
    {"record", cmd_record, "capture a CPU profile of a process (or a command) and write it"},
    {"run", cmd_run, "watch the targets, evaluate the rules, capture and deliver alerts"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help, or a command's (help COMMAND)"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: stakeout <command> [options]\n"
                 "\n"
                 "stakeout watches a production process, evaluates YAML trigger rules and,\n"
                 "when one fires, captures a profile and delivers it with context.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "Run 'stakeout <command> --help' for a command's options.\n"
                 "Exit codes: 0 success, 1 failure or invalid input, 2 usage error.\n");
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && is_help(argv[1])) {
        printf("usage: stakeout version\n\nPrint the version of stakeout and the one "
               "architecture it runs on.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "stakeout version: takes no arguments\n");
        return EXIT_USAGE;
    }
    /* the second line is for whoever wonders why there is no arm64 build */
    printf("stakeout %s\n"
           "x86-64 Linux only: stack unwinding reads x86-64 registers\n",
           STAKEOUT_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    if (is_help(argv[1])) {
        printf("usage: stakeout help [COMMAND]\n\nShow the list of commands, or one's options.\n");
        return 0;
    }
    const struct command *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "stakeout help: unknown command '%s'\n", argv[1]);
        return EXIT_USAGE;
    }
    char *help_argv[] = {(char *)c->name, "--help", NULL};
    return c->run(2, help_argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    const char *name = strcmp(argv[1], "--version") == 0 ? "version" : argv[1];
    const struct command *c = find(name);
    if (!c) {
        fprintf(stderr, "stakeout: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
