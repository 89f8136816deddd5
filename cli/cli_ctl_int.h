/* cli/cli_ctl_int.h — what the files of `laurel ctl` share (cli_ctl.c dispatches to them). */
#ifndef LAUREL_CLI_CTL_INT_H
#define LAUREL_CLI_CTL_INT_H

#include <jansson.h>
#include <stdio.h>

/**
 * Print @answer, a GET /v1/cluster body (API.md), as a table on @f: one row per replica of each
 * region and of the meta group, with role, term, commit and applied index, lag and health.
 * @answer is borrowed for the call. @return 0, or 1 when @answer is not of that shape (said
 * on stderr).
 */
int cli_ctl_cluster_show(FILE *f, const json_t *answer);

/**
 * `laurel ctl watch TOPIC... [options]`: argv[0] is "watch". Runs until killed (or until
 * --count events have printed). @return the exit code: 0, 1 (cannot keep going), 2 (usage).
 */
int cli_ctl_watch(int argc, char **argv);

/** The synopsis of `watch` (@word is "watch"), as cli_ctl_api_usage prints its commands'. */
void cli_ctl_watch_usage(FILE *f, const char *word);

#endif
