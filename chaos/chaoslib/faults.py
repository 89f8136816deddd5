"""Faults: each one a class with inject(ctx) and heal(ctx).

inject() does the damage and keeps in `self` what heal() needs; heal() undoes it and brings
every process back (a fault whose replica exits on its own, e.g. on an I/O error, is healed by
restarting it). The table FAULTS at the bottom is the list chaos/run counts and documents
(chaos/README.md describes each one). Targets are chosen with ctx.rng, so a seed replays a run.
"""
import asyncio
import os
import socket
import subprocess
import time

from .cluster import FAKETIME_LIB, FIU_LIBS


class Ctx:
    """What a fault may touch: the cluster, the workload, the history, a seeded rng."""

    def __init__(self, cluster, workload, history, rng, log, loop=None):
        self.c = cluster
        self.w = workload
        self.h = history
        self.rng = rng
        self.log = log
        self.loop = loop  # the runner's event loop, where proxies run
        self.proxies = []

    def on_loop(self, coro):
        """Run @coro on the runner's loop from the fault's thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def region(self):
        return self.rng.choice(self.c.regions)

    def leader(self, group):
        r = self.c.wait_leader(group, timeout=15.0)
        if r is None:
            raise RuntimeError("no leader in %s to inject a fault into" % group)
        return r

    def follower(self, group):
        lead = self.leader(group)
        return self.rng.choice([r for r in self.c.members(group) if r is not lead and r.alive()])


class Fault:
    name = "?"
    doc = ""

    def detail(self):
        return {}

    def inject(self, ctx):
        raise NotImplementedError

    def heal(self, ctx):
        ctx.c.revive()


# ---- processes -------------------------------------------------------------------------------


class KillLeader(Fault):
    name = "kill_leader"
    doc = "kill -9 the leader of a region; heal restarts it"

    def inject(self, ctx):
        self.r = ctx.leader(ctx.region())
        ctx.c.kill(self.r)

    def detail(self):
        return {"replica": self.r.host}


class KillFollower(KillLeader):
    name = "kill_follower"
    doc = "kill -9 a follower; heal restarts it"

    def inject(self, ctx):
        self.r = ctx.follower(ctx.region())
        ctx.c.kill(self.r)


class KillRegion(Fault):
    name = "kill_region"
    doc = "kill -9 every replica of a region at once; heal restarts them"

    def inject(self, ctx):
        self.g = ctx.region()
        for r in ctx.c.members(self.g):
            ctx.c.kill(r)

    def detail(self):
        return {"region": self.g}


class KillRouter(Fault):
    name = "kill_router"
    doc = "kill -9 a router while requests are in flight on it; heal restarts it"

    def inject(self, ctx):
        self.k = ctx.rng.randrange(len(ctx.c.routers))
        ctx.c.kill_router(self.k)

    def detail(self):
        return {"router": self.k}


class PauseLeader(Fault):
    name = "pause_leader"
    doc = "SIGSTOP a region's leader (a long GC pause, a frozen VM); heal sends SIGCONT"

    def inject(self, ctx):
        self.r = ctx.leader(ctx.region())
        ctx.c.pause(self.r)

    def heal(self, ctx):
        ctx.c.resume(self.r)
        ctx.c.revive()

    def detail(self):
        return {"replica": self.r.host}


# ---- network (nftables in the replica's namespace) ------------------------------------------


class PartitionLeader(Fault):
    name = "partition_leader"
    doc = "cut a region's leader off from its peers, both ways; heal removes the rules"

    def inject(self, ctx):
        g = ctx.region()
        self.r = ctx.leader(g)
        self.peers = [p.ip for p in ctx.c.members(g) if p is not self.r]
        ips = "{ %s }" % ", ".join(self.peers)
        ctx.c.net.rules(self.r.host, input_rules=["ip saddr %s drop" % ips],
                        output_rules=["ip daddr %s drop" % ips])

    def heal(self, ctx):
        ctx.c.net.clear(self.r.host)
        ctx.c.revive()

    def detail(self):
        return {"replica": self.r.host, "from": self.peers}


class PartitionOneWay(PartitionLeader):
    name = "partition_oneway"
    doc = "the leader hears nothing from its peers but still reaches them; heal removes the rule"

    def inject(self, ctx):
        g = ctx.region()
        self.r = ctx.leader(g)
        self.peers = [p.ip for p in ctx.c.members(g) if p is not self.r]
        ctx.c.net.rules(self.r.host, input_rules=["ip saddr { %s } drop" % ", ".join(self.peers)])


class Loss(Fault):
    name = "loss"
    doc = "every replica of a region drops 30% of the packets it receives; heal removes it"

    def inject(self, ctx):
        self.g = ctx.region()
        self.hosts = [r.host for r in ctx.c.members(self.g)]
        for h in self.hosts:
            ctx.c.net.rules(h, input_rules=["ip saddr 10.99.0.0/24 numgen random mod 100 < 30 drop"])

    def heal(self, ctx):
        for h in self.hosts:
            ctx.c.net.clear(h)
        ctx.c.revive()

    def detail(self):
        return {"region": self.g}


class Reset(Fault):
    name = "rst"
    doc = "a follower answers every TCP segment from its leader with a reset; heal removes it"

    def inject(self, ctx):
        g = ctx.region()
        lead = ctx.leader(g)
        self.r = ctx.follower(g)
        self.lead = lead.ip
        ctx.c.net.rules(self.r.host,
                        input_rules=["ip saddr %s meta l4proto tcp reject with tcp reset" % lead.ip],
                        output_rules=["ip daddr %s meta l4proto tcp reject with tcp reset" %
                                      lead.ip])

    def heal(self, ctx):
        ctx.c.net.clear(self.r.host)
        ctx.c.revive()

    def detail(self):
        return {"replica": self.r.host, "leader": self.lead}


class Delay(Fault):
    name = "delay"
    doc = ("the raft traffic between a region's replicas goes through our TCP proxy with 60 ms "
           "more each way (DNAT to the proxy; old connections reset so they reconnect through "
           "it); heal removes the delay")
    delay_ms = 60
    stall = False

    def inject(self, ctx):
        from .proxy import DelayProxy
        self.g = ctx.region()
        members = ctx.c.members(self.g)
        self.proxies = {}
        for b in members:
            port = 17000 + int(b.ip.rsplit(".", 1)[1])
            p = next((x for x in ctx.proxies if x.target == (b.ip, 7000)), None)
            if p is None:  # one proxy per replica for the whole scenario
                p = DelayProxy("10.99.0.1", port, b.ip, 7000)
                ctx.on_loop(p.start())
                ctx.proxies.append(p)
            p.delay_ms = self.delay_ms
            p.stalled = self.stall
            self.proxies[b.host] = (p, port)
        for a in members:
            nat, out = [], []
            for b in members:
                if b is a:
                    continue
                port = self.proxies[b.host][1]
                nat.append("ip daddr %s tcp dport 7000 dnat ip to 10.99.0.1:%d" % (b.ip, port))
                out.append("ip daddr %s tcp dport 7000 reject with tcp reset" % b.ip)
            ctx.c.net.rules(a.host, output_rules=out, nat_output=nat)
        self.hosts = [a.host for a in members]

    def heal(self, ctx):
        for h in self.hosts:
            ctx.c.net.clear(h)
        for p, _ in self.proxies.values():
            p.delay_ms = 0
            p.stalled = False
        ctx.c.revive()

    def detail(self):
        return {"region": self.g, "delay_ms": self.delay_ms, "stall": self.stall,
                "proxied_bytes": sum(p.bytes for p, _ in self.proxies.values())}


class Stall(Delay):
    name = "stall"
    doc = ("the same proxy holds every byte between a region's replicas (nothing lost, nothing "
           "delivered) until the heal, then lets the backlog through at once")
    delay_ms = 0
    stall = True


# ---- disks and clocks ------------------------------------------------------------------------


class DiskFull(Fault):
    """Needs the scenario's replicas on tmpfs (Scenario.tmpfs_mb)."""
    name = "disk_full"
    doc = "fill every tmpfs data directory of a region to the last byte with a balloon file; heal deletes it"

    def inject(self, ctx):
        self.g = ctx.region()
        self.balloons = []
        for r in ctx.c.members(self.g):
            d = ctx.c.data_dir(r)
            st = os.statvfs(d)
            free = st.f_bavail * st.f_frsize
            path = os.path.join(d, "balloon")
            # Leave nothing: the replica's own admission reserve must refuse writes before
            # anything fails, and without one the next raft segment cannot be allocated.
            subprocess.run(["fallocate", "-l", str(free), path], capture_output=True, timeout=30)
            self.balloons.append(path)
        # The effect, recorded: which replicas said they refuse writes (status "writable").
        self.refused = wait_status(ctx, self.g, lambda s: s.get("writable") is False, 4.0)
        self.writable_again = None

    def heal(self, ctx):
        for p in self.balloons:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        ctx.c.revive()
        self.writable_again = wait_status(ctx, self.g, lambda s: s.get("writable") is True, 6.0)

    def detail(self):
        return {"region": self.g, "refused": self.refused, "writable_again": self.writable_again}


