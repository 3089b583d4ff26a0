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
import tornado.httputil
import tornado.web

from tests.conftest import ROUTES, Base, Browser, body
from tornado_sessions import Session, SessionConfig
from tornado_sessions.errors import SessionNotLoadedError
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
    ]
    return tornado.web.Application(routes, session_store=store, session_config=config)


@pytest.fixture
def collected() -> Iterator[list[Any]]:
    """What the collector finds unreachable from here on (a list filled at the
    end of the test's requests by `collect`)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        KEPT.clear()
        LATE.clear()


def ours(garbage: list[Any]) -> list[str]:
    """The request-side objects among ``garbage``: handlers, sessions, requests."""
    kinds = (tornado.web.RequestHandler, Session, tornado.httputil.HTTPServerRequest)
    return sorted(type(o).__name__ for o in garbage if isinstance(o, kinds))


@pytest.mark.gen_test
async def test_finished_requests_leave_nothing_for_the_garbage_collector(
    browser: Browser, collected: list[Any]
) -> None:
    # New and returning visitors, reads and writes, a lazy handler, a
    # redirect, a streamed response, a login and a logout, an error page.
    paths = ["/counter", "/counter", "/read", "/nothing", "/lazy", "/redirect?v=1", "/stream"]
    paths += ["/login?user=ann", "/counter", "/logout", "/fail500", "/bad-value"]
    for path in paths:
        response = await browser.get(path, follow_redirects=False, raise_error=False)
        assert response.code < 600
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
    LATE.clear()


@pytest.mark.gen_test
async def test_a_session_kept_without_its_handler_says_so(browser: Browser) -> None:
    response = await browser.get("/keep")
    assert response.code == 200
    session = KEPT.pop()
    gc.collect()
    # Its data can still be read...
    assert session["kept"] is True
    # ...but its request is over and its handler gone: a verb says so.
    for verb in (session.save, session.reload, session.regenerate, session.destroy):
        with pytest.raises(SessionNotLoadedError, match="request has ended"):
            await verb()
    # Nothing was changed by the attempts.
    response = await browser.get("/read")
    assert body(response)["data"] == {"kept": True}
