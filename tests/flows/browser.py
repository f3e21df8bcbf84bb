"""Headless Chromium driven over the DevTools protocol (a websocket, `websockets` comes with Prefect): open a
page at a given window width, wait until it has rendered something, read the layout back and take a
screenshot — what a person at that screen width would see."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from cli.demo_run import free_port
from cli.stop import end_process

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


class Page:
    """One tab: `evaluate` JavaScript, `screenshot` to a file."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv(timeout=60))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 60) -> None:
        """Navigate and wait until the JavaScript expression `ready` is true (the SPA has rendered)."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        check = f"location.href.startsWith({url!r}) && Boolean({ready})"  # the new page's, not the one before
        while not self.evaluate(f"(() => {{ try {{ return {check}; }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not render ({ready}) in {timeout} s")
            time.sleep(0.5)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))


@contextmanager
def chromium(binary: str, profile: Path, width: int, height: int = 1000) -> Iterator[Page]:
    """A headless Chromium with one tab of `width` × `height` CSS pixels."""
    port = free_port()
    process = subprocess.Popen([binary, *FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                                f"--window-size={width},{height}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                tab = next(target for target in targets if target["type"] == "page")
                break
            except (httpx.HTTPError, StopIteration):
                assert process.poll() is None and time.monotonic() < deadline, "Chromium did not start"
                time.sleep(0.3)
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            page = Page(socket)
            page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            yield page
    finally:
        end_process(process)


#: every table header cell on the page, and whether a reader sees it whole: inside the window and not cut off
#: by a scrolling or clipping container around the table
HEADERS = """
(() => {
  const inside = (rect, box) => rect.left >= box.left - 1 && rect.right <= box.right + 1;
  return [...document.querySelectorAll('th')].map(th => {
    const rect = th.getBoundingClientRect();
    let visible = rect.width > 0 && inside(rect, {left: 0, right: window.innerWidth});
    for (let node = th.parentElement; node && visible; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX)) {
        visible = inside(rect, node.getBoundingClientRect());
      }
    }
    return {text: th.innerText.trim(), left: rect.left, right: rect.right, visible};
  });
})()
"""
