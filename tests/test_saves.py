"""Combined saves of one session, where they go wrong: a save queued behind a
write that then fails, a caller cancelled mid-write, an unsaved lifetime, a
flash message shown by one request while another adds one.

The store is a real `MemoryStore` whose writes take a moment (so that saves
queue behind each other, as they do behind a database round trip) and can be
told to conflict or fail: instrumentation, not a mock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from tests.conftest import SECRET, FakeClock
from tornado_sessions import MemoryStore, SessionConfig, StoreError
from tornado_sessions.errors import SessionConflict
from tornado_sessions.manager import SessionManager
from tornado_sessions.session import Session
from tornado_sessions.testing import _NoOwner

OWNER = _NoOwner()


class SlowStore(MemoryStore):
    """Each versioned write takes a moment; ``plan`` scripts what the next
    ones do: ``"ok"``, ``"conflict"`` or ``"fail"``; ``fail_reads`` makes
    every read fail."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.plan: list[str] = []
        self.fail_reads = False

    async def set(self, sid: str, record: Any, *, expected_version: int | None) -> int:
        if expected_version is not None:
            await asyncio.sleep(0.02)
            step = self.plan.pop(0) if self.plan else "ok"
            if step == "conflict":
                self.fail_reads = "fail" in self.plan
                raise SessionConflict("another process saved it")
            if step == "fail":
                raise StoreError("the database went away")
        return await super().set(sid, record, expected_version=expected_version)

    async def get(self, sid: str) -> Any:
        if self.fail_reads:
            raise StoreError("the database went away")
        return await super().get(sid)


@pytest.fixture
def store(clock: FakeClock) -> SlowStore:
    return SlowStore(clock)


@pytest.fixture
def manager(store: SlowStore, clock: FakeClock) -> SessionManager:
    return SessionManager(store, SessionConfig(secret=SECRET, clock=clock))


async def stored(manager: SessionManager, data: dict[str, Any]) -> str:
    session = manager.new_session(OWNER)
    session.update(data)
    await manager.run(session, manager.plan(session))
    return manager.cookie_value(session)


async def commit(manager: SessionManager, session: Session) -> Any:
    return await manager.run(session, manager.plan(session))


async def loaded_twice(manager: SessionManager) -> tuple[str, Session, Session]:
    """A stored session ``{"n": 1}``, its cookie, and two requests that loaded it."""
    cookie = await stored(manager, {"n": 1})
    return cookie, await manager.load(OWNER, cookie), await manager.load(OWNER, cookie)


async def first_then_second(
    first: Awaitable[Any], second: Awaitable[Any]
) -> tuple[asyncio.Future[Any], asyncio.Future[Any]]:
    """Start ``first``, let its write get in flight, then start ``second``
    (whose save then queues behind it)."""
    ta = asyncio.ensure_future(first)
    await asyncio.sleep(0.005)
    return ta, asyncio.ensure_future(second)


async def outcomes(*tasks: asyncio.Task[Any]) -> list[Any]:
    """Each task's exception (or None); none may still be running after 5 s."""
    done, pending = await asyncio.wait(tasks, timeout=5)
    assert not pending, "a save never ended"
    return [task.exception() for task in tasks]


@pytest.mark.gen_test
@pytest.mark.parametrize("after_conflict", [["fail"], ["conflict"] * 16])
async def test_a_save_queued_behind_a_failing_write_fails_too_and_never_hangs(
    manager: SessionManager, store: SlowStore, after_conflict: list[str]
) -> None:
    cookie, a, b = await loaded_twice(manager)
    a["a"] = 1
    b["b"] = 2
    # A's write meets another process's save; B queues meanwhile and rides
    # along with the retry, which then fails (the store, or 16 conflicts).
    store.plan = ["conflict", *after_conflict]
    ta, tb = await first_then_second(commit(manager, a), commit(manager, b))
    errors = await outcomes(ta, tb)
    assert all(isinstance(error, StoreError) for error in errors), errors
    assert manager.saves._groups == {}


