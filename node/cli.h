/* node/cli.h — the subcommands of the laurel binary (each owns its flags and --help). */
#ifndef LAUREL_CLI_H
#define LAUREL_CLI_H

int cli_node(int argc, char **argv);
int cli_ctl(int argc, char **argv);
int cli_router(int argc, char **argv);
int cli_dev(int argc, char **argv);

#endif
