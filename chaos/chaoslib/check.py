"""The history checker: did the cluster keep every acknowledged write, and nothing else?

Input: the runner's history (history.jsonl, one JSON object a line) and final state
(final.json), in the format of the runner/checker contract (chaos/README.md, "How the checker decides", says how each
check decides). Every check yields a count; a run passes when every count is 0.

An operation ends in one of three ways, and each check leans on that:
- ok:   the write happened (a majority committed it), so it must be in the final state;
- fail: a definite refusal that changed nothing, so its value must NOT be in the final state;
- info: unknown (timeout, connection error, 5xx, or no completion at all), so its value MAY be
        in the final state, or not: both are correct and neither may be reported.

    python3 -m chaoslib.check HISTORY FINAL [--bound S]     (run from chaos/)

prints the findings, one summary line per check, and exits 0 when every count is 0, else 1.
"""
import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field

CHECKS = ("lost", "phantom", "duplicated", "cap", "diverged", "events", "liveness")
# The kinds of writes the checks judge. Any other kind is ignored; in particular "replay" (an
# acked incr sent again with its key, which must be answered from the idempotency record): it
# is no new write, so it adds nothing to what a counter may hold, and if the cluster applied it
# again the counter exceeds acked + info and the duplicated check reports it.
WRITE_KINDS = ("unlock", "score_best", "score_incr", "join", "player_put")
MAX_FINDINGS = 20  # per check; the rest are summed up as "and N more"
MAX_IDS = 12  # op ids named in one finding


# ---------------------------------------------------------------------------------------------
# Result


@dataclass
class Result:
    """Per-check counts, the number of acknowledged (ok) ops, and the findings."""

    lost: int = 0
    phantom: int = 0
    duplicated: int = 0
    cap: int = 0
    diverged: int = 0
    events: int = 0
    liveness: int = 0
    acked: int = 0
    findings: list = field(default_factory=list)

    def counts(self):
        return {name: getattr(self, name) for name in CHECKS}

    @property
    def ok(self):
        return all(n == 0 for n in self.counts().values())

    def summary(self):
        """One line per check, then the acked total."""
        lines = ["%-11s %d" % (name + ":", n) for name, n in self.counts().items()]
        lines.append("%-11s %d" % ("acked:", self.acked))
        return lines


class _Tally:
    """One check's count and its findings (the first MAX_FINDINGS kept, the rest counted)."""

    def __init__(self, name):
        self.name = name
        self.count = 0
        self.notes = []
        self.more = 0

    def add(self, n, msg):
        self.count += n
        if len(self.notes) < MAX_FINDINGS:
            self.notes.append("%s: %s" % (self.name, msg))
        else:
            self.more += 1

    def findings(self):
        tail = ["%s: and %d more" % (self.name, self.more)] if self.more else []
        return self.notes + tail


# ---------------------------------------------------------------------------------------------
# Reading the history


@dataclass
class Op:
    """One operation: its invoke merged with its completion (absent completion = info)."""

    id: object
    f: str
    value: dict
    status: str  # "ok" | "fail" | "info"
    t_invoke: float = None
    t_done: float = None
    http: object = None
    error: str = None
    completed: bool = False


@dataclass
class History:
    ops: dict = field(default_factory=dict)  # op id -> Op, in invoke order
    events: list = field(default_factory=list)  # (sub, conn, msg, t)
    healed: list = field(default_factory=list)  # t of each "healed" marker
    injected: int = 0  # number of nemesis inject records

    def of(self, kind, *statuses):
        return [o for o in self.ops.values()
                if o.f == kind and (not statuses or o.status in statuses)]


def load_history(path):
    """Read history.jsonl into a list of dicts.

    The runner may have been killed while writing, so a last line that is not valid JSON (a
    truncated write) is dropped. A bad line anywhere else is corruption, not a crash, and raises
    ValueError naming the line.
    """
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:
                break
            raise ValueError("%s:%d: not a JSON object: %.80s" % (path, i + 1, line))
    return out


