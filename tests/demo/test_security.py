"""The demo's own hardening: no framing, debug mode only when asked, and a
login that never hands one user's session data to another."""

from __future__ import annotations

import html
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from demo.__main__ import parse_args

from .conftest import Visitor, session_cookies, wait_for_line

FRAMING = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def assert_not_frameable(response: Any, label: str) -> None:
    for header, value in FRAMING.items():
        assert response.headers.get(header) == value, (label, header)


def notes(response: Any) -> list[str]:
    page = response.body.decode()
    return [html.unescape(n) for n in re.findall(r'<li class="note">([^<]*)</li>', page)]


async def sign_in(visitor: Visitor, username: str) -> Any:
    await visitor.get("/login")
    response = await visitor.post("/login", {"username": username})
    assert response.code == 302
    return response


# -- framing -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_every_page_refuses_to_be_framed(visitor: Visitor) -> None:
    for path in ("/", "/login", "/notes", "/session", "/no-such-page"):
        assert_not_frameable(await visitor.get(path), path)
    assert_not_frameable(await visitor.post("/login", {"username": ""}), "400 on login")
    assert_not_frameable(await visitor.post("/notes", {"note": "x"}, xsrf=False), "403 (XSRF)")
    assert_not_frameable(await sign_in(visitor, "Alice"), "the login redirect")
    # The pages whose buttons end sessions: the ones a clickjacker would frame.
    assert_not_frameable(await visitor.get("/sessions"), "/sessions")
    assert_not_frameable(await visitor.post("/sessions/end-all", {}), "log out other devices")


# -- login ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_different_user_signing_in_starts_empty(visitor: Visitor) -> None:
    await sign_in(visitor, "Alice")
    await visitor.get("/")  # counts a visit
    await visitor.get("/notes")
    await visitor.post("/notes", {"note": "alice's secret plan"})
    assert notes(await visitor.get("/notes")) == ["alice's secret plan"]
    assert "visits" in html.unescape((await visitor.get("/session")).body.decode())
    alice_cookie = visitor.session_cookie

    # Bob signs in on the same browser without Alice logging out.
    await sign_in(visitor, "Bob")
    page = await visitor.get("/notes")
    assert notes(page) == []
    assert "alice" not in page.body.decode().lower()
    session_page = html.unescape((await visitor.get("/session")).body.decode())
    assert "secret plan" not in session_page and "visits" not in session_page
    assert '"user_id": "bob"' in session_page
    assert visitor.session_cookie != alice_cookie

    # Alice's old cookie names nothing any more (the id was regenerated).
    visitor.jar["__Host-session"] = alice_cookie or ""
    assert "Not signed in" in (await visitor.get("/")).body.decode()


@pytest.mark.gen_test
async def test_the_same_user_signing_in_again_keeps_the_data(visitor: Visitor) -> None:
    await sign_in(visitor, "Alice")
    await visitor.get("/notes")
    await visitor.post("/notes", {"note": "still mine"})
    before = visitor.session_cookie
    response = await sign_in(visitor, "alice")  # the same user, another spelling
    assert session_cookies(response)  # a new id all the same
    assert visitor.session_cookie != before
    assert notes(await visitor.get("/notes")) == ["still mine"]


@pytest.mark.gen_test
async def test_a_visitor_signing_in_keeps_what_they_did_before(
    new_visitor: Callable[[], Visitor],
) -> None:
    visitor = new_visitor()
    await visitor.get("/notes")
    await visitor.post("/notes", {"note": "before login"})
    await sign_in(visitor, "Carol")
    assert notes(await visitor.get("/notes")) == ["before login"]


# -- debug mode ------------------------------------------------------------------


def test_debug_mode_is_off_unless_asked() -> None:
    assert parse_args([]).debug is False
    assert parse_args(["--debug"]).debug is True


def test_python_m_demo_runs_without_debug_mode_by_default(run_demo: Any) -> None:
    proc, banner = run_demo("--port", "0", "--no-reload")
    text = "\n".join(banner)
    assert "debug:      off" in text
    port = next(line for line in banner if "open:" in line).rsplit(":", 1)[1].strip("/")
    with urllib.request.urlopen(f"http://localhost:{port}/", timeout=10) as response:
        assert response.status == 200
        assert response.headers["X-Frame-Options"] == "DENY"
    # Outside debug mode the library says MemoryStore is for development.
    wait_for_line(proc, "MemoryStore is in use outside debug mode")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://localhost:{port}/nowhere", timeout=10)
    assert missing.value.code == 404
    assert b"Traceback" not in missing.value.read()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


def test_python_m_demo_debug_turns_debug_mode_on(run_demo: Any) -> None:
    proc, banner = run_demo("--port", "0", "--no-reload", "--debug")
    assert "debug:      on" in "\n".join(banner)
    port = next(line for line in banner if "open:" in line).rsplit(":", 1)[1].strip("/")
    with urllib.request.urlopen(f"http://localhost:{port}/", timeout=10) as response:
        assert response.status == 200
    proc.send_signal(signal.SIGINT)
    lines = wait_for_line(proc, "demo: stopping")
    assert not any("outside debug mode" in line for line in lines)
    assert proc.wait(timeout=15) == 0
