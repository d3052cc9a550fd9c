"""Headless Chromium driven over the DevTools protocol on a pipe, with the standard library only.

``--remote-debugging-pipe`` makes Chromium read JSON commands from fd 3 and write replies and
events to fd 4, each message ended by a NUL byte: no selenium, no playwright, no websocket
client and no port. The browser is Debian's ``chromium`` package; the flags are the ones
known to work on a machine without network (no background connections, a fresh profile).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT = 60.0


def available() -> bool:
    return Path(CHROMIUM).exists()


class Browser:
    """One browser with one page; :meth:`open` loads a URL and records what the page logs."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 1000) -> None:
        cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads them on fd 3
        self._ev_r, ev_w = os.pipe()  # Chromium writes replies and events on fd 4

        def to_fds_3_and_4() -> None:
            # Copy both first: a direct dup2 onto 3 could close the other pipe end.
            a, b = os.dup(cmd_r), os.dup(ev_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        self.log = profile / "chromium.log"
        with open(self.log, "wb") as err:
            self._proc = subprocess.Popen(
                [*args, "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(3, 4),
                preexec_fn=to_fds_3_and_4,
            )
        os.close(cmd_r)
        os.close(ev_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        page = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        attached = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    # -- the protocol --------------------------------------------------------------------
    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page (rather than to the browser)."""
        return self.send(method, self._session, **params)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._ev_r], [], [], max(left, 0))
            chunk = os.read(self._ev_r, 1 << 16) if ready else b""
            if not chunk:
                raise RuntimeError(f"Chromium stopped answering; see {self.log}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method: str) -> dict[str, Any]:
        seen = next((e for e in self.events if e.get("method") == method), None)
        while seen is None:
            event = self._read()
            self.events.append(event)
            seen = event if event.get("method") == method else None
        return seen

    # -- what a person does --------------------------------------------------------------
    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a script error raises)."""
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            raise RuntimeError(out["exceptionDetails"])
        return out["result"].get("value")

    def box(self, selector: str) -> dict[str, float]:
        """The element's box in page coordinates, scrolled into view."""
        return self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.x + scrollX, y: r.y + scrollY, vx: r.x, vy: r.y,"
            " width: r.width, height: r.height}; })()"
        )

    def click(self, selector: str) -> None:
        b = self.box(selector)
        x, y = b["vx"] + b["width"] / 2, b["vy"] + b["height"] / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", text=text)

    def screenshot(self, selector: str) -> bytes:
        import base64

        b = self.box(selector)
        clip = {"x": b["x"], "y": b["y"], "width": b["width"], "height": b["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", format="png", clip=clip)
        return base64.b64decode(shot["data"])

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads since the page was opened."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                out.append(str(p["exceptionDetails"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(p["entry"]["text"])
            elif m == "Network.loadingFailed":
                out.append(f"failed to load: {p.get('errorText')}")
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # it may close before it answers
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._cmd_w)
        os.close(self._ev_r)