def _merge_completion(op, rec):
    """Fold a completion into its op. The sent fields come from the invoke (the completion may
    add response fields, such as newly_unlocked); the last completion of an op wins. A "fail"
    carrying a 5xx status is read as "info": the contract says fail is never 5xx, and a 5xx
    write may have happened, so trusting it as a refusal could report a correct run."""
    value = dict(rec.get("value") or {})
    value.update(op.value)
    op.value = value
    op.status = rec["type"]
    if op.status == "fail" and isinstance(rec.get("status"), int) and rec["status"] >= 500:
        op.status = "info"  # a 5xx is never a definite refusal: it may have happened
    op.t_done = rec.get("t")
    op.http = rec.get("status")
    op.error = rec.get("error")
    op.completed = True


def parse_history(records):
    """Build a History from the records. An invoke without a completion stays "info": the runner
    died (or gave up) before it knew the outcome, so the write may or may not have happened. A
    completion without an invoke is taken on its own (its value is all we know)."""
    h = History()
    for rec in records:
        if not isinstance(rec, dict):
            continue
        typ = rec.get("type")
        if typ == "invoke":
            if rec.get("op") not in h.ops:
                h.ops[rec.get("op")] = Op(rec.get("op"), rec.get("f"), dict(rec.get("value") or {}),
                                          "info", t_invoke=rec.get("t"))
        elif typ in ("ok", "fail", "info"):
            op = h.ops.get(rec.get("op"))
            if op is None:
                op = h.ops[rec.get("op")] = Op(rec.get("op"), rec.get("f"), {}, "info")
            _merge_completion(op, rec)
        elif typ == "event":
            h.events.append((rec.get("sub"), rec.get("conn"), rec.get("msg") or {}, rec.get("t")))
        elif typ == "healed":
            h.healed.append(float(rec.get("t", 0.0)))
        elif typ == "nemesis" and rec.get("phase") == "inject":
            h.injected += 1
    return h


# ---------------------------------------------------------------------------------------------
# Helpers


def _ids(ops):
    """"ops 3, 7, 12" (at most MAX_IDS ids named)."""
    ids = sorted((o.id for o in ops),
                 key=lambda x: (0, x, "") if isinstance(x, (int, float)) else (1, 0, str(x)))
    s = ", ".join(str(i) for i in ids[:MAX_IDS])
    if len(ids) > MAX_IDS:
        s += ", ... (%d ops)" % len(ids)
    return ("op " if len(ids) == 1 else "ops ") + s if ids else "no op"


def _board_order(final, board):
    return ((final.get("boards") or {}).get(board) or {}).get("order", "desc")


def _board_operator(final, board):
    return ((final.get("boards") or {}).get(board) or {}).get("operator")


def _better(order, a, b):
    """True when score a ranks strictly better than b on a board of this order."""
    return a < b if order == "asc" else a > b


def _final_score(final, board, player):
    return ((final.get("scores") or {}).get(board) or {}).get(player)


def _t(ts):
    """A history time for a finding."""
    return "%.3f" % ts if isinstance(ts, (int, float)) else str(ts)


def _num(x):
    """A score or delta as a number (a missing or malformed one counts as 0)."""
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else 0


def _by_pair(ops):
    """Group score ops by (board, player)."""
    out = defaultdict(list)
    for o in ops:
        out[(o.value.get("board"), o.value.get("player"))].append(o)
    return out


def _final_unlocks(final):
    """The set of (player, game, ach) unlocked in the final state."""
    out = set()
    for player, items in (final.get("unlocks") or {}).items():
        for item in items or []:
            if len(item) >= 2:
                out.add((player, item[0], item[1]))
    return out


def _unlock_key(o):
    return (o.value.get("player"), o.value.get("game"), o.value.get("ach"))


# ---------------------------------------------------------------------------------------------
# lost


