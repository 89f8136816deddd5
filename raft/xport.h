/* raft/xport.h — libraft's TCP transport with TCP_NODELAY on every connection.
 *
 * libraft 0.15's raft_uv_tcp never sets TCP_NODELAY, so entries of a few KB wait on Nagle's
 * algorithm (measured: 21 K commands/s with p99 49 ms, against 346 K/s and 2.8 ms with it
 * set; ../shared/NOTES-deps.md). This transport forwards every call to a raft_uv_tcp
 * transport and sets the option on each stream it accepts or connects before handing the
 * stream to raft. */
#ifndef LAUREL_XPORT_H
#define LAUREL_XPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

/**
 * Initialise @t as a NODELAY transport over a TCP transport on @loop. @t is caller-allocated
 * and must stay valid until xport_close.
 * @return 0, or LR_ENOMEM / LR_EINTERNAL (with @t->errmsg).
 */
int xport_init(struct raft_uv_transport *t, uv_loop_t *loop);

/** Release what xport_init allocated (after raft has closed the transport). */
void xport_close(struct raft_uv_transport *t);

#endif
