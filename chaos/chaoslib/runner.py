"""chaos/run: scenarios, profiles, and the loop that runs one scenario end to end.

A scenario starts a fresh cluster (2 regions and the metadata group, 3 replicas each, 2
routers), sets up a catalog and players, starts the workload and the WebSocket subscribers,
injects its faults one after the other (each held for a while, then healed), marks the heal,
keeps the workload going so liveness can be judged, stops it, reads the final state and hands
history and final state to the checker. A failed scenario keeps its directory (history, final
state, logs, data); a passed one keeps the history and the logs only.
"""
import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import shutil
import signal
import sys
import time

from . import check as checkmod
from . import faults as fmod
from . import final as finalmod
from . import workload as wl
from .cluster import Cluster


class Scenario:
    def __init__(self, name, faults, hold_s=4.0, tmpfs_mb=None, node_args=(), fiu=False,
                 doc=""):
        self.name = name
        self.faults = faults
        self.hold_s = hold_s
        self.tmpfs_mb = tmpfs_mb
        self.node_args = list(node_args)
        self.fiu = fiu
        self.doc = doc


SCENARIOS = [
    Scenario("crash", ["kill_leader", "kill_follower", "kill_region", "kill_router"], 3.0,
             doc="processes die without warning"),
    Scenario("pause", ["pause_leader", "slow_ws"], 4.0,
             doc="a frozen leader, then clients that never read"),
    Scenario("partition", ["partition_leader", "partition_oneway", "loss", "rst"], 4.0,
             doc="the network between replicas fails in four ways"),
    # 768 MiB: LMDB's 256 MiB map (preallocated in fast mode), libuv's 64 MiB raft segments
    # (three preallocated at start), the 64 MiB admission reserve, and room to write; the
    # balloon then takes all of it.
    Scenario("disk", ["disk_full"], 8.0, tmpfs_mb=768, node_args=["--disk-reserve-mb", "64"],
             doc="a region's disks fill up"),
    Scenario("clock", ["clock_ahead", "clock_behind"], 6.0,
             doc="a leader's clock runs a day ahead, then a day behind"),
    # --sync: in fast mode LMDB writes through its map and never calls write(2) or fsync(2),
    # so libfiu's POSIX points would have nothing to fail.
    Scenario("storage", ["lmdb_io_error", "raftlog_io_error"], 4.0, fiu=True,
             node_args=["--sync"],
             doc="writes to LMDB and to the raft log fail"),
    Scenario("snapshot", ["snapshot_install_kill"], 8.0,
             node_args=["--snapshot-every", "64", "--snapshot-trailing", "16"],
             doc="a follower must install a snapshot and is killed during the install"),
    Scenario("membership", ["membership_change"], 6.0,
             doc="a partitioned replica is replaced"),
    Scenario("slow", ["delay", "stall"], 4.0,
             doc="the links between replicas get slow, then stall"),
]

PROFILES = {
    # ci: every scenario once, short holds: about 5 minutes on 2 cores.
    "ci": {"rounds": 1, "hold": 0.7, "warm_s": 2.5, "after_s": 4.0},
    # soak: every scenario, long holds, as many rounds as --rounds says.
    "soak": {"rounds": 3, "hold": 5.0, "warm_s": 10.0, "after_s": 10.0},
}

LIVENESS_BOUND_S = 30.0

# Clusters still running: on Ctrl-C the scenario's coroutine is abandoned mid-way, so main()
# stops whatever is left here.
LIVE = []


def log(msg):
    sys.stdout.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


