"""Session events (`tornado_sessions.events`) through real HTTP requests,
on every store: imported by tests/test_events.py (MemoryStore) and
tests/mysql/test_events.py (MySQLStore).  Each test reads what the
application's hook received, in order, after `SessionEvents.join`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import tornado.web

from tests.conftest import ROUTES, SECRET, Browser, FakeClock, body, sid_of
from tests.test_user_sessions import EndOne, EndOthers, Login, Mine
from tornado_sessions import SessionConfig
from tornado_sessions.events import EventKind, SessionEvent
from tornado_sessions.stores.base import SessionStore, fingerprint
from tornado_sessions.testing import session_manager

NAME = "__Host-session"


class Recorder:
    """An application's hook: keeps every event it receives."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []
        self.fail = False

    async def __call__(self, event: SessionEvent) -> None:
        if self.fail:
            raise RuntimeError("the audit log is down")
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(store: SessionStore, config: SessionConfig, recorder: Recorder) -> tornado.web.Application:
    routes = [
        *[r for r in ROUTES if r[0] != r"/login"],
        (r"/login", Login),
        (r"/mine", Mine),
        (r"/end-others", EndOthers),
        (r"/end-one", EndOne),
    ]
    return tornado.web.Application(
        routes, session_store=store, session_config=config, session_events=recorder
    )


async def delivered(app: tornado.web.Application) -> None:
    async with asyncio.timeout(10):
        await session_manager(app).events.join()


def fp(app: tornado.web.Application, browser: Browser) -> str:
    return fingerprint(sid_of(app, browser.jar[NAME]))


@pytest.mark.gen_test
async def test_created_regenerated_destroyed_reach_the_hook_in_order(
    app: tornado.web.Application, browser: Browser, recorder: Recorder, clock: FakeClock
) -> None:
    await browser.get("/counter")
    first = fp(app, browser)
    sid = sid_of(app, browser.jar[NAME])
    await browser.get("/login?user=alice")
    second = fp(app, browser)
    assert (await browser.get("/logout")).code == 200
    await delivered(app)

    assert recorder.kinds() == ["created", "regenerated", "destroyed"]
    created, regenerated, destroyed = recorder.events
    assert (created.fingerprint, created.user_id, created.reason) == (first, None, "first save")
    # regenerate() moves the session: the old and the new fingerprint.
    assert (regenerated.previous, regenerated.fingerprint) == (first, second)
    assert (destroyed.fingerprint, destroyed.user_id) == (second, "alice")
    assert all(e.time == int(clock()) for e in recorder.events)
    assert all(sid not in repr(e) for e in recorder.events)  # never the id


@pytest.mark.gen_test
async def test_log_out_everywhere_is_one_event_with_its_count(
    app: tornado.web.Application, browser: Browser, recorder: Recorder
) -> None:
    others = [Browser(browser.client, browser.base_url) for _ in range(2)]
    for b in (*others, browser):
        await b.get("/login?user=alice")
    assert body(await browser.get("/end-others")) == {"ended": 2}
    await delivered(app)
    (ended,) = [e for e in recorder.events if e.kind == EventKind.USER_ENDED]
    assert (ended.fingerprint, ended.user_id, ended.count) == (fp(app, browser), "alice", 2)
    assert ended.reason == "log out everywhere else"

    # One session ended by its fingerprint, from a "my sessions" page.
    await others[0].get("/login?user=alice")
    target = fp(app, others[0])
    assert body(await browser.get(f"/end-one?fp={target}")) == {"ended": True}
    await delivered(app)
    last = recorder.events[-1]
    assert (last.kind, last.fingerprint, last.user_id, last.count) == (
        EventKind.USER_ENDED,
        target,
        "alice",
        1,
    )


@pytest.mark.gen_test
@pytest.mark.session_config(max_sessions_per_user=2)
async def test_the_per_user_limit_reports_what_it_ended(
    app: tornado.web.Application, browser: Browser, recorder: Recorder, clock: FakeClock
) -> None:
    for _ in range(2):
        await Browser(browser.client, browser.base_url).get("/login?user=bob")
        clock.advance(1)
    await browser.get("/login?user=bob")
    await delivered(app)
    (limited,) = [e for e in recorder.events if e.kind == EventKind.LIMITED]
    assert (limited.fingerprint, limited.user_id, limited.count) == (fp(app, browser), "bob", 1)
    assert "SESSION_MAX_PER_USER" in limited.reason


@pytest.mark.gen_test
@pytest.mark.session_config(max_age=60, absolute_max_age=3600)
async def test_a_session_found_expired_is_reported_with_its_timeout(
    app: tornado.web.Application, browser: Browser, recorder: Recorder, clock: FakeClock
) -> None:
    await browser.get("/counter")
    idle = fp(app, browser)
    clock.advance(61)
    assert body(await browser.get("/read")) == {"data": {}, "new": True}
    await delivered(app)
    assert recorder.events[-1].kind == EventKind.EXPIRED
    assert (recorder.events[-1].fingerprint, recorder.events[-1].reason) == (idle, "idle timeout")


@pytest.mark.gen_test
async def test_the_cleanup_reports_counts_not_one_event_per_row(
    app: tornado.web.Application, browser: Browser, recorder: Recorder, clock: FakeClock
) -> None:
    for _ in range(5):
        await Browser(browser.client, browser.base_url).get("/counter")
    manager = session_manager(app)
    clock.advance(manager.config.max_age + 1)
    assert await manager.store.clear_expired() == 5
    await delivered(app)
    cleaned = [e for e in recorder.events if e.kind == EventKind.CLEANED]
    assert cleaned and sum(e.count for e in cleaned) == 5
    assert all(e.fingerprint is None and e.user_id is None for e in cleaned)


@pytest.mark.gen_test
async def test_a_failing_hook_is_logged_and_costs_the_request_nothing(
    app: tornado.web.Application, browser: Browser, recorder: Recorder, caplog: Any
) -> None:
    recorder.fail = True
    with caplog.at_level(logging.ERROR, logger="tornado_sessions.events"):
        response = await browser.get('/set?k=kept&v="yes"')
        await delivered(app)
    assert response.code == 200
    assert body(await browser.get("/read")) == {"data": {"kept": "yes"}, "new": False}
    (failed,) = [r for r in caplog.records if "hook failed" in r.getMessage()]
    assert "created" in failed.getMessage() and failed.exc_info is not None


@pytest.mark.gen_test
async def test_a_slow_hook_does_not_hold_the_response(
    app: tornado.web.Application, browser: Browser, recorder: Recorder
) -> None:
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(event: SessionEvent) -> None:
        await release.wait()
        seen.append(event.kind.value)

    session_manager(app).events.hooks[:] = [slow]
    response = await browser.get("/counter")
    assert response.code == 200 and body(response) == {"n": 1}  # the hook still waits
    assert seen == []
    release.set()
    await delivered(app)
    assert seen == ["created"]


def test_no_hook_no_events(store: SessionStore) -> None:
    from tornado_sessions import SessionManager

    manager = SessionManager(store, SessionConfig(secret=SECRET))
    assert not manager.events
    manager.events.emit(EventKind.CREATED, "0" * 12, None, "first save")  # no loop needed
