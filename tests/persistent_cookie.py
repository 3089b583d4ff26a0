"""Browser-session cookies and "remember me" (``SESSION_COOKIE_PERSISTENT``),
run on every store: imported by tests/test_persistent_cookie.py (MemoryStore)
and tests/mysql/test_persistent_cookie.py (MySQLStore, whose ``store``
fixture replaces the memory one).

With ``persistent=False`` the session cookie carries neither ``Max-Age`` nor
``Expires`` (the browser drops it when it closes), while the server still
ends the session after ``max_age`` idle and at the absolute timeout; a
session given its own lifetime with ``set_expiry(seconds)`` gets a
persistent cookie of exactly that lifetime, whatever the setting.
"""

from __future__ import annotations

import email.utils
import http.cookies

import pytest
import tornado.web

from tests.conftest import ROUTES, Base, Browser, FakeClock, body, set_cookies
from tornado_sessions import SessionConfig
from tornado_sessions.stores.base import SessionStore

NAME = "__Host-session"
DAY = 24 * 3600
MAX_AGE = 2_628_000  # the default SESSION_MAX_AGE


class Remember(Base):
    """A login form's "remember me" box: ``?days=14`` ticked, ``?days=`` not."""

    async def get(self) -> None:
        self.session["user_id"] = "alice"
        days = self.get_argument("days", "")
        self.session.set_expiry(int(days) * DAY if days else None)
        self.write({"ok": True})


@pytest.fixture
def app(store: SessionStore, config: SessionConfig) -> tornado.web.Application:
    routes = [*ROUTES, (r"/remember", Remember)]
    return tornado.web.Application(routes, session_store=store, session_config=config)


def the_cookie(response: object) -> http.cookies.Morsel[str]:
    (cookie,) = [c for c in set_cookies(response) if c.key == NAME]  # type: ignore[arg-type]
    assert cookie.value
    return cookie


def expires_at(cookie: http.cookies.Morsel[str]) -> int:
    return int(email.utils.parsedate_to_datetime(cookie["expires"]).timestamp())


@pytest.mark.gen_test
@pytest.mark.session_config(persistent=False)
async def test_a_browser_session_cookie_has_no_max_age_and_no_expires(
    browser: Browser, clock: FakeClock
) -> None:
    cookie = the_cookie(await browser.get("/counter"))
    assert cookie["max-age"] == "" and cookie["expires"] == ""
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert body(await browser.get("/counter")) == {"n": 2}
    # A slide of the expiry re-issues it, still without a lifetime.
    clock.advance(MAX_AGE // 10 + 1)
    again = the_cookie(await browser.get("/counter"))
    assert again["max-age"] == "" and again["expires"] == ""


@pytest.mark.gen_test
@pytest.mark.session_config(persistent=False, max_age=3600)
async def test_the_server_still_ends_a_browser_session_after_max_age_idle(
    browser: Browser, clock: FakeClock
) -> None:
    await browser.get("/counter")
    clock.advance(3599)
    assert body(await browser.get("/counter")) == {"n": 2}
    clock.advance(3601)  # a browser left open keeps the cookie: the server does not
    assert body(await browser.get("/counter")) == {"n": 1}


@pytest.mark.gen_test
@pytest.mark.session_config(persistent=False, absolute_max_age=7200, max_age=3600)
async def test_the_server_still_ends_a_browser_session_at_the_absolute_timeout(
    browser: Browser, clock: FakeClock
) -> None:
    await browser.get("/counter")
    for n in (2, 3, 4):
        clock.advance(2400)  # active all along
        response = await browser.get("/counter")
        assert body(response) == ({"n": n} if n < 4 else {"n": 1})


@pytest.mark.gen_test
@pytest.mark.session_config(persistent=False)
async def test_remember_me_gives_a_persistent_cookie_of_exactly_its_lifetime(
    browser: Browser, clock: FakeClock
) -> None:
    await browser.get("/counter")  # a browser session first
    now = int(clock())
    cookie = the_cookie(await browser.get("/remember?days=14"))
    assert cookie["max-age"] == str(14 * DAY)
    assert expires_at(cookie) == now + 14 * DAY
    # Loaded back from the store, the lifetime still makes the cookie persistent.
    clock.advance(2 * DAY)  # past the touch interval (10 % of 14 days)
    reissued = the_cookie(await browser.get("/counter"))
    assert reissued["max-age"] == str(14 * DAY)
    assert expires_at(reissued) == now + 16 * DAY
    assert body(await browser.get("/read"))["data"] == {"user_id": "alice", "n": 2}


@pytest.mark.gen_test
@pytest.mark.session_config(persistent=False)
async def test_unticking_remember_me_returns_to_a_browser_session_cookie(
    browser: Browser,
) -> None:
    assert the_cookie(await browser.get("/remember?days=30"))["max-age"] == str(30 * DAY)
    cookie = the_cookie(await browser.get("/remember?days="))
    assert cookie["max-age"] == "" and cookie["expires"] == ""


@pytest.mark.gen_test
async def test_a_persistent_cookie_has_the_configured_max_age(
    browser: Browser, clock: FakeClock
) -> None:
    cookie = the_cookie(await browser.get("/counter"))
    assert cookie["max-age"] == str(MAX_AGE)
    assert expires_at(cookie) == int(clock()) + MAX_AGE


@pytest.mark.gen_test
@pytest.mark.parametrize("days", [14, 30, 90])
async def test_remember_me_is_exactly_its_lifetime_whatever_the_default(
    browser: Browser, clock: FakeClock, days: int
) -> None:
    # persistent=True (the default): 30 days is shorter than the default
    # 30.4, 90 days longer; each cookie lasts exactly what was asked.
    cookie = the_cookie(await browser.get(f"/remember?days={days}"))
    assert cookie["max-age"] == str(days * DAY)
    assert expires_at(cookie) == int(clock()) + days * DAY
