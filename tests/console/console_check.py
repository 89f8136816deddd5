"""tests/console/console_check.py — the browser half of tests/integration/test_console.c.

    console_check.py console  --http H:P --board B --expect P1,P2,... --player P --artifacts DIR
    console_check.py xorigin  --http H:P --board B --expect P1,P2,... --player P --artifacts DIR

The C test has started `laurel dev`, created the board and its scores; this opens pages in
headless chromium (cdp.py) and checks what a person would see. It submits one more score
itself (key from $LAUREL_API_KEY; /v1/cluster read with $LAUREL_ADMIN_KEY), to see it arrive
live. Exit 0 when every check passed; else a line on stderr saying which failed, with the
page's console output. Screenshots go to DIR/console-*.png either way.
"""
import argparse
import asyncio
import functools
import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CdpError  # noqa: E402


def http_json(addr, method, path, key=None, body=None):
    req = urllib.request.Request("http://%s%s" % (addr, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def submit(a, score):
    """POST a score for a.player; the time just before it was sent."""
    t0 = time.monotonic()
    http_json(a.http, "POST", "/v1/boards/%s/scores" % a.board, os.environ["LAUREL_API_KEY"],
              {"player_id": a.player, "score": score,
               "idempotency_key": "console-check-%d-%d" % (score, os.getpid())})
    return t0


def check(cond, what):
    if not cond:
        raise CdpError(what)


async def scenario_console(b, a):
    """/console shows the regions and their leaders, the board's top in order, a submitted
    score in the live feed within 2 s, and the request charts."""
    await b.goto("http://%s/console#board=%s&player=%s&topics=board:%s,player:%s" %
                 (a.http, a.board, a.player, a.board, a.player))
    # The regions and the metadata group, each with a leader, which /v1/cluster confirms.
    regions = ["na", "eu", "apac"]
    deadline = time.monotonic() + 15
    while True:
        shown = await b.eval("Object.fromEntries([...document.querySelectorAll("
                             "'#cluster .group')].map(g => [g.dataset.region, g.dataset.leader]))")
        admin = http_json(a.http, "GET", "/v1/cluster", os.environ["LAUREL_ADMIN_KEY"])
        want = {g["id"]: str(g["leader"]) for g in admin["regions"] + [admin["meta"]]}
        if all(shown.get(r) for r in regions + ["meta"]) and \
                all(shown.get(r) == want.get(r) for r in regions):
            break
        check(time.monotonic() < deadline,
              "cluster panel: leaders %s, /v1/cluster says %s" % (shown, want))
        await asyncio.sleep(0.2)
    rows = await b.eval("[...document.querySelectorAll('#cluster .group[data-region=na] tbody tr')]"
                        ".map(r => r.dataset.role)")
    check(sorted(rows) == ["follower", "follower", "leader"], "region na's roles: %s" % rows)
    text = await b.eval("document.getElementById('cluster').innerText")
    for r in regions:
        check(("region " + r) in text and "leader: replica" in text, "region %s not shown" % r)

    # The board's top, in order.
    expect = a.expect.split(",")
    await b.wait_for("document.getElementById('board-top').dataset.loaded", 10)
    top = await b.eval("[...document.querySelectorAll('#board-top tbody tr')]"
                       ".map(r => r.dataset.player)")
    check(top == expect, "board top shows %s, expected %s" % (top, expect))
    ranks = await b.eval("[...document.querySelectorAll('#board-top tbody tr td:first-child')]"
                         ".map(td => td.textContent)")
    check(ranks == [str(i + 1) for i in range(len(expect))], "ranks shown: %s" % ranks)
    await b.wait_for("document.getElementById('rank-info').textContent.includes('rank ')", 10)

    # A score submitted now is in the live feed within 2 s.
    await b.wait_for("document.getElementById('feed-state').title.startsWith('subscribed')", 10)
    score = 10_000_000 + os.getpid()
    t0 = submit(a, score)
    sel = ("[...document.querySelectorAll('#feed li[data-type=\"score.updated\"]')].some("
           "li => li.textContent.includes('%s score %d'))" % (a.player, score))
    await b.wait_for(sel, 5)
    took = time.monotonic() - t0
    check(took <= 2.0, "the submitted score reached the feed after %.2f s" % took)
    print("# live feed: the score appeared %.0f ms after it was submitted" % (took * 1000))
    # The board's table follows: leaderboard.changed reads its first page again.
    await b.wait_for("document.querySelector('#board-top tbody tr').dataset.player === '%s'" %
                     a.player, 3)
    # Its topic filter hides it, and shows it again.
    hide = ("(() => { const cb = [...document.querySelectorAll('#feed-topic-filter label')].find("
            "l => l.textContent.trim() === 'player:%s').querySelector('input'); cb.click(); "
            "return [...document.querySelectorAll('#feed li[data-topic=\"player:%s\"]')]"
            ".every(li => li.hidden); })()" % (a.player, a.player))
    check(await b.eval(hide), "the topic filter did not hide player:%s" % a.player)
    check(not await b.eval(hide), "the topic filter did not show player:%s again" % a.player)

    # The charts have points (a rate needs two polls) and show a little traffic: 4 s of board
    # reads, some of a board that does not exist (the errors line).
    end = time.monotonic() + 4
    while time.monotonic() < end:
        for i in range(6):
            try:
                http_json(a.http, "GET", "/v1/boards/%s/top?limit=5" % (a.board if i else "nope"))
            except urllib.error.HTTPError:
                pass
        await asyncio.sleep(0.1)
    await b.wait_for("state.series.rate.length >= 3 && state.series.rate.some(v => v > 1)", 10)
    await b.eval("document.getElementById('rank-form').requestSubmit()")
    await asyncio.sleep(0.3)
    await b.screenshot(os.path.join(a.artifacts, "console-main.png"))


async def scenario_xorigin(b, a):
    """A page on another origin reads the board with fetch (CORS: Access-Control-Allow-Origin,
    `*` by default) and receives the board's top and a new score over the WebSocket."""
    here = os.path.dirname(os.path.abspath(__file__))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=here)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        origin = "http://127.0.0.1:%d" % srv.server_address[1]
        await b.goto("%s/xorigin.html?router=%s&board=%s&player=%s" %
                     (origin, a.http, a.board, a.player))
        await b.wait_for("window.result.top !== null || window.result.topError !== null", 10)
        res = await b.eval("window.result")
        check(res["topError"] is None, "cross-origin fetch failed: %s (no CORS headers?)" %
              res["topError"])
        # A page's script cannot read Access-Control-Allow-Origin (not a CORS-safelisted
        # response header): the fetch above succeeding is the browser's own check; here the
        # header itself, as the router answers that origin.
        req = urllib.request.Request("http://%s/v1/boards/%s/top" % (a.http, a.board),
                                     headers={"Origin": origin})
        with urllib.request.urlopen(req, timeout=10) as r:
            acao = r.headers.get("Access-Control-Allow-Origin")
        check(acao in ("*", origin), "Access-Control-Allow-Origin: %r" % acao)
        # The same page as a read from here (the console scenario may have moved a player up).
        top = [e["player_id"] for e in
               http_json(a.http, "GET", "/v1/boards/%s/top?limit=10" % a.board)["entries"]]
        check(res["top"] == top and len(top) == len(a.expect.split(",")),
              "cross-origin top: %s, expected %s" % (res["top"], top))
        await b.wait_for("window.result.events.some(e => e.type === 'subscribed')", 10)
        await b.wait_for("window.result.events.some(e => e.type === 'leaderboard.changed')", 5)
        score = 20_000_000 + os.getpid()
        submit(a, score)
        await b.wait_for("window.result.events.some(e => e.type === 'score.updated' && "
                         "e.score === %d)" % score, 5)
        await b.screenshot(os.path.join(a.artifacts, "console-xorigin.png"))
    finally:
        srv.shutdown()


async def main(a):
    b = Browser()
    try:
        await b.start()
        await {"console": scenario_console, "xorigin": scenario_xorigin}[a.scenario](b, a)
    except Exception as e:
        try:
            await b.screenshot(os.path.join(a.artifacts, "console-%s-failed.png" % a.scenario))
        except Exception:
            pass
        print("console_check %s: %s" % (a.scenario, e), file=sys.stderr)
        for line in b.logs:
            print("  page " + line, file=sys.stderr)
        return 1
    finally:
        await b.close()
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["console", "xorigin"])
    p.add_argument("--http", required=True)
    p.add_argument("--board", required=True)
    p.add_argument("--expect", required=True)
    p.add_argument("--player", required=True)
    p.add_argument("--artifacts", required=True)
    args = p.parse_args()
    sys.exit(asyncio.run(main(args)))
