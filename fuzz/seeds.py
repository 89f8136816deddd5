#!/usr/bin/python3
"""fuzz/seeds.py: writes the seed corpus of every harness into fuzz/corpus/<target>/.

The seeds are valid inputs in each decoder's wire format (docs/rpc.md, docs/data-layout.md),
so the fuzzer starts from the accepted paths and mutates outward. The format is written out
here by hand, with a minimal msgpack encoder, so the seeds do not depend on the code they
test. Run it again after a format change; the files it writes are checked in."""
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
    return out


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
