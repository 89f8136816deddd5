/* shard/names.c — pid -> player id and guild (see shard_int.h). Grows by doubling; the arena
 * holds ids back to back so a million players cost one allocation, not a million. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

void names__init(struct names *n)
{
    memset(n, 0, sizeof *n);
    strmap_init(&n->guild_by_name);
}

void names__free(struct names *n)
{
    free(n->arena);
    free(n->id_off);
    free(n->guild);
    for (uint32_t i = 0; i < n->nguilds; i++) {
        free(n->guild_name[i]);
    }
    free(n->guild_name);
    strmap_free(&n->guild_by_name);
    names__init(n);
}

static int names__gid(struct names *n, struct lr_str guild, uint32_t *gid)
{
    if (guild.len == 0) {
        *gid = NAMES_NO_GUILD;
        return 0;
    }
    void *v = strmap_get(&n->guild_by_name, guild.p, guild.len);
    if (v) {
        *gid = (uint32_t)((uintptr_t)v - 1);
        return 0;
    }
    if (n->nguilds == n->guild_cap) {
        uint32_t ncap = n->guild_cap ? n->guild_cap * 2 : 16;
        char **g = realloc(n->guild_name, ncap * sizeof *g);
        if (g == NULL) {
            return LR_ENOMEM;
        }
        n->guild_name = g;
        n->guild_cap = ncap;
    }
    char *name = strndup(guild.p, guild.len);
    if (name == NULL) {
        return LR_ENOMEM;
    }
    if (strmap_put(&n->guild_by_name, guild.p, guild.len, (void *)(uintptr_t)(n->nguilds + 1))) {
        free(name);
        return LR_ENOMEM;
    }
    n->guild_name[n->nguilds] = name;
    *gid = n->nguilds++;
    return 0;
}

int names__add(struct names *n, uint32_t pid, struct lr_str id, struct lr_str guild)
{
    uint32_t gid;
    int rv;
    if (pid != n->count) {
        return LR_ECORRUPT; /* pids are dense: a gap means the store is inconsistent */
    }
    if (n->count == n->cap) {
        uint32_t ncap = n->cap ? n->cap * 2 : 1024;
        uint32_t *o = realloc(n->id_off, ncap * sizeof *o);
        if (o == NULL) {
            return LR_ENOMEM;
        }
        n->id_off = o;
        uint32_t *g = realloc(n->guild, ncap * sizeof *g);
        if (g == NULL) {
            return LR_ENOMEM;
        }
        n->guild = g;
        n->cap = ncap;
    }
    if (n->arena_len + id.len + 1 > n->arena_cap) {
        size_t ncap = n->arena_cap ? n->arena_cap * 2 : 65536;
        while (ncap < n->arena_len + id.len + 1) {
            ncap *= 2;
        }
        if (ncap > UINT32_MAX) {
            return LR_ENOMEM;
        }
        char *a = realloc(n->arena, ncap);
        if (a == NULL) {
            return LR_ENOMEM;
        }
        n->arena = a;
        n->arena_cap = ncap;
    }
    if ((rv = names__gid(n, guild, &gid)) != 0) {
        return rv;
    }
    memcpy(n->arena + n->arena_len, id.p, id.len);
    n->arena[n->arena_len + id.len] = '\0';
    n->id_off[pid] = (uint32_t)n->arena_len;
    n->guild[pid] = gid;
    n->arena_len += id.len + 1;
    n->count++;
    return 0;
}

int names__set_guild(struct names *n, uint32_t pid, struct lr_str guild)
{
    uint32_t gid;
    int rv;
    if (pid >= n->count) {
        return LR_ECORRUPT;
    }
    if ((rv = names__gid(n, guild, &gid)) != 0) {
        return rv;
    }
    n->guild[pid] = gid;
    return 0;
}

const char *names__id(const struct names *n, uint32_t pid, size_t *len)
{
    assert(pid < n->count);
    const char *s = n->arena + n->id_off[pid];
    *len = strlen(s);
    return s;
}

const char *names__guild(const struct names *n, uint32_t pid)
{
    if (pid >= n->count || n->guild[pid] == NAMES_NO_GUILD) {
        return NULL;
    }
    return n->guild_name[n->guild[pid]];
}

static const char *names__resolve(void *ctx, uint32_t pid, size_t *len)
{
    return names__id(ctx, pid, len);
}

struct rankidx_names names__resolver(struct names *n)
{
    struct rankidx_names r = {n, names__resolve};
    return r;
}

size_t names__memory(const struct names *n)
{
    return n->arena_cap + (size_t)n->cap * 2 * sizeof(uint32_t);
}
