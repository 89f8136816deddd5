"""Unit tests of the history checker (chaoslib.check) on hand-made histories.

For every check: at least one history that must fail (the count is > 0 and a finding names the
culprit) and one that must pass. Run from chaos/:  python3 -m unittest discover -s tests -t .
"""
import contextlib
import io
import json
import os
import tempfile
import unittest

from chaoslib import check as C


class H:
    """A history under construction: ops get increasing ids and times."""

    def __init__(self):
        self.lines = []
        self.t = 0.0
        self.next_op = 1

    def _tick(self):
        self.t += 0.1
        return round(self.t, 3)

    def invoke(self, f, value, proc=0):
        op = self.next_op
        self.next_op += 1
        self.lines.append({"type": "invoke", "op": op, "proc": proc, "f": f, "value": dict(value),
                           "t": self._tick()})
        return op

    def complete(self, op, f, value, status, http=None, **extra):
        rec = {"type": status, "op": op, "proc": 0, "f": f, "value": dict(value, **extra),
               "t": self._tick(), "status": http}
        if status != "ok":
            rec["error"] = "test"
        self.lines.append(rec)

    def op(self, f, status="ok", http=None, extra=None, **value):
        """One op: invoke + completion (status None = no completion at all)."""
        op = self.invoke(f, value)
        if status is not None:
            default = {"ok": 200, "fail": 409, "info": None}[status]
            self.complete(op, f, value, status, http or default, **(extra or {}))
        return op

    def unlock(self, player, game, ach, status="ok", newly=True):
        extra = {"newly_unlocked": newly} if status == "ok" else None
        return self.op("unlock", status, extra=extra, player=player, game=game, ach=ach,
                       key="k%d" % self.next_op)

    def best(self, board, player, score, status="ok", http=None):
        return self.op("score_best", status, http, board=board, player=player, score=score,
                       key="k%d" % self.next_op)

    def incr(self, board, player, delta, status="ok"):
        return self.op("score_incr", status, board=board, player=player, delta=delta,
                       key="k%d" % self.next_op)

    def join(self, tournament, player, status="ok"):
        return self.op("join", status, tournament=tournament, player=player)

    def put(self, player, status="ok"):
        return self.op("player_put", status, player=player, region="na")

    def event(self, sub, conn, **msg):
        self.lines.append({"type": "event", "sub": sub, "conn": conn, "msg": msg,
                           "t": self._tick()})

    def ws(self, sub, conn, event):
        self.lines.append({"type": "ws", "sub": sub, "conn": conn, "event": event,
                           "t": self._tick()})

    def inject(self, fault="partition"):
        self.lines.append({"type": "nemesis", "phase": "inject", "fault": fault, "detail": {},
                           "t": self._tick()})

    def heal(self, fault="partition"):
        self.lines.append({"type": "nemesis", "phase": "heal", "fault": fault, "detail": {},
                           "t": self._tick()})

    def healed(self, t=None):
        if t is not None:
            self.t = t
        self.lines.append({"type": "healed", "t": self._tick() if t is None else t})


def final(**over):
    """A final state with every section present and empty, then `over`."""
    f = {"unlocks": {}, "scores": {}, "boards": {}, "tournaments": {}, "cycles": {},
         "rewards": {}, "players": [], "replicas": {},
         "liveness": {"first_ok_after_heal_s": None, "bound_s": 30}}
    f.update(over)
    return f


BOARDS = {"hi": {"operator": "best", "order": "desc"}, "cnt": {"operator": "incr", "order": "desc"}}


class Base(unittest.TestCase):
    def run_check(self, h, fin, bound_s=30.0):
        return C.check(h.lines, fin, bound_s=bound_s)

    def assertFails(self, res, name, *culprits, count=None):
        """The check's count is > 0 (or == count) and one of its findings names every culprit."""
        n = getattr(res, name)
        if count is None:
            self.assertGreater(n, 0, "%s should fail: %s" % (name, res.findings))
        else:
            self.assertEqual(n, count, "%s: %s" % (name, res.findings))
        mine = [f for f in res.findings if f.startswith(name + ":")]
        self.assertTrue(any(all(str(c) in f for c in culprits) for f in mine),
                        "no %s finding names %s: %s" % (name, culprits, mine))

    def assertPasses(self, res, *names):
        names = names or C.CHECKS
        for name in names:
            self.assertEqual(getattr(res, name), 0, "%s: %s" % (name, res.findings))

    def assertAllPass(self, res):
        self.assertPasses(res)
        self.assertTrue(res.ok, res.findings)