def wait_status(ctx, group, pred, timeout):
    """The hosts of @group whose status satisfies @pred, polled until every member does or
    @timeout seconds pass."""
    end = time.monotonic() + timeout
    while True:
        hit = []
        members = ctx.c.members(group)
        for r in members:
            st = ctx.c.status(r)
            if st is not None and pred(st):
                hit.append(r.host)
        if len(hit) == len(members) or time.monotonic() >= end:
            return hit
        time.sleep(0.2)


class ClockAhead(Fault):
    name = "clock_ahead"
    doc = ("restart a follower under libfaketime 26 h ahead and hand it the leadership (its "
           "stamps would expire every idempotency key); heal restarts it on the real clock")
    offset = "+26h"

    def inject(self, ctx):
        g = ctx.region()
        self.r = ctx.follower(g)
        ctx.c.kill(self.r)
        self.r.env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": self.offset,
                      "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        ctx.c.start_replica(self.r)
        # Let it catch up, then make it the leader: the skewed clock stamps the writes.
        time.sleep(1.5)
        self.led = False
        for _ in range(10):
            lead = ctx.c.leader(g)
            if lead is self.r:
                self.led = True  # recorded: a skewed replica that never led tested nothing
                break
            if lead is not None:
                ctx.c.ctl("transfer", "--rpc", lead.rpc, "--id", str(self.r.id))
            time.sleep(0.5)

    def heal(self, ctx):
        ctx.c.kill(self.r)
        self.r.env = {}
        ctx.c.revive()

    def detail(self):
        return {"replica": self.r.host, "faketime": self.offset, "led": self.led}