def _lost_unlocks(h, final, t):
    """An acknowledged unlock was committed by a majority: it must be in the final state."""
    have = _final_unlocks(final)
    missing = defaultdict(list)
    for o in h.of("unlock", "ok"):
        if _unlock_key(o) not in have:
            missing[_unlock_key(o)].append(o)
    for key, ops in sorted(missing.items(), key=str):
        t.add(1, "unlock %s/%s/%s acked (%s) but not unlocked in final" % (key + (_ids(ops),)))


def _lost_best(h, final, t):
    """A best register never goes back: its final value must be at least the best acked score
    (absent = lost). Info and fail ops do not raise the floor: they may not have happened."""
    for (board, player), ops in sorted(_by_pair(h.of("score_best", "ok")).items(), key=str):
        order = _board_order(final, board)
        top = ops[0]
        for o in ops[1:]:
            if _better(order, _num(o.value.get("score")), _num(top.value.get("score"))):
                top = o
        got = _final_score(final, board, player)
        if got is None:
            t.add(1, "best %s/%s: acked score %s (%s) but no final entry"
                  % (board, player, top.value.get("score"), _ids([top])))
        elif _better(order, _num(top.value.get("score")), _num(got)):
            t.add(1, "best %s/%s: final %s is below acked score %s (%s)"
                  % (board, player, got, top.value.get("score"), _ids([top])))


def _delta_unit(ops):
    """The size of one op, to turn an excess or deficit into a number of ops."""
    deltas = [abs(_num(o.value.get("delta"))) for o in ops]
    return max([d for d in deltas if d] or [1])


def _incr_bounds(ops):
    """(acked sum, lowest possible, highest possible) of a counter: acked deltas always count,
    each info delta may or may not, fail deltas never do."""
    acked = sum(_num(o.value.get("delta")) for o in ops if o.status == "ok")
    info = [_num(o.value.get("delta")) for o in ops if o.status == "info"]
    return acked, acked + sum(d for d in info if d < 0), acked + sum(d for d in info if d > 0)


def _lost_incr(h, final, t):
    """A counter below the lowest sum its acked ops allow lost at least one acked delta
    (counted in ops). An acked counter with no final entry is lost too."""
    for (board, player), ops in sorted(_by_pair(h.of("score_incr")).items(), key=str):
        acked_ops = [o for o in ops if o.status == "ok"]
        if not acked_ops:
            continue
        acked, lo, _ = _incr_bounds(ops)
        got = _final_score(final, board, player)
        if got is None:
            t.add(len(acked_ops), "incr %s/%s: %d acked ops (sum %d; %s) but no final entry"
                  % (board, player, len(acked_ops), acked, _ids(acked_ops)))
        elif _num(got) < lo:
            n = math.ceil((lo - got) / _delta_unit(acked_ops))
            neg = "" if lo == acked else ", %d with every negative info delta" % lo
            t.add(n, "incr %s/%s: final %s is below the acked sum %d%s (%s)"
                  % (board, player, got, acked, neg, _ids(acked_ops)))


def _lost_joins(h, final, t):
    """Every player with an acked join is a participant: the count may not be below the
    number of distinct such players (counted by the deficit)."""
    joined = defaultdict(dict)
    for o in h.of("join", "ok"):
        joined[o.value.get("tournament")].setdefault(o.value.get("player"), o)
    tours = final.get("tournaments") or {}
    for tid, players in sorted(joined.items(), key=str):
        tour = tours.get(tid)
        if tour is None:
            t.add(len(players), "tournament %s: %d acked joins but the tournament is not in final"
                  % (tid, len(players)))
            continue
        n = tour.get("participants") or 0
        if n < len(players):
            t.add(len(players) - n, "tournament %s: %d participants < %d players with an acked "
                  "join (%s)" % (tid, n, len(players), _ids(players.values())))


def _reward_items(final, player):
    return (final.get("rewards") or {}).get(player)


