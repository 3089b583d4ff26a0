"""A WebSocket's session and the browser's cookie: a socket cannot re-issue
the cookie, so a cookie left behind the record (a socket's save moved the
expiry) is healed by the next HTTP response, and the socket's own saves
stay quiet about it (found by review of the heal, helper-39)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket

import tornado_sessions
from tests.conftest import ROUTES, SECRET, Browser, FakeClock, set_cookies
from tornado_sessions import SessionConfig, SessionMixin
from tornado_sessions.testing import session_manager

NAME = "__Host-session"


class Socket(SessionMixin, tornado.websocket.WebSocketHandler):
    async def on_message(self, message: Any) -> None:
        self.session["m"] = message
        await self.session.save()
        await self.write_message("ok")


@pytest.fixture
def config(clock: FakeClock) -> SessionConfig:
    return SessionConfig(secret=SECRET, clock=clock, touch_interval=0)


@pytest.fixture
def app(store: Any, config: SessionConfig) -> tornado.web.Application:
    return tornado.web.Application(
        [*ROUTES, (r"/ws", Socket)],
        session_store=store,
        session_config=config,
        ui_methods=tornado_sessions.ui,
    )


async def connect(browser: Browser, base_url: str) -> tornado.websocket.WebSocketClientConnection:
    request = tornado.httpclient.HTTPRequest(
        base_url.replace("http://", "ws://") + "/ws",
        headers={"Cookie": f"{NAME}={browser.jar[NAME]}"},
        request_timeout=10,
    )
    return await tornado.websocket.websocket_connect(request)


async def say(socket: tornado.websocket.WebSocketClientConnection, text: str) -> None:
    await socket.write_message(text)
    assert await asyncio.wait_for(socket.read_message(), 10) == "ok"


@pytest.mark.gen_test
async def test_a_socket_on_a_cookie_behind_its_record_saves_quietly_and_http_heals_it(
    browser: Browser,
    base_url: str,
    clock: FakeClock,
    app: tornado.web.Application,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tornado_sessions")
    assert (await browser.get("/counter")).code == 200
    clock.advance(10)
    first = await connect(browser, base_url)
    await say(first, "a")  # slides the record; the browser's cookie cannot follow
    first.close()
    clock.advance(10)
    second = await connect(browser, base_url)  # the cookie is behind its record
    for i in range(5):
        clock.advance(1)
        await say(second, str(i))
    second.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    # The next HTTP response re-issues the cookie with the record's expiry.
    response = await browser.get("/read")
    assert response.code == 200 and len(set_cookies(response)) == 1
    manager = session_manager(app)
    payload = manager.decode_cookie(browser.jar[NAME])
    assert payload is not None
    record = await manager.store.get(payload["i"])
    assert record is not None and record.expires_at == payload["e"]
    assert '"m":"4"' in record.data  # every socket save landed
