"""A minimal Chrome DevTools Protocol client: headless Chromium over one websocket.

``Browser`` starts ``/usr/bin/chromium`` (or ``$CHROMIUM``) headless with its own profile and
``--remote-debugging-port=0``, reads the port Chromium picked from ``DevToolsActivePort``,
and talks CDP with flattened sessions. ``Browser.visit`` opens a page at a given viewport
width, records every console message, log entry, exception and network request until the
page has loaded and settled, measures the layout, and takes a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")

LAYOUT_JS = r"""
(() => {
  const width = window.innerWidth;
  const small = [];
  let minFont = 1000;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || el.closest('svg')) continue;
    const closed = el.closest('details:not([open])');
    if (closed && !el.closest('summary')) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const size = parseFloat(style.fontSize);
    minFont = Math.min(minFont, size);
    if (size < 12) small.push(el.tagName + ' ' + size + 'px: ' + node.textContent.trim().slice(0, 40));
  }
  const svgText = [];
  for (const t of document.querySelectorAll('svg text')) {
    const svg = t.ownerSVGElement; const vb = svg.viewBox.baseVal;
    if (!vb || !vb.width) continue;
    const shown = parseFloat(getComputedStyle(t).fontSize) * svg.getBoundingClientRect().width / vb.width;
    if (shown < 9) svgText.push(t.textContent + ' ' + shown.toFixed(1) + 'px');
  }
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.scroll')) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 1) wide.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, minFont, small: small.slice(0, 10),
          svgText: svgText.slice(0, 10), wide: wide.slice(0, 10), title: document.title,
          text: document.body.innerText.length, viewport: !!document.querySelector('meta[name=viewport]')};
})()
"""


@dataclass
class Visit:
    url: str
    width: int
    console: list[dict] = field(default_factory=list)     # console API calls, log entries, exceptions
    requests: list[str] = field(default_factory=list)     # every URL the page asked for
    layout: dict = field(default_factory=dict)
    screenshot: Path | None = None
    probe: object = None                                  # what the probe expression returned, if any

    @property
    def errors(self) -> list[dict]:
        return [m for m in self.console if m["level"] in ("error", "exception", "assert")]

    @property
    def outside_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:"))]


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Browser:
    def __init__(self, binary: str, profile: Path, timeout: float = 30.0) -> None:
        self.binary, self.profile, self.timeout = binary, profile, timeout
        self._ids = itertools.count(1)
        self._events: list[dict] = []

    def __enter__(self) -> Browser:
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)   # a stale one names a dead port
        self.proc = subprocess.Popen([self.binary, *FLAGS, "--remote-debugging-port=0",
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self._stop()
                raise RuntimeError(f"Chromium did not open its DevTools port (exit {self.proc.poll()})")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        try:
            self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=64 << 20, open_timeout=self.timeout)
        except Exception:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.ws.close()
        finally:
            self._stop()

    def _stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        msg_id = next(self._ids)
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _drain(self, seconds: float, until: str | None = None, session: str | None = None) -> bool:
        """Collect events for ``seconds`` (or until event ``until`` of ``session`` arrives)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return False
            self._events.append(event)
            if until and event.get("method") == until and event.get("sessionId") == session:
                return True
        return False

    def visit(self, path: Path, width: int, height: int, shot: Path, probe: str | None = None) -> Visit:
        """Open ``path``; with ``probe``, also evaluate that JavaScript expression once the page settled."""
        url = path.resolve().as_uri()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self._events.clear()
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": width < 600}, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        if not self._drain(self.timeout, until="Page.loadEventFired", session=session):
            raise RuntimeError(f"{url} did not finish loading")
        self._drain(0.5)
        visit = Visit(url=url, width=width)
        visit.layout = self.call("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True},
                                 session=session)["result"]["value"]
        if probe is not None:
            visit.probe = self.call("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                                    session=session)["result"].get("value")
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(base64.b64decode(data))
        visit.screenshot = shot
        self._drain(0.2)
        self._record(visit, session)
        self.call("Target.closeTarget", {"targetId": target})
        return visit

    def _record(self, visit: Visit, session: str) -> None:
        for e in self._events:
            if e.get("sessionId") != session:
                continue
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                visit.console.append({"level": params.get("type"), "text": text})
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                visit.console.append({"level": entry.get("level"), "text": entry.get("text", "")})
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                visit.console.append({"level": "exception", "text": details.get("text", "")})
            elif method == "Network.requestWillBeSent":
                visit.requests.append(params.get("request", {}).get("url", ""))


    def tab(self, width: int = 1280, height: int = 900) -> Tab:
        """A page kept open across navigations, for walking a site (cookies stay in the profile)."""
        return Tab(self, width, height)


class Tab:
    """One open page driven like a person would: open a URL, fill and submit forms, pick a file
    for a file input, click a link that downloads, read the text, take a screenshot.

    Use it as a context manager (the page is closed at the end). Every wait is for the event the
    action causes (a page load, a finished download), never a fixed sleep.
    """

    def __init__(self, browser: Browser, width: int, height: int) -> None:
        self.browser, self.width, self.height = browser, width, height
        self.url = ""

    def __enter__(self) -> Tab:
        b = self.browser
        self.target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = b.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Page", "DOM"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": self.width < 600})
        return self

    def __exit__(self, *exc: object) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, session=self.session)

    def _wait(self, mark: int, method: str, session: str | None = None, match=lambda params: True) -> dict:
        """The first event ``method`` (of ``session``) after position ``mark`` of the event list."""
        b, deadline = self.browser, time.monotonic() + self.browser.timeout
        seen = mark
        while True:
            for event in b._events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session \
                        and match(event.get("params", {})):
                    return event.get("params", {})
            seen = len(b._events)
            if time.monotonic() > deadline or not b._drain(deadline - time.monotonic(), until=method,
                                                           session=session):
                raise RuntimeError(f"{method} did not happen on {self.url}")

    def _loading(self, action) -> None:
        """Run ``action`` and wait for the page it leads to."""
        mark = len(self.browser._events)
        action()
        self._wait(mark, "Page.loadEventFired", self.session)
        self.url = self.evaluate("location.href")

    def open(self, url: str) -> None:
        self._loading(lambda: self.call("Page.navigate", {"url": url}))

    def evaluate(self, expression: str) -> object:
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails'].get('text')}")
        return reply["result"].get("value")

    def fill(self, fields: dict[str, str]) -> None:
        """Set form fields by CSS selector (inputs, selects and text areas)."""
        for selector, value in fields.items():
            found = self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)}); "
                                  f"if (!el) return false; el.value = {json.dumps(value)}; return true; }})()")
            if not found:
                raise RuntimeError(f"no field {selector} on {self.url}")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose ``paths`` in the file input ``selector`` (as the file picker would)."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise RuntimeError(f"no file input {selector} on {self.url}")
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p.resolve()) for p in paths]})

    def click(self, selector: str) -> None:
        """Click ``selector`` (a submit button, a link) and wait for the page it leads to."""
        self._loading(lambda: self._click(selector))

    def _click(self, selector: str) -> None:
        if not self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)}); "
                             "if (!el) return false; el.click(); return true; })()"):
            raise RuntimeError(f"nothing to click at {selector} on {self.url}")

    def download(self, selector: str, folder: Path) -> Path:
        """Click a link that downloads; the file saved under ``folder`` once complete."""
        folder.mkdir(parents=True, exist_ok=True)
        self.browser.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder.resolve()),
                                                          "eventsEnabled": True})
        mark = len(self.browser._events)
        self._click(selector)
        begun = self._wait(mark, "Browser.downloadWillBegin")
        self._wait(mark, "Browser.downloadProgress",
                   match=lambda p: p.get("guid") == begun["guid"] and p.get("state") in ("completed", "canceled"))
        path = folder / begun["suggestedFilename"]
        if not path.exists():
            raise RuntimeError(f"the download of {begun.get('url')} did not complete")
        return path

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def main(argv: list[str]) -> int:
    """``python -m tests.reports.cdp PAGE.html OUT.png [WIDTH HEIGHT]``: a screenshot of a report
    page as the browser tests see it (how ``docs/report-summary.png`` is made, from the demo's
    rejected ``M002-policy-2025Q1-v1``); fails if the page logs an error or requests anything."""
    import tempfile

    if len(argv) not in (2, 4):
        print(main.__doc__)
        return 2
    page, out = Path(argv[0]), Path(argv[1])
    width, height = (int(argv[2]), int(argv[3])) if len(argv) == 4 else (1280, 900)
    binary = find_chromium()
    if binary is None:
        print("Chromium is not installed: run `make chromium`.")
        return 1
    with tempfile.TemporaryDirectory() as profile, Browser(binary, Path(profile)) as browser:
        visit = browser.visit(page, width, height, out)
    if visit.errors or visit.requests != [page.resolve().as_uri()]:
        print(f"{page}: console errors {visit.errors}, requests {visit.requests}")
        return 1
    print(f"wrote {out} ({width}x{height}) of {page}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