# ---------------------------------------------------------------------------------------------


class TestLost(Base):
    def test_acked_unlock_missing_fails(self):
        h = H()
        h.unlock("p1", "g", "a1")
        op = h.unlock("p2", "g", "a2")
        res = self.run_check(h, final(unlocks={"p1": [["g", "a1"]]}))
        self.assertFails(res, "lost", "p2/g/a2", "op %d" % op, count=1)

    def test_acked_unlock_present_passes(self):
        h = H()
        h.unlock("p1", "g", "a1")
        h.unlock("p1", "g", "a1", newly=False)
        self.assertAllPass(self.run_check(h, final(unlocks={"p1": [["g", "a1"]]})))

    def test_info_unlock_may_or_may_not_appear(self):
        h = H()
        h.unlock("p1", "g", "a1", status="info")
        self.assertAllPass(self.run_check(h, final(unlocks={"p1": [["g", "a1"]]})))
        self.assertAllPass(self.run_check(h, final()))

    def test_invoke_without_completion_counts_as_info(self):
        h = H()
        h.unlock("p1", "g", "a1", status=None)
        h.incr("cnt", "p1", 5, status=None)
        h.best("hi", "p1", 70, status=None)
        present = final(unlocks={"p1": [["g", "a1"]]}, boards=BOARDS,
                        scores={"cnt": {"p1": 5}, "hi": {"p1": 70}})
        self.assertAllPass(self.run_check(h, present))
        self.assertAllPass(self.run_check(h, final(boards=BOARDS)))
        self.assertEqual(self.run_check(h, present).acked, 0)

    def test_fail_unlock_absent_passes(self):
        h = H()
        h.unlock("p1", "g", "a1", status="fail")
        self.assertAllPass(self.run_check(h, final()))

    def test_best_below_acked_max_fails(self):
        h = H()
        h.best("hi", "p1", 10)
        op = h.best("hi", "p1", 50)
        h.best("hi", "p1", 30)
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 30}}))
        self.assertFails(res, "lost", "hi/p1", "50", "op %d" % op, count=1)

    def test_best_absent_fails(self):
        h = H()
        op = h.best("hi", "p1", 10)
        res = self.run_check(h, final(boards=BOARDS))
        self.assertFails(res, "lost", "hi/p1", "no final entry", "op %d" % op)

    def test_best_at_acked_max_passes(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 50)
        h.best("hi", "p1", 30)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 50}})))

    def test_best_asc_board_keeps_the_lowest(self):
        h = H()
        h.best("lap", "p1", 50)
        h.best("lap", "p1", 40)
        boards = {"lap": {"operator": "best", "order": "asc"}}
        self.assertAllPass(self.run_check(h, final(boards=boards, scores={"lap": {"p1": 40}})))
        res = self.run_check(h, final(boards=boards, scores={"lap": {"p1": 50}}))
        self.assertFails(res, "lost", "lap/p1", "40")

    def test_incr_below_acked_sum_fails(self):
        h = H()
        ops = [h.incr("cnt", "p1", 1) for _ in range(5)]
        h.incr("cnt", "p1", 1, status="info")
        res = self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 4}}))
        self.assertFails(res, "lost", "cnt/p1", "final 4", "op%s %d" % ("s", ops[0]), count=1)
        self.assertPasses(res, "phantom", "duplicated")

    def test_incr_between_acked_and_acked_plus_info_passes(self):
        h = H()
        for _ in range(5):
            h.incr("cnt", "p1", 1)
        for _ in range(3):
            h.incr("cnt", "p1", 1, status="info")
        h.incr("cnt", "p1", 1, status=None)
        h.incr("cnt", "p1", 1, status="fail")
        for v in range(5, 10):
            res = self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": v}}))
            self.assertAllPass(res)

    def test_incr_absent_with_acked_ops_fails(self):
        h = H()
        op = h.incr("cnt", "p1", 3)
        res = self.run_check(h, final(boards=BOARDS))
        self.assertFails(res, "lost", "cnt/p1", "no final entry", "op %d" % op)

    def test_join_participants_below_acked_fails(self):
        h = H()
        h.join("t1", "p1")
        h.join("t1", "p2")
        h.join("t1", "p2")  # joining twice is a no-op: still two players
        h.join("t1", "p3", status="fail")
        tours = {"t1": {"participants": 1, "max_participants": 5}}
        res = self.run_check(h, final(tournaments=tours))
        self.assertFails(res, "lost", "t1", "1 participants < 2", count=1)
        tours = {"t1": {"participants": 2, "max_participants": 5}}
        self.assertAllPass(self.run_check(h, final(tournaments=tours)))

    def test_cycle_reward_missing_from_player_list_fails(self):
        cycles = {"hi": {"7": {"rewards": [{"player_id": "p1", "rank": 1, "reward": "gold"},
                                           {"player_id": "p2", "rank": 2, "reward": "silver"}]}}}
        good = {"p1": [{"board_id": "hi", "cycle": 7, "rank": 1, "reward": "gold"}],
                "p2": [{"board_id": "hi", "cycle": 7, "rank": 2, "reward": "silver"}]}
        self.assertAllPass(self.run_check(H(), final(cycles=cycles, rewards=good)))
        bad = {"p1": good["p1"], "p2": []}
        res = self.run_check(H(), final(cycles=cycles, rewards=bad))
        self.assertFails(res, "lost", "hi cycle 7", "p2", count=1)
        wrong = {"p1": good["p1"], "p2": [dict(good["p2"][0], reward="bronze")]}
        res = self.run_check(H(), final(cycles=cycles, rewards=wrong))
        self.assertFails(res, "lost", "hi cycle 7", "p2", "bronze", count=1)

    def test_player_put_missing_fails(self):
        h = H()
        h.put("p1")
        op = h.put("p2")
        h.put("p3", status="info")
        h.put("p4", status="fail")
        res = self.run_check(h, final(players=["p1"]))
        self.assertFails(res, "lost", "player p2", "op %d" % op, count=1)
        self.assertAllPass(self.run_check(h, final(players=["p1", "p2"])))


