"""A small asyncio HTTP/1.1 client with keep-alive, enough for laurel's JSON API.

One Conn is one TCP connection to one router. Every request has a deadline; a request that
misses it, or whose connection breaks, raises HttpError and the connection is dropped (its
answer may still arrive later, so it cannot be reused). Only Content-Length and chunked bodies
are read, which is all the router sends.
"""
import asyncio
import json


class HttpError(Exception):
    """No answer: connection refused or broken, or the deadline passed."""


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Conn:
    def __init__(self, hostport):
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.hostport = hostport
        self.r = None
        self.w = None

    async def _open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.w is not None:
            try:
                self.w.close()
            except Exception:
                pass
        self.r = self.w = None

    async def request(self, method, path, body=None, headers=None, timeout=3.0):
        try:
            return await asyncio.wait_for(self._request(method, path, body, headers), timeout)
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            self.close()
            raise HttpError("%s %s: %s" % (method, path, type(e).__name__ + (
                (": " + str(e)) if str(e) else "")))

    async def _request(self, method, path, body, headers):
        if self.w is None:
            await self._open()
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % self.hostport]
        if body is not None:
            head.append("Content-Type: application/json")
        head.append("Content-Length: %d" % len(data))
        for k, v in (headers or {}).items():
            head.append("%s: %s" % (k, v))
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await self.w.drain()
        line = await self.r.readline()
        if not line:
            raise ValueError("connection closed")
        parts = line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        hdrs = {}
        while True:
            h = await self.r.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                chunks.append(await self.r.readexactly(size))
                await self.r.readline()
            payload = b"".join(chunks)
        else:
            payload = await self.r.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return Response(status, hdrs, payload)


class Pool:
    """Connections to several routers: each caller takes one, and on a failure the next call
    goes to the next router (what a client behind a load balancer sees)."""

    def __init__(self, routers):
        self.routers = list(routers)
        self.turn = 0

    def conn(self):
        c = Conn(self.routers[self.turn % len(self.routers)])
        self.turn += 1
        return c
