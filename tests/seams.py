"""The seams of 0.2's guarantees that an attacker found (issue "Guarantees",
findings 1, 2, 6 and 7), each closed and checked here on every store through
real HTTP requests.  Imported by tests/test_seams.py (MemoryStore, store calls
counted by the recording store) and tests/mysql/test_seams.py (MySQLStore,
statements counted at the server).  The stateful checker (tests/checker)
generates the neighbouring interleavings."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import tornado.web

from tests.conftest import Browser, FakeClock, body, gate, set_cookies, wait_gate
from tornado_sessions.testing import read_session, session_manager

NAME = "__Host-session"


async def reached(name: str) -> None:
    """Wait until a request is paused at gate ``name``."""
    await wait_gate(name + ":reached")


async def stored(app: tornado.web.Application, cookie: str) -> Any:
    manager = session_manager(app)
    payload = manager.decode_cookie(cookie)
    assert payload is not None
    return await manager.store.get(payload["i"])


# -- finding 1: regenerate() never revives an ended session ---------------------------


async def _regenerate_after_logout_everywhere(
    browser: Browser, app: tornado.web.Application, elevate: bool
) -> Any:
    assert (await browser.get("/login?user=victim")).code == 200
    stolen = browser.jar[NAME]
    attacker = Browser(browser.client, browser.base_url)
    attacker.jar[NAME] = stolen
    name = f"regenerate-{elevate}"
    pending = asyncio.ensure_future(
        attacker.get(f"/gated-regenerate?gate={name}&elevate={int(elevate)}")
    )
    await reached(name)  # the attacker's request holds the victim's session, loaded
    assert body(await browser.get("/end-everywhere")) == {"ended": 1}
    gate(name).set()
    response = await asyncio.wait_for(pending, 10)
    assert response.code == 200
    assert await session_manager(app).user_sessions("victim") == []
    assert await stored(app, stolen) is None
    return response


@pytest.mark.gen_test
async def test_a_regenerate_after_log_out_everywhere_starts_a_fresh_empty_session(
    browser: Browser, app: tornado.web.Application
) -> None:
    response = await _regenerate_after_logout_everywhere(browser, app, elevate=True)
    # What the request did after regenerate() is all its new session holds.
    assert body(response) == {"data": {"elevated": True}}
    assert await read_session(app, response) == {"elevated": True}


@pytest.mark.gen_test
async def test_a_regenerate_of_an_ended_session_clears_the_cookie(
    browser: Browser, app: tornado.web.Application
) -> None:
    response = await _regenerate_after_logout_everywhere(browser, app, elevate=False)
    assert body(response) == {"data": {}}
    (cookie,) = set_cookies(response)
    assert cookie.key == NAME and cookie.value == ""  # cleared
    assert await session_manager(app).store.length() == 0


# -- finding 2: a stale touch never lengthens a shortened session ---------------------


async def _stale_touch(browser: Browser, app: tornado.web.Application, clock: FakeClock) -> None:
    assert (await browser.get("/counter")).code == 200  # a 30-day session
    reader = Browser(browser.client, browser.base_url)
    reader.jar = dict(browser.jar)
    pending = asyncio.ensure_future(reader.get("/gated-read?gate=stale-touch"))
    await reached("stale-touch")  # loaded with the 30-day lifetime
    clock.advance(5)
    assert (await browser.get("/expiry?s=60")).code == 200  # shortened to a minute
    now = int(clock())
    gate("stale-touch").set()
    assert (await asyncio.wait_for(pending, 10)).code == 200  # finishes last, touching
    record = await stored(app, browser.jar[NAME])
    assert record.ttl == 60
    assert record.expires_at <= now + 60
    clock.advance(61)
    assert body(await browser.get("/read"))["new"] is True  # over, as set_expiry said


@pytest.mark.gen_test
@pytest.mark.session_config(rolling=True)
async def test_a_stale_rolling_touch_does_not_lengthen_a_shortened_session(
    browser: Browser, app: tornado.web.Application, clock: FakeClock
) -> None:
    await _stale_touch(browser, app, clock)


@pytest.mark.gen_test
@pytest.mark.session_config(touch_interval=0)
async def test_a_stale_touch_does_not_lengthen_a_shortened_session(
    browser: Browser, app: tornado.web.Application, clock: FakeClock
) -> None:
    await _stale_touch(browser, app, clock)


# -- finding 6: every response built from the session is private ----------------------


def assert_private(response: Any) -> None:
    assert "cookie" in response.headers.get("Vary", "").lower(), response.headers
    directives = response.headers.get("Cache-Control", "").lower()
    assert "private" in directives or "no-store" in directives, response.headers
    assert "public" not in directives and "s-maxage" not in directives


@pytest.mark.gen_test
@pytest.mark.parametrize("what", ["id", "fingerprint", "expires_at"])
async def test_a_response_built_from_the_session_identity_is_private(
    browser: Browser, what: str
) -> None:
    assert_private(await browser.get(f"/identity?what={what}"))  # a new visitor
    await browser.get("/counter")
    response = await browser.get(f"/identity?what={what}")
    assert response.code == 200 and not response.headers.get_list("Set-Cookie")
    assert_private(response)


@pytest.mark.gen_test
async def test_a_streamed_response_that_reads_the_session_after_its_first_flush_is_private(
    browser: Browser,
) -> None:
    await browser.get("/counter")
    response = await browser.get("/stream-then-read")
    assert response.body == b'head;{"n": 1}'
    assert_private(response)


# -- finding 7: what express-session's own suite expects ------------------------------


@pytest.mark.gen_test
@pytest.mark.session_config(resave=True)
async def test_save_then_the_end_of_the_request_writes_once_under_resave(
    browser: Browser, count: Any
) -> None:
    await browser.get("/counter")
    with count() as seen:
        assert (await browser.get("/save-unmodified")).code == 200
    assert seen() == {"load": 1, "save": 1}
    with count() as seen:  # resave still writes an unmodified session once
        assert (await browser.get("/read")).code == 200
    assert seen() == {"load": 1, "save": 1}


@pytest.mark.gen_test
@pytest.mark.session_config(path="/app")
async def test_a_request_outside_the_cookie_path_neither_loads_nor_sets_a_session(
    browser: Browser, count: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inside = await browser.get("/app/counter")
    (cookie,) = set_cookies(inside)
    assert cookie["path"] == "/app" and cookie.key == "session"
    with count() as seen:
        outside = await browser.get("/read")  # the cookie sent anyway: not looked at
        assert body(outside) == {"data": {}, "new": True}
        assert not outside.headers.get_list("Set-Cookie")
    assert seen() == {}
    # "/application" is outside "/app" for a browser (RFC 6265 path-match).
    with caplog.at_level(logging.ERROR):
        refused = await browser.get("/application/counter")
    assert refused.code == 500 and not refused.headers.get_list("Set-Cookie")
    assert "SESSION_COOKIE_PATH" in caplog.text
    assert body(await browser.get("/app/counter")) == {"n": 2}  # inside, it works


@pytest.mark.gen_test
async def test_destroy_clears_a_cookie_only_if_the_client_holds_one(
    browser: Browser, app: tornado.web.Application
) -> None:
    response = await browser.get("/logout")  # no cookie sent
    assert response.code == 200 and not response.headers.get_list("Set-Cookie")
    # A cookie set earlier in the same response is taken back.
    response = await browser.get("/save-then-destroy")
    cookies = set_cookies(response)
    assert [(c.key, c.value) for c in cookies] == [(NAME, "")]
    assert await session_manager(app).store.length() == 0
    # A client holding one gets it cleared.
    await browser.get("/counter")
    (cleared,) = set_cookies(await browser.get("/logout"))
    assert cleared.key == NAME and cleared.value == ""