@pytest.mark.gen_test
async def test_a_caller_cancelled_mid_write_does_not_fail_the_saves_it_carries(
    manager: SessionManager, store: SlowStore
) -> None:
    cookie, a, b = await loaded_twice(manager)
    a["a"] = 1
    b["b"] = 2

    async def impatient() -> None:
        async with asyncio.timeout(0.01):  # A's own timeout, mid-write
            await commit(manager, a)

    ta, tb = await first_then_second(impatient(), commit(manager, b))
    error_a, error_b = await outcomes(ta, tb)
    assert isinstance(error_a, TimeoutError) and error_b is None
    data = (await manager.load(OWNER, cookie))._data
    assert data == {"n": 1, "a": 1, "b": 2}  # both written, in one go


@pytest.mark.gen_test
async def test_a_failed_set_expiry_does_not_leak_into_the_saves_queued_behind_it(
    manager: SessionManager, store: SlowStore
) -> None:
    cookie, a, b = await loaded_twice(manager)
    a.set_expiry(600)
    a["remember"] = False
    b["b"] = 2
    store.plan = ["fail"]  # A's write fails: its request answers 503
    ta, tb = await first_then_second(commit(manager, a), commit(manager, b))
    error_a, error_b = await outcomes(ta, tb)
    assert isinstance(error_a, StoreError) and error_b is None
    record = await store.get(b.id)
    assert record is not None
    assert record.ttl is None  # A's unsaved lifetime was not written by B
    assert record.data == '{"b":2,"n":1}'


@pytest.mark.gen_test
async def test_a_flash_shown_by_one_request_is_not_brought_back_by_another(
    manager: SessionManager,
) -> None:
    session = manager.new_session(OWNER)
    session.flash("Welcome back.")
    await manager.run(session, manager.plan(session))
    cookie = manager.cookie_value(session)
    page, xhr = await manager.load(OWNER, cookie), await manager.load(OWNER, cookie)
    assert page.pop_flashes() == [("message", "Welcome back.")]  # shown
    xhr.flash("Item added.")  # meanwhile, a concurrent request adds one
    await commit(manager, page)
    await commit(manager, xhr)  # finishes last
    following = await manager.load(OWNER, cookie)
    assert following.pop_flashes() == [("message", "Item added.")]  # each shown once


@pytest.mark.gen_test
async def test_two_concurrent_flashes_are_both_kept(manager: SessionManager) -> None:
    cookie, first, second = await loaded_twice(manager)
    first.flash("one")
    second.flash("two", "error")
    await asyncio.gather(commit(manager, first), commit(manager, second))
    following = await manager.load(OWNER, cookie)
    assert following.pop_flashes() == [("message", "one"), ("error", "two")]


@pytest.mark.gen_test
async def test_a_lone_save_is_written_by_its_caller_and_a_queued_one_by_a_task(
    manager: SessionManager, store: SlowStore
) -> None:
    cookie, a, b = await loaded_twice(manager)
    a["a"] = 1
    b["b"] = 2
    before = asyncio.all_tasks()
    ta = asyncio.ensure_future(commit(manager, a))
    await asyncio.sleep(0.005)  # A's write is in flight, in A's own task
    assert asyncio.all_tasks() - before == {ta}
    assert manager.saves._tasks == set()
    tb = asyncio.ensure_future(commit(manager, b))  # queues behind A's write
    assert await outcomes(ta, tb) == [None, None]
    data = (await manager.load(OWNER, cookie))._data
    assert data == {"n": 1, "a": 1, "b": 2}
    assert manager.saves.writes == 2  # A alone, then B by the session's task
    assert manager.saves._groups == {} and manager.saves._tasks == set()