class TestPhantom(Base):
    def test_unlock_never_sent_fails(self):
        h = H()
        h.unlock("p1", "g", "a1")
        res = self.run_check(h, final(unlocks={"p1": [["g", "a1"], ["g", "a9"]]}))
        self.assertFails(res, "phantom", "p1/g/a9", count=1)

    def test_unlock_sent_only_by_fail_fails(self):
        h = H()
        op = h.unlock("p1", "g", "a1", status="fail")
        res = self.run_check(h, final(unlocks={"p1": [["g", "a1"]]}))
        self.assertFails(res, "phantom", "p1/g/a1", "op %d" % op, count=1)

    def test_best_value_never_sent_fails(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 20, status="info")
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 15}}))
        self.assertFails(res, "phantom", "hi/p1", "15", count=1)

    def test_best_equal_to_info_above_acked_max_passes(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 90, status="info")
        h.best("hi", "p1", 70, status=None)
        for v in (10, 70, 90):
            self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": v}})))

    def test_best_value_of_fail_op_fails(self):
        h = H()
        h.best("hi", "p1", 10)
        op = h.best("hi", "p1", 99, status="fail", http=409)
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 99}}))
        self.assertFails(res, "phantom", "hi/p1", "99", "op %d" % op, count=1)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 10}})))

    def test_fail_with_5xx_is_read_as_info(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 99, status="fail", http=503)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 99}})))

    def test_entry_for_player_nobody_scored_fails(self):
        h = H()
        h.best("hi", "p1", 10)
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 10, "ghost": 3}}))
        self.assertFails(res, "phantom", "hi/ghost", "nobody scored", count=1)

    def test_board_the_workload_never_wrote_is_not_judged(self):
        h = H()
        h.unlock("p1", "g", "a1")
        fin = final(unlocks={"p1": [["g", "a1"]]}, scores={"points.g": {"p1": 10}},
                    boards={"points.g": {"operator": "incr", "order": "desc"}})
        self.assertAllPass(self.run_check(h, fin))

    def test_incr_above_acked_plus_info_fails(self):
        h = H()
        for _ in range(3):
            h.incr("cnt", "p1", 1)
        h.incr("cnt", "p1", 1, status="info")
        h.incr("cnt", "p1", 1, status="fail")
        res = self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 6}}))
        self.assertFails(res, "phantom", "cnt/p1", "final 6", count=1)
        self.assertFails(res, "duplicated", "cnt/p1", count=2)
        self.assertPasses(res, "lost")

    def test_join_participants_above_sent_fails(self):
        h = H()
        h.join("t1", "p1")
        h.join("t1", "p2", status="info")
        h.join("t1", "p3", status="fail")
        tours = {"t1": {"participants": 3, "max_participants": 10}}
        res = self.run_check(h, final(tournaments=tours))
        self.assertFails(res, "phantom", "t1", "3 participants > 2", count=1)
        for n in (1, 2):
            tours = {"t1": {"participants": n, "max_participants": 10}}
            self.assertAllPass(self.run_check(h, final(tournaments=tours)))


