"""Fixtures for the demo's tests: the demo app on a real server (pytest-tornado)
with its own MemoryStore, config and clock, and `Visitor`, an HTTP client that
keeps cookies and takes the XSRF token from the pages' forms as a browser does.
"""

from __future__ import annotations

import email.utils
import html
import http.cookies
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.web

from demo.app import make_app
from tornado_sessions import MemoryStore, SessionConfig
from tornado_sessions.manager import SessionManager

SECRET = "demo-test-secret-fkQKe6z40NUFHWQ9nYlTFW7oj1xRr7IOYFIcvwxHWPQ"
#: 2030-03-17 17:46:40 UTC: the sessions' clock starts here.
T0 = 1_900_000_000
COOKIE = "__Host-session"


class Clock:
    """A clock the tests move by hand (never slept)."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def demo_clock() -> Clock:
    return Clock()


@pytest.fixture
def demo_store(demo_clock: Clock) -> MemoryStore:
    return MemoryStore(clock=demo_clock)


@pytest.fixture
def demo_session_config(demo_clock: Clock) -> SessionConfig:
    # The demo's settings: the library's defaults.
    return SessionConfig(secret=SECRET, clock=demo_clock)


@pytest.fixture
def app(demo_store: MemoryStore, demo_session_config: SessionConfig) -> tornado.web.Application:
    return make_app(demo_store, demo_session_config)


@pytest.fixture
def manager(demo_store: MemoryStore, demo_session_config: SessionConfig) -> SessionManager:
    """Reads cookies the way the app does (to find the session id a cookie names)."""
    return SessionManager(demo_store, demo_session_config)


def parse_set_cookie(line: str) -> http.cookies.Morsel[str]:
    cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    cookie.load(line)
    (morsel,) = cookie.values()
    return morsel


def is_removal(morsel: http.cookies.Morsel[str]) -> bool:
    """True if a browser would delete the cookie on this Set-Cookie."""
    if morsel["max-age"] and int(morsel["max-age"]) <= 0:
        return True
    if morsel["expires"]:
        return email.utils.parsedate_to_datetime(morsel["expires"]).timestamp() < time.time()
    return False


def session_cookies(response: tornado.httpclient.HTTPResponse) -> list[http.cookies.Morsel[str]]:
    return [
        m for m in map(parse_set_cookie, response.headers.get_list("Set-Cookie")) if m.key == COOKIE
    ]


class Visitor:
    """An HTTP client with a cookie jar that reads the XSRF token from forms."""

    def __init__(self, client: tornado.httpclient.AsyncHTTPClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.jar: dict[str, str] = {}
        self.xsrf: str | None = None

    @property
    def session_cookie(self) -> str | None:
        return self.jar.get(COOKIE)

    async def fetch(
        self,
        path: str,
        method: str = "GET",
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tornado.httpclient.HTTPResponse:
        headers = dict(headers or {})
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = await self.client.fetch(
            self.base_url + path,
            method=method,
            body=body,
            headers=headers,
            follow_redirects=False,
            raise_error=False,
            request_timeout=10,
        )
        for line in response.headers.get_list("Set-Cookie"):
            morsel = parse_set_cookie(line)
            if not morsel.value or is_removal(morsel):
                self.jar.pop(morsel.key, None)
            else:
                self.jar[morsel.key] = morsel.coded_value
        token = re.search(rb'name="_xsrf" value="([^"]+)"', response.body or b"")
        if token:
            self.xsrf = html.unescape(token.group(1).decode())
        return response

    async def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tornado.httpclient.HTTPResponse:
        return await self.fetch(path, headers=headers)

    async def post(
        self,
        path: str,
        fields: dict[str, str] | None = None,
        *,
        xsrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tornado.httpclient.HTTPResponse:
        """POST a form; with ``xsrf`` it carries the token of the last page
        seen that had a form (the login page is fetched first if none)."""
        data = dict(fields or {})
        if xsrf:
            if self.xsrf is None:
                await self.get("/login")
            assert self.xsrf is not None
            data["_xsrf"] = self.xsrf
        return await self.fetch(path, "POST", urllib.parse.urlencode(data), headers)


@pytest.fixture
def visitor(http_client: tornado.httpclient.AsyncHTTPClient, base_url: str) -> Visitor:
    return Visitor(http_client, base_url)


@pytest.fixture
def new_visitor(
    http_client: tornado.httpclient.AsyncHTTPClient, base_url: str
) -> Callable[[], Visitor]:
    """Make more visitors (other browsers) for the same server."""
    return lambda: Visitor(http_client, base_url)


# -- python -m demo as a real process ------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
STARTUP = 30  # seconds


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any SESSION_* or DEMO_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "DEMO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(proc: Any, text: str, timeout: float = STARTUP) -> list[str]:
    """Read ``proc``'s output (after its banner) until a line contains
    ``text``; return the lines read.  Fails after ``timeout`` seconds."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = proc.output.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no line with {text!r} within {timeout} s; got {seen}")
        if line is None:
            pytest.fail(f"python -m demo ended before a line with {text!r}: {seen}")
        seen.append(line)
        if text in line:
            return seen


@pytest.fixture
def run_demo(tmp_path: Path) -> Iterator[Any]:
    """Start ``python -m demo`` in an empty directory (no .env); always stopped.

    The process's ``output`` attribute is the queue of its lines after the
    banner (read them with `wait_for_line`)."""
    procs: list[tuple[subprocess.Popen[str], threading.Thread]] = []

    def start(*args: str, **env: str) -> tuple[subprocess.Popen[str], list[str]]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demo", *args],
            cwd=tmp_path,
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        procs.append((proc, reader))
        proc.output = lines  # type: ignore[attr-defined]  # the lines after the banner
        banner: list[str] = []
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no banner within {STARTUP} s; got {banner}")
            if line is None:
                pytest.fail(f"python -m demo exited ({proc.wait(5)}): {banner}")
            banner.append(line)
            if "Press Ctrl+C" in line:
                return proc, banner

    yield start
    for proc, reader in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        reader.join(10)  # it has read to the end: the pipe can be closed
        assert proc.stdout is not None
        proc.stdout.close()