class ClockBehind(ClockAhead):
    name = "clock_behind"
    doc = ("restart a follower under libfaketime a day behind and hand it the leadership (its "
           "stamps must not go back); heal restarts it on the real clock")
    offset = "-1d"


class LmdbIoError(Fault):
    """libfiu: the replica runs with fiu's POSIX preload (started so by the scenario) and its
    LMDB writes start failing; the replica must stop rather than apply half a write."""
    name = "lmdb_io_error"
    doc = "libfiu makes a follower's LMDB writes and syncs fail; heal turns it off and restarts"

    POINTS = ("posix/io/rw/pwrite", "posix/io/rw/pwritev", "posix/io/sync/fdatasync",
              "posix/io/sync/fsync")

    def inject(self, ctx):
        self.r = ctx.follower(ctx.region())
        self.stopped = None
        fiu_ctrl(ctx, self.r, ["enable_random name=%s,probability=0.5" % p for p in self.POINTS])

    def heal(self, ctx):
        # The effect: a replica whose LMDB write failed must have stopped (exit status 70).
        self.stopped = None if self.r.alive() else self.r.proc.returncode
        if self.r.alive():
            fiu_ctrl(ctx, self.r, ["disable name=%s" % p for p in self.POINTS])
            ctx.c.kill(self.r)  # its LMDB may have refused a write: start from disk again
        ctx.c.revive()

    def detail(self):
        return {"replica": self.r.host, "stopped": self.stopped}


def fiu_ctrl(ctx, r, commands):
    """Send @commands to @r's libfiu control FIFO in one fiu-ctrl call. fiu-ctrl opens the FIFO
    and blocks until someone reads it: a replica that dies (the first failed write can stop it)
    never will, hence one call and a timeout."""
    argv = ["fiu-ctrl", "-f", os.path.join(ctx.c.dir, "ctl", "fiu")]
    for cmd in commands:
        argv += ["-c", cmd]
    try:
        subprocess.run(argv + [str(r.proc.pid)], capture_output=True, timeout=5)
    except subprocess.TimeoutExpired:
        pass


def fiu_env(cluster):
    return {"LD_PRELOAD": FIU_LIBS, "FIU_CTRL_FIFO": os.path.join(cluster.dir, "ctl", "fiu"),
            "FIU_ENABLE": ""}


class RaftIoError(Fault):
    name = "raftlog_io_error"
    doc = ("the leader's raft log appends fail (the node's test-only raft_io decorator, "
           "LAUREL_TEST_RAFT_IO_FAULTS); heal clears it and restarts what stopped")

    def inject(self, ctx):
        self.r = ctx.leader(ctx.region())
        with open(ctx.c.raftio_ctl(self.r), "w") as f:
            f.write("append 1\n")

    def heal(self, ctx):
        try:
            os.unlink(ctx.c.raftio_ctl(self.r))
        except FileNotFoundError:
            pass
        # The effect: the leader whose append failed must have stopped (exit status 70).
        self.stopped = None if self.r.alive() else self.r.proc.returncode
        time.sleep(0.1)
        ctx.c.revive()

    def detail(self):
        return {"replica": self.r.host, "stopped": getattr(self, "stopped", None)}


# ---- raft machinery --------------------------------------------------------------------------


