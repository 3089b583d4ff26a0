"""Responses that read a session are kept out of shared caches.

``Vary: Cookie`` alone lets a shared cache store one user's page and serve it
to every client sending the same cookie header (or none, where it ignores
Vary); ``Cache-Control: private`` keeps such caches out.
"""

from __future__ import annotations

from typing import Any

import pytest
import tornado.web

from tests.conftest import ROUTES, Base, Browser, body, set_cookies
from tornado_sessions import SessionConfig
from tornado_sessions.stores.base import SessionStore


class ReadWithOwnCaching(Base):
    """Reads the session and sets the Cache-Control given in ``cc``."""

    async def get(self) -> None:
        self.set_header("Cache-Control", self.get_argument("cc"))
        self.write({"n": self.session.get("n")})


@pytest.fixture
def app(store: SessionStore, config: SessionConfig) -> tornado.web.Application:
    routes: list[Any] = [*ROUTES, (r"/own-caching", ReadWithOwnCaching)]
    return tornado.web.Application(routes, session_store=store, session_config=config)


def directives(response: Any) -> list[str]:
    return [d.strip() for d in response.headers.get("Cache-Control", "").split(",") if d.strip()]


@pytest.mark.gen_test
async def test_a_response_that_only_reads_the_session_is_private(browser: Browser) -> None:
    first = await browser.get("/read")  # a new visitor: read, nothing stored, no cookie
    assert set_cookies(first) == []
    assert directives(first) == ["private"]
    assert "Cookie" in first.headers["Vary"]

    await browser.get("/counter")  # now a returning visitor
    again = await browser.get("/read")
    assert body(again) == {"data": {"n": 1}, "new": False}
    assert set_cookies(again) == []  # the cookie is not re-sent...
    assert directives(again) == ["private"]  # ...and the page is still private
    assert "Cookie" in again.headers["Vary"]


@pytest.mark.gen_test
async def test_a_response_that_does_not_touch_the_session_is_left_alone(
    browser: Browser,
) -> None:
    await browser.get("/counter")
    response = await browser.get("/nothing")
    assert "Cache-Control" not in response.headers
    assert "Vary" not in response.headers


@pytest.mark.gen_test
async def test_a_reading_handler_keeps_its_own_cache_control(browser: Browser) -> None:
    await browser.get("/counter")
    for own in ("no-store", "private, max-age=30", "no-cache", "public, max-age=60"):
        response = await browser.get(f"/own-caching?cc={own.replace(' ', '%20')}")
        assert body(response) == {"n": 1}
        assert set_cookies(response) == []
        assert directives(response) == [d.strip() for d in own.split(",")], own
    # (a response that sets the cookie never keeps "public": tests/test_mixin.py)
