"""The cluster under test: replicas in their own namespaces, routers in the root namespace.

Or, with `by_region` (the WAN topology, chaoslib/wan.py): one namespace per region holding its
replicas and one router, the metadata group in the namespace of `meta_region`.

A Cluster owns every process it starts. Replicas run `laurel node` inside their namespace
(`ip netns exec`, which execs, so the pid is the node's); routers run `laurel router` on
loopback. Every child gets PR_SET_PDEATHSIG=SIGKILL, so a runner killed without its cleanup
leaves no replica behind; stop() kills everything and unmounts every tmpfs it mounted.

The per-replica switches that faults need are decided at start: an optional tmpfs data
directory (full disk), an environment (libfaketime, libfiu), and the raft-log fault control
file (LAUREL_TEST_RAFT_IO_FAULTS, a test-only switch of the node), which is always set so that
the fault can be injected without a restart.
"""
import ctypes
import json
import os
import signal
import subprocess
import time

from . import net as netmod

RAFT_PORT = 7000
RPC_PORT = 8000
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
FIU_LIBS = "/usr/lib/fiu/fiu_run_preload.so /usr/lib/fiu/fiu_posix_preload.so"

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Replica:
    def __init__(self, group, rid, host, ip):
        self.group = group  # region id, or "meta"
        self.id = rid
        self.host = host  # namespace host name, e.g. "na-1"
        self.ip = ip
        self.raft = "%s:%d" % (ip, RAFT_PORT)
        self.rpc = "%s:%d" % (ip, RPC_PORT)
        self.proc = None
        self.paused = False
        self.env = {}  # extra environment of the next start (faketime, fiu)
        self.extra_args = []
        self.join = False
        self.member = True  # False once removed from its group
        self.tmpfs = None  # size in MiB of its tmpfs data directory, or None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, laurel, workdir, regions=("na", "eu"), replicas=3, routers=2,
                 node_args=(), prefix="lch", log=print, subnet=netmod.BRIDGE_NET,
                 by_region=False, meta_region=None):
        self.laurel = os.path.abspath(laurel)
        self.dir = workdir
        self.regions = list(regions)
        self.nreplicas = replicas
        self.nrouters = routers
        self.node_args = list(node_args)
        self.net = netmod.Net(prefix, subnet)
        self.by_region = by_region
        self.meta_region = meta_region or self.regions[0]
        self.log = log
        self.groups = {}  # group -> [Replica]
        self.routers = []  # [{"port","proc"}]
        self.admin_key = "chaos-admin-key-0123456789"
        self.api_key = "chaos-api-key-0123456789ab"
        self.mounts = []
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "ctl"), exist_ok=True)
        # Replicas sit on the bridge's subnet, not loopback: every process needs the cluster key
        # (docs/security.md). Given by file, never on a command line.
        self.key_file = os.path.join(workdir, "cluster.key")
        with open(os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(os.urandom(24).hex() + "\n")

    # ---- layout --------------------------------------------------------------------------------

    def build(self, tmpfs_mb=None):
        """Create the network and the replicas' places; start nothing."""
        self.net.up()
        if self.by_region:  # the region's own address: its router's
            for g in self.regions:
                self.net.add_host(g)
        for g in self.regions + ["meta"]:
            self.groups[g] = []
            for i in range(1, self.nreplicas + 1):
                self.new_replica(g, i, tmpfs_mb)

    def new_replica(self, group, rid, tmpfs_mb=None):
        host = "%s-%d" % (group, rid)
        ip = self.net.add_host(host, self.home(group) if self.by_region else None)
        r = Replica(group, rid, host, ip)
        r.tmpfs = tmpfs_mb
        data = self.data_dir(r)
        os.makedirs(data, exist_ok=True)
        if tmpfs_mb:
            netmod.sh("mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % tmpfs_mb, "tmpfs", data)
            self.mounts.append(data)
        self.groups.setdefault(group, []).append(r)
        return r

    def home(self, group):
        """The region whose namespace holds @group's replicas (by_region only)."""
        return self.meta_region if group == "meta" else group

    def data_dir(self, r):
        return os.path.join(self.dir, "data", r.host)

    def log_path(self, name):
        return os.path.join(self.dir, "logs", name + ".log")

    def raftio_ctl(self, r):
        return os.path.join(self.dir, "ctl", r.host + ".raftio")

    def members(self, group):
        return [r for r in self.groups[group] if r.member]

    def all_replicas(self):
        return [r for g in self.groups for r in self.groups[g]]

    # ---- processes -----------------------------------------------------------------------------

    def _spawn(self, argv, logname, env=None, ns=None):
        full = (["ip", "netns", "exec", ns] if ns else []) + argv
        e = dict(os.environ)
        e.update(env or {})
        f = open(self.log_path(logname), "ab")
        f.write(("==== %s start: %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
        f.flush()
        p = subprocess.Popen(full, stdout=f, stderr=subprocess.STDOUT, env=e,
                             preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
        f.close()
        return p

    def start_replica(self, r):
        peers = []
        for p in self.members(r.group):
            if p is r and r.join:
                continue
            peers += ["--peer", "%d=%s,%s" % (p.id, p.raft, p.rpc)]
        if r.join:
            peers = ["--peer", "%d=%s,%s" % (r.id, r.raft, r.rpc)]
        role = ["--role", "meta"] if r.group == "meta" else ["--region", r.group]
        argv = [self.laurel, "node", "--id", str(r.id)] + role + [
            "--data", self.data_dir(r)] + peers + ["--election-ms", "1000",
                                                   "--cluster-key-file", self.key_file]
        argv += self.node_args + r.extra_args
        if r.join:
            argv.append("--join")
        env = {"LAUREL_TEST_RAFT_IO_FAULTS": self.raftio_ctl(r)}
        env.update(r.env)
        r.proc = self._spawn(argv, r.host, env, self.net.ns(r.host))
        r.paused = False

    def start_router(self, k):
        """Router @k: on loopback, or (by_region) in region k's namespace on its address."""
        port = 18080 + k
        host, ns = "127.0.0.1", None
        if self.by_region:
            region = self.regions[k % len(self.regions)]
            host, ns = self.net.ip(region), self.net.ns(region)
        argv = [self.laurel, "router", "--http", "%s:%d" % (host, port),
                "--admin-key", self.admin_key, "--api-key", self.api_key,
                "--timeout-ms", "2000", "--cluster-key-file", self.key_file]
        for g in self.regions:
            argv += ["--region", "%s=%s" % (g, ",".join(r.rpc for r in self.members(g)))]
        argv += ["--meta", ",".join(r.rpc for r in self.members("meta"))]
        while len(self.routers) <= k:
            self.routers.append({"port": 18080 + len(self.routers), "proc": None})
        self.routers[k]["host"] = host
        self.routers[k]["proc"] = self._spawn(argv, "router-%d" % k, ns=ns)

    def start(self):
        for r in self.all_replicas():
            self.start_replica(r)
        for k in range(self.nrouters):
            self.start_router(k)

    def router_urls(self):
        return ["%s:%d" % (x.get("host", "127.0.0.1"), x["port"]) for x in self.routers]

    def kill(self, r, sig=signal.SIGKILL):
        if r.proc is not None and r.proc.poll() is None:
            if r.paused:
                os.kill(r.proc.pid, signal.SIGCONT)
            os.kill(r.proc.pid, sig)
            r.proc.wait()
        r.paused = False

    def pause(self, r):
        if r.alive():
            os.kill(r.proc.pid, signal.SIGSTOP)
            r.paused = True

    def resume(self, r):
        if r.alive() and r.paused:
            os.kill(r.proc.pid, signal.SIGCONT)
        r.paused = False

    def kill_router(self, k):
        p = self.routers[k]["proc"]
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    def revive(self):
        """Heal helper: restart every member replica and router that is not running."""
        for r in self.all_replicas():
            if r.member and not r.alive():
                self.start_replica(r)
            elif r.paused:
                self.resume(r)
        for k in range(len(self.routers)):
            if self.routers[k]["proc"] is None or self.routers[k]["proc"].poll() is not None:
                self.start_router(k)

    def dead(self):
        """Processes that exited on their own (a crash), as (name, exit status)."""
        out = []
        for r in self.all_replicas():
            if r.member and r.proc is not None and r.proc.poll() is not None:
                out.append((r.host, r.proc.returncode))
        return out

    def stop(self):
        for r in self.all_replicas():
            if r.proc is not None and r.proc.poll() is None:
                if r.paused:
                    os.kill(r.proc.pid, signal.SIGCONT)
                r.proc.kill()
        for x in self.routers:
            if x["proc"] is not None and x["proc"].poll() is None:
                x["proc"].kill()
        for r in self.all_replicas():
            if r.proc is not None:
                try:
                    r.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        for x in self.routers:
            if x["proc"] is not None:
                try:
                    x["proc"].wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.unmount()
        self.net.cleanup()

    def unmount(self):
        for m in reversed(self.mounts):
            netmod.sh("umount", "-l", m, check=False)
        self.mounts = []

    # ---- status --------------------------------------------------------------------------------

    def status(self, r, timeout_ms=1000):
        """The replica's STATUS answer as a dict, or None when it does not answer."""
        if not r.alive() or r.paused:
            return None
        try:  # ctl keeps its own deadline; this one is for a ctl that hangs anyway
            p = subprocess.run([self.laurel, "ctl", "status", "--rpc", r.rpc, "--timeout-ms",
                                str(timeout_ms), "--cluster-key-file", self.key_file],
                               capture_output=True, text=True,
                               timeout=timeout_ms / 1000 + 10)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
        try:
            return json.loads(p.stdout)
        except ValueError:
            return None

    def ctl(self, *args, timeout_ms=3000):
        try:
            # Every caller runs a replica command (node RPC): they take the cluster key.
            p = subprocess.run([self.laurel, "ctl"] + list(args) + [
                "--timeout-ms", str(timeout_ms), "--cluster-key-file", self.key_file],
                               capture_output=True, text=True, timeout=timeout_ms / 1000 + 10)
        except subprocess.TimeoutExpired:
            return 124, "", "laurel ctl %s: no answer in %d ms" % (args[0], timeout_ms + 10000)
        return p.returncode, p.stdout, p.stderr

    def leader(self, group):
        """The member that says it leads @group (highest term wins), or None."""
        best = None
        for r in self.members(group):
            s = self.status(r)
            if s and s.get("role") == "leader":
                if best is None or s.get("term", 0) > best[1]:
                    best = (r, s.get("term", 0))
        return best[0] if best else None

    def wait_leader(self, group, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.leader(group)
            if r is not None:
                return r
            time.sleep(0.2)
        return None

    def converge(self, group, timeout=30.0):
        """Wait until every member of @group answers with the same applied index and digest.
        Returns [{"id","applied_index","digest","ok"}] as last seen."""
        end = time.monotonic() + timeout
        seen = []
        while True:
            seen = []
            for r in self.members(group):
                s = self.status(r)
                seen.append({"id": r.id, "host": r.host,
                             "applied_index": s.get("applied_index") if s else None,
                             "digest": s.get("digest") if s else None, "ok": s is not None})
            vals = {(x["applied_index"], x["digest"]) for x in seen}
            if all(x["ok"] for x in seen) and len(vals) == 1:
                return seen
            if time.monotonic() > end:
                return seen
            time.sleep(0.3)
