"""A minimal Chrome DevTools Protocol client for the UI test: headless Debian Chromium,
driven over its page WebSocket (``websockets`` sync client). No network beyond loopback."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING

from websockets.sync.client import connect

if TYPE_CHECKING:
    from pathlib import Path

    from websockets.sync.client import ClientConnection

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--disable-default-apps", "--metrics-recording-only", "--disable-breakpad", "--window-size=1400,1000",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise RuntimeError("Debian package 'chromium' is not installed (make test installs it: APT_TEST)")


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, user_data_dir: Path, log_path: Path) -> None:
        user_data_dir.mkdir(parents=True, exist_ok=True)
        port_file = user_data_dir / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self._log = open(log_path, "wb")  # closed in close()
        home = user_data_dir.parent  # crash reports and caches stay in the test's directory
        env = dict(os.environ, XDG_CONFIG_HOME=str(home / "xdg-config"), XDG_CACHE_HOME=str(home / "xdg-cache"))
        self.proc = subprocess.Popen(
            [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            self.ws = self._connect(port_file, log_path)
        except BaseException:
            self._stop()
            raise
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def _connect(self, port_file: Path, log_path: Path) -> ClientConnection:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start; see {log_path}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        return connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=10)

    def send(self, method: str, **params: object) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def eval(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, what: str = "") -> object:
        """Poll a JS expression until it is truthy (exceptions count as not yet)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                # DOM nodes (of any frame) are not serializable: report them as true.
                value = self.eval(f"(() => {{ const v = ({expression}); return v && v.nodeType ? true : v; }})()")
                if value:
                    return value
            except RuntimeError as exc:
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or expression} (url {self.eval('location.href')}); {last}")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        time.sleep(0.2)
        self.wait_for("document.readyState === 'complete'", what=f"load of {url}")

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type as a user would (React sees real input events)."""
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._stop()

    def _stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
