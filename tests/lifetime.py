"""Lifetimes kept by the server (0.2), run on every store: the per-session
lifetime set by ``set_expiry()`` is stored with the record, and a replayed
older cookie can never lengthen the session.  Imported by
tests/test_lifetime.py (MemoryStore) and tests/mysql/test_lifetime.py."""

from __future__ import annotations

import asyncio

import pytest
import tornado.web

from tests.conftest import Browser, FakeClock, body, set_cookies
from tornado_sessions.config import SessionConfig
from tornado_sessions.testing import session_manager

NAME = "__Host-session"


async def stored_expiry(app: tornado.web.Application, cookie: str) -> tuple[int, int | None]:
    manager = session_manager(app)
    payload = manager.decode_cookie(cookie)
    assert payload is not None
    record = await manager.store.get(payload["i"])
    assert record is not None
    return record.expires_at, record.ttl


@pytest.mark.gen_test
async def test_a_replayed_longer_lived_cookie_cannot_lengthen_the_session(
    browser: Browser, app: tornado.web.Application, clock: FakeClock
) -> None:
    now = int(clock())
    assert (await browser.get("/expiry?s=2592000")).code == 200  # "remember me": 30 days
    thirty_days = browser.jar[NAME]
    assert await stored_expiry(app, thirty_days) == (now + 2592000, 2592000)
    clock.advance(10)
    assert (await browser.get("/expiry?s=60")).code == 200  # back to one minute
    assert await stored_expiry(app, browser.jar[NAME]) == (now + 10 + 60, 60)
    clock.advance(5)
    # The old 30-day cookie, replayed on a write and on a read.
    replay = {"Cookie": f"{NAME}={thirty_days}"}
    assert (await browser.get("/counter", headers=replay)).code == 200
    assert (await browser.get("/read", headers=replay)).code == 200
    expires, ttl = await stored_expiry(app, thirty_days)
    assert ttl == 60
    assert expires <= now + 15 + 60  # never pushed back to 30 days
    clock.advance(61)
    response = await browser.get("/read", headers=replay)
    assert response.code == 200 and b'"new": true' in response.body  # over, as the server said


@pytest.mark.gen_test
@pytest.mark.session_config(touch_interval=0, max_age=3600)
async def test_a_touch_that_lost_to_remember_me_sends_the_stored_expiry(
    browser: Browser, app: tornado.web.Application, clock: FakeClock, config: SessionConfig
) -> None:
    """Two requests of one browser at once: one reads (and slides the
    default lifetime), the other chooses "remember me" for a day and saves
    first.  The read's touch is refused; its response, the browser's last,
    must carry the day, not its own shorter expiry."""
    assert (await browser.get("/counter")).code == 200
    clock.advance(5)
    arrived, hold = asyncio.Event(), asyncio.Event()
    app.settings.update(arrived=arrived, hold=hold)
    read = asyncio.ensure_future(browser.get("/held"))
    await asyncio.wait_for(arrived.wait(), 10)  # loaded with the default lifetime
    assert (await browser.get("/expiry?s=86400")).code == 200
    now = int(clock())
    assert await stored_expiry(app, browser.jar[NAME]) == (now + 86400, 86400)
    hold.set()
    response = await read
    assert response.code == 200
    (cookie,) = set_cookies(response)
    assert cookie["max-age"] == "86400"  # the day, not the default lifetime
    payload = session_manager(app).decode_cookie(browser.jar[NAME])
    assert payload is not None and payload["e"] == now + 86400
    assert await stored_expiry(app, browser.jar[NAME]) == (now + 86400, 86400)
    # Past the default lifetime, the browser's cookie still names its session.
    clock.advance(config.max_age + 1)
    response = await browser.get("/read")
    assert response.code == 200
    assert body(response) == {"data": {"n": 1, "remember": True}, "new": False}


@pytest.mark.gen_test
@pytest.mark.session_config(max_age=3600)
async def test_a_cookie_that_says_another_expiry_than_its_record_is_reissued(
    browser: Browser, app: tornado.web.Application, clock: FakeClock, config: SessionConfig
) -> None:
    """A concurrent response can leave the browser a cookie older than the
    record (another process's request re-issued it while this one chose
    "remember me"): the next request re-issues it with the record's
    expiry, once."""
    assert (await browser.get("/counter")).code == 200
    stale = browser.jar[NAME]
    clock.advance(5)
    assert (await browser.get("/expiry?s=86400")).code == 200
    now = int(clock())
    browser.jar[NAME] = stale  # the response that came last had its old view
    clock.advance(5)
    response = await browser.get("/read")
    assert response.code == 200 and body(response)["new"] is False
    (cookie,) = set_cookies(response)
    assert cookie["max-age"] == str(86400 - 5)
    payload = session_manager(app).decode_cookie(browser.jar[NAME])
    assert payload is not None and payload["e"] == now + 86400
    assert await stored_expiry(app, browser.jar[NAME]) == (now + 86400, 86400)
    # Healed: the next read sets nothing, and the session outlives the default.
    response = await browser.get("/read")
    assert response.code == 200 and set_cookies(response) == []
    clock.advance(config.max_age + 1)
    response = await browser.get("/read")
    assert body(response) == {"data": {"n": 1, "remember": True}, "new": False}


@pytest.mark.gen_test
async def test_the_stored_lifetime_slides_the_expiry(
    browser: Browser, app: tornado.web.Application, clock: FakeClock
) -> None:
    await browser.get("/expiry?s=1000")
    start = int(clock())
    for _ in range(3):
        clock.advance(200)  # past the touch interval (10 % of 1000 s)
        assert (await browser.get("/counter")).code == 200
    expires, ttl = await stored_expiry(app, browser.jar[NAME])
    assert ttl == 1000
    assert expires == start + 600 + 1000  # slid by the stored 1000 s, not the default
