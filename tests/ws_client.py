#!/usr/bin/python3
"""WebSocket clients for tests/integration/test_ws.c (Debian's python3-websockets).

Every scenario prints JSON lines on stdout, flushed: {"ready": true} once its subscriptions
are answered (the C test then makes writes), then what the scenario reports. The C test
reads them through a pipe and asserts.

  listen URL SECONDS COUNT TOPIC...      every message after "subscribed", until COUNT events
                                         (not subscribed/leaderboard of an empty top) or SECONDS
  resume URL SECONDS COUNT REGION INDEX TOPIC...   the same, subscribing with a resume point
  bad URL                                bad frames, then a ping: the answers
  slow URL SECONDS COUNT TOPIC           a raw socket that never reads and a fast client; the
                                         fast one's event count and whether the slow one got
                                         a close
  many URL SECONDS N TOPIC               N clients on TOPIC: how many got one event
  get URL PATH                           a read over the socket: the response
  gets URL N PATH                        N gets of PATH sent back to back, then their N
                                         answers: how many were responses and how many
                                         rate_limited errors (for test_limits.c)
  collect URL SECONDS STOP TOPIC...      every event until one for player STOP arrives (or
                                         SECONDS), then 1 s more to catch repeats; then one
                                         line per event and {"done": n, "stopped": bool}
  tops URL SECONDS N PLAYER TOPIC...     N clients, client k on TOPIC[k % len], subscribing
                                         all at once: after {"ready"}, each reads until a
                                         leaderboard.changed whose top holds PLAYER (or
                                         SECONDS); then per topic how many saw it, the entry
                                         seen and the tops before it
  limits URL                             against a router with --ws-max-per-ip 2 and
                                         --ws-max-conns 3: which connections from 127.0.0.1,
                                         .2 and .3 open or get which status
  silent URL SECONDS                     a raw socket that completes the handshake and never
                                         writes (so never answers a ping) next to a websockets
                                         client that does: how and when the raw one is closed,
                                         and whether the other still answers after SECONDS

Options, before the scenario:
  --cacert FILE                          for wss:// URLs (a router with --tls): trust only the
                                         CA in FILE, as `curl --cacert` does; the raw-socket
                                         scenarios (slow, silent) speak plain ws only
"""
import asyncio
import base64
import json
import os
import socket
import ssl
import sys
import time

import websockets


# The TLS context wss:// connections use (--cacert), or None: the system's default trust.
SSL_CONTEXT = None


def connect(url, **kw):
    """websockets.connect, trusting --cacert's CA for wss:// URLs."""
    if url.startswith("wss://") and SSL_CONTEXT is not None:
        kw["ssl"] = SSL_CONTEXT
    return websockets.connect(url, **kw)


def out(obj):
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the test has read what it needed
        os._exit(0)


async def subscribe(ws, topics, resume=None):
    msg = {"op": "subscribe", "topics": topics}
    if resume:
        msg["resume"] = resume
    await ws.send(json.dumps(msg))
    while True:
        m = json.loads(await ws.recv())
        if m.get("type") == "subscribed":
            return


async def listen(url, seconds, count, topics, resume=None):
    async with connect(url, max_size=1 << 20) as ws:
        await subscribe(ws, topics, resume)
        out({"ready": True})
        end = time.monotonic() + seconds
        got = 0
        while got < count:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), left))
            except asyncio.TimeoutError:
                break
            m["_t"] = time.time()
            out(m)
            got += 1
        out({"done": got})


async def bad(url):
    async with connect(url) as ws:
        out({"ready": True})
        for frame in ["nonsense", b"\x00\x01binary", "x" * (70 * 1024), "[1,2]",
                      json.dumps({"op": "fly"}), json.dumps({"op": "subscribe", "topics": []}),
                      json.dumps({"op": "subscribe", "topics": ["nope:1"]}),
                      json.dumps({"op": "ping"})]:
            await ws.send(frame)
            out(json.loads(await asyncio.wait_for(ws.recv(), 5)))


def raw_connect(url):
    host, port = url.split("//")[1].split("/")[0].split(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s


def raw_send(s, text):
    data = text.encode()
    mask = os.urandom(4)
    hdr = bytes([0x81])
    n = len(data)
    hdr += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126, n >> 8, n & 255])
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


async def slow(url, seconds, count, topic):
    s = raw_connect(url)
    raw_send(s, json.dumps({"op": "subscribe", "topics": [topic]}))
    async with connect(url, max_size=1 << 20) as ws:
        await subscribe(ws, [topic])
        out({"ready": True})
        end = time.monotonic() + seconds
        got = 0
        while got < count and time.monotonic() < end:
            try:
                await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic()))
                got += 1
            except asyncio.TimeoutError:
                break
        # The slow one: read what the server managed to send, up to its close.
        s.settimeout(5)
        data = b""
        how = "eof"
        try:
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                data += b
        except socket.timeout:
            how = "timeout"
        except ConnectionResetError:
            how = "reset"
        out({"fast": got, "slow_closed": b"slow consumer" in data[-256:], "slow_bytes": len(data), "tail": how + repr(data[-120:])})


