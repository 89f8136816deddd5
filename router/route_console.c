/* router/route_console.c — the operator console: GET /console (the page) and
 * GET /console/{file} (its stylesheet and script), docs/operations.md, "The console".
 *
 * The assets live in router/console/ and are built into the binary by cmake alone
 * (CMakeLists.txt, scripts/embed.cmake), so a router serves its console with nothing installed
 * beside it and the page always matches the API of the binary that serves it. They are plain
 * HTML, CSS and JavaScript that load nothing from elsewhere (no CDN): the page reads the
 * public API of the router that served it, /metrics and the WebSocket, and asks for the admin
 * key only for what needs it, keeping it in the page's memory.
 *
 * Asset names are path ids (router.c checks them before the handler runs), so no name here
 * can climb out of the table: a name not in it is 404. */
#include <stddef.h>
#include <string.h>

#include "router_int.h"

/* One row per file of router/console/: its name under /console/, its content type and the
 * array cmake generated from it (route_console__<name with . as _>). A row without a
 * generated array fails at link time, so the table and CMakeLists.txt cannot drift apart. */
#define ROUTE_CONSOLE_ASSETS(X)                                                                    \
    X("index.html", "text/html; charset=utf-8", route_console__index_html)                         \
    X("console.css", "text/css; charset=utf-8", route_console__console_css)                        \
    X("console.js", "text/javascript; charset=utf-8", route_console__console_js)

#define ROUTE_CONSOLE__DECL(name, ctype, sym)                                                      \
    extern const unsigned char sym[];                                                              \
    extern const size_t sym##_len;
ROUTE_CONSOLE_ASSETS(ROUTE_CONSOLE__DECL)
#undef ROUTE_CONSOLE__DECL

struct route_console__asset {
    const char *name, *ctype;
    const unsigned char *data;
    const size_t *len;
};

static const struct route_console__asset route_console__assets[] = {
#define ROUTE_CONSOLE__ROW(name, ctype, sym) {name, ctype, sym, &sym##_len},
    ROUTE_CONSOLE_ASSETS(ROUTE_CONSOLE__ROW)
#undef ROUTE_CONSOLE__ROW
};

/* Answer with the asset named @name (@len bytes, not NUL-terminated): 0, or LR_ENOTFOUND. */
static int route_console__send(struct rreq *q, const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof route_console__assets / sizeof route_console__assets[0]; i++) {
        const struct route_console__asset *a = &route_console__assets[i];
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) {
            rreq__reply_text(q, 200, a->ctype, (const char *)a->data, *a->len);
            return 0;
        }
    }
    return rreq__errf(q, LR_ENOTFOUND, "no such console file: %.*s", (int)len, name);
}

/* GET /console */
int route_console_page(struct rreq *q)
{
    return route_console__send(q, "index.html", strlen("index.html"));
}

/* GET /console/{file} */
int route_console_asset(struct rreq *q)
{
    return route_console__send(q, q->param[0].p, q->param[0].len);
}
