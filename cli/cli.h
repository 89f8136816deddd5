/* cli/cli.h — the subcommands of the laurel binary (each owns its flags and --help). */
#ifndef LAUREL_CLI_H
#define LAUREL_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "../conf/cluster.h"

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

/* `--config FILE` (cli/cli_conf.c): the cluster file's values as flags. */

/** An argument vector built for getopt: argv[argc] is NULL; every string is owned. */
struct cli_argv {
    int argc, cap;
    char **argv;
};

/** Free what @a holds and empty it. */
void cli_argv_free(struct cli_argv *a);

/**
 * The command line of replica @id of @group ("meta" or a region) from the cluster file @c
 * (read from @path, named in messages): argv[0], the file's --peer flags (none when
 * @own_peers: the command line has its own), --data DATA_DIR/<group>-<id>, --cluster-key-file
 * and the node limits, then argv[1..argc-1], so that flags given there override the file's.
 * @c and @argv are borrowed for the call; @out (zeroed by the caller) is the caller's to free
 * with cli_argv_free on 0.
 * @return 0; 2 (a usage error, printed) when the group or replica is not in the file; 1 when
 * out of memory.
 */
int cli_conf_node_argv(const char *path, const struct conf_cluster *c, const char *group,
                       uint64_t id, int own_peers, int argc, char **argv, struct cli_argv *out);

/**
 * Likewise for router @id (NULL when --id was not given; then the file must list no router):
 * --http, --region and --meta (unless @own_groups), --keys-file, --cluster-key-file, --tls-cert
 * and --tls-key (a file with "tls" is refused, 2, unless @has_tls), the router limits.
 */
int cli_conf_router_argv(const char *path, const struct conf_cluster *c, const char *id,
                         int own_groups, int has_tls, int argc, char **argv, struct cli_argv *out);

#endif
