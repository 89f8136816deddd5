/* fuzz/fuzz_router.h — a headless router for the harnesses that drive its pipeline
 * (fuzz_http, fuzz_ws): router_start without a listener (router_config.http NULL), over
 * fuzz_upstream.c's stand-in upstreams, so no request reaches a socket.
 *
 * Two regions and a metadata group, an admin key and an api key (FUZZ_ADMIN_KEY,
 * FUZZ_API_KEY), no rate limits (a harness would soon see nothing but 429s), a read model that
 * holds no board (every board read goes to the regions' stand-ins, and none waits on a timer).
 * The loop never runs a timer: fuzz_router_settle stops them all before it runs the loop, so
 * evstreams never connect and handles closed by a request still get their close callbacks.
 * A region put that the stand-ins answer as accepted (seed-35 of fuzz_http) adds a region to
 * this router for the rest of the process, as it would to a real one (up to 16). */
#ifndef LAUREL_FUZZ_ROUTER_H
#define LAUREL_FUZZ_ROUTER_H

#include <msgpack.h>

struct router;
struct upstream;

#define FUZZ_ADMIN_KEY "fuzz-admin-key-0123456789"
#define FUZZ_API_KEY "fuzz-api-key-0123456789abcdef"

/** The process's headless router, started on first use (aborts when it cannot start: the
 * harness has no other way to say so). Lives until the process exits. */
struct router *fuzz_router(void);

/**
 * Answer every call queued on the router's upstreams (and any a route opened) with @code and
 * @payload (borrowed; NULL only with an error code: a timeout, LR_EUNAVAILABLE with no payload, is
 * what a region that never answers gives), round after round while the answers make new calls (at
 * most @rounds), then run the loop once without timers. @return the calls answered.
 */
unsigned fuzz_router_settle(struct router *r, int code, const msgpack_object *payload,
                            unsigned rounds);

/* fuzz_upstream.c: answer every call queued on every stand-in upstream not closed (the
 * router's, and any a route opened itself) with @code and @payload (borrowed for the call).
 * Calls the callbacks make are queued for the next round. @return how many. */
unsigned fuzz_upstream_answer_all(int code, const msgpack_object *payload);

#endif
