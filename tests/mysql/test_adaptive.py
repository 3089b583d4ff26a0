"""Adaptive batching (0.3): a read or save with none of its kind in flight
goes out alone at once, with no hand-off to the next turn of the loop; the
calls that start behind a round trip in flight are batched at the next turn
(not held until that round trip returns); a round trip that fails or is
cancelled is no longer counted in flight.  Checked against the statements
the server received (the private server's query log) and the store's
round-trip counter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.ioloop

from tests.conftest import FakeClock
from tests.contract import record
from tests.mysql.conftest import (
    Settings,
    batches_as_on_aiomysql,
    connect,
    make_store,
    new_sessions,
    no_statement_running,
    running_statement,
    versions,
)
from tornado_sessions import StoreError
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.stores.mysql.batching import CALM

Count = Callable[[str], Any]


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock, timeout=1.0)


@pytest.mark.gen_test(timeout=60)
async def test_a_lone_read_and_save_leave_before_the_next_turn_of_the_loop(
    store: MySQLStore, clock: FakeClock, count_statements: Count, private_table: str
) -> None:
    (sid,) = await new_sessions(store, clock, 1)
    loop = asyncio.get_running_loop()
    started: list[int] = []
    trips = store.round_trips
    with count_statements(private_table) as seen:
        # A callback queued just before each call runs at the call's first
        # wait: by then its round trip has started (0.2 queued the call for
        # the next turn, and started it only after this callback).
        loop.call_soon(lambda: started.append(store.round_trips - trips))
        got = await store.get(sid)
        loop.call_soon(lambda: started.append(store.round_trips - trips))
        saved = await store.set(sid, record(clock, '{"x":1}'), expected_version=1)
    assert got is not None and got.data == '{"k":0}' and saved == 2
    assert started == [1, 2]
    assert seen.counts == {"SELECT": 1, "UPDATE": 1}, seen
    assert " IN (" not in seen.statements[0]


@pytest.mark.gen_test(timeout=60)
async def test_saves_behind_a_blocked_save_leave_without_waiting_for_it(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_settings: Settings,
    private_table: str,
) -> None:
    held, *others = await new_sessions(store, clock, 3)
    blocker = connect(private_settings)
    admin = connect(private_settings)
    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(
                f"SELECT id FROM `{private_table}` WHERE id = UNHEX(%s) FOR UPDATE",
                (hash_sid(held).hex(),),
            )
        with count_statements(private_table) as seen:
            first = asyncio.ensure_future(
                store.set(held, record(clock, '{"held":1}'), expected_version=1)
            )
            await running_statement(admin, f"UPDATE `{private_table}`%")
            # The first save waits for the row lock at the server; the two
            # behind it share a batch that leaves at once (well within the
            # store's 1 s timeout), not when the first returns.
            async with asyncio.timeout(0.8):
                saved = await asyncio.gather(
                    *(
                        store.set(sid, record(clock, '{"x":1}'), expected_version=1)
                        for sid in others
                    )
                )
            assert saved == [2, 2] and not first.done()
            blocker.rollback()
            assert await first == 2
    finally:
        blocker.close()
        admin.close()
    ours = [s for s in seen.statements if "PROCESSLIST" not in s]  # not the admin's
    assert [s.split(None, 1)[0] for s in ours] == ["UPDATE", "START"], seen
    assert ours[1].count("UPDATE ") == 2, seen
    assert versions(private_settings, private_table, [held, *others]) == {
        hash_sid(held).hex(): ('{"held":1}', 2),
        **{hash_sid(sid).hex(): ('{"x":1}', 2) for sid in others},
    }


@pytest.mark.gen_test(timeout=60)
async def test_a_failed_or_cancelled_lone_round_trip_is_no_longer_in_flight(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_settings: Settings,
    private_table: str,
) -> None:
    victim, *sids = await new_sessions(store, clock, 4)
    blocker = connect(private_settings)
    admin = connect(private_settings)
    try:
        with blocker.cursor() as cur:
            cur.execute(f"LOCK TABLES `{private_table}` WRITE")
        # A lone read and a lone save get no answer within the timeout...
        with pytest.raises(StoreError, match="no answer within"):
            await store.get(victim)
        with pytest.raises(StoreError, match="no answer within"):
            await store.set(victim, record(clock), expected_version=1)
        # ...and a lone read is cancelled while it waits at the server.
        read = asyncio.ensure_future(store.get(victim))
        await running_statement(admin, f"SELECT %`{private_table}`%")
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        with blocker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        # The server still runs the abandoned statements: let them finish.
        await no_statement_running(private_settings, f"%`{private_table}`%")
    finally:
        blocker.close()
        admin.close()
    # None of them is still counted in flight: again the first of three goes
    # alone and the two behind it share a batch (a leak would batch all three).
    with count_statements(private_table) as seen:
        got = await asyncio.gather(*(store.get(sid) for sid in sids))
        saved = await asyncio.gather(
            *(store.set(sid, record(clock, '{"y":1}'), expected_version=1) for sid in sids)
        )
    assert [r.version for r in got if r] == [1, 1, 1] and saved == [2, 2, 2]
    assert seen.counts == {"SELECT": 2, "UPDATE": 1, "START": 1}, seen
    selects = [s for s in seen.statements if s.startswith("SELECT")]
    assert [" IN (" in s for s in selects] == [False, True], seen


@pytest.mark.gen_test(timeout=60)
async def test_calls_that_come_in_bursts_are_batched_whole_until_a_few_come_alone(
    store: MySQLStore, clock: FakeClock, count_statements: Count, private_table: str
) -> None:
    batches_as_on_aiomysql(store)
    sids = await new_sessions(store, clock, 4)
    loop = asyncio.get_running_loop()
    started: list[int] = []
    trips = 0

    def mark() -> None:
        started.append(store.round_trips - trips)

    with count_statements(private_table) as seen:
        # The first burst: one call alone and three in a batch behind it;
        # the next burst is then queued whole: one batch of four.
        for _ in range(2):
            got = await asyncio.gather(*(store.get(sid) for sid in sids))
            assert [r.version for r in got if r] == [1] * 4
        for version in (1, 2):
            saved = await asyncio.gather(
                *(store.set(sid, record(clock), expected_version=version) for sid in sids)
            )
            assert saved == [version + 1] * 4
        # Reads alone after a burst are queued (and answered alone) CALM
        # times in a row; the next lone read leaves at once again.
        for i in range(CALM):
            trips = store.round_trips
            loop.call_soon(mark)
            assert await store.get(sids[i % 4]) is not None
        trips = store.round_trips
        loop.call_soon(mark)
        assert await store.get(sids[1]) is not None
    assert started == [0] * CALM + [1]

    def shape(statement: str) -> tuple[str, int]:
        if statement.startswith("START"):
            return ("batch", statement.count("UPDATE "))
        if " IN (" in statement:
            return ("batch", statement.count("UNHEX("))
        return ("alone", 1)

    # The lone call and the batch behind it are at the server at once, on
    # two connections: the general log may hold them in either order.
    shapes = [shape(s) for s in seen.statements]
    groups = [[("alone", 1), ("batch", 3)], [("batch", 4)]] * 2  # reads, then saves
    groups += [[("alone", 1)]] * (CALM + 1)
    assert len(shapes) == sum(map(len, groups)), seen
    at = 0
    for group in groups:
        assert sorted(shapes[at : at + len(group)]) == sorted(group), seen
        at += len(group)


@pytest.mark.gen_test(timeout=60)
async def test_a_straggler_between_bursts_does_not_split_the_next_burst(
    store: MySQLStore, clock: FakeClock, count_statements: Count, private_table: str
) -> None:
    """A browser's parallel requests come in waves, with a late one between
    them: the late one goes alone, and the next wave is still one batch."""
    sids = await new_sessions(store, clock, 4)
    with count_statements(private_table) as seen:
        for _ in range(3):
            got = await asyncio.gather(*(store.get(sid) for sid in sids))
            assert [r.version for r in got if r] == [1] * 4
            assert await store.get(sids[0]) is not None  # the straggler
    selects = [s for s in seen.statements if s.startswith("SELECT")]
    sizes = [s.count("UNHEX(") if " IN (" in s else 1 for s in selects]
    # The first wave is split (nothing told it is a burst yet); then every
    # wave is one batch of four, and each straggler one statement.
    assert sizes == [1, 3, 1, 4, 1, 4, 1], seen