def _lost_rewards(h, final, t):
    """A reward recorded in a closed cycle was granted: it must be in its player's list, with
    the same rank and reward."""
    for board, cycles in sorted((final.get("cycles") or {}).items()):
        for n, cyc in sorted((cycles or {}).items(), key=lambda kv: str(kv[0])):
            for r in (cyc or {}).get("rewards") or []:
                _lost_reward(final, board, _cycle_no(n), r, t)


def _cycle_no(n):
    """final.json keys cycles by their number as a string; rewards lists carry an int."""
    try:
        return int(n)
    except (TypeError, ValueError):
        return n


def _lost_reward(final, board, cycle, r, t):
    player = r.get("player_id")
    items = _reward_items(final, player)
    if items is None:
        t.add(1, "reward %s cycle %s rank %s to %s: no rewards list for the player in final"
              % (board, cycle, r.get("rank"), player))
        return
    same = [i for i in items if i.get("board_id") == board and i.get("cycle") == cycle]
    if not same:
        t.add(1, "reward %s cycle %s rank %s (%s) to %s: missing from the player's list"
              % (board, cycle, r.get("rank"), r.get("reward"), player))
    elif not any(i.get("rank") == r.get("rank") and i.get("reward") == r.get("reward")
                 for i in same):
        t.add(1, "reward %s cycle %s to %s: the cycle says rank %s %r, the list says rank %s %r"
              % (board, cycle, player, r.get("rank"), r.get("reward"),
                 same[0].get("rank"), same[0].get("reward")))


def _lost_players(h, final, t):
    """A player whose creation was acked exists."""
    have = set(final.get("players") or [])
    missing = defaultdict(list)
    for o in h.of("player_put", "ok"):
        if o.value.get("player") not in have:
            missing[o.value.get("player")].append(o)
    for player, ops in sorted(missing.items(), key=str):
        t.add(1, "player %s: created (%s) but not in final players" % (player, _ids(ops)))


def check_lost(h, final, t):
    """lost: something acknowledged (ok) is missing from the final state."""
    for part in (_lost_unlocks, _lost_best, _lost_incr, _lost_joins, _lost_rewards, _lost_players):
        part(h, final, t)


# ---------------------------------------------------------------------------------------------
# phantom


def _phantom_unlocks(h, final, t):
    """An unlock in the final state must have been sent by an ok or info op. A fail op does not
    count (fail changed nothing), nor does an op for another player/game/achievement."""
    sent = {_unlock_key(o) for o in h.of("unlock", "ok", "info")}
    tried = defaultdict(list)
    for o in h.of("unlock", "fail"):
        tried[_unlock_key(o)].append(o)
    for key in sorted(_final_unlocks(final) - sent, key=str):
        why = " (only failed %s)" % _ids(tried[key]) if key in tried else ""
        t.add(1, "unlock %s/%s/%s in final but never sent%s" % (key + (why,)))


def _scored_boards(h):
    return {o.value.get("board") for o in h.ops.values() if o.f in ("score_best", "score_incr")}


def _phantom_entries(h, final, t):
    """On a board the workload wrote to, every entry belongs to a player some ok/info op
    scored there. Boards the workload never wrote to (e.g. points.<game>) are not judged."""
    live = _by_pair(h.of("score_best", "ok", "info") + h.of("score_incr", "ok", "info"))
    failed = _by_pair(h.of("score_best", "fail") + h.of("score_incr", "fail"))
    for board in sorted(_scored_boards(h) & set(final.get("scores") or {}), key=str):
        for player, score in sorted((final["scores"][board] or {}).items()):
            if (board, player) not in live:
                fails = failed.get((board, player))
                why = " (only failed %s)" % _ids(fails) if fails else ""
                t.add(1, "entry %s/%s = %s but nobody scored it%s" % (board, player, score, why))