class TestDuplicated(Base):
    def test_replay_of_acked_incr_adds_nothing(self):
        # "replay": an acked incr sent again with its key; applied again = duplicated
        h = H()
        op = h.incr("cnt", "p1", 1)
        v = {"board": "cnt", "player": "p1", "delta": 1, "key": "k%d" % op}
        for status in ("ok", "info"):
            rv = {"of": op, "f": "score_incr", "value": v}
            http = 200 if status == "ok" else None
            h.complete(h.invoke("replay", rv), "replay", rv, status, http)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 1}})))
        res = self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 2}}))
        self.assertFails(res, "duplicated", "cnt/p1", "op %d" % op, count=1)

    def test_incr_excess_counted_in_ops(self):
        h = H()
        for _ in range(4):
            h.incr("cnt", "p1", 10)
        res = self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 60}}))
        self.assertFails(res, "duplicated", "cnt/p1", "by 20", count=2)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 40}})))

    def test_reward_listed_twice_fails(self):
        item = {"board_id": "hi", "cycle": 3, "rank": 1, "reward": "gold"}
        cycles = {"hi": {"3": {"rewards": [{"player_id": "p1", "rank": 1, "reward": "gold"}]}}}
        res = self.run_check(H(), final(cycles=cycles, rewards={"p1": [item, dict(item)]}))
        self.assertFails(res, "duplicated", "hi cycle 3", "p1", count=1)
        self.assertAllPass(self.run_check(H(), final(cycles=cycles, rewards={"p1": [item]})))

    def test_same_board_cycle_granted_twice_fails(self):
        items = [{"board_id": "hi", "cycle": 3, "rank": 1, "reward": "gold"},
                 {"board_id": "hi", "cycle": 3, "rank": 2, "reward": "silver"}]
        res = self.run_check(H(), final(rewards={"p1": items}))
        self.assertFails(res, "duplicated", "hi cycle 3", "p1", count=1)
        other = [items[0], dict(items[1], cycle=4)]
        self.assertAllPass(self.run_check(H(), final(rewards={"p1": other})))

    def test_player_twice_in_one_cycle_fails(self):
        rw = [{"player_id": "p1", "rank": 1, "reward": "gold"},
              {"player_id": "p1", "rank": 2, "reward": "silver"}]
        items = [{"board_id": "hi", "cycle": 3, "rank": 1, "reward": "gold"}]
        res = self.run_check(H(), final(cycles={"hi": {"3": {"rewards": rw}}},
                                        rewards={"p1": items}))
        self.assertFails(res, "duplicated", "hi/3", "p1", count=1)

    def _unlocked(self, h, conn, index):
        h.event(1, conn, type="achievement.unlocked", player_id="p1", game_id="g",
                achievement_id="a1", points=5, at="x", region="na", index=index)

    def test_same_event_twice_in_one_connection_fails(self):
        h = H()
        h.unlock("p1", "g", "a1")
        h.ws(1, 1, "open")
        self._unlocked(h, 1, 12)
        self._unlocked(h, 1, 12)
        res = self.run_check(h, final(unlocks={"p1": [["g", "a1"]]}))
        self.assertFails(res, "duplicated", "sub 1 conn 1", "p1/g/a1", "na#12", count=1)
        self.assertPasses(res, "events")

    def test_same_event_across_reconnects_passes(self):
        h = H()
        h.unlock("p1", "g", "a1")
        h.ws(1, 1, "open")
        self._unlocked(h, 1, 12)
        h.ws(1, 1, "close")
        h.ws(1, 2, "open")
        self._unlocked(h, 2, 12)
        self.assertAllPass(self.run_check(h, final(unlocks={"p1": [["g", "a1"]]})))

    def test_two_newly_unlocked_fails(self):
        h = H()
        a = h.unlock("p1", "g", "a1", newly=True)
        b = h.unlock("p1", "g", "a1", newly=True)
        res = self.run_check(h, final(unlocks={"p1": [["g", "a1"]]}))
        self.assertFails(res, "duplicated", "p1/g/a1", "ops %d, %d" % (a, b), count=1)


