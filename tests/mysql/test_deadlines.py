"""Round trips end within the store's timeout (one timer per store, not one
per statement: `tornado_sessions.stores.mysql.deadlines`), and the pooled
connection of a lone statement is taken and given back without a task
(`Driver.take` and `Driver.release`), on the real test server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.ioloop

from tests.conftest import FakeClock
from tests.mysql.conftest import (
    Settings,
    connect,
    lock_all_rows,
    make_store,
    new_table_name,
    no_statement_running,
    query,
    running_statement,
)
from tornado_sessions import StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.mysql import MySQLStore

TIMEOUT = 0.8


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, mysql_settings: Settings, clock: FakeClock
) -> Iterator[MySQLStore]:
    table = new_table_name()
    try:
        yield from make_store(
            io_loop, mysql_settings, table=table, clock=clock, timeout=TIMEOUT, pool_size=2
        )
    finally:
        query(mysql_settings, f"DROP TABLE IF EXISTS `{table}`")


async def _saved(store: MySQLStore, clock: FakeClock) -> tuple[str, int]:
    sid = new_sid()
    now = int(clock())
    record = SessionRecord(data='{"n": 1}', created_at=now, expires_at=now + 3600)
    return sid, await store.set(sid, record, expected_version=None)


@pytest.mark.gen_test(timeout=60)
async def test_a_statement_held_by_a_lock_ends_within_the_timeout_and_the_store_recovers(
    store: MySQLStore, mysql_settings: Settings, clock: FakeClock
) -> None:
    sid, version = await _saved(store, clock)
    now = int(clock())
    blocker = lock_all_rows(mysql_settings, store.table)
    try:
        for _ in range(3):  # each time, a timer started afresh or already running
            record = SessionRecord(data='{"n": 2}', created_at=now, expires_at=now + 3600)
            started = time.monotonic()
            with pytest.raises(StoreError, match="no answer within 0.8 s"):
                await store.set(sid, record, expected_version=version)
            elapsed = time.monotonic() - started
            # At least the timeout, and not much more: a lone save gives up
            # once, then checks whether it was applied with a second round
            # trip (which the lock holds up too).
            assert TIMEOUT <= elapsed < 2 * TIMEOUT + 1.0, elapsed
    finally:
        blocker.rollback()
        blocker.close()
    # A statement the store gave up on may still be waiting at the server
    # (its lock wait outlives the store's timeout by up to a second), and
    # is applied once the lock is gone: let those end, or one could bump the
    # version between the read and the save below.
    await no_statement_running(mysql_settings, f"UPDATE `{store.table}`%")
    # The lock gone, the same session saves and reads normally: no
    # connection was left half-used in the pool, no cancellation lingers.
    current = await store.get(sid)
    assert current is not None
    record = SessionRecord(data='{"n": 3}', created_at=now, expires_at=now + 3600)
    await store.set(sid, record, expected_version=current.version)
    again = await store.get(sid)
    assert again is not None and again.data == '{"n": 3}'
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.gen_test(timeout=60)
async def test_a_cancelled_caller_stays_cancelled_and_is_not_a_timeout(
    store: MySQLStore, mysql_settings: Settings, clock: FakeClock
) -> None:
    sid, version = await _saved(store, clock)
    now = int(clock())
    blocker = lock_all_rows(mysql_settings, store.table)
    admin = connect(mysql_settings)
    try:
        record = SessionRecord(data='{"n": 2}', created_at=now, expires_at=now + 3600)
        caller = asyncio.ensure_future(store.set(sid, record, expected_version=version))
        await running_statement(admin, f"UPDATE `{store.table}`%")
        caller.cancel()  # the request went away, well before the timeout
        with pytest.raises(asyncio.CancelledError):
            await caller
    finally:
        blocker.rollback()
        blocker.close()
        admin.close()
    current = await store.get(sid)
    assert current is not None
    assert await store.get(new_sid()) is None


@pytest.mark.gen_test(timeout=60)
async def test_lone_statements_start_no_task_and_waiters_still_get_a_connection(
    store: MySQLStore, clock: FakeClock
) -> None:
    sids = [(await _saved(store, clock))[0] for _ in range(3)]
    loop = asyncio.get_running_loop()
    started: list[Any] = []
    previous = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        started.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        for n in range(60):
            assert await store.get(sids[n % 3]) is not None
    finally:
        loop.set_task_factory(previous)
    # Sixty lone reads, one after the other: aiomysql's release used to
    # start a task each (its wake-up of waiters, when there was none).
    assert len(started) <= 2, [getattr(c, "__qualname__", c) for c in started]
    # More callers than connections (pool of 2): those that wait are woken
    # as connections come back, and every read answers.
    results = await asyncio.gather(*(store.get(sids[n % 3]) for n in range(40)))
    assert all(r is not None for r in results)


@pytest.mark.gen_test(timeout=60)
async def test_a_pooled_connection_the_server_killed_is_not_reused(
    store: MySQLStore, mysql_settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sid, _ = await _saved(store, clock)
    await asyncio.gather(*(store.get(sid) for _ in range(4)))  # both connections made
    admin = connect(mysql_settings)
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
                "AND COMMAND = 'Sleep' AND ID <> CONNECTION_ID()",
                (mysql_settings["database"],),
            )
            idle = [int(row[0]) for row in cur.fetchall()]
            assert idle
            for conn_id in idle:
                cur.execute(f"KILL {conn_id}")
    finally:
        admin.close()
    await asyncio.sleep(0.3)  # the server's close reaches the idle connections
    with caplog.at_level("WARNING", logger="tornado_sessions"):
        for _ in range(5):
            assert await store.get(sid) is not None
    # A closed connection taken from the pool would have failed its
    # statement and been retried with this warning.
    assert "lost its connection" not in caplog.text
