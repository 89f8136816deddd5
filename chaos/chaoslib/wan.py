"""chaos/wan: two regions on two simulated hosts, 80 ms of round trip between them.

The topology (docs/benchmarks.md, "WAN"):
- one network namespace per region (`lwan-na`, `lwan-eu`) on a bridge `lwanbr`
  (10.98.0.0/24, apart from chaos/run's 10.99.0.0/24). Each replica has its own address in
  its region's namespace, and so does the region's router (`router-0` in na, `router-1` in eu,
  port 18080 + k). Within a region, traffic stays on the namespace's loopback: no delay.
- the metadata group lives in the first region's namespace (na): creations and joins through
  eu's router reach it across the link; through na's router they do not.
- between regions: the kernel here has no sch_netem (`tc qdisc ... netem` answers "Specified
  qdisc kind is unknown"), so each namespace's nftables DNAT every connection to an address of
  another namespace to a chaoslib/proxy.py DelayProxy on the bridge (10.98.0.1), one per
  remote endpoint (a replica's raft and RPC ports, a region's echo port). The proxy holds each
  direction's bytes `delay_ms` (40) before passing them on, so a request and its answer cross
  80 ms. The proxies run on their own thread and event loop, so the client that measures
  never delays them.
- the client (this process) sits in the root namespace, next to both routers with no delay,
  as a game server beside its region's router would be.

What it checks (it exits 1 when any fails; timing is measured, never asserted): the RTT
between the namespaces is at least 2 x delay (the delay is really there); a player created in
eu, through eu's or na's router, reads back through the other router; a global top read
through each router, right after writes through both, holds every region's latest scores in
the one total order, with exact ranks; a tournament's cap holds for joins of both regions'
players through both routers, and a player who joined through the far router may score in
its own region at once, one who did not is refused.
"""
import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

from .cluster import Cluster, RAFT_PORT, RPC_PORT
from .http import Conn, HttpError
from .proxy import DelayProxy
from .runner import figure, log
from . import workload as wl

SUBNET = "10.98.0"
PREFIX = "lwan"
ECHO_PORT = 7007
REGIONS = ("na", "eu")

# A TCP echo server and a client that times one-byte round trips through it (no ping binary
# here, and ICMP would not go through the proxies anyway). Run with `ip netns exec`.
ECHO_SRC = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(64)
        if not b:
            return
        c.sendall(b)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""
PING_SRC = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b"x"); c.recv(1)
for _ in range(int(sys.argv[3])):
    t = time.monotonic(); c.sendall(b"x"); c.recv(1)
    print("%.3f" % ((time.monotonic() - t) * 1000))