class TestCap(Base):
    def test_participants_above_cap_fails(self):
        h = H()
        for p in ("p1", "p2", "p3"):
            h.join("t1", p, status="info")
        tours = {"t1": {"participants": 3, "max_participants": 2}}
        res = self.run_check(h, final(tournaments=tours))
        self.assertFails(res, "cap", "t1", "cap 2", count=1)

    def test_participants_at_cap_passes(self):
        h = H()
        h.join("t1", "p1")
        h.join("t1", "p2")
        h.join("t1", "p3", status="fail")
        tours = {"t1": {"participants": 2, "max_participants": 2}}
        self.assertAllPass(self.run_check(h, final(tournaments=tours)))

    def test_more_acked_joins_than_cap_fails(self):
        h = H()
        for p in ("p1", "p2", "p3"):
            h.join("t1", p)
        tours = {"t1": {"participants": 2, "max_participants": 2}}
        res = self.run_check(h, final(tournaments=tours))
        self.assertFails(res, "cap", "t1", "3 players with an acked join", count=1)
        self.assertFails(res, "lost", "t1")


class TestDiverged(Base):
    def rep(self, rid, idx, digest, ok=True):
        return {"id": rid, "applied_index": idx, "digest": digest, "ok": ok}

    def test_replica_with_other_digest_fails(self):
        reps = {"na": [self.rep(1, 100, "abcd"), self.rep(2, 100, "abcd"),
                       self.rep(3, 100, "abce")],
                "eu": [self.rep(1, 50, "ff"), self.rep(2, 50, "ff"), self.rep(3, 50, "ff")]}
        res = self.run_check(H(), final(replicas=reps))
        self.assertFails(res, "diverged", "region na replica 3", "abce", count=1)

    def test_replica_behind_fails(self):
        reps = {"na": [self.rep(1, 100, "abcd"), self.rep(2, 99, "abcd"), self.rep(3, 100, "abcd")]}
        res = self.run_check(H(), final(replicas=reps))
        self.assertFails(res, "diverged", "region na replica 2", "applied 99", count=1)

    def test_same_state_passes_hex_and_int_alike(self):
        reps = {"na": [self.rep(1, 100, "0x1f"), self.rep(2, 100, 31), self.rep(3, 100, "1F")],
                "eu": [self.rep(1, 7, 0)]}
        self.assertAllPass(self.run_check(H(), final(replicas=reps)))

    def test_unreadable_replica_fails(self):
        reps = {"na": [self.rep(1, 100, "ab"), self.rep(2, 100, "ab"),
                       self.rep(3, None, None, ok=False)]}
        res = self.run_check(H(), final(replicas=reps))
        self.assertFails(res, "diverged", "region na replica 3", "could not be read", count=1)

    def test_no_majority_counts_every_replica(self):
        reps = {"na": [self.rep(1, 100, "a"), self.rep(2, 100, "b"),
                       self.rep(3, None, None, ok=False)]}
        res = self.run_check(H(), final(replicas=reps))
        self.assertFails(res, "diverged", "region na replica 1", "no majority", count=3)


