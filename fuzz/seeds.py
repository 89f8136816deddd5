#!/usr/bin/python3
"""fuzz/seeds.py: writes the seed corpus of every harness into fuzz/corpus/<target>/.

The seeds are valid inputs in each decoder's wire format (docs/rpc.md, docs/data-layout.md),
so the fuzzer starts from the accepted paths and mutates outward. The format is written out
here by hand, with a minimal msgpack encoder, so the seeds do not depend on the code they
test. Run it again after a format change; the files it writes are checked in."""
import json
import os
import struct
import sys


def mp(v):
    """msgpack of @v: None, bool, int, str, bytes, list, dict (insertion order)."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        assert len(v) < 16
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


TS = 1796370000000


def entry(*cmds):
    """[CMD_ENTRY_VERSION, [command...]] padded with zeros to a multiple of 8 (shard/cmd.h)."""
    b = mp([1, list(cmds)])
    return b + b"\0" * (-len(b) % 8)


def frame(body):
    return struct.pack(">I", len(body)) + body


def handshake(rid, addr):
    a = addr.encode() + b"\0"
    a += b"\0" * (-len(a) % 8)
    return struct.pack("<QQQ", 1, rid, len(a)) + a


def seeds():
    player = [6, TS, "p1", "Player One", "na", ""]
    unlock = [7, TS + 1, "p1", "g1", "a1", 0, "k-unlock-1"]
    score = [8, TS + 2, "b1", "p1", 1500, 0, "", "k-score-1"]
    join = [5, TS + 3, "t1", "p1", "k-join-1"]
    mark = [9, TS + 4, 17]
    grant = [10, TS + 5, "b1", 3, "p1", 1, "gold"]
    claim = [11, TS + 6, "p1", "b1", 3, "k-claim-1"]
    # as a router sends them: the origin [key class, source] after the fields (shard/cmd.h)
    score_api = [8, TS + 7, "b1", "p1", 9, 0, '{"a":1}', "k-score-2", [1, "127.0.0.1"]]
    claim_admin = [11, TS + 8, "p1", "b1", 3, "k-claim-1", [2, "::1"]]
    audit_days = [12, TS + 9, 45]
    out = {
        "entry": [entry(player), entry(player, unlock, score), entry(join, mark),
                  entry(grant, claim), entry(score, score),
                  entry(player, score_api, claim_admin, audit_days)],
        "mpjson": [mp({"rank": 1, "score": -5, "player_id": "p1", "meta": b'{"a":1}'}),
                   mp([None, True, False, 2 ** 63, -2 ** 63, "x" * 40]), mp({}), mp([])],
        "rpc": [b"\0" + frame(mp([1, 7, 3, None])),
                b"\x07" + frame(mp([1, 8, 2, {"type": 0, "window": 0, "board_id": "b1",
                                             "limit": 10, "cursor": "AQEAAAAA"}])),
                b"\x20" + frame(mp([1, 9, 1, [player[:]]])) + frame(mp([1, 10, 4,
                                                                        {"from": 1}]))],
        "cursor": [b"AQIAAAAAAAAAAQ", b"AQMAAAAAAAAAKgAAAAE", b"2026-12-04", b"2026-W49", b"2026-12", b"alltime",
                   b"daily", b"cycle", b"2026-12-04T09:00:00.000Z", b"12345"],
        "handshake": [handshake(1, "10.0.0.1:7000"), handshake(7, "[::1]:7004"),
                      handshake(2, "node-2.example:7000")],
    }
    out["http"] = [http(*r) for r in HTTP_REQUESTS]
    out["ws"] = [b"\n".join(json.dumps(m).encode() for m in msgs) for msgs in WS_SESSIONS]
    out["files"] = [json.dumps(f).encode() for f in KEY_FILES] + [
        b"a-cluster-key-of-32-characters-x\n", b"[]", b'{"api_keys": "x"}']
    out["peerauth"] = [bytes([0]), bytes([1]), bytes([0, 7, 0, 39, 0, 0, 2]),
                       bytes([1, 71, 0]), bytes([2]), bytes([3]),
                       bytes([4, 79]) + b"LRAUTH01" + bytes(range(64)),
                       bytes([5, 3]) + b"LRAUTH01" + bytes(64), bytes([0, 0, 1])]
    return out


# fuzz_http's input (fuzz/fuzz_http.c): method, a byte of headers and the regions' error, then
# "path[?query]\n" and the body.
METHODS = {"GET": 0, "POST": 1, "PUT": 2, "DELETE": 3, "PATCH": 4}
AUTH = {"": 0, "api": 1, "admin": 2, "wrong": 3}


def http(method, path, body=None, auth="", flags=0, answer=None):
    b = b"" if body is None else json.dumps(body).encode()
    if answer is not None:
        b += b"\0" + mp(answer)  # what every region call is answered
    return bytes([METHODS[method], AUTH[auth] | flags]) + path.encode() + b"\n" + b


AT = "2026-12-04T09:00:00.000Z"


HTTP_REQUESTS = [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/v1/cluster", None, "admin"),
    ("PUT", "/v1/players/p1", {"name": "Player One", "region": "r1", "guild": "g"}, "api"),
    ("GET", "/v1/players/p1"),
    ("GET", "/v1/players/p1/achievements?game_id=g1&limit=10&cursor=AQIAAAAAAAAAAQ"),
    ("GET", "/v1/players/p1/dashboard"), ("GET", "/v1/players/p1/stats?game_id=g1&days=30"),
    ("GET", "/v1/players/p1/rewards?pending=true"),
    ("POST", "/v1/players/p1/rewards/claim",
     {"board_id": "b1", "cycle": 3, "idempotency_key": "k-claim-0001"}, "api"),
    ("PUT", "/v1/games/g1", {"name": "Game One"}, "admin"), ("GET", "/v1/games/g1"),
    ("PUT", "/v1/games/g1/achievements/a1",
     {"name": "First", "description": "d", "points": 10, "hidden": False, "steps": 3}, "admin"),
    ("GET", "/v1/games/g1/achievements"),
    ("PUT", "/v1/boards/b1", {"order": "desc", "operator": "best", "windows": ["alltime", "daily"],
                              "reset_period_s": 3600, "snapshot_top": 10,
                              "rewards": [{"rank_from": 1, "rank_to": 3, "reward": "gold"}],
                              "game_id": "g1"}, "admin"),
    ("GET", "/v1/boards/b1"),
    ("POST", "/v1/boards/b1/scores", {"player_id": "p1", "score": 1500, "subscore": 2,
                                      "metadata": {"lvl": 3}, "idempotency_key": "k-score-0001"}, "api"),
    ("POST", "/v1/unlocks", {"player_id": "p1", "game_id": "g1", "achievement_id": "a1",
                             "idempotency_key": "k-unlock-0001", "steps": 1}, "api"),
    ("POST", "/v1/events", [{"type": "score", "board_id": "b1", "player_id": "p1", "score": 5,
                             "idempotency_key": "k-event-0001"},
                            {"type": "unlock", "player_id": "p1", "game_id": "g1",
                             "achievement_id": "a1", "idempotency_key": "k-event-0002"}], "api"),
    ("GET", "/v1/boards/b1/top?scope=global&window=daily&period=2026-12-04&limit=10"),
    ("GET", "/v1/boards/b1/top?scope=region:r1&window=alltime&consistency=stale", None, "", 4 * 2),
    ("GET", "/v1/boards/b1/cycles/3"),
    ("GET", "/v1/boards/b1/players/p1?scope=global&window=alltime&around=2"),
    ("GET", "/v1/boards/b1/players?ids=p1,p2,p3&scope=guild:g&window=weekly"),
    ("PUT", "/v1/tournaments/t1", {"name": "Cup", "order": "desc", "operator": "incr",
                                   "start_at": "2026-12-04T09:00:00.000Z",
                                   "end_at": "2026-12-05T09:00:00.000Z", "max_participants": 100,
                                   "max_attempts": 3,
                                   "prizes": [{"rank_from": 1, "rank_to": 1, "reward": "cup"}]},
     "admin"),
    ("POST", "/v1/tournaments/t1/join", {"player_id": "p1"}, "api", 1 << 4),
    ("GET", "/v1/tournaments/t1", None, "", 2 << 4),
    ("DELETE", "/v1/players/p1", None, "wrong"), ("PATCH", "/nowhere"),
    ("GET", "/v1/players/p1", None, "", 0, {"player_id": "p1", "name": "P", "region": "r1",
                                            "guild": "", "created_at": AT}),
    ("PUT", "/v1/players/p1", {"name": "P", "region": "r1"}, "api", 0,
     {"results": [[201, False, {"player_id": "p1"}]]}),
    ("GET", "/v1/boards/b1/top?scope=global&window=alltime", None, "", 0,
     {"entries": [{"player_id": "p1", "score": 5, "subscore": 0, "updated_at": AT, "rank": 1}],
      "next_cursor": None}),
    ("GET", "/readyz", None, "", 0, {"id": 1, "role": "leader", "term": 3, "commit_index": 5,
                                     "applied_index": 5}),
    ("PUT", "/v1/regions/r3", {"rpc": ["127.0.0.1:7301", "[::1]:7302"]}, "admin"),
    ("PUT", "/v1/regions/r3", {"rpc": ["127.0.0.1:7301"]}, "admin", 0,
     {"region": "r3", "role": "leader",
      "results": [[201, False, {"region": "r3", "rpc": ["127.0.0.1:7301"], "added_at": 1,
                                "version": 9}]]}),
]

# fuzz_ws's input (fuzz/fuzz_ws.c): a connection's messages, one per line.
WS_SESSIONS = [
    [{"op": "ping"}],
    [{"op": "subscribe", "topics": ["player:p1", "board:b1", "board:b1:region:r1"]},
     {"op": "unsubscribe", "topics": ["board:b1"]}],
    [{"op": "subscribe", "topics": ["player:p1"], "resume": {"r1": 17, "r2": 0}}],
    [{"op": "get", "id": 1, "path": "/v1/players/p1"},
     {"op": "get", "id": "x", "path": "/v1/boards/b1/top?scope=global&window=alltime&limit=5"}],
    [{"op": "get", "id": [1], "path": "/v1/boards/b1/players?ids=p1%2Cp2&window=daily"}],
    [{"op": "nope"}, {"topics": []}],
]

# fuzz_files's input (fuzz/fuzz_files.c): keys.json as `laurel dev` writes it, and the other
# forms keyset.h documents.
KEY_FILES = [
    {"admin_key": "admin-key-0123456789abcdef", "api_key": "api-key-0123456789abcdef",
     "cluster_key": "cluster-key-0123456789abcdef0123"},
    {"admin_keys": ["admin-key-0123456789abcdef", "admin-key-new-0123456789ab"],
     "api_keys": ["api-key-0123456789abcdef"]},
    {"cluster_key": "short"},
]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, items in seeds().items():
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for i, b in enumerate(items):
            with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
                f.write(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
