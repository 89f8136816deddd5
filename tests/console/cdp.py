"""tests/console/cdp.py — headless Debian chromium driven over the DevTools protocol.

Only Debian's python3 and python3-websockets: no npm, no browser download. The browser is this
process's child in its own process group, with PR_SET_PDEATHSIG, so it dies with the test
whatever way the test ends (an exception, a signal, a SIGKILL of this process); close() also
kills the whole group and removes its profile directory.
"""
import asyncio
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import websockets

CHROMIUM = os.environ.get("LAUREL_CHROMIUM", "/usr/bin/chromium")
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class CdpError(Exception):
    pass


class Browser:
    """One headless chromium with one page, driven through its DevTools WebSocket."""

    def __init__(self, width=1400, height=1000):
        self.width, self.height = width, height
        self.proc = None
        self.profile = None
        self.ws = None
        self.next_id = 0
        self.pending = {}
        self.logs = []  # console messages and exceptions of the page, for failure reports
        self.reader = None

    async def start(self):
        self.profile = tempfile.mkdtemp(prefix="laurel-chromium-")
        args = [
            CHROMIUM, "--headless=new", "--remote-debugging-port=0",
            "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
            "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
            "--disable-background-networking", "--hide-scrollbars", "--mute-audio",
            "--window-size=%d,%d" % (self.width, self.height), "about:blank",
        ]
        # Chromium's sandbox needs user namespaces it cannot have as root (CI runs as root).
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent, start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise CdpError("chromium did not start (%s)" % CHROMIUM)
            await asyncio.sleep(0.05)
        port = open(port_file).read().split("\n")[0]
        with urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port, timeout=5) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        if not pages:
            raise CdpError("chromium has no page")
        self.ws = await websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self.reader = asyncio.ensure_future(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send("Emulation.setDeviceMetricsOverride", width=self.width,
                        height=self.height, deviceScaleFactor=1, mobile=False)

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg:
                fut = self.pending.pop(msg["id"], None)
                if fut and not fut.done():
                    fut.set_result(msg)
            elif msg.get("method") == "Runtime.consoleAPICalled":
                p = msg["params"]
                self.logs.append("console.%s: %s" % (p["type"], " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p["args"])))
            elif msg.get("method") == "Runtime.exceptionThrown":
                d = msg["params"]["exceptionDetails"]
                self.logs.append("exception: %s" % d.get("exception", {}).get(
                    "description", d.get("text")))

    async def send(self, method, **params):
        self.next_id += 1
        fut = asyncio.get_event_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 30)
        if "error" in msg:
            raise CdpError("%s: %s" % (method, msg["error"]))
        return msg.get("result", {})

    async def goto(self, url):
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", 10)

    async def eval(self, expr):
        """The value of JavaScript @expr in the page (promises awaited)."""
        r = await self.send("Runtime.evaluate", expression=expr, awaitPromise=True,
                            returnByValue=True)
        if "exceptionDetails" in r:
            raise CdpError("%s: %s" % (expr, r["exceptionDetails"].get("exception", {}).get(
                "description", r["exceptionDetails"].get("text"))))
        return r["result"].get("value")

    async def wait_for(self, expr, timeout_s):
        """Poll @expr every 50 ms until it is truthy: its value, or CdpError after @timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            v = await self.eval(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise CdpError("timed out after %.1f s waiting for: %s" % (timeout_s, expr))
            await asyncio.sleep(0.05)

    async def screenshot(self, path):
        import base64
        r = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    async def close(self):
        if self.reader:
            self.reader.cancel()
        if self.ws:
            try:
                await self.ws.close()
            except Exception:
                pass
        self.kill()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