class TestEvents(Base):
    def test_unlock_event_absent_from_final_fails(self):
        h = H()
        h.unlock("p1", "g", "a1", status="info")
        h.event(1, 1, type="achievement.unlocked", player_id="p1", game_id="g",
                achievement_id="a1", points=5, at="x", region="na", index=3)
        res = self.run_check(h, final())
        self.assertFails(res, "events", "sub 1 conn 1", "p1/g/a1", count=1)
        self.assertAllPass(self.run_check(h, final(unlocks={"p1": [["g", "a1"]]})))

    def test_best_event_above_final_fails(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 50, status="info")
        h.event(2, 1, type="score.updated", board_id="hi", player_id="p1", score=50,
                region="na", index=9)
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 10}}))
        self.assertFails(res, "events", "hi/p1", "50", count=1)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 50}})))

    def test_score_event_for_player_without_entry_fails(self):
        h = H()
        h.incr("cnt", "p1", 1, status="info")
        h.event(2, 1, type="score.updated", board_id="cnt", player_id="p1", score=1,
                region="na", index=9)
        res = self.run_check(h, final(boards=BOARDS))
        self.assertFails(res, "events", "cnt/p1", "no final entry", count=1)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 1}})))

    def test_incr_event_above_final_fails(self):
        h = H()
        h.incr("cnt", "p1", 1)
        h.incr("cnt", "p1", 1, status="info")
        h.event(2, 1, type="score.updated", board_id="cnt", player_id="p1", score=2,
                region="na", index=9)
        res = self.run_check(h, final(boards=BOARDS, scores={"cnt": {"p1": 1}}))
        self.assertFails(res, "events", "cnt/p1", "above the final", count=1)

    def test_reward_event_absent_from_list_fails(self):
        h = H()
        h.event(4, 1, type="reward.granted", player_id="p1", board_id="hi", cycle=3, rank=1,
                reward="gold")
        res = self.run_check(h, final(rewards={"p1": []}))
        self.assertFails(res, "events", "sub 4 conn 1", "hi/p1", count=1)
        item = {"board_id": "hi", "cycle": 3, "rank": 1, "reward": "gold"}
        self.assertAllPass(self.run_check(h, final(rewards={"p1": [item]})))

    def test_event_on_board_not_read_is_not_judged(self):
        h = H()
        h.event(2, 1, type="score.updated", board_id="points.g", player_id="p1", score=5,
                region="na", index=9)
        self.assertAllPass(self.run_check(h, final()))

    def _score(self, h, conn, score, index, region="na"):
        h.event(3, conn, type="score.updated", board_id="hi", player_id="p1", score=score,
                region=region, index=index)

    def test_index_backwards_within_connection_fails(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 20)
        self._score(h, 1, 20, 8)
        self._score(h, 1, 10, 7)
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 20}}))
        self.assertFails(res, "events", "sub 3 conn 1", "na#7", "after index 8", count=1)

    def test_index_order_restarts_on_reconnect(self):
        h = H()
        h.best("hi", "p1", 10)
        h.best("hi", "p1", 20)
        self._score(h, 1, 10, 7)
        self._score(h, 1, 20, 8)
        self._score(h, 2, 10, 7)  # a new connection replays: fine
        self._score(h, 2, 20, 8)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 20}})))