async def run_scenario(sc, prof, laurel, outdir, seed, pool):
    d = os.path.join(outdir, sc.name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    loop = asyncio.get_event_loop()
    rng = random.Random(seed)
    node_args = list(sc.node_args)
    c = Cluster(laurel, d, node_args=node_args, log=log)
    LIVE.append(c)
    h = wl.History(os.path.join(d, "history.jsonl"))
    w = None
    ctx = None
    kinds = set()
    result = None
    try:
        await loop.run_in_executor(pool, c.build, sc.tmpfs_mb)
        if sc.fiu:
            for r in c.all_replicas():
                r.env = fmod.fiu_env(c)
        await loop.run_in_executor(pool, c.start)
        for g in c.groups:
            if await loop.run_in_executor(pool, c.wait_leader, g) is None:
                raise RuntimeError("no leader in %s at start" % g)
        w = wl.Workload(c.router_urls(), c.api_key, c.admin_key, h, seed=seed, log=log)
        first_cycle = int(time.time()) // wl.CYCLE_S
        await w.setup()
        w.start()
        w.start_subscribers()
        ctx = fmod.Ctx(c, w, h, rng, log, loop)
        await asyncio.sleep(prof["warm_s"])
        for name in sc.faults:
            f = fmod.FAULTS[name]()
            await loop.run_in_executor(pool, f.inject, ctx)
            kinds.add(name)
            h.write({"type": "nemesis", "phase": "inject", "fault": name, "detail": f.detail()})
            log("%s: injected %s %s" % (sc.name, name, json.dumps(f.detail())))
            await asyncio.sleep(sc.hold_s * prof["hold"] + 1.0)
            await loop.run_in_executor(pool, f.heal, ctx)
            h.write({"type": "nemesis", "phase": "heal", "fault": name, "detail": f.detail()})
            log("%s: healed %s %s" % (sc.name, name, json.dumps(f.detail())))
            await asyncio.sleep(1.0)
        h.write({"type": "healed"})
        healed_t = h.t()
        await asyncio.sleep(prof["after_s"])
        await w.stop()
        await w.stop_subscribers()
        crashed = c.dead()
        final = await finalmod.read_final(w, c, first_cycle)
        lat = w.last_ok_t - healed_t if w.last_ok_t >= healed_t else None
        final["liveness"] = {"first_ok_after_heal_s": first_ok_after(h, healed_t),
                             "bound_s": LIVENESS_BOUND_S}
        final["crashed"] = crashed
        final["replays"] = {"sent": w.replays, "applied_again": w.replays_applied}
        h.close()
        with open(os.path.join(d, "final.json"), "w") as fo:
            json.dump(final, fo, indent=1, sort_keys=True)
        result = checkmod.check(checkmod.load_history(os.path.join(d, "history.jsonl")), final,
                                LIVENESS_BOUND_S)
        del lat
    finally:
        if w is not None:
            w.stopping = True
            await w.stop()
            await w.stop_subscribers()
        if not h.f.closed:
            h.close()
        for p in (ctx.proxies if ctx else []):
            await p.close()
        passed = result is not None and result.ok and not (w and w.replays_applied)
        if not passed and c.mounts:
            # tmpfs data goes away at unmount: keep a copy for the post-mortem.
            for r in c.all_replicas():
                src = c.data_dir(r)
                if os.path.ismount(src):
                    shutil.copytree(src, src + ".kept", dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("balloon"))
        await loop.run_in_executor(pool, c.stop)
        LIVE.remove(c)
        if passed:
            shutil.rmtree(os.path.join(d, "data"), ignore_errors=True)
    return result, kinds, w


def first_ok_after(h, t0):
    """Seconds from the heal to the first acknowledged write after it, read back from the
    history file (the workload's own clock)."""
    best = None
    with open(h.f.name) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("type") == "ok" and e["t"] >= t0:
                best = e["t"] - t0 if best is None else min(best, e["t"] - t0)
    return best


def figure(name, value, unit="ops"):
    sys.stdout.write("figure %s %s %s\n" % (name, value, unit))
    sys.stdout.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="chaos/run",
        description="Start a laurel cluster, drive writes through its routers while injecting "
                    "faults, heal, and check that nothing acknowledged was lost, applied twice "
                    "or diverged (chaos/README.md). Run as root: it creates network namespaces, "
                    "nftables rules and tmpfs mounts, and removes them on exit.")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="ci")
    ap.add_argument("--scenario", action="append", help="run only this scenario (repeatable); "
                    "one of: " + ", ".join(s.name for s in SCENARIOS))
    ap.add_argument("--rounds", type=int, help="rounds over the scenarios (soak; default 3)")
    ap.add_argument("--laurel", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "build", "laurel"))
    ap.add_argument("--out", default=None, help="where runs are kept (default "
                    "/tmp/laurel-chaos-<time>)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--list", action="store_true", help="list scenarios and faults, then exit")
    a = ap.parse_args(argv)
    if a.list:
        for s in SCENARIOS:
            print("scenario %-11s %s: %s" % (s.name, ", ".join(s.faults), s.doc))
        for n, f in sorted(fmod.FAULTS.items()):
            print("fault %-22s %s" % (n, f.doc))
        return 0
    if os.geteuid() != 0:
        print("chaos/run: run it as root (it creates network namespaces, nftables rules and "
              "tmpfs mounts)", file=sys.stderr)
        return 2
    if not os.access(a.laurel, os.X_OK):
        print("chaos/run: no laurel binary at %s: build it first (cmake --build build) or pass "
              "--laurel" % a.laurel, file=sys.stderr)
        return 2
    names = a.scenario or [s.name for s in SCENARIOS]
    byname = {s.name: s for s in SCENARIOS}
    for n in names:
        if n not in byname:
            print("chaos/run: unknown scenario %r (chaos/run --list)" % n, file=sys.stderr)
            return 2
    prof = PROFILES[a.profile]
    rounds = a.rounds or prof["rounds"]
    seed = a.seed if a.seed is not None else int(time.time())
    out = a.out or "/tmp/laurel-chaos-%s" % time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(out, exist_ok=True)
    log("chaos/run: profile %s, %d round(s), seed %d, runs kept in %s" % (a.profile, rounds,
                                                                            seed, out))

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    totals = {"acked": 0, "lost": 0, "duplicated": 0, "diverged": 0}
    kinds = set()
    passed = failed = 0
    # Every process is started from this one thread, so PR_SET_PDEATHSIG ties them to it.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        for rnd in range(rounds):
            for i, n in enumerate(names):
                sc = byname[n]
                tag = sc.name if rounds == 1 else "%s-r%d" % (sc.name, rnd + 1)
                log("scenario %s: %s" % (tag, ", ".join(sc.faults)))
                t0 = time.monotonic()
                try:
                    res, k, w = loop.run_until_complete(run_scenario(
                        sc, prof, a.laurel, out if rounds == 1 else os.path.join(out, "r%d" % (
                            rnd + 1)), seed + 1000 * rnd + i, pool))
                except Exception as e:  # the scenario could not run: a failure, with its dir
                    log("scenario %s: ERROR %s: %s" % (tag, type(e).__name__, e))
                    log("scenario %s: kept %s" % (tag, os.path.join(out, sc.name)))
                    failed += 1
                    continue
                kinds |= k
                ok = res.ok and not (w and w.replays_applied)
                figure("chaos_%s_ops_acked" % sc.name, res.acked)
                figure("chaos_%s_lost" % sc.name, res.lost)
                figure("chaos_%s_duplicated" % sc.name, res.duplicated)
                figure("chaos_%s_diverged" % sc.name, res.diverged)
                for f in res.findings[:40]:
                    log("  %s" % f)
                if w and w.replays_applied:
                    log("  replays applied a second time: ops %s" % w.replays_applied[:20])
                totals["acked"] += res.acked
                totals["lost"] += res.lost
                totals["duplicated"] += res.duplicated
                totals["diverged"] += res.diverged
                log("scenario %s: %s in %.0f s (%s)" % (
                    tag, "PASS" if ok else "FAIL", time.monotonic() - t0,
                    ", ".join("%s %d" % kv for kv in res.counts().items())))
                if not ok:
                    log("scenario %s: kept %s" % (tag, os.path.join(out, sc.name)))
                passed += ok
                failed += not ok
    except KeyboardInterrupt:
        for c in list(LIVE):
            c.stop()
        log("interrupted: cleaned up")
        # The executor's thread may still sit in a fault's subprocess; Python would join it
        # at exit and hang. Everything it could leave behind is gone already.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    finally:
        pool.shutdown(wait=True)
        loop.close()
    figure("chaos_ops_acked", totals["acked"])
    figure("chaos_lost", totals["lost"])
    figure("chaos_duplicated", totals["duplicated"])
    figure("chaos_diverged", totals["diverged"])
    figure("chaos_fault_kinds", len(kinds), "kinds")
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1
