/* cli/cli_ctl_cluster.c — `laurel ctl cluster`: GET /v1/cluster as a table, in the spirit of
 * `etcdctl endpoint status -w table`.
 *
 * One row per replica, regions first (in the router's order) and the meta group last, so an
 * operator reads a whole cluster at a glance. LAG is how far a replica is behind the most
 * advanced replica of its group: the highest applied index any of them reported minus its
 * own. Not commit minus applied: APPLIED is the state machine's own record of the last entry
 * it applied (fsm_applied_index), which entries that change nothing (barriers, the meta
 * group's clock and reads) do not move, so that difference grows on a healthy, quiet group;
 * replicas in step have the same APPLIED whatever the entries were. A replica that did not
 * answer has no indexes ("-"), role "unreachable" and HEALTHY false (docs/api.md). Columns
 * are as wide as their widest cell. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_ctl_int.h"

#define CLI_CTL_CLUSTER__COLS 9
#define CLI_CTL_CLUSTER__CELL 72

static const char *const cli_ctl_cluster__head[CLI_CTL_CLUSTER__COLS] = {
    "GROUP", "REPLICA", "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "HEALTHY"};

/* An index or term as text: "-" when the replica gave none (null). */
static void cli_ctl_cluster__num(char *out, const json_t *v)
{
    if (json_is_integer(v)) {
        snprintf(out, CLI_CTL_CLUSTER__CELL, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        snprintf(out, CLI_CTL_CLUSTER__CELL, "-");
    }
}

/* The rows of @group (a region or the meta object) into @cells from row *@n on, or only
 * widen @w when @cells is NULL. @return 0, or -1 when @group is not of API.md's shape. */
static int cli_ctl_cluster__group(const json_t *group,
                                  char (*cells)[CLI_CTL_CLUSTER__COLS][CLI_CTL_CLUSTER__CELL],
                                  size_t *n, size_t *w)
{
    const char *id = json_string_value(json_object_get(group, "id"));
    const json_t *reps = json_object_get(group, "replicas"), *r;
    json_int_t top = -1;
    size_t i;
    if (id == NULL || !json_is_array(reps)) {
        return -1;
    }
    json_array_foreach(reps, i, r)
    {
        const json_t *c = json_object_get(r, "applied_index");
        if (json_is_integer(c) && json_integer_value(c) > top) {
            top = json_integer_value(c);
        }
    }
    json_array_foreach(reps, i, r)
    {
        char row[CLI_CTL_CLUSTER__COLS][CLI_CTL_CLUSTER__CELL];
        const json_t *applied = json_object_get(r, "applied_index");
        const char *addr = json_string_value(json_object_get(r, "address"));
        const char *role = json_string_value(json_object_get(r, "role"));
        snprintf(row[0], sizeof row[0], "%s", id);
        cli_ctl_cluster__num(row[1], json_object_get(r, "id"));
        snprintf(row[2], sizeof row[2], "%s", addr ? addr : "-");
        snprintf(row[3], sizeof row[3], "%s", role ? role : "-");
        cli_ctl_cluster__num(row[4], json_object_get(r, "term"));
        cli_ctl_cluster__num(row[5], json_object_get(r, "commit_index"));
        cli_ctl_cluster__num(row[6], applied);
        if (top >= 0 && json_is_integer(applied)) {
            snprintf(row[7], sizeof row[7], "%" JSON_INTEGER_FORMAT,
                     top - json_integer_value(applied));
        } else {
            snprintf(row[7], sizeof row[7], "-");
        }
        snprintf(row[8], sizeof row[8], "%s",
                 json_is_true(json_object_get(r, "healthy")) ? "true" : "false");
        for (size_t k = 0; k < CLI_CTL_CLUSTER__COLS; k++) {
            size_t len = strlen(row[k]);
            w[k] = len > w[k] ? len : w[k];
        }
        if (cells) {
            memcpy(cells[*n], row, sizeof row);
        }
        (*n)++;
    }
    return 0;
}

static void cli_ctl_cluster__row(FILE *f, const char *const *cell, const size_t *w)
{
    for (size_t k = 0; k < CLI_CTL_CLUSTER__COLS; k++) {
        fprintf(f, "%s%-*s", k ? "  " : "", k + 1 < CLI_CTL_CLUSTER__COLS ? (int)w[k] : 0, cell[k]);
    }
    fprintf(f, "\n");
}

/* Every group of @answer in order: the regions, then meta when there is one. */
static int cli_ctl_cluster__groups(const json_t *answer,
                                   char (*cells)[CLI_CTL_CLUSTER__COLS][CLI_CTL_CLUSTER__CELL],
                                   size_t *n, size_t *w)
{
    const json_t *regions = json_object_get(answer, "regions"), *g;
    const json_t *meta = json_object_get(answer, "meta");
    size_t i;
    if (!json_is_array(regions)) {
        return -1;
    }
    json_array_foreach(regions, i, g)
    {
        if (cli_ctl_cluster__group(g, cells, n, w) != 0) {
            return -1;
        }
    }
    return meta ? cli_ctl_cluster__group(meta, cells, n, w) : 0;
}

/* Groups without a leader, named on stderr after the table: what an operator acts on. */
static void cli_ctl_cluster__leaderless(const json_t *answer)
{
    const json_t *regions = json_object_get(answer, "regions"), *g;
    const json_t *meta = json_object_get(answer, "meta");
    size_t i;
    json_array_foreach(regions, i, g)
    {
        if (!json_is_integer(json_object_get(g, "leader"))) {
            fprintf(stderr, "region %s has no leader\n",
                    json_string_value(json_object_get(g, "id")));
        }
    }
    if (meta && !json_is_integer(json_object_get(meta, "leader"))) {
        fprintf(stderr, "the meta group has no leader\n");
    }
}

int cli_ctl_cluster_show(FILE *f, const json_t *answer)
{
    size_t w[CLI_CTL_CLUSTER__COLS], n = 0;
    for (size_t k = 0; k < CLI_CTL_CLUSTER__COLS; k++) {
        w[k] = strlen(cli_ctl_cluster__head[k]);
    }
    /* First pass: count rows and size columns; second: fill the cells. */
    if (cli_ctl_cluster__groups(answer, NULL, &n, w) != 0) {
        fprintf(stderr, "laurel ctl cluster: the answer is not /v1/cluster's shape (try --json)\n");
        return 1;
    }
    char(*cells)[CLI_CTL_CLUSTER__COLS][CLI_CTL_CLUSTER__CELL] = calloc(n ? n : 1, sizeof *cells);
    if (cells == NULL) {
        fprintf(stderr, "laurel ctl cluster: out of memory\n");
        return 1;
    }
    n = 0;
    cli_ctl_cluster__groups(answer, cells, &n, w);
    cli_ctl_cluster__row(f, cli_ctl_cluster__head, w);
    for (size_t r = 0; r < n; r++) {
        const char *row[CLI_CTL_CLUSTER__COLS];
        for (size_t k = 0; k < CLI_CTL_CLUSTER__COLS; k++) {
            row[k] = cells[r][k];
        }
        cli_ctl_cluster__row(f, row, w);
    }
    free(cells);
    cli_ctl_cluster__leaderless(answer);
    return 0;
}
