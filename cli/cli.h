/* cli/cli.h — the subcommands of the laurel binary (each owns its flags and --help). */
#ifndef LAUREL_CLI_H
#define LAUREL_CLI_H

#include <stdio.h>

int cli_node(int argc, char **argv);
int cli_ctl(int argc, char **argv);
int cli_router(int argc, char **argv);
int cli_dev(int argc, char **argv);

/* `laurel ctl`'s commands that talk HTTP to a router (cli/cli_ctl_api.c). */

/**
 * Run the HTTP command named by argv[0] (and argv[1] for two-word commands such as
 * `player put`); argv[0] is not a program name. argv may be permuted (getopt).
 * @return the process's exit code: 0 on a 2xx answer, 1 on an HTTP or connection error,
 * 2 on a usage error (0 for --help).
 */
int cli_ctl_api(int argc, char **argv);

/** Print the synopsis and summary of each HTTP command whose first word is @word (NULL: all). */
void cli_ctl_api_usage(FILE *f, const char *word);

/** Print the options the HTTP commands share (router address, keys, timeout) and exit codes. */
void cli_ctl_api_options(FILE *f);

#endif