class SnapshotInstallKill(Fault):
    """Needs a low snapshot threshold (the scenario passes --snapshot-every)."""
    name = "snapshot_install_kill"
    doc = ("stop a follower while the leader snapshots and compacts its log, restart it so it "
           "must install a snapshot, kill -9 it during the install; heal restarts it")

    def inject(self, ctx):
        self.r = ctx.follower(ctx.region())
        ctx.c.kill(self.r)

    def heal(self, ctx):
        ctx.c.start_replica(self.r)
        time.sleep(0.15 + ctx.rng.random() * 0.3)
        ctx.c.kill(self.r)
        ctx.c.start_replica(self.r)
        ctx.c.revive()
        # The effect: how many installs the follower logged (node__sub_restored), over both
        # starts; 0 means the leader never had to send it a snapshot.
        self.installed = 0
        end = time.monotonic() + 5.0
        while self.installed == 0 and time.monotonic() < end:
            time.sleep(0.25)
            try:
                with open(ctx.c.log_path(self.r.host), errors="replace") as f:
                    self.installed = f.read().count("snapshot installed")
            except OSError:
                pass

    def detail(self):
        return {"replica": self.r.host, "installed": getattr(self, "installed", None)}


class MembershipChange(Fault):
    name = "membership_change"
    doc = ("partition a follower, remove it (laurel ctl remove), add a new replica that joins "
           "empty (laurel ctl add) while the partition holds; heal drops the partition and "
           "stops the removed replica")

    def inject(self, ctx):
        g = ctx.region()
        self.g = g
        lead = ctx.leader(g)
        self.old = ctx.follower(g)
        peers = [p.ip for p in ctx.c.members(g) if p is not self.old]
        ctx.c.net.rules(self.old.host, input_rules=["ip saddr { %s } drop" % ", ".join(peers)],
                        output_rules=["ip daddr { %s } drop" % ", ".join(peers)])
        self.removed = self.added = False
        for _ in range(20):
            lead = ctx.c.wait_leader(g) or lead
            rc, out, err = ctx.c.ctl("remove", "--rpc", lead.rpc, "--id", str(self.old.id))
            if rc == 0:
                self.removed = True
                break
            time.sleep(0.5)
        if not self.removed:
            raise RuntimeError("ctl remove %s failed: %s" % (self.old.host, err.strip()))
        self.old.member = False
        nid = max(r.id for r in ctx.c.groups[g]) + 1
        self.new = ctx.c.new_replica(g, nid, self.old.tmpfs)
        self.new.join = True
        ctx.c.start_replica(self.new)
        time.sleep(0.5)
        for _ in range(20):
            lead = ctx.c.wait_leader(g) or lead
            rc, out, err = ctx.c.ctl("add", "--rpc", lead.rpc, "--id", str(nid), "--raft",
                                     self.new.raft, "--replica-rpc", self.new.rpc)
            if rc == 0:
                self.added = True
                break
            time.sleep(0.5)
        if not self.added:
            raise RuntimeError("ctl add %s failed: %s" % (self.new.host, err.strip()))

    def heal(self, ctx):
        ctx.c.net.clear(self.old.host)
        ctx.c.kill(self.old)
        ctx.c.revive()

    def detail(self):
        return {"removed": self.old.host, "added": self.new.host if self.added else None}


# ---- clients ---------------------------------------------------------------------------------


class SlowConsumers(Fault):
    name = "slow_ws"
    doc = ("40 WebSocket clients subscribe to busy topics and never read; heal closes them "
           "(the router must drop them, not stall the other subscribers)")

    def inject(self, ctx):
        self.socks = []
        topics = ",".join('"player:%s"' % p for p in ctx.w.players[:40])
        frame = ('{"op":"subscribe","topics":[%s]}' % topics).encode()
        for i in range(40):
            port = ctx.c.routers[i % len(ctx.c.routers)]["port"]
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n")
                s.recv(512)  # the 101; after it, nothing is ever read again
                mask = b"\x01\x02\x03\x04"
                payload = bytes(b ^ mask[j % 4] for j, b in enumerate(frame))
                n = len(frame)
                head = b"\x81" + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + n.to_bytes(2, "big"))
                s.sendall(head + mask + payload)
                self.socks.append(s)
            except OSError:
                pass

    def heal(self, ctx):
        for s in self.socks:
            s.close()
        ctx.c.revive()

    def detail(self):
        return {"connections": len(self.socks)}


FAULTS = {f.name: f for f in (
    KillLeader, KillFollower, KillRegion, KillRouter, PauseLeader, PartitionLeader,
    PartitionOneWay, Loss, Reset, DiskFull, ClockAhead, ClockBehind, LmdbIoError, RaftIoError,
    SnapshotInstallKill, MembershipChange, SlowConsumers, Delay, Stall)}