def _phantom_best(h, final, t):
    """A best register holds one of the scores sent to it by an ok or info op. A value sent
    only by a fail op (e.g. 409) must not appear: fail means it did not happen."""
    failed = _by_pair(h.of("score_best", "fail"))
    for (board, player), ops in sorted(_by_pair(h.of("score_best", "ok", "info")).items(), key=str):
        got = _final_score(final, board, player)
        if got is not None and got not in {o.value.get("score") for o in ops}:
            fails = [o for o in failed.get((board, player), []) if o.value.get("score") == got]
            why = " (sent only by failed %s)" % _ids(fails) if fails else ""
            t.add(1, "best %s/%s: final %s was never sent by an ok/info op%s"
                  % (board, player, got, why))


def _incr_excess(h, final):
    """[(board, player, ops, final, acked, hi)] for counters above every op's possible sum."""
    out = []
    for (board, player), ops in sorted(_by_pair(h.of("score_incr")).items(), key=str):
        if not any(o.status in ("ok", "info") for o in ops):
            continue  # nobody scored it: _phantom_entries reports the entry
        acked, _, hi = _incr_bounds(ops)
        got = _final_score(final, board, player)
        if got is not None and _num(got) > hi:
            out.append((board, player, ops, got, acked, hi))
    return out


def _phantom_incr(h, final, t):
    """A counter above acked + info sums holds a delta nobody sent (or one applied twice,
    which the duplicated check counts too)."""
    for board, player, ops, got, acked, hi in _incr_excess(h, final):
        t.add(1, "incr %s/%s: final %s > %d (acked %d + info %d; %s)"
              % (board, player, got, hi, acked, hi - acked, _ids(ops)))


def _phantom_joins(h, final, t):
    """A tournament cannot count more participants than distinct players with an ok or info
    join (counted by the excess)."""
    sent = defaultdict(set)
    for o in h.of("join", "ok", "info"):
        sent[o.value.get("tournament")].add(o.value.get("player"))
    for tid, tour in sorted((final.get("tournaments") or {}).items()):
        n = (tour or {}).get("participants") or 0
        if n > len(sent[tid]):
            t.add(n - len(sent[tid]), "tournament %s: %d participants > %d players with an "
                  "ok/info join" % (tid, n, len(sent[tid])))


def check_phantom(h, final, t):
    """phantom: the final state holds something no ok/info op sent."""
    for part in (_phantom_unlocks, _phantom_entries, _phantom_best, _phantom_incr, _phantom_joins):
        part(h, final, t)


# ---------------------------------------------------------------------------------------------
# duplicated


def _dup_incr(h, final, t):
    """A counter above acked + info sums applied some delta twice: counted by the excess, in
    ops (excess / the largest delta of the counter, rounded up)."""
    for board, player, ops, got, acked, hi in _incr_excess(h, final):
        n = math.ceil((got - hi) / _delta_unit([o for o in ops if o.status != "fail"]))
        t.add(n, "incr %s/%s: final %s exceeds acked+info %d by %d (~%d op(s) applied twice; %s)"
              % (board, player, got, hi, got - hi, n, _ids(ops)))


def _dup_unlocks(h, final, t):
    """Two acked unlocks of the same achievement (different keys) cannot both be
    newly_unlocked: unlocking is once, so the second is a duplicate application."""
    fresh = defaultdict(list)
    for o in h.of("unlock", "ok"):
        if o.value.get("newly_unlocked") is True:
            fresh[_unlock_key(o)].append(o)
    for key, ops in sorted(fresh.items(), key=str):
        if len(ops) > 1:
            t.add(len(ops) - 1, "unlock %s/%s/%s newly_unlocked %d times (%s)"
                  % (key + (len(ops), _ids(ops))))