class SlowWrites(MemoryStore):
    """Every write and touch takes a moment at the store."""

    async def set(self, sid: str, record: Any, *, expected_version: int | None) -> int:
        await asyncio.sleep(0.02)
        return await super().set(sid, record, expected_version=expected_version)

    async def touch(self, sid: str, expires_at: int, *, ttl: int | None) -> bool:
        await asyncio.sleep(0.02)
        return await super().touch(sid, expires_at, ttl=ttl)


@pytest.mark.gen_test
@pytest.mark.parametrize("first", ["touch", "insert", "update"])
async def test_a_set_expiry_made_while_a_save_is_at_the_store_is_kept(
    clock: FakeClock, first: str
) -> None:
    """A WebSocket's session: one message's save (a touch, a first save or
    a later one) is at the store when another sets a minute.  The minute
    must be stored with its own expiry: it was dropped (the session took
    back the stored lifetime and forgot the call), or, after a touch,
    stored as a minute with a month to run."""
    store = SlowWrites(clock=clock)
    manager = SessionManager(store, SessionConfig(secret=SECRET, clock=clock, touch_interval=0))
    if first == "insert":
        session = manager.new_session(OWNER)
    else:
        cookie = await stored(manager, {"n": 1})
        clock.advance(5)  # a touch is due
        session = await manager.load(OWNER, cookie)
    if first != "touch":
        session["k"] = 1
    saving = asyncio.ensure_future(commit(manager, session))
    await asyncio.sleep(0.005)  # the write is at the store
    session.set_expiry(60)
    assert (await outcomes(saving)) == [None]
    await commit(manager, session)
    record = await store.get(session.id)
    assert record is not None
    assert (record.ttl, record.expires_at) == (60, int(clock()) + 60)
    assert ('"k":1' in record.data) == (first != "touch")


@pytest.mark.gen_test
async def test_a_touch_asked_for_while_a_save_is_at_the_store_is_kept(clock: FakeClock) -> None:
    """``touch()`` while a save that does not slide is at the store (found
    by review, helper-40): the save's return cleared the request for it,
    and the next save did not slide either."""
    store = SlowWrites(clock=clock)
    manager = SessionManager(store, SessionConfig(secret=SECRET, clock=clock))
    session = await manager.load(OWNER, await stored(manager, {"n": 1}))
    clock.advance(5)  # not due: the default interval is a tenth of a month
    session["k"] = 1
    assert manager.plan(session).slide is False
    saving = asyncio.ensure_future(commit(manager, session))
    await asyncio.sleep(0.005)  # the write is at the store
    session.touch()
    assert (await outcomes(saving)) == [None]
    assert manager.plan(session).write == "touch"
    await commit(manager, session)
    record = await store.get(session.id)
    assert record is not None and record.expires_at == int(clock()) + manager.config.max_age
    assert manager.plan(session).write == "none"  # once


@pytest.mark.gen_test
async def test_a_touch_during_a_save_that_met_another_lifetime_slides_by_that_lifetime(
    clock: FakeClock,
) -> None:
    """Another process gave the session a day; this one's save meets it (a
    conflict, then the merge) while a touch() is asked for.  The session
    takes the stored day even so: the touch then slides by a day, not by
    the month it had loaded (found by review of the touch() fix)."""
    store = SlowWrites(clock=clock)
    config = SessionConfig(secret=SECRET, clock=clock)
    here, there = SessionManager(store, config), SessionManager(store, config)
    cookie = await stored(here, {"n": 1})
    session = await here.load(OWNER, cookie)
    other = await there.load(OWNER, cookie)
    other.set_expiry(86400)
    await commit(there, other)
    session["k"] = 1
    saving = asyncio.ensure_future(commit(here, session))
    await asyncio.sleep(0.005)  # the write is at the store (it will conflict)
    session.touch()
    assert (await outcomes(saving)) == [None]
    assert session.ttl == 86400
    await commit(here, session)
    record = await store.get(session.id)
    assert record is not None and '"k":1' in record.data
    assert (record.ttl, record.expires_at) == (86400, int(clock()) + 86400)
