"""The final state, read after the heal through the routers (linearizable reads) and from every
replica (applied index and digest), in the shape chaos/run's checker expects (final.json)."""
import asyncio
import time

from .http import HttpError, Conn
from . import workload as wl


async def get(routers, path, headers, tries=60):
    """GET @path until a router answers it (200 or 404); None on 404."""
    for i in range(tries):
        c = Conn(routers[i % len(routers)])
        try:
            r = await c.request("GET", path, None, headers, timeout=5.0)
        except HttpError:
            r = None
        finally:
            c.close()
        if r is not None and r.status == 200:
            return r.json()
        if r is not None and r.status == 404:
            return None
        await asyncio.sleep(0.3)
    raise RuntimeError("GET %s: no answer from any router" % path)


async def read_board(routers, board, headers):
    out, cursor = {}, None
    while True:
        path = "/v1/boards/%s/top?limit=1000" % board
        if cursor:
            path += "&cursor=" + cursor
        page = await get(routers, path, headers)
        if page is None:
            return out
        for e in page.get("entries", []):
            out[e["player_id"]] = e["score"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


async def read_final(w, cluster, first_cycle):
    routers, hd = w.routers, w.admin
    final = {"unlocks": {}, "scores": {}, "boards": {}, "tournaments": {}, "cycles": {},
             "rewards": {}, "players": [], "replicas": {}}
    sem = asyncio.Semaphore(8)

    async def player(p):
        async with sem:
            if await get(routers, "/v1/players/" + p, hd) is not None:
                final["players"].append(p)
            page = await get(routers, "/v1/players/%s/achievements?game_id=%s&limit=1000" %
                             (p, wl.GAME), hd)
            items = (page or {}).get("items", [])
            final["unlocks"][p] = [[x["game_id"], x["achievement_id"]] for x in items
                                   if x.get("unlocked")]

    await asyncio.gather(*(player(p) for p in w.players))
    for b in wl.BEST_BOARDS:
        final["scores"][b] = await read_board(routers, b, hd)
        final["boards"][b] = {"operator": "best", "order": "desc"}
    final["scores"][wl.INCR_BOARD] = await read_board(routers, wl.INCR_BOARD, hd)
    final["boards"][wl.INCR_BOARD] = {"operator": "incr", "order": "desc"}
    t = await get(routers, "/v1/tournaments/" + wl.TOURNAMENT, hd)
    final["tournaments"][wl.TOURNAMENT] = {
        "participants": (t or {}).get("participants"),
        "max_participants": wl.TOURNAMENT_CAP}
    # Every cycle that ended while the run went on: closed ones are recorded, with rewards.
    now_cycle = int(time.time()) // wl.CYCLE_S
    rewarded = set()
    final["cycles"]["cyc"] = {}
    for n in range(first_cycle, now_cycle):
        c = await get(routers, "/v1/boards/cyc/cycles/%d" % n, hd)
        if c is not None:
            final["cycles"]["cyc"][str(n)] = {"rewards": c.get("rewards", [])}
            rewarded.update(x["player_id"] for x in c.get("rewards", []))
    for p in sorted(rewarded):
        page = await get(routers, "/v1/players/%s/rewards" % p, hd)
        final["rewards"][p] = [{k: x.get(k) for k in ("board_id", "cycle", "rank", "reward")}
                               for x in (page or {}).get("items", [])]
    for g in cluster.groups:
        final["replicas"][g] = await asyncio.get_event_loop().run_in_executor(
            None, cluster.converge, g)
    return final
