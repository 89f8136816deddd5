"""The workload: writes through the routers, recorded as a history the checker can decide.

Each kind of write is chosen so that its final state says exactly which writes happened:
unlocks are a grow-only set per player, `best` scores a max register per (board, player),
`incr` scores with unique keys a counter, tournament joins a capped set. A write that gets no
clear answer (timeout, broken connection, 5xx) is retried with the same idempotency key, so
retrying is safe; its outcome is the last attempt's: ok (2xx), fail (4xx: it did not happen) or
info (still unknown). WebSocket subscribers record every event they receive.
"""
import asyncio
import json
import random
import time

from .http import HttpError, Pool

GAME = "g1"
ACHS = ["a%02d" % i for i in range(30)]
BEST_BOARDS = ["best", "cyc"]
INCR_BOARD = "incr"
TOURNAMENT = "tour"
TOURNAMENT_CAP = 30
CYCLE_S = 60


class History:
    """history.jsonl: one object per line, times in seconds since the run's start."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.t0 = time.monotonic()
        self.next_op = 1
        self.acked = 0

    def t(self):
        return round(time.monotonic() - self.t0, 4)

    def write(self, obj):
        obj["t"] = self.t()
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def close(self):
        self.f.close()


class Workload:
    def __init__(self, routers, api_key, admin_key, history, players=120, regions=("na", "eu"),
                 seed=1, workers=24, log=print):
        self.pool = Pool(routers)
        self.routers = list(routers)
        self.api = {"Authorization": "Bearer " + api_key}
        self.admin = {"Authorization": "Bearer " + admin_key}
        self.h = history
        self.rng = random.Random(seed)
        self.players = ["p%03d" % i for i in range(players)]
        self.regions = list(regions)
        self.nworkers = workers
        self.log = log
        self.stopping = False
        self.key_seq = 0
        self.acked_incr = []  # (op id, value) of acknowledged incr ops: replay candidates
        self.replays = 0
        self.replays_applied = []  # replays answered without Idempotent-Replayed
        self.joiners = list(self.players)
        self.rng.shuffle(self.joiners)
        self.tasks = []
        self.subs = []
        self.counts = {"ok": 0, "fail": 0, "info": 0}
        self.last_ok_t = 0.0

    def key(self):
        self.key_seq += 1
        return "k-%08d-%06d" % (self.key_seq, self.rng.randrange(1000000))

    # ---- one operation, with retries under the same key --------------------------------------

    async def call(self, conn_box, method, path, body, headers, deadline):
        """One attempt: (status, response) or (None, error text). Swaps in a new connection,
        to the next router, after a failure."""
        try:
            resp = await conn_box[0].request(method, path, body, headers, timeout=3.0)
            return resp.status, resp
        except HttpError as e:
            conn_box[0].close()
            conn_box[0] = self.pool.conn()
            return None, str(e)

    async def op(self, conn_box, proc, f, value, method, path, body, headers=None,
                 max_s=12.0, replayable=True):
        """Run one recorded operation; returns (outcome, response or None)."""
        opid = self.h.next_op
        self.h.next_op += 1
        self.h.write({"type": "invoke", "op": opid, "proc": proc, "f": f, "value": value})
        end = time.monotonic() + max_s
        status, err, resp = None, None, None
        while True:
            status, r = await self.call(conn_box, method, path, body, headers or self.api, end)
            if status is not None and status < 500:
                resp = r
                break
            err = r if status is None else "%d %s" % (status, r.body[:200].decode("utf-8", "replace"))
            if not replayable or self.stopping or time.monotonic() > end:
                break
            await asyncio.sleep(0.1 + self.rng.random() * 0.2)
        if resp is not None and 200 <= resp.status < 300:
            outcome = "ok"
        elif resp is not None:
            outcome = "fail"
            err = "%d %s" % (resp.status, resp.body[:200].decode("utf-8", "replace"))
        else:
            outcome = "info"
        if outcome == "ok" and f == "unlock":
            value = dict(value, newly_unlocked=(resp.json() or {}).get("newly_unlocked"))
        rec = {"type": outcome, "op": opid, "proc": proc, "f": f, "value": value,
               "status": resp.status if resp is not None else status}
        if err:
            rec["error"] = err
        self.h.write(rec)
        self.counts[outcome] += 1
        if outcome == "ok":
            self.h.acked += 1
            self.last_ok_t = self.h.t()
        return outcome, resp, opid

    # ---- the kinds of writes --------------------------------------------------------------------

    async def do_unlock(self, cb, proc):
        p, a = self.rng.choice(self.players), self.rng.choice(ACHS)
        v = {"player": p, "game": GAME, "ach": a, "key": self.key()}
        body = {"player_id": p, "game_id": GAME, "achievement_id": a, "idempotency_key": v["key"]}
        await self.op(cb, proc, "unlock", v, "POST", "/v1/unlocks", body)

    async def do_best(self, cb, proc):
        b, p = self.rng.choice(BEST_BOARDS), self.rng.choice(self.players)
        v = {"board": b, "player": p, "score": self.rng.randrange(1, 10000000), "key": self.key()}
        body = {"player_id": p, "score": v["score"], "idempotency_key": v["key"]}
        await self.op(cb, proc, "score_best", v, "POST", "/v1/boards/%s/scores" % b, body)

    async def do_incr(self, cb, proc):
        p = self.rng.choice(self.players)
        v = {"board": INCR_BOARD, "player": p, "delta": 1, "key": self.key()}
        body = {"player_id": p, "score": 1, "idempotency_key": v["key"]}
        outcome, _, opid = await self.op(cb, proc, "score_incr", v, "POST",
                                         "/v1/boards/%s/scores" % INCR_BOARD, body)
        if outcome == "ok":
            self.acked_incr.append((opid, v))

    async def do_join(self, cb, proc):
        if not self.joiners:
            return await self.do_incr(cb, proc)
        p = self.joiners.pop()
        v = {"tournament": TOURNAMENT, "player": p}
        await self.op(cb, proc, "join", v, "POST", "/v1/tournaments/%s/join" % TOURNAMENT,
                      {"player_id": p})

    async def do_batch(self, cb, proc):
        """/v1/events with 5 items: each item is its own op in the history, and the batch is
        retried whole (same keys) until it gets an answer."""
        items, recs = [], []
        for _ in range(5):
            p = self.rng.choice(self.players)
            if self.rng.random() < 0.5:
                b = self.rng.choice(BEST_BOARDS)
                v = {"board": b, "player": p, "score": self.rng.randrange(1, 10000000),
                     "key": self.key()}
                items.append({"type": "score", "board_id": b, "player_id": p, "score": v["score"],
                              "idempotency_key": v["key"]})
                recs.append(("score_best", v))
            else:
                v = {"board": INCR_BOARD, "player": p, "delta": 1, "key": self.key()}
                items.append({"type": "score", "board_id": INCR_BOARD, "player_id": p, "score": 1,
                              "idempotency_key": v["key"]})
                recs.append(("score_incr", v))
        ids = []
        for f, v in recs:
            opid = self.h.next_op
            self.h.next_op += 1
            ids.append(opid)
            self.h.write({"type": "invoke", "op": opid, "proc": proc, "f": f, "value": v})
        end = time.monotonic() + 12.0
        results, err, status = None, None, None
        while True:
            status, r = await self.call(cb, "POST", "/v1/events", items, self.api, end)
            if status == 200:
                results = (r.json() or {}).get("results")
                break
            err = r if status is None else "%d" % status
            if (status is not None and status < 500) or self.stopping or time.monotonic() > end:
                break
            await asyncio.sleep(0.1 + self.rng.random() * 0.2)
        for i, (f, v) in enumerate(recs):
            st = None
            if results is not None and i < len(results):
                st = results[i].get("status")
            if st is not None and 200 <= st < 300:
                outcome = "ok"
            elif st is not None and st < 500:
                outcome = "fail"
            elif status is not None and status < 500 and status != 200:
                outcome = "fail"  # the whole batch refused: no item happened
                st = status
            else:
                outcome = "info"
            rec = {"type": outcome, "op": ids[i], "proc": proc, "f": f, "value": v,
                   "status": st if st is not None else status}
            if outcome != "ok" and err:
                rec["error"] = err
            self.h.write(rec)
            self.counts[outcome] += 1
            if outcome == "ok":
                self.h.acked += 1
                self.last_ok_t = self.h.t()
                if f == "score_incr":
                    self.acked_incr.append((ids[i], v))

    async def do_replay(self, cb, proc):
        """Send an acknowledged incr again, same key and body, as a client that lost the answer
        would: it must be answered from the idempotency record (Idempotent-Replayed), never
        applied a second time (the checker would see the counter above the acked sum)."""
        if not self.acked_incr:
            return await self.do_incr(cb, proc)
        of, v = self.rng.choice(self.acked_incr)
        body = {"player_id": v["player"], "score": 1, "idempotency_key": v["key"]}
        outcome, resp, opid = await self.op(cb, proc, "replay", {"of": of, "f": "score_incr",
                                                                 "value": v}, "POST",
                                            "/v1/boards/%s/scores" % INCR_BOARD, body)
        self.replays += 1
        if outcome == "ok" and resp.headers.get("idempotent-replayed", "") != "true":
            self.replays_applied.append(opid)

    # ---- workers ----------------------------------------------------------------------------------

    def choose(self):
        x = self.rng.random()
        table = [(0.22, self.do_unlock), (0.50, self.do_best), (0.78, self.do_incr),
                 (0.83, self.do_join), (0.95, self.do_batch), (1.0, self.do_replay)]
        for limit, fn in table:
            if x < limit:
                return fn
        return self.do_incr

    async def worker(self, proc):
        cb = [self.pool.conn()]
        while not self.stopping:
            await self.choose()(cb, proc)
        cb[0].close()

    def start(self):
        self.stopping = False
        self.tasks = [asyncio.ensure_future(self.worker(i)) for i in range(self.nworkers)]

    async def stop(self):
        self.stopping = True
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    # ---- setup: catalog and players, retried until done ----------------------------------------

    async def must(self, method, path, body, headers, what, tries=100):
        cb = [self.pool.conn()]
        for _ in range(tries):
            status, r = await self.call(cb, method, path, body, headers, 0)
            if status is not None and 200 <= status < 300:
                cb[0].close()
                return r
            if status is not None and 400 <= status < 500:
                raise RuntimeError("%s: %d %s" % (what, status, r.body[:300]))
            await asyncio.sleep(0.2)
        raise RuntimeError("%s: no answer after %d tries" % (what, tries))

    async def setup(self):
        await self.must("PUT", "/v1/games/" + GAME, {"name": "Chaos"}, self.admin, "game")
        for a in ACHS:
            await self.must("PUT", "/v1/games/%s/achievements/%s" % (GAME, a),
                            {"name": a, "description": "", "points": 5}, self.admin, "achievement")
        await self.must("PUT", "/v1/boards/best", {"order": "desc", "operator": "best",
                                                   "windows": ["alltime"]}, self.admin, "board")
        await self.must("PUT", "/v1/boards/" + INCR_BOARD, {"order": "desc", "operator": "incr",
                                                            "windows": ["alltime"]}, self.admin,
                        "board")
        await self.must("PUT", "/v1/boards/cyc", {
            "order": "desc", "operator": "best", "windows": ["alltime"],
            "reset_period_s": CYCLE_S, "snapshot_top": 5,
            "rewards": [{"rank_from": 1, "rank_to": 3, "reward": "gold"}]}, self.admin, "board")
        now = time.time()
        await self.must("PUT", "/v1/tournaments/" + TOURNAMENT, {
            "name": "Chaos cup", "order": "desc", "operator": "best",
            "start_at": iso(now - 60), "end_at": iso(now + 7200),
            "max_participants": TOURNAMENT_CAP, "max_attempts": 100, "prizes": []},
            self.admin, "tournament")
        sem = asyncio.Semaphore(16)

        async def put(i, p):
            async with sem:
                reg = self.regions[i % len(self.regions)]
                opid = self.h.next_op
                self.h.next_op += 1
                v = {"player": p, "region": reg}
                self.h.write({"type": "invoke", "op": opid, "proc": -1, "f": "player_put",
                              "value": v})
                await self.must("PUT", "/v1/players/" + p, {"name": p, "region": reg}, self.api,
                                "player")
                self.h.write({"type": "ok", "op": opid, "proc": -1, "f": "player_put",
                              "value": v, "status": 200})

        await asyncio.gather(*(put(i, p) for i, p in enumerate(self.players)))

    # ---- WebSocket subscribers ------------------------------------------------------------------

    async def subscriber(self, sid, topics):
        import websockets  # Debian's python3-websockets
        conn = 0
        while not self.stopping:
            conn += 1
            url = "ws://%s/v1/ws" % self.routers[(sid + conn) % len(self.routers)]
            try:
                async with websockets.connect(url, max_size=None, open_timeout=3,
                                              ping_interval=None) as ws:
                    await ws.send(json.dumps({"op": "subscribe", "topics": topics}))
                    self.h.write({"type": "ws", "sub": sid, "conn": conn, "event": "open"})
                    while not self.stopping:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.5)
                        except asyncio.TimeoutError:
                            continue
                        msg = json.loads(raw)
                        if msg.get("type") in ("achievement.unlocked", "score.updated",
                                               "reward.granted", "cycle.closed"):
                            self.h.write({"type": "event", "sub": sid, "conn": conn, "msg": msg})
            except Exception:
                pass
            self.h.write({"type": "ws", "sub": sid, "conn": conn, "event": "close"})
            if not self.stopping:
                await asyncio.sleep(0.3)

    def start_subscribers(self, n=3, per=12):
        for sid in range(n):
            ps = self.players[sid * per:(sid + 1) * per]
            topics = ["player:" + p for p in ps]
            self.subs.append(asyncio.ensure_future(self.subscriber(sid, topics)))

    async def stop_subscribers(self):
        await asyncio.gather(*self.subs, return_exceptions=True)
        self.subs = []


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"