class TestLiveness(Base):
    def test_no_ok_write_after_healed_fails(self):
        h = H()
        h.inject()
        h.best("hi", "p1", 10)
        h.heal()
        h.healed(t=5.0)
        h.best("hi", "p1", 20, status="info")
        res = self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 10}}))
        self.assertFails(res, "liveness", "t=5.000", count=1)

    def test_first_ok_after_bound_fails(self):
        h = H()
        h.inject()
        h.healed(t=5.0)
        h.t = 40.0
        h.put("p1")
        res = self.run_check(h, final(players=["p1"]), bound_s=30.0)
        self.assertFails(res, "liveness", "t=5.000", "35.", count=1)
        self.assertAllPass(self.run_check(h, final(players=["p1"]), bound_s=60.0))

    def test_ok_write_within_bound_passes(self):
        h = H()
        h.inject()
        h.heal()
        h.healed(t=5.0)
        h.t = 7.0
        h.put("p1")
        self.assertAllPass(self.run_check(h, final(players=["p1"])))

    def test_faults_without_healed_marker_fails(self):
        h = H()
        h.inject()
        h.put("p1")
        res = self.run_check(h, final(players=["p1"]))
        self.assertFails(res, "liveness", "no \"healed\" marker", count=1)

    def test_no_faults_no_marker_passes(self):
        h = H()
        h.put("p1")
        self.assertAllPass(self.run_check(h, final(players=["p1"], liveness={})))


class TestResultAndLoading(Base):
    def test_acked_counts_ok_ops(self):
        h = H()
        h.put("p1")
        h.put("p2", status="info")
        h.put("p3", status="fail")
        h.put("p4", status=None)
        self.assertEqual(self.run_check(h, final(players=["p1"])).acked, 1)

    def test_findings_capped_with_and_n_more(self):
        h = H()
        for i in range(25):
            h.put("p%d" % i)
        res = self.run_check(h, final())
        self.assertEqual(res.lost, 25)
        lost = [f for f in res.findings if f.startswith("lost:")]
        self.assertEqual(len(lost), C.MAX_FINDINGS + 1)
        self.assertEqual(lost[-1], "lost: and 5 more")

    def test_invoke_value_is_kept_over_completion_value(self):
        # the completion may carry response fields; what was sent is the invoke's score
        h = H()
        op = h.invoke("score_best", {"board": "hi", "player": "p1", "score": 10, "key": "k1"})
        h.complete(op, "score_best", {"board": "hi", "player": "p1", "score": 50}, "ok", 200)
        self.assertAllPass(self.run_check(h, final(boards=BOARDS, scores={"hi": {"p1": 10}})))

    def test_last_completion_wins(self):
        h = H()
        v = {"player": "p1", "game": "g", "ach": "a1", "key": "k1"}
        op = h.invoke("unlock", v)
        h.complete(op, "unlock", v, "info")
        h.complete(op, "unlock", v, "ok", 200, newly_unlocked=True)
        res = self.run_check(h, final())
        self.assertFails(res, "lost", "p1/g/a1", "op %d" % op, count=1)
        self.assertEqual(res.acked, 1)

    def _write(self, d, name, text):
        path = os.path.join(d, name)
        with open(path, "w") as fh:
            fh.write(text)
        return path

    def test_load_history_drops_truncated_last_line(self):
        with tempfile.TemporaryDirectory() as d:
            good = ('{"type":"healed","t":1.0}\n'
                    '{"type":"invoke","op":1,"f":"join","value":{},"t":2}\n')
            path = self._write(d, "h.jsonl", good + '{"type":"ok","op":1,"f":"jo')
            self.assertEqual(len(C.load_history(path)), 2)
            path = self._write(d, "h2.jsonl", good.rstrip("\n"))
            self.assertEqual(len(C.load_history(path)), 2)
            path = self._write(d, "h3.jsonl", '{"type":"healed","t":1.0}\n{bad\n' + good)
            with self.assertRaises(ValueError):
                C.load_history(path)

    def _main(self, history, fin):
        with tempfile.TemporaryDirectory() as d:
            hp = self._write(d, "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
            fp = self._write(d, "final.json", json.dumps(fin))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = C.main([hp, fp])
            return rc, out.getvalue()

    def test_main_exit_status_and_summary(self):
        h = H()
        h.put("p1")
        rc, out = self._main(h.lines, final(players=["p1"]))
        self.assertEqual(rc, 0, out)
        for name in C.CHECKS:
            self.assertIn("%s: " % name, out)
        rc, out = self._main(h.lines, final(players=[]))
        self.assertEqual(rc, 1, out)
        self.assertIn("lost: player p1", out)


if __name__ == "__main__":
    unittest.main()