def _dup_rewards(h, final, t):
    """A (board, cycle) is rewarded at most once per player: twice in a player's list, or a
    player twice in one cycle's rewards, is a double grant (counted per extra copy)."""
    for player, items in sorted((final.get("rewards") or {}).items()):
        seen = defaultdict(int)
        for i in items or []:
            seen[(i.get("board_id"), i.get("cycle"))] += 1
        for (board, cycle), n in sorted(seen.items(), key=str):
            if n > 1:
                t.add(n - 1, "reward %s cycle %s listed %d times for %s"
                      % (board, cycle, n, player))
    for board, cycles in sorted((final.get("cycles") or {}).items()):
        for n, cyc in sorted((cycles or {}).items(), key=lambda kv: str(kv[0])):
            seen = defaultdict(int)
            for r in (cyc or {}).get("rewards") or []:
                seen[r.get("player_id")] += 1
            for player, k in sorted(seen.items(), key=str):
                if k > 1:
                    t.add(k - 1, "cycle %s/%s rewards %s %d times" % (board, n, player, k))


def _event_key(msg):
    """What makes two event messages "the same event", or None for kinds not judged.
    leaderboard.changed and cycle.closed carry no topic and may legitimately come once per
    subscribed board topic, so they are not judged."""
    typ = msg.get("type")
    if typ == "achievement.unlocked":
        return (typ, msg.get("region"), msg.get("index"), msg.get("player_id"),
                msg.get("game_id"), msg.get("achievement_id"))
    if typ == "score.updated":
        return (typ, msg.get("region"), msg.get("index"), msg.get("board_id"),
                msg.get("player_id"), msg.get("score"))
    if typ == "reward.granted":
        return (typ, msg.get("player_id"), msg.get("board_id"), msg.get("cycle"))
    return None


def _dup_events(h, final, t):
    """Within one connection a subscriber gets each committed event once. Across reconnects
    (another conn) it may get it again: a resumed stream may replay."""
    seen = {}
    for sub, conn, msg, ts in h.events:
        key = _event_key(msg)
        if key is None:
            continue
        if (sub, conn, key) in seen:
            t.add(1, "sub %s conn %s got %s for %s twice (t=%s and t=%s)"
                  % (sub, conn, key[0], _event_what(msg), _t(seen[(sub, conn, key)]), _t(ts)))
        else:
            seen[(sub, conn, key)] = ts


def _event_what(msg):
    parts = [msg.get(k) for k in ("board_id", "player_id", "game_id", "achievement_id", "score",
                                  "cycle") if msg.get(k) is not None]
    where = " at %s#%s" % (msg.get("region"), msg.get("index")) if "index" in msg else ""
    return "/".join(str(p) for p in parts) + where


def check_duplicated(h, final, t):
    """duplicated: something applied or delivered more than once."""
    for part in (_dup_incr, _dup_unlocks, _dup_rewards, _dup_events):
        part(h, final, t)


# ---------------------------------------------------------------------------------------------
# cap


def check_cap(h, final, t):
    """cap: max_participants holds across regions and routers. A tournament fails when its
    final participants exceed the cap, or when more distinct players got an acked join than
    the cap allows (even if the final count looks right, which is then also lost)."""
    joined = defaultdict(set)
    for o in h.of("join", "ok"):
        joined[o.value.get("tournament")].add(o.value.get("player"))
    for tid, tour in sorted((final.get("tournaments") or {}).items()):
        cap = (tour or {}).get("max_participants")
        if cap is None:
            continue
        n = (tour or {}).get("participants") or 0
        if n > cap or len(joined[tid]) > cap:
            t.add(1, "tournament %s: %d participants, %d players with an acked join, cap %d"
                  % (tid, n, len(joined[tid]), cap))


# ---------------------------------------------------------------------------------------------
# diverged


def _digest(d):
    """Digests may be hex strings or ints: compare them as numbers when they parse."""
    if isinstance(d, bool) or d is None:
        return d
    if isinstance(d, int):
        return d
    s = str(d).strip().lower()
    try:
        return int(s[2:] if s.startswith("0x") else s, 16)
    except ValueError:
        return s


