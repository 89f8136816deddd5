"""A TCP proxy that delays or stalls a byte stream: `tc netem` is not available here.

The delay faults steer the raft traffic between a region's replicas through one DelayProxy per
replica (nftables DNAT in each sender's namespace, see faults.Delay). Each direction of each
connection is a pump: what it reads is stamped and written out no sooner than `delay_ms` later,
in order; while `stalled`, nothing is written (the bytes wait, as behind a link that drops
everything and then recovers: TCP keeps the stream intact). It runs on the runner's event loop.

chaos/wan (chaoslib/wan.py) puts the same proxy between the regions' namespaces, one per remote
endpoint, with `delay_ms` 40: a request and its answer then cross 80 ms.
"""
import asyncio
import time


class DelayProxy:
    def __init__(self, listen_host, listen_port, target_host, target_port):
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.delay_ms = 0
        self.stalled = False
        self.server = None
        self.conns = set()
        self.bytes = 0

    async def start(self):
        self.server = await asyncio.start_server(self._accept, *self.listen)

    async def close(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for w in list(self.conns):
            w.close()
        self.conns.clear()

    async def _accept(self, r, w):
        try:
            tr, tw = await asyncio.wait_for(asyncio.open_connection(*self.target), 3)
        except (OSError, asyncio.TimeoutError):
            w.close()
            return
        self.conns.update((w, tw))
        await asyncio.gather(self._pump(r, tw), self._pump(tr, w), return_exceptions=True)
        for x in (w, tw):
            self.conns.discard(x)
            x.close()

    async def _pump(self, r, w):
        q = asyncio.Queue()

        async def writer():
            while True:
                due, data = await q.get()
                if data is None:
                    return
                while self.stalled or time.monotonic() < due:
                    await asyncio.sleep(max(0.001, min(0.05, due - time.monotonic())))
                w.write(data)
                await w.drain()

        wt = asyncio.ensure_future(writer())
        try:
            while not wt.done():
                data = await r.read(65536)
                if not data:
                    break
                self.bytes += len(data)
                q.put_nowait((time.monotonic() + self.delay_ms / 1000.0, data))
        finally:
            q.put_nowait((0, None))
            try:
                await asyncio.wait_for(wt, 10)
            except (asyncio.TimeoutError, OSError, ConnectionError):
                wt.cancel()
            try:
                w.close()
            except Exception:
                pass