async def many(url, seconds, n, topic):
    async def one():
        ws = await connect(url)
        await subscribe(ws, [topic])
        return ws
    clients = []
    for i in range(0, n, 100):  # in waves: the listen backlog is finite
        clients += await asyncio.gather(*[one() for _ in range(min(100, n - i))])
    out({"ready": True, "clients": len(clients)})
    end = time.monotonic() + seconds

    async def recv(ws):
        try:
            await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic()))
            return 1
        except asyncio.TimeoutError:
            return 0
    got = sum(await asyncio.gather(*[recv(ws) for ws in clients]))
    out({"received": got})
    await asyncio.gather(*[ws.close() for ws in clients])


async def tops(url, seconds, n, player, topics):
    async def one(k):
        ws = await connect(url, max_size=1 << 20)
        await subscribe(ws, [topics[k % len(topics)]])
        return ws
    # All at once (one wave): the board's seed races the subscriptions and the first score.
    clients = await asyncio.gather(*[one(k) for k in range(n)])
    out({"ready": True, "clients": len(clients)})
    end = time.monotonic() + seconds

    async def until_seen(ws):
        before = []
        while True:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic())))
            except asyncio.TimeoutError:
                return None, before
            if m.get("type") != "leaderboard.changed":
                continue
            for e in m["top"]:
                if e.get("player_id") == player:
                    return e, before
            before.append(m["top"])
    seen = await asyncio.gather(*[until_seen(ws) for ws in clients])
    report = {t: {"clients": 0, "saw": 0, "entry": None, "before": []} for t in topics}
    for k, (e, before) in enumerate(seen):
        r = report[topics[k % len(topics)]]
        r["clients"] += 1
        if e is not None:
            r["saw"] += 1
            r["entry"] = e
        elif not r["before"]:
            r["before"] = before
    out(report)
    await asyncio.gather(*[ws.close() for ws in clients])


async def get(url, path):
    async with connect(url) as ws:
        out({"ready": True})
        await ws.send(json.dumps({"op": "get", "id": "q1", "path": path}))
        out(json.loads(await asyncio.wait_for(ws.recv(), 5)))


async def gets(url, n, path):
    async with connect(url) as ws:
        out({"ready": True})
        for i in range(n):
            await ws.send(json.dumps({"op": "get", "id": i, "path": path}))
        report = {"responses": 0, "limited": 0, "other": 0}
        for _ in range(n):
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("type") == "response":
                report["responses"] += 1
            elif m.get("type") == "error" and m["error"]["code"] == "rate_limited":
                report["limited"] += 1
            else:
                report["other"] += 1
        out(report)


async def resumes(url, n, region, topic):
    """Sends @n subscribes, each resuming @region from index 0, back to back on one
    connection, and reports how many were subscribed and how many replays were refused."""
    async with connect(url) as ws:
        out({"ready": True})
        for _ in range(n):
            msg = {"op": "subscribe", "topics": [topic], "resume": {region: 0}}
            await ws.send(json.dumps(msg))
        report = {"subscribed": 0, "limited": 0, "other": 0}
        end = None
        while end is None or time.monotonic() < end:
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10 if end is None else 1))
            except asyncio.TimeoutError:
                break
            if m.get("type") == "subscribed":
                report["subscribed"] += 1
                if report["subscribed"] == n:  # a refusal follows its subscribed: wait a bit
                    end = time.monotonic() + 1
            elif m.get("type") == "error":
                key = "limited" if m["error"]["code"] == "rate_limited" else "other"
                report[key] += 1
        out(report)


async def collect(url, seconds, stop, topics):
    async with connect(url, max_size=1 << 20) as ws:
        await subscribe(ws, topics)
        out({"ready": True})
        events = []
        end = time.monotonic() + seconds
        stopped = False
        closed = None
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), left))
            except asyncio.TimeoutError:
                break
            except websockets.exceptions.ConnectionClosed as e:
                closed = str(e)
                break
            events.append(m)
            if m.get("player_id") == stop and not stopped:
                stopped = True
                end = time.monotonic() + 1.0  # anything after it would be a repeat
    for m in events:
        out(m)
    out({"done": len(events), "stopped": stopped, "closed": closed})