def check_diverged(h, final, t):
    """diverged: after the heal, every replica of a region has applied the same log, so the
    same (applied_index, digest). The replicas outside the majority's pair are diverged, and so
    are replicas that could not be read (ok false): we cannot vouch for them. With no strict
    majority every replica of the region is counted."""
    for region, reps in sorted((final.get("replicas") or {}).items()):
        reps = reps or []
        if not reps:
            t.add(1, "region %s: no replica read" % region)
            continue
        states = defaultdict(list)
        for r in reps:
            if r.get("ok", True):
                states[_state(r)].append(r)
        best = max(states.values(), key=len, default=[])
        major = best[0] if len(best) * 2 > len(reps) else None
        for r in reps:
            _diverged_replica(region, r, major, t)


def _state(r):
    return (r.get("applied_index"), _digest(r.get("digest")))


def _diverged_replica(region, r, major, t):
    """major: a replica in the majority state (None when there is none)."""
    who = "region %s replica %s" % (region, r.get("id"))
    if r.get("host"):
        who += " (%s)" % r["host"]
    if not r.get("ok", True):
        t.add(1, "%s: could not be read" % who)
    elif major is None:
        t.add(1, "%s: (applied %s, digest %s), no majority state"
              % (who, r.get("applied_index"), r.get("digest")))
    elif _state(r) != _state(major):
        t.add(1, "%s: (applied %s, digest %s) != majority (applied %s, digest %s)"
              % (who, r.get("applied_index"), r.get("digest"), major.get("applied_index"),
                 major.get("digest")))


# ---------------------------------------------------------------------------------------------
# events


def _events_unlocks(msg, final, have):
    if (msg.get("player_id"), msg.get("game_id"), msg.get("achievement_id")) not in have:
        return "achievement.unlocked for an unlock not in final"
    return None


def _events_reward(msg, final):
    """reward.granted names a grant that must be in the player's rewards list (when the runner
    read that list)."""
    items = _reward_items(final, msg.get("player_id"))
    if items is None:
        return None
    if not any(i.get("board_id") == msg.get("board_id") and i.get("cycle") == msg.get("cycle")
               for i in items):
        return "reward.granted for a reward not in the player's list"
    return None


def _shrinking_counters(h):
    """The (board, player) counters some op gave a negative delta: they may go down."""
    return {(o.value.get("board"), o.value.get("player")) for o in h.of("score_incr")
            if _num(o.value.get("delta")) < 0}


def _events_score(ctx, msg, final):
    """score.updated is sent for a committed entry: the player has a final entry, and a best
    (or never-shrinking incr) register cannot end below a score an event announced. Boards the
    runner did not read (not in final boards/scores, e.g. points.<game>) are not judged."""
    board, player = msg.get("board_id"), msg.get("player_id")
    if board not in (final.get("scores") or {}) and board not in (final.get("boards") or {}):
        return None
    got = _final_score(final, board, player)
    if got is None:
        return "score.updated for a player with no final entry"
    op = _board_operator(final, board) or ("best" if board in ctx["best"] else None)
    score, got = msg.get("score"), _num(got)
    if not isinstance(score, (int, float)):
        return None
    if op == "best" and _better(_board_order(final, board), score, got):
        return "score.updated with %s, better than the final %s" % (score, got)
    if op == "incr" and score > got and (board, player) not in ctx["shrinking"]:
        return "score.updated with %s, above the final counter %s" % (score, got)
    return None


def _best_boards(h):
    return {o.value.get("board") for o in h.of("score_best")}


def _events_backwards(h, t):
    """Per (sub, conn, player, region) the Raft index of events never goes backwards: a
    connection delivers a region's committed entries in log order. A new connection starts over
    (the same event again after a reconnect is fine); an exact duplicate is counted by the
    duplicated check instead."""
    last = {}
    seen = set()
    for sub, conn, msg, ts in h.events:
        if msg.get("index") is None or _event_key(msg) is None:
            continue
        if (sub, conn, _event_key(msg)) in seen:
            continue
        seen.add((sub, conn, _event_key(msg)))
        k = (sub, conn, msg.get("player_id"), msg.get("region"))
        if k in last and msg["index"] < last[k][0]:
            t.add(1, "sub %s conn %s player %s: %s at %s#%s (t=%s) after index %s (t=%s)"
                  % (sub, conn, msg.get("player_id"), msg.get("type"), msg.get("region"),
                     msg["index"], _t(ts), last[k][0], _t(last[k][1])))
        else:
            last[k] = (msg["index"], ts)


