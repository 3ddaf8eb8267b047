"""What every browser test uses: Debian's Chromium under Playwright, a tab that records console
errors, sign-in, and a TCP relay that can cut the page's connections (the live feed's resume).

Chromium is /usr/bin/chromium from the distribution (scripts/stack/install-chromium.sh installs it with
apt-get when missing); Playwright is only the driver and is never allowed to fetch a browser.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, expect, sync_playwright

from todo.edge.auth import mint
from todo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# --no-sandbox: the tests run as root. The rest keep Chromium off the network it would otherwise call
# at every start (updates, sync, safe browsing, QUIC probes), which this machine refuses noisily.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-gpu"]
ARTIFACTS = Path(os.environ.get("TODO_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "browser"
DESKTOP = {"width": 1280, "height": 900}
# Upper bounds, not expectations: make test shares two cores with everything else (speed is bench/'s).
expect.set_options(timeout=15_000)
PHONE = {"width": 375, "height": 740}


def install_chromium() -> None:
    subprocess.run([str(ROOT / "scripts" / "stack" / "install-chromium.sh")], check=True)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    install_chromium()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class Tab:
    """A page in its own browser context, with what its console said."""

    context: BrowserContext
    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect console errors matching ``pattern`` (e.g. the 412 a stale save gets)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def open(self, path: str = "/") -> None:
        self.page.goto(self.base_url + path)


def new_tab(browser: Browser, base_url: str, viewport: dict[str, int] = DESKTOP, **options: Any) -> Tab:
    context = browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Tab(context, page, base_url)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: tab.errors.append(f"uncaught: {error}"))
    page.on("websocket", lambda ws: tab.sockets.append(ws.url))
    page.on("request", lambda request: tab.requests.append(request.url))
    return tab


def screenshot_on_failure(tab: Tab, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]+", "_", name)[:150] + ".png")
    with contextlib.suppress(Exception):
        tab.page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class Signer:
    """Mints tokens the server accepts: with its configured secret, or the one it generated."""

    secret: str

    def token(self, user: str, roles: list[str] | None = None, ttl: int = 3600) -> str:
        return mint(Settings(jwt_secret=self.secret), user, roles, ttl)

    def api(self, base_url: str, user: str, roles: list[str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=base_url, timeout=30,
                            headers={"Authorization": f"Bearer {self.token(user, roles)}"})


def sign_in(tab: Tab, token: str) -> None:
    """Paste the token, as a person would, and wait for the task list."""
    tab.open("/")
    tab.page.get_by_label("Bearer token").fill(token)
    tab.page.get_by_role("button", name="Sign in", exact=True).click()
    tab.page.locator("#live-state[data-state=live]").wait_for()
    tab.page.locator("#list-summary:not(:empty)").wait_for()


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is not False and result is not None:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


class Relay:
    """A TCP relay in front of a server: the page talks to the server through it, and ``cut()`` drops
    every connection and refuses new ones until ``restore()`` — a network outage, for real sockets."""

    def __init__(self, port: int, upstream: tuple[str, int], websocket: tuple[str, int] | None = None) -> None:
        self.port = port
        self.upstream = upstream
        self.websocket = websocket  # where a connection opening with "GET /ws" goes, when not upstream
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # accept() wakes up to notice cut(): closing it would not wake it
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self._target(client), timeout=10)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            pair = (client, server)
            with self._lock:
                self._pairs.add(pair)
            for a, b in (pair, pair[::-1]):
                threading.Thread(target=self._pump, args=(a, b, pair), daemon=True).start()

    def _target(self, client: socket.socket) -> tuple[str, int]:
        if self.websocket is None:
            return self.upstream
        # Chromium opens a connection of its own for each WebSocket, so the first request line tells.
        client.settimeout(10)
        head = client.recv(8, socket.MSG_PEEK | socket.MSG_WAITALL)
        return self.websocket if head.startswith(b"GET /ws") else self.upstream

    def _pump(self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(pair)

    def _close(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._pairs.discard(pair)
        for s in pair:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._close(pair)

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()


def audited(api: httpx.Client, task_id: int) -> None:
    """Wait until audit-sink has recorded the task: its history is 404 until then, and a history panel
    shows the trail as it is when opened."""
    eventually(lambda: api.get(f"/tasks/{task_id}/history").status_code == 200)
