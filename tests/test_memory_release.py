"""A finished request's handler, request and session are freed at once.

A handler holds its session and the session reaches back to its handler; a
strong reference both ways is a reference cycle, which Python frees only at
the garbage collector's next pass.  Every request of a session would then
leave its handler, request, headers and HTTP connection object behind until
then (about 28 objects per request), and each pass would walk them.  The
session reaches its handler through a weak proxy instead: these tests look
at what the collector finds after real requests, with the collector's
``DEBUG_SAVEALL`` keeping what it would have freed.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.httputil
import tornado.web
import tornado.websocket

from tests.conftest import ROUTES, Base, Browser, body
from tests.ws import WAIT
from tornado_sessions import Session, SessionConfig, SessionMixin
from tornado_sessions.stores.base import SessionStore

#: Sessions kept past their request by `KeepsSession` (for the test of a
#: session kept without its handler).
KEPT: list[Session] = []
#: Saves a background task made after its response was sent.
LATE: list[str] = []
#: The background tasks of `SavesLater`, kept until they end.
TASKS: set[asyncio.Task[None]] = set()


class KeepsSession(Base):
    async def get(self) -> None:
        self.session["kept"] = True
        KEPT.append(self.session)
        self.write({"kept": True})


class StrongOwner(Base):
    """The session holds its handler strongly, as in 0.3 and earlier."""

    async def get(self) -> None:
        self.session["n"] = 1
        self.session._owner = self
        self.write({"n": 1})


class SavesLater(Base):
    """Answers at once, then (in a task that holds the handler) changes the
    session and saves it after the response was sent."""

    async def get(self) -> None:
        self.session["early"] = True
        task = asyncio.ensure_future(self._later())
        TASKS.add(task)
        task.add_done_callback(TASKS.discard)
        self.write({"early": True})

    async def _later(self) -> None:
        await asyncio.sleep(0.05)
        self.session["late"] = True
        await self.session.save()
        LATE.append("saved")


class SavesOnClose(SessionMixin, tornado.websocket.WebSocketHandler):
    """A WebSocket that saves its session when it closes: ``on_close()`` is
    not a coroutine, so the save is scheduled, and runs after Tornado has
    let the socket's handler go."""

    def on_close(self) -> None:
        self.session["closed"] = True
        task = asyncio.ensure_future(self.session.save())  # holds the session only
        TASKS.add(task)
        task.add_done_callback(TASKS.discard)
        task.add_done_callback(lambda t: LATE.append("closed" if not t.exception() else "failed"))


class Lazy(Base):
    lazy_session = True

    async def get(self) -> None:
        session = await self.load_session()
        self.write({"n": session.get("n")})


@pytest.fixture
def app(store: SessionStore, config: SessionConfig) -> tornado.web.Application:
    routes: list[Any] = [
        *ROUTES,
        (r"/keep", KeepsSession),
        (r"/later", SavesLater),
        (r"/lazy", Lazy),
        (r"/strong", StrongOwner),
        (r"/ws/close-saves", SavesOnClose),
    ]
    return tornado.web.Application(routes, session_store=store, session_config=config)


@pytest.fixture(autouse=True)
def _clean_lists() -> Iterator[None]:
    yield
    KEPT.clear()
    LATE.clear()


@pytest.fixture
def collected() -> Iterator[list[Any]]:
    """What the collector finds unreachable from here on (``gc.garbage``,
    filled by the test's own ``gc.collect()``)."""
    gc.collect()
    debug = gc.get_debug()
    gc.set_debug(debug | gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(debug)
        gc.garbage.clear()


def ours(garbage: list[Any]) -> list[str]:
    """The request-side objects among ``garbage``: handlers, sessions, requests."""
    kinds = (tornado.web.RequestHandler, Session, tornado.httputil.HTTPServerRequest)
    return sorted(type(o).__name__ for o in garbage if isinstance(o, kinds))


def alive(garbage: list[Any]) -> list[str]:
    """The handlers and sessions still alive (not among ``garbage``)."""
    found = {id(o) for o in garbage}
    kinds = (tornado.web.RequestHandler, Session)
    # type(), not isinstance(): a weak proxy would pass for its referent.
    return [
        type(o).__name__
        for o in gc.get_objects()
        if issubclass(type(o), kinds) and id(o) not in found
    ]


@pytest.mark.gen_test
async def test_finished_requests_leave_nothing_for_the_garbage_collector(
    browser: Browser, collected: list[Any]
) -> None:
    # New and returning visitors, reads and writes, a lazy handler, a
    # redirect, a streamed response, a login and a logout.
    paths = ["/counter", "/counter", "/read", "/nothing", "/lazy", "/redirect?v=1", "/stream"]
    paths += ["/login?user=ann", "/counter", "/logout"]
    for path in paths:
        response = await browser.get(path)
        assert response.code in (200, 302)
    gc.collect()
    assert ours(collected) == []
    # ...nor anything alive: each was freed when its response ended.
    assert alive(collected) == []
    # Error pages too (their handlers stay alive here only while pytest's
    # log capture holds the logged traceback).
    for path in ["/fail500", "/bad-value", "/status503"]:
        response = await browser.get(path)
        assert response.code >= 500
    gc.collect()
    assert ours(collected) == []


@pytest.mark.gen_test
async def test_the_old_way_would_be_seen(browser: Browser, collected: list[Any]) -> None:
    """The check above can fail: a handler whose session holds it strongly
    (the reference 0.3 and earlier kept) is found by the collector."""
    response = await browser.get("/strong")
    assert response.code == 200
    gc.collect()
    assert "StrongOwner" in ours(collected)
    assert "Session" in ours(collected)


@pytest.mark.gen_test
async def test_a_task_holding_its_handler_saves_after_the_response(browser: Browser) -> None:
    response = await browser.get("/later")
    assert body(response) == {"early": True}
    for _ in range(200):
        if LATE:
            break
        await asyncio.sleep(0.01)
    assert LATE == ["saved"]
    response = await browser.get("/read")
    assert body(response)["data"] == {"early": True, "late": True}


@pytest.mark.gen_test
async def test_a_session_kept_without_its_handler_still_works(browser: Browser) -> None:
    response = await browser.get("/keep")
    assert response.code == 200
    session = KEPT.pop()
    gc.collect()
    with pytest.raises(ReferenceError):  # its handler is gone...
        session._owner.__class__  # noqa: B018
    # ...and its verbs act on the store directly.
    session["more"] = 1
    await session.save()
    response = await browser.get("/read")
    assert body(response)["data"] == {"kept": True, "more": 1}
    session["unsaved"] = 2
    await session.reload()
    assert dict(session) == {"kept": True, "more": 1}
    await session.destroy()
    response = await browser.get("/read")
    assert body(response) == {"data": {}, "new": True}


@pytest.mark.gen_test
async def test_a_websocket_saves_its_session_from_on_close(browser: Browser, base_url: str) -> None:
    await browser.get("/counter")  # a stored session, and its cookie
    url = base_url.replace("http://", "ws://") + "/ws/close-saves"
    request = tornado.httpclient.HTTPRequest(
        url,
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in browser.jar.items())},
        connect_timeout=WAIT,
        request_timeout=WAIT,
    )
    socket = await asyncio.wait_for(tornado.websocket.websocket_connect(request), WAIT)
    socket.close()
    async with asyncio.timeout(WAIT):
        while not LATE:
            await asyncio.sleep(0.01)
    assert LATE == ["closed"]
    response = await browser.get("/read")
    assert body(response)["data"] == {"n": 1, "closed": True}