async def limits(url):
    """Per-address limit 2 and router limit 3: a, b from .1 open; c from .1 is refused (429);
    d from .2 opens; e from .3 is refused (503, the router is full); once a closes, f from .1
    opens. Every open one answers a ping."""
    res = {"refused": {}}

    async def conn(src):
        try:
            ws = await connect(url, local_addr=(src, 0))
        except websockets.exceptions.InvalidStatusCode as e:
            res["refused"][str(e.status_code)] = res["refused"].get(str(e.status_code), 0) + 1
            res["retry_after"] = e.headers.get("Retry-After")
            return e.status_code
        await ws.send(json.dumps({"op": "ping"}))
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert m.get("type") == "pong", m
        return ws

    a = await conn("127.0.0.1")
    b = await conn("127.0.0.1")
    res["a"], res["b"] = not isinstance(a, int), not isinstance(b, int)
    if isinstance(a, int) or isinstance(b, int):
        out(res)
        return
    c = await conn("127.0.0.1")
    res["c"] = c if isinstance(c, int) else "open"
    d = await conn("127.0.0.2")
    res["d"] = d if isinstance(d, int) else "open"
    e = await conn("127.0.0.3")
    res["e"] = e if isinstance(e, int) else "open"
    await a.close()
    # The server counts the session out when lws reports it closed: retry a refusal briefly.
    f = 429
    for _ in range(50):
        f = await conn("127.0.0.1")
        if not isinstance(f, int):
            break
        await asyncio.sleep(0.1)
    res["f"] = f if isinstance(f, int) else "open"
    out(res)
    for ws in (b, d, f):
        if not isinstance(ws, int):
            await ws.close()


async def silent(url, seconds):
    loop = asyncio.get_running_loop()
    s = raw_connect(url)
    t0 = time.monotonic()
    async with connect(url, ping_interval=None) as ws:
        await ws.send(json.dumps({"op": "ping"}))
        json.loads(await asyncio.wait_for(ws.recv(), 10))
        out({"ready": True})
        # The raw socket reads what comes but never writes a byte: no pong, no frame.
        s.setblocking(False)
        data = b""
        closed_at = None
        deadline = t0 + 30
        while time.monotonic() < deadline:
            try:
                b = await asyncio.wait_for(loop.sock_recv(s, 1 << 16), deadline - time.monotonic())
            except (asyncio.TimeoutError, ConnectionResetError):
                break
            if not b:
                closed_at = time.monotonic() - t0
                break
            data += b
        pings, code, reason = 0, None, b""
        i = 0
        while i + 2 <= len(data):
            op, n = data[i] & 0x0F, data[i + 1] & 0x7F
            i += 2
            if n == 126:
                n, i = int.from_bytes(data[i:i + 2], "big"), i + 2
            elif n == 127:
                n, i = int.from_bytes(data[i:i + 8], "big"), i + 8
            body, i = data[i:i + n], i + n
            if op == 0x9:
                pings += 1
            elif op == 0x8 and len(body) >= 2:
                code, reason = int.from_bytes(body[:2], "big"), body[2:]
        # The well-behaved one has answered every ping meanwhile: it is still open.
        left = seconds - (time.monotonic() - t0)
        if left > 0:
            await asyncio.sleep(left)
        await ws.send(json.dumps({"op": "ping"}))
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        out({"raw_closed_after_s": closed_at, "raw_close_code": code,
             "raw_close_reason": reason.decode(errors="replace"), "raw_pings": pings,
             "good_answer": m.get("type"), "good_open_s": time.monotonic() - t0})


def main(argv):
    global SSL_CONTEXT
    if len(argv) > 2 and argv[1] == "--cacert":
        SSL_CONTEXT = ssl.create_default_context(cafile=argv[2])
        argv = argv[:1] + argv[3:]
    sc, url = argv[1], argv[2]
    if sc == "listen":
        asyncio.run(listen(url, float(argv[3]), int(argv[4]), argv[5:]))
    elif sc == "resume":
        asyncio.run(listen(url, float(argv[3]), int(argv[4]), argv[7:], {argv[5]: int(argv[6])}))
    elif sc == "bad":
        asyncio.run(bad(url))
    elif sc == "slow":
        asyncio.run(slow(url, float(argv[3]), int(argv[4]), argv[5]))
    elif sc == "many":
        asyncio.run(many(url, float(argv[3]), int(argv[4]), argv[5]))
    elif sc == "tops":
        asyncio.run(tops(url, float(argv[3]), int(argv[4]), argv[5], argv[6:]))
    elif sc == "get":
        asyncio.run(get(url, argv[3]))
    elif sc == "gets":
        asyncio.run(gets(url, int(argv[3]), argv[4]))
    elif sc == "resumes":
        asyncio.run(resumes(url, int(argv[3]), argv[4], argv[5]))
    elif sc == "collect":
        asyncio.run(collect(url, float(argv[3]), argv[4], argv[5:]))
    elif sc == "limits":
        asyncio.run(limits(url))
    elif sc == "silent":
        asyncio.run(silent(url, float(argv[3])))
    else:
        sys.exit("unknown scenario " + sc)


if __name__ == "__main__":
    main(sys.argv)
