"""A static file server and a headless Chromium driven over the DevTools protocol, for the browser tests.

Used by ``tests/tools/test_site.py`` and ``tests/tools/test_lab.py``; it is test code, not part of a
shipped package.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


class BrowserSetupError(RuntimeError):
    """No Chromium could be found or installed."""

# --------------------------------------------------------------------------------------------
# serving and a headless browser (used by tests/test_site.py and tests/test_lab.py)


@contextlib.contextmanager
def serve(directory: Path, host: str = "127.0.0.1"):
    """Serve ``directory`` over HTTP on a free loopback port; yields the base URL (``http://127.0.0.1:PORT/``)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer((host, 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome binary on PATH (or ``$CHROMIUM``), or None."""
    if os.environ.get("CHROMIUM") and Path(os.environ["CHROMIUM"]).exists():
        return os.environ["CHROMIUM"]
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


def ensure_chromium(install: bool = True, timeout: int = 900) -> str:
    """A Chromium binary, installing Debian's ``chromium`` package with apt when absent and allowed.

    Raises :class:`BrowserSetupError` saying why when there is none and it cannot be installed (not root,
    no apt-get, the install failed).
    """
    if path := find_chromium():
        return path
    if not install:
        raise BrowserSetupError("no Chromium on PATH (looked for " + ", ".join(CHROMIUM_NAMES) + ")")
    apt = shutil.which("apt-get")
    if apt is None:
        raise BrowserSetupError("no Chromium on PATH and no apt-get to install it with; install Chromium and set $CHROMIUM")
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        raise BrowserSetupError("no Chromium on PATH and not root (no sudo) to `apt-get install chromium`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    wait = ["-o", "DPkg::Lock::Timeout=300"]  # another test process may be installing it right now
    for cmd in ([apt, *wait, "install", "-y", "chromium"], [apt, *wait, "update"],
                [apt, *wait, "install", "-y", "chromium"]):
        proc = subprocess.run(prefix + cmd, capture_output=True, text=True, env=env, timeout=timeout)
        log.append(f"$ {' '.join(cmd)} -> exit {proc.returncode}\n{proc.stderr[-600:]}")
        if "install" in cmd and proc.returncode == 0 and (path := find_chromium()):
            return path
    raise BrowserSetupError("could not install Chromium with apt-get:\n" + "\n".join(log))


class BrowserError(RuntimeError):
    """Chromium did not start, a DevTools command failed, or a page did not reach the awaited state."""


class Chromium:
    """Headless Chromium driven over the Chrome DevTools Protocol (one tab), with ``websocket-client``.

    Everything the page does is recorded: ``console_errors`` (console.error/assert, uncaught
    exceptions, browser log entries of level error such as failed loads) and ``requests`` (every
    URL fetched). Host names other than 127.0.0.1 resolve to nothing, so a page that tries to load
    something from the internet fails loudly instead of hanging.
    """

    def __init__(self, binary: str | None = None, *, width: int = 1280, height: int = 900, timeout: float = 60):
        import tempfile

        import websocket

        self.binary = binary or ensure_chromium(install=False)
        self.timeout = timeout
        self.width, self.height = width, height
        self._profile = tempfile.mkdtemp(prefix="course-chromium-")
        args = [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-default-apps", "--disable-extensions", "--disable-sync",
            "--mute-audio", "--hide-scrollbars", f"--window-size={width},{height}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={self._profile}", "--remote-debugging-port=0", "--remote-allow-origins=*",
            "about:blank",
        ]
        # stderr goes to a file: a pipe nobody reads would fill up and stall the browser
        self._stderr = open(Path(self._profile) / "chromium-stderr.log", "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._stderr, start_new_session=True)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if self.proc.poll() is not None:
                self._stderr.close()
                err = (Path(self._profile) / "chromium-stderr.log").read_text(errors="replace")[-2000:]
                self._cleanup()
                raise BrowserError(f"Chromium exited with {self.proc.returncode} at start:\n{err}")
            if time.monotonic() > deadline:
                self.close()
                raise BrowserError(f"Chromium did not open its DevTools port within {timeout} s")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self.failed_requests: list[str] = []
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    # -- protocol
    def _handle_event(self, msg: dict) -> None:
        method, params = msg.get("method", ""), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            desc = details.get("exception", {}).get("description") or details.get("text", "")
            self.console_errors.append(f"uncaught exception: {desc} ({details.get('url', '')}:{details.get('lineNumber')})")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(f"browser log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failed_requests.append(f"{params.get('errorText')} ({params.get('type')})")
        self.events.append(msg)

    def send(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float | None = None) -> dict:
        """Send one DevTools command and return its result (events that arrive meanwhile are recorded)."""
        self._next_id += 1
        msg_id = self._next_id
        message = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except Exception as exc:  # websocket timeout or closed connection
                raise BrowserError(f"no answer to {method} within {timeout or self.timeout} s ({type(exc).__name__})") from exc
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._handle_event(msg)

    def evaluate(self, expression: str, *, await_promise: bool = True, timeout: float | None = None):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise, "userGesture": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"JavaScript failed: {details.get('exception', {}).get('description') or details.get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None, interval: float = 0.1):
        """Poll ``expression`` until it is truthy; return its value or raise :class:`BrowserError`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(interval)
        raise BrowserError(f"timed out after {timeout or self.timeout} s waiting for {expression!r} (last value {value!r})")

    def goto(self, url: str, *, ready: str = "document.readyState === 'complete'", timeout: float | None = None):
        """Navigate and wait until ``ready`` (a JavaScript expression) holds; returns the final URL."""
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for(f"location.href !== 'about:blank' && ({ready})", timeout=timeout)
        return self.evaluate("location.href")

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Write a PNG of the viewport (or the whole page) to ``path``."""
        import base64

        if full_page:  # grow the viewport to the page, so sticky sidebars stay where they belong
            width, height = self.evaluate("[window.innerWidth, document.documentElement.scrollHeight]")
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": min(height, 16000), "deviceScaleFactor": 1, "mobile": False})
            time.sleep(0.3)
        try:
            data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        finally:
            if full_page:
                self.send("Emulation.setDeviceMetricsOverride",
                          {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def reset_log(self) -> None:
        self.console_errors.clear()
        self.requests.clear()
        self.failed_requests.clear()

    # -- lifetime
    def _cleanup(self) -> None:
        shutil.rmtree(self._profile, ignore_errors=True)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                try:
                    self.send("Browser.close", session=False, timeout=5)
                except BrowserError:
                    pass
                self.ws.close()
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            self._stderr.close()
            self._cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