def check_events(h, final, t):
    """events: what subscribers were told agrees with the final state, in log order."""
    have = _final_unlocks(final)
    ctx = {"best": _best_boards(h), "shrinking": _shrinking_counters(h)}
    for sub, conn, msg, ts in h.events:
        why = None
        if msg.get("type") == "achievement.unlocked":
            why = _events_unlocks(msg, final, have)
        elif msg.get("type") == "score.updated":
            why = _events_score(ctx, msg, final)
        elif msg.get("type") == "reward.granted":
            why = _events_reward(msg, final)
        if why:
            t.add(1, "sub %s conn %s t=%s: %s (%s)" % (sub, conn, _t(ts), why, _event_what(msg)))
    _events_backwards(h, t)


# ---------------------------------------------------------------------------------------------
# liveness


def check_liveness(h, final, t, bound_s):
    """liveness: once every fault is healed, the cluster must acknowledge a write within
    bound_s (an op completing ok after the marker counts, even if invoked before it: it proves
    writes go through again). Each "healed" marker is judged. Without a marker, a history that
    injected faults never recorded its heal and fails; one without faults has nothing to
    recover from and passes. The runner's own figure (final["liveness"]) is not trusted: the
    history's timestamps decide."""
    oks = sorted(o.t_done for o in h.ops.values()
                 if o.status == "ok" and o.f in WRITE_KINDS and o.t_done is not None)
    for healed in h.healed:
        first = next((x for x in oks if x >= healed), None)
        if first is None or first - healed > bound_s:
            got = "none" if first is None else "the first %.3fs after" % (first - healed)
            t.add(1, "healed at t=%.3f: no ok write within %.1fs (%s)" % (healed, bound_s, got))
    if not h.healed and h.injected:
        t.add(1, "%d faults injected but no \"healed\" marker" % h.injected)


# ---------------------------------------------------------------------------------------------
# Entry points


def check(history_lines, final, bound_s=30.0):
    """Run every check over the history records and the final state; return a Result."""
    h = parse_history(history_lines)
    final = final or {}
    tallies = {name: _Tally(name) for name in CHECKS}
    check_lost(h, final, tallies["lost"])
    check_phantom(h, final, tallies["phantom"])
    check_duplicated(h, final, tallies["duplicated"])
    check_cap(h, final, tallies["cap"])
    check_diverged(h, final, tallies["diverged"])
    check_events(h, final, tallies["events"])
    check_liveness(h, final, tallies["liveness"], bound_s)
    res = Result(acked=sum(1 for o in h.ops.values() if o.status == "ok"))
    for name, tally in tallies.items():
        setattr(res, name, tally.count)
        res.findings.extend(tally.findings())
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m chaoslib.check",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("history", help="history.jsonl")
    ap.add_argument("final", help="final.json")
    ap.add_argument("--bound", type=float, default=None,
                    help="liveness bound in seconds (default: final's liveness.bound_s, else 30)")
    args = ap.parse_args(argv)
    try:
        with open(args.final, encoding="utf-8") as fh:
            final = json.load(fh)
        history = load_history(args.history)
    except (OSError, ValueError) as e:  # 2, not 1: no verdict was reached
        print("check: %s" % e, file=sys.stderr)
        return 2
    bound = args.bound
    if bound is None:
        bound = float((final.get("liveness") or {}).get("bound_s") or 30.0)
    res = check(history, final, bound_s=bound)
    for line in res.findings:
        print(line)
    for line in res.summary():
        print(line)
    print("PASS" if res.ok else "FAIL")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
