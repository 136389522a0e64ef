/* sidecar/cmd.h - the subcommands of the stakeout binary.
 *
 * Each takes the arguments after its name (argv[0] is the subcommand) and
 * returns the process exit code: 0 success, 1 failure or invalid input,
 * 2 usage error. main.c only dispatches to these. */
#ifndef STAKEOUT_CMD_H
#define STAKEOUT_CMD_H

#define EXIT_USAGE 2

int cmd_check(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_record(int argc, char **argv);

#endif