"""


class Wan:
    """The delay between the regions' namespaces of a by_region Cluster: proxies and DNAT."""

    def __init__(self, cluster):
        self.c = cluster
        self.proxies = []
        self.loop = None
        self.thread = None
        self.echo = []

    def endpoints(self):
        """(namespace, ip, port) of every address another region may connect to."""
        out = []
        for r in self.c.all_replicas():
            ns = self.c.net.ns(r.host)
            out += [(ns, r.ip, RAFT_PORT), (ns, r.ip, RPC_PORT)]
        for g in self.c.regions:
            out.append((self.c.net.ns(g), self.c.net.ip(g), ECHO_PORT))
        return out

    def _on_loop(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def up(self):
        """Start the proxies (delay 0) and steer every cross-namespace connection to them.
        Call before any process starts, so that no connection goes around the proxies."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wan-proxies",
                                       daemon=True)
        self.thread.start()
        gw = self.c.net.gateway
        nat = {}  # namespace -> DNAT rules
        for i, (ns, ip, port) in enumerate(self.endpoints()):
            p = DelayProxy(gw, 20000 + i, ip, port)
            self._on_loop(p.start())
            self.proxies.append(p)
            for g in self.c.regions:
                if self.c.net.ns(g) != ns:
                    nat.setdefault(g, []).append(
                        "ip daddr %s tcp dport %d dnat ip to %s:%d" % (ip, port, gw, 20000 + i))
        for g, rules in nat.items():
            self.c.net.rules(g, nat_output=rules)
        for g in self.c.regions:
            self.echo.append(self.c._spawn(
                ["python3", "-c", ECHO_SRC, self.c.net.ip(g), str(ECHO_PORT)], "echo-" + g,
                ns=self.c.net.ns(g)))
        self.set_delay(0)

    def set_delay(self, ms):
        for p in self.proxies:
            p.delay_ms = ms

    def bytes(self):
        return sum(p.bytes for p in self.proxies)

    def rtt(self, src, dst, n):
        """Round trips in ms of one byte from region @src's namespace to @dst's echo server."""
        p = subprocess.run(["ip", "netns", "exec", self.c.net.ns(src), "python3", "-c", PING_SRC,
                            self.c.net.ip(dst), str(ECHO_PORT), str(n)],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("rtt %s -> %s: %s" % (src, dst, p.stderr.strip()))
        return [float(x) for x in p.stdout.split()]

    def down(self):
        for e in self.echo:
            if e.poll() is None:
                e.kill()
                e.wait()
        self.echo = []
        if self.loop is not None:
            for p in self.proxies:
                try:
                    self._on_loop(p.close())
                except Exception:
                    pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop = None
        self.proxies = []


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class Probe:
    """The measuring client: one keep-alive connection per router, every request timed."""

    def __init__(self, routers, w):
        self.routers = routers  # region -> "host:port"
        self.w = w  # a chaoslib Workload: its keys, key() and must()
        self.conns = {g: Conn(u) for g, u in routers.items()}
        self.samples = {}  # name -> [ms]
        self.errors = []

    def fail(self, msg):
        log("FAIL " + msg)
        self.errors.append(msg)

    async def req(self, via, method, path, body=None, admin=False, name=None):
        """(status, json) of one request through router @via; 5xx and no answer are retried
        for 10 s (a sample is only taken of an answer below 500)."""
        end = time.monotonic() + 10
        while True:
            t = time.monotonic()
            try:
                r = await self.conns[via].request(method, path, body,
                                                  self.w.admin if admin else self.w.api, 5.0)
            except HttpError as e:
                r, err = None, str(e)
            if r is not None and r.status < 500:
                if name is not None:
                    self.samples.setdefault(name, []).append((time.monotonic() - t) * 1000)
                return r.status, r.json()
            if r is not None:
                err = "%d %s" % (r.status, r.body[:200])
            if time.monotonic() > end:
                raise RuntimeError("%s %s via %s: %s" % (method, path, via, err))
            await asyncio.sleep(0.2)

    def close(self):
        for c in self.conns.values():
            c.close()


async def setup(p, tag, n, cap):
    """The phase's boards and tournaments and n players per region, created through their own
    region's router: `<tag><region><i>`."""
    w = p.w
    await w.must("PUT", "/v1/boards/b" + tag, {"order": "desc", "operator": "set",
                                                "windows": ["alltime"]}, w.admin, "board")
    now = time.time()
    for t, c in (("tc" + tag, cap), ("tj" + tag, 100000)):
        await w.must("PUT", "/v1/tournaments/" + t, {
            "name": t, "order": "desc", "operator": "best", "start_at": wl.iso(now - 60),
            "end_at": wl.iso(now + 7200), "max_participants": c, "max_attempts": 100,
            "prizes": []}, w.admin, "tournament")
    players = {}
    for g in REGIONS:
        players[g] = ["%s%s%03d" % (tag, g, i) for i in range(n)]
    return players


async def phase(p, tag, n, cap):
    """One phase: everything measured under the current delay, names prefixed `tag`. Returns
    {figure name: value in ms} (p50 and p99 of each sample set, and the RTT)."""
    na, eu = REGIONS
    players = await setup(p, tag, n, cap)
    # Creation: na's through na's router (meta is local), eu's through eu's router (meta far).
    for g in REGIONS:
        name = "player_create" if g == eu else "player_create_meta_local"
        for pl in players[g]:
            st, _ = await p.req(g, "PUT", "/v1/players/" + pl, {"name": pl, "region": g},
                                name=name)
            if st != 201:
                p.fail("create %s in %s: %d, not 201" % (pl, g, st))
    # Created through the far router: an eu player through na's router, read through eu's.
    far = "%sfar" % tag
    st, _ = await p.req(na, "PUT", "/v1/players/" + far, {"name": far, "region": eu})
    if st != 201:
        p.fail("create %s in eu through na's router: %d" % (far, st))
    for pl, via in [(far, eu)] + [(x, na) for x in players[eu]]:
        st, body = await p.req(via, "GET", "/v1/players/" + pl)
        if st != 200 or (body or {}).get("region") != eu or body.get("name") != pl:
            p.fail("read eu player %s through %s's router: %d %s" % (pl, via, st, body))
    for pl in players[eu]:  # placement now cached in na's router: one read of eu's
        await p.req(na, "GET", "/v1/players/" + pl, name="remote_player_read")

    # Writes: each region's players through their own router (a local quorum), then a few
    # through the other region's router. "set" board: the last write is the expected score.
    expect = {}

    async def writes(name, routes, base):
        for i in range(n):
            for g, via in routes:
                pl = players[g][i]
                score = base + 7 * i + (3 if g == eu else 0)
                st, _ = await p.req(via, "POST", "/v1/boards/b%s/scores" % tag,
                                    {"player_id": pl, "score": score,
                                     "idempotency_key": w_key(p)}, name=name)
                if st != 200:
                    p.fail("score %s (%s) through %s: %d" % (pl, g, via, st))
                expect[pl] = (score, g)

    await writes("local_write", ((na, na), (eu, eu)), 1000)
    for g, via in ((na, eu), (eu, na)):  # untimed: each router learns the far placements
        for pl in players[g]:
            await p.req(via, "GET", "/v1/players/" + pl)
    await writes("remote_write", ((na, eu), (eu, na)), 5000)

    # The global top through each router, right after the last writes through the other one.
    want = sorted(expect.items(), key=lambda kv: (-kv[1][0], kv[0]))
    for via in REGIONS:
        st, body = await p.req(via, "GET", "/v1/boards/b%s/top?limit=1000" % tag)
        got = [(e.get("rank"), e.get("player_id"), e.get("score"), e.get("region"))
               for e in (body or {}).get("entries", [])]
        exp = [(i + 1, pl, s, g) for i, (pl, (s, g)) in enumerate(want)]
        if st != 200 or got != exp:
            p.fail("global top via %s: %d, %d entries, first difference %s" % (
                via, st, len(got), next(((a, b) for a, b in zip(got, exp) if a != b),
                                        (got[len(exp):], exp[len(got):]))))
    for _ in range(n):
        await p.req(na, "GET", "/v1/boards/b%s/top?limit=10" % tag, name="global_top")
    for _ in range(n):
        await p.req(na, "GET", "/v1/boards/b%s/top?limit=10&consistency=stale" % tag,
                    name="global_top_stale")

    # Tournament: the cap over both regions' joins through both routers.
    tc = "tc" + tag
    joiners = [(players[g][i], via) for i in range(cap + 1) for g, via in ((na, eu), (eu, na))]
    oks = []
    for pl, via in joiners[:cap + 2]:
        st, _ = await p.req(via, "POST", "/v1/tournaments/%s/join" % tc, {"player_id": pl})
        if st == 200:
            oks.append(pl)
        elif st != 409:
            p.fail("join %s through %s: %d" % (pl, via, st))
    if len(oks) != cap:
        p.fail("tournament %s: %d joins admitted, cap %d" % (tc, len(oks), cap))
    st, body = await p.req(na, "GET", "/v1/tournaments/" + tc)
    if st != 200 or (body or {}).get("participants") != cap:
        p.fail("tournament %s through na: %d participants %s, cap %d" % (
            tc, st, (body or {}).get("participants"), cap))
    # An eu player admitted through na's router (and meta) scores in eu at once; the first
    # refused one is refused.
    ineu = [pl for pl in oks if pl in players[eu]]
    refused = [pl for pl, _ in joiners[:cap + 2] if pl not in oks]
    for pl, want_st in ([(ineu[0], 200)] if ineu else []) + [(refused[0], 403)]:
        g = eu if pl in players[eu] else na
        st, _ = await p.req(g, "POST", "/v1/boards/%s/scores" % tc,
                            {"player_id": pl, "score": 10, "idempotency_key": w_key(p)})
        if st != want_st:
            p.fail("tournament score of %s in %s: %d, not %d" % (pl, g, st, want_st))
    for pl in players[eu]:  # timed: an eu player joins through eu's router (meta is far)
        st, _ = await p.req(eu, "POST", "/v1/tournaments/tj%s/join" % tag, {"player_id": pl},
                            name="tournament_join")
        if st != 200:
            p.fail("join tj%s %s: %d" % (tag, pl, st))

    out = {}
    for name, xs in p.samples.items():
        out[name + "_p50"] = statistics.median(xs)
        out[name + "_p99"] = pct(xs, 0.99)
    p.samples = {}
    return out


def w_key(p):
    return p.w.key() + "-wan"


async def measure(c, wan, w, a):
    """Both phases (delay 0, then --delay-ms; the delayed one only with --quick): returns
    ({delay: {figure: ms}}, [errors])."""
    routers = {g: c.router_urls()[k] for k, g in enumerate(REGIONS)}
    p = Probe(routers, w)
    results = {}
    try:
        for tag, d in ([] if a.quick else [("l", 0)]) + [("w", a.delay_ms)]:
            wan.set_delay(d)
            label = "delay %d ms each way" % d
            rtts = wan.rtt("na", "eu", a.pings) + wan.rtt("eu", "na", a.pings)
            log("%s: rtt na<->eu p50 %.2f ms, min %.2f" % (label, statistics.median(rtts),
                                                           min(rtts)))
            if min(rtts) < 2 * d:
                p.fail("rtt %.2f ms below 2 x %d ms: the delay is not on the path" % (
                    min(rtts), d))
            t0 = time.monotonic()
            res = await phase(p, tag, a.n, a.cap)
            res["rtt_ms"] = statistics.median(rtts)
            log("%s: phase done in %.1f s" % (label, time.monotonic() - t0))
            results[d] = res
    finally:
        p.close()
    return results, p.errors


def report(results, delay):
    """`figure wan_<op>_p50 V ms` under the delay, `wan_nodelay_<op>_p50` without it (the
    same path through the proxies, delay 0), and their ratio `wan_ratio_<op>_p50`."""
    base = results.get(0)
    for k in sorted(results[delay]):
        figure("wan_" + k, "%.2f" % results[delay][k], "ms")
        if base is not None:
            figure("wan_nodelay_" + k, "%.2f" % base[k], "ms")
            if base[k] > 0:
                figure("wan_ratio_" + k.replace("_ms", ""),
                       "%.1f" % (results[delay][k] / base[k]), "x")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="chaos/wan",
        description="Two regions in two network namespaces with a delay between them: check "
                    "cross-region reads and global operations, and measure what the delay "
                    "costs (docs/benchmarks.md, WAN). Run as root.")
    ap.add_argument("--laurel", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "build", "laurel"))
    ap.add_argument("--delay-ms", type=int, default=40, help="each way (default 40: 80 ms RTT)")
    ap.add_argument("--n", type=int, default=None,
                    help="players per region, and samples per operation (default 100; 6 with "
                         "--quick)")
    ap.add_argument("--cap", type=int, default=4, help="the checked tournament's cap")
    ap.add_argument("--pings", type=int, default=20)
    ap.add_argument("--quick", action="store_true",
                    help="the delayed phase only, few samples: the CI check (~40 s)")
    ap.add_argument("--out", default=None, help="logs (default /tmp/laurel-wan-<time>)")
    a = ap.parse_args(argv)
    if a.n is None:
        a.n = 6 if a.quick else 100
    a.n = max(a.n, a.cap + 2)
    if a.quick:
        a.pings = min(a.pings, 5)
    if os.geteuid() != 0:
        print("chaos/wan: skipped: it needs root (network namespaces, nftables)",
              file=sys.stderr)
        return 77
    if not os.access(a.laurel, os.X_OK):
        print("chaos/wan: no laurel binary at %s: build it first or pass --laurel" % a.laurel,
              file=sys.stderr)
        return 2
    out = a.out or "/tmp/laurel-wan-%s" % time.strftime("%Y%m%d-%H%M%S")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    c = Cluster(a.laurel, out, regions=REGIONS, routers=len(REGIONS), prefix=PREFIX,
                subnet=SUBNET, by_region=True, log=log)
    wan = Wan(c)
    loop = asyncio.new_event_loop()
    rc = 1
    try:
        t0 = time.monotonic()
        c.build()
        wan.up()
        c.start()
        for g in c.groups:
            if c.wait_leader(g) is None:
                raise RuntimeError("no leader in %s at start" % g)
        log("cluster up in %.1f s: %s, meta in %s's namespace, routers %s" % (
            time.monotonic() - t0, ", ".join("%s %s" % (g, c.net.ns(g)) for g in REGIONS),
            c.meta_region, " ".join(c.router_urls())))
        h = wl.History(os.path.join(out, "setup.jsonl"))
        w = wl.Workload(c.router_urls(), c.api_key, c.admin_key, h, log=log)
        results, errors = loop.run_until_complete(measure(c, wan, w, a))
        h.close()
        figure("wan_proxied_bytes", wan.bytes(), "bytes")
        if wan.bytes() == 0:
            errors.append("no byte went through the delay proxies")
        report(results, a.delay_ms)
        dead = c.dead()
        if dead:
            errors.append("processes exited: %s" % dead)
        for e in errors:
            log("error: " + e)
        log("chaos/wan: %s (%.0f s; logs in %s)" % ("PASS" if not errors else "FAIL",
                                                     time.monotonic() - t0, out))
        rc = 0 if not errors else 1
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except Exception as e:
        log("chaos/wan: ERROR %s: %s (logs in %s)" % (type(e).__name__, e, out))
        rc = 1
    finally:
        c.stop()
        wan.down()
        # An interrupted measurement leaves requests pending on the loop: end them quietly.
        pending = asyncio.all_tasks(loop)
        for t in pending:
            t.cancel()
        try:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except BaseException:
            pass
        loop.close()
    return rc
