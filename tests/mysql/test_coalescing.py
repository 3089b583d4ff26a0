"""Coalescing: a session read (or save) with none of its kind in flight
goes out alone at once; the ones that concurrent requests start in one turn
of the event loop while one is in flight share one round trip.  Each caller
still gets its own answer (a record, None, a new version, `SessionConflict`,
`SessionGone` or its own `StoreError`), checked here against the rows and
the statements the server received (the private server's query log)."""

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
    create_pool,
    make_store,
    new_sessions,
    query,
    running_statement,
    versions,
)
from tornado_sessions import StoreError
from tornado_sessions.errors import SessionConflict, SessionGone
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.stores.mysql.batching import BATCH, WINDOW, WRITE_BATCH, Coalescer

Count = Callable[[str], Any]


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock)


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_reads_share_one_select(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    sids = await new_sessions(store, clock, 5)
    expired, due, last = new_sid(), new_sid(), new_sid()
    await store.set(expired, record(clock, '{"old":1}', ttl=10), expected_version=None)
    await store.set(due, record(clock, '{"due":1}', ttl=11), expected_version=None)
    await store.set(last, record(clock, '{"last":1}', ttl=12), expected_version=None)
    clock.advance(11)  # due's expiry is now: expired; last has one second left
    missing = new_sid()
    asked = [*sids, expired, due, last, missing, sids[0]]  # the same session twice, too
    with count_statements(private_table) as seen:
        got = await asyncio.gather(*(store.get(sid) for sid in asked))
    assert [r.data if r else None for r in got] == [
        '{"k":0}',
        '{"k":1}',
        '{"k":2}',
        '{"k":3}',
        '{"k":4}',
        None,
        None,
        '{"last":1}',
        None,
        '{"k":0}',
    ]
    assert all(r.version == 1 for r in got if r is not None)
    # The first went alone at once; the nine that started while it was in
    # flight shared one SELECT: two round trips, not ten.
    assert seen.counts == {"SELECT": 2}, seen
    alone, batch = seen.statements
    assert " IN (" not in alone and "WHERE id = UNHEX(" in alone
    assert " IN (" in batch and batch.count("UNHEX(") == 9
    # By key alone: the expired rows came back and the store dropped them.
    assert "expires_at" not in batch.split(" WHERE ")[1]
    # The rows stay for the cleanup.
    for sid in (expired, due):
        assert query(
            private_settings,
            f"SELECT COUNT(*) FROM `{private_table}` WHERE id = %s",
            (hash_sid(sid),),
        ) == [(1,)]


#: A table made by hand, not by the store: its data and expiry allow NULL
#: (the store checks the columns' names, not their nullability).
LOOSE_TABLE = (
    "CREATE TABLE `{}` (`id` BINARY(32) NOT NULL PRIMARY KEY, `data` MEDIUMTEXT NULL, "
    "`created_at` BIGINT NOT NULL, `updated_at` BIGINT NOT NULL, `expires_at` BIGINT NULL, "
    "`version` INT UNSIGNED NOT NULL, `ttl` INT UNSIGNED NULL, `updated_us` BIGINT NULL, "
    "`created_seq` BIGINT NULL, `user_id` VARBINARY(1020) NULL, `ip` VARCHAR(45) NULL, "
    "`user_agent` VARCHAR(255) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
)


@pytest.mark.gen_test(timeout=60)
async def test_rows_without_data_or_expiry_are_missing_sessions_alone_and_batched(
    private_settings: Settings, private_table: str, clock: FakeClock
) -> None:
    """A row whose data or expiry is NULL (only a hand-made table allows it)
    is a missing session, loaded alone or in a batch, and fails no other
    load of the batch."""
    query(private_settings, LOOSE_TABLE.format(private_table))
    store = MySQLStore(**private_settings, table=private_table, clock=clock, cleanup_interval=None)
    try:
        await store.open()
        now = int(clock())
        live, no_data, no_expiry, expired_no_data = new_sid(), new_sid(), new_sid(), new_sid()
        for sid, data, expires in (
            (live, '{"a":1}', now + 100),
            (no_data, None, now + 100),
            (no_expiry, '{"b":1}', None),
            (expired_no_data, None, now - 5),
        ):
            query(
                private_settings,
                f"INSERT INTO `{private_table}` (id, data, created_at, updated_at, expires_at, "
                "version) VALUES (%s, %s, %s, %s, %s, 1)",
                (hash_sid(sid), data, now - 10, now - 10, expires),
            )
        odd = (no_data, no_expiry, expired_no_data)
        for sid in odd:  # alone
            assert await store.get(sid) is None
        # The first goes alone, the rest share a batch with the odd rows.
        got = await asyncio.gather(*(store.get(sid) for sid in (live, live, *odd, live)))
        assert [r.data if r else None for r in got] == [
            '{"a":1}',
            '{"a":1}',
            None,
            None,
            None,
            '{"a":1}',
        ]
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_read_alone_is_the_single_row_select(
    store: MySQLStore, clock: FakeClock, count_statements: Count, private_table: str
) -> None:
    (sid,) = await new_sessions(store, clock, 1)
    with count_statements(private_table) as seen:
        got = await store.get(sid)
        await asyncio.sleep(0)
        assert await store.get(new_sid()) is None
    assert got is not None and got.data == '{"k":0}'
    assert seen.counts == {"SELECT": 2}, seen
    assert all(" IN (" not in s and "WHERE id = UNHEX(" in s for s in seen.statements)


@pytest.mark.gen_test(timeout=60)
async def test_coalescing_can_be_turned_off(
    io_loop: tornado.ioloop.IOLoop,
    private_settings: Settings,
    private_table: str,
    clock: FakeClock,
    count_statements: Count,
) -> None:
    store = MySQLStore(
        **private_settings,
        table=private_table,
        clock=clock,
        cleanup_interval=None,
        coalesce_reads=False,
        coalesce_writes=False,
    )
    try:
        sids = await new_sessions(store, clock, 4)
        with count_statements(private_table) as seen:
            got = await asyncio.gather(*(store.get(sid) for sid in sids))
            assert [r.data for r in got if r] == [f'{{"k":{k}}}' for k in range(4)]
            saved = await asyncio.gather(
                *(store.set(sid, record(clock, '{"x":1}'), expected_version=1) for sid in sids)
            )
        assert saved == [2, 2, 2, 2]
        assert seen.counts == {"SELECT": 4, "UPDATE": 4}, seen
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_saves_share_one_round_trip_with_their_own_outcomes(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    batches_as_on_aiomysql(store)
    pilot, fine1, fine2, stale, gone, fine3 = await new_sessions(store, clock, 6)
    await store.set(stale, record(clock, '{"other":1}'), expected_version=1)  # now version 2
    await store.destroy(gone)  # a concurrent logout

    async def save(sid: str, data: str) -> Any:
        try:
            return await store.set(sid, record(clock, data), expected_version=1)
        except (SessionConflict, SessionGone) as exc:
            return type(exc)

    with count_statements(private_table) as seen:
        outcomes = await asyncio.gather(
            save(pilot, '{"first":1}'),  # alone: nothing in flight yet
            save(fine1, '{"a":1}'),
            save(fine2, '{"b":"\\u00e9 \'quoted\' %s ; -- x"}'),
            save(stale, '{"lost":1}'),
            save(gone, '{"resurrected":1}'),
            save(fine3, '{"c":"\U0001f600"}'),
        )
    assert outcomes == [2, 2, 2, SessionConflict, SessionGone, 2]
    # The pilot's UPDATE alone; one multi-statement round trip with the five
    # UPDATEs that started behind it, then one check each for the two that
    # matched no row.
    batch = [s for s in seen.statements if s.startswith("START TRANSACTION")]
    assert len(batch) == 1 and batch[0].count("UPDATE ") == 5, seen
    assert batch[0].rstrip().endswith("COMMIT")
    assert seen.counts == {"UPDATE": 1, "START": 1, "SELECT": 2}, seen
    rows = versions(private_settings, private_table, (pilot, fine1, fine2, stale, gone, fine3))
    assert rows == {
        hash_sid(pilot).hex(): ('{"first":1}', 2),
        hash_sid(fine1).hex(): ('{"a":1}', 2),
        hash_sid(fine2).hex(): ('{"b":"\\u00e9 \'quoted\' %s ; -- x"}', 2),
        hash_sid(stale).hex(): ('{"other":1}', 2),
        hash_sid(fine3).hex(): ('{"c":"\U0001f600"}', 2),
    }  # the destroyed session was not recreated


@pytest.fixture
def patient_store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    """A store whose timeout is longer than a test's own waits: a batch held
    by a row lock waits for it, not gives up on it, however slow the machine."""
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock, timeout=30.0)


@pytest.mark.gen_test(timeout=60)
async def test_a_long_queue_of_saves_leaves_as_batches_that_do_not_wait_for_each_other(
    patient_store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    # A save in flight, and 19 saves started behind it in one turn: 20
    # callers at once, so batches of up to 10 (half of them): the 19 leave as
    # two batches of even size (10 and 9), each on its own connection, and a
    # batch held up at the server holds up no other.
    assert WRITE_BATCH == 8  # as docs/stores.rst says
    store = patient_store
    pilot, *sids = await new_sessions(store, clock, 20)
    first, later = sids[:10], sids[10:]
    blocker = connect(private_settings)
    admin = connect(private_settings)

    def save(sid: str) -> Any:
        return store.set(sid, record(clock, f'{{"saved":"{sid[:6]}"}}'), expected_version=1)

    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(
                f"SELECT id FROM `{private_table}` WHERE id = UNHEX(%s) FOR UPDATE",
                (hash_sid(first[3]).hex(),),
            )
        with count_statements(private_table) as seen:
            held = asyncio.gather(save(pilot), *(save(sid) for sid in first))
            rest = asyncio.gather(*(save(sid) for sid in later))
            # The batch of `first` waits for the row lock; the ones behind it
            # in the queue left a turn later and are answered meanwhile.
            async with asyncio.timeout(20):
                assert await rest == [2] * len(later)
            blocked = hash_sid(first[3]).hex()
            await running_statement(admin, f"UPDATE `{private_table}`%UNHEX('{blocked}')%")
            assert not held.done()
            blocker.rollback()
            async with asyncio.timeout(20):
                assert await held == [2] * 11
    finally:
        blocker.close()
        admin.close()
    ours = [s for s in seen.statements if "PROCESSLIST" not in s]
    assert ours[0].startswith("UPDATE"), seen  # the pilot, alone
    sizes = [s.count("UPDATE ") for s in ours if s.startswith("START TRANSACTION")]
    assert sorted(sizes) == [9, 10], seen
    assert len(ours) == 3, seen
    rows = versions(private_settings, private_table, [pilot, *sids])
    assert rows == {hash_sid(sid).hex(): (f'{{"saved":"{sid[:6]}"}}', 2) for sid in [pilot, *sids]}


@pytest.mark.parametrize(
    ("behind", "sizes"),
    [
        # 4 callers: on aiomysql one batch (its floor, WRITE_BATCH, 8); on
        # asyncmy, whose floor is 2, a batch of 2 and the last save alone.
        (3, {"aiomysql": [3], "asyncmy": [1, 2]}),
        # 8 callers: up to 8 on aiomysql (the floor), up to 4 on asyncmy.
        (7, {"aiomysql": [7], "asyncmy": [3, 4]}),
        (19, {"aiomysql": [9, 10], "asyncmy": [9, 10]}),  # 20 callers: up to 10
        (45, {"aiomysql": [22, 23], "asyncmy": [22, 23]}),  # 46 callers: up to 23
    ],
)
@pytest.mark.gen_test(timeout=60)
async def test_the_batch_limit_is_half_the_callers_at_once(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
    behind: int,
    sizes: dict[str, list[int]],
) -> None:
    # A save in flight and ``behind`` saves started behind it in one turn
    # (gather runs every task's first step, which counts it in, before the
    # queue's flush): the queue leaves as batches of at most half the callers
    # at once (at least the driver's floor), shared out evenly; a part of
    # one is sent alone.
    assert store._batches.floor == {"aiomysql": WRITE_BATCH, "asyncmy": 2}[store.driver]
    parts = sizes[store.driver]
    pilot, *sids = await new_sessions(store, clock, behind + 1)
    with count_statements(private_table) as seen:
        saved = await asyncio.gather(
            *(
                store.set(sid, record(clock, f'{{"n":"{sid[:6]}"}}'), expected_version=1)
                for sid in [pilot, *sids]
            )
        )
    assert saved == [2] * (behind + 1)
    # The pilot, alone (at the server beside the batches, so the general
    # log may hold it anywhere among them).
    alone = [s for s in seen.statements if not s.startswith("START TRANSACTION")]
    assert len(alone) == 1 + parts.count(1), seen
    assert all(s.startswith("UPDATE") for s in alone), seen
    batches = [s.count("UPDATE ") for s in seen.statements if s.startswith("START TRANSACTION")]
    assert sorted(batches) == [n for n in parts if n > 1], seen
    assert len(seen.statements) == 1 + len(parts), seen
    assert store._batches.callers == 0  # every caller counted out again
    rows = versions(private_settings, private_table, [pilot, *sids])
    assert rows == {hash_sid(sid).hex(): (f'{{"n":"{sid[:6]}"}}', 2) for sid in [pilot, *sids]}


@pytest.mark.gen_test(timeout=60)
async def test_a_failing_batch_gives_every_caller_its_store_error(
    store: MySQLStore, clock: FakeClock, private_settings: Settings, private_table: str
) -> None:
    sids = await new_sessions(store, clock, 3)
    query(private_settings, f"DROP TABLE `{private_table}`")
    reads = await asyncio.gather(*(store.get(sid) for sid in sids), return_exceptions=True)
    saves = await asyncio.gather(
        *(store.set(sid, record(clock), expected_version=1) for sid in sids),
        return_exceptions=True,
    )
    for outcome in [*reads, *saves]:
        assert isinstance(outcome, StoreError), outcome
        assert "error 1146" in str(outcome) and "create-table --apply" in str(outcome)
    # Each caller raised its own exception object.
    assert len({id(x) for x in reads}) == 3 and len({id(x) for x in saves}) == 3
    assert store._batches.callers == 0  # failed callers are counted out too


@pytest.mark.gen_test(timeout=90)
async def test_a_batch_whose_connection_dies_is_sent_again_one_by_one(
    store: MySQLStore, clock: FakeClock, private_settings: Settings, private_table: str
) -> None:
    sids = await new_sessions(store, clock, 3)
    locked = sids[1]
    blocker = connect(private_settings)
    admin = connect(private_settings)
    try:
        # Another client holds one row, so the batch waits in the server...
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(
                f"SELECT id FROM `{private_table}` WHERE id = UNHEX(%s) FOR UPDATE",
                (hash_sid(locked).hex(),),
            )
        saves = asyncio.gather(
            *(
                store.set(sid, record(clock, f'{{"saved":{k}}}'), expected_version=1)
                for k, sid in enumerate(sids)
            )
        )
        # ...until its connection is killed under it.
        batch = await running_statement(admin, f"UPDATE `{private_table}`%")
        with admin.cursor() as cur:
            cur.execute(f"KILL CONNECTION {batch}")
        await asyncio.sleep(0.3)  # the saves are sent alone; one waits for the lock
        blocker.rollback()
        async with asyncio.timeout(20):
            assert await saves == [2, 2, 2]
    finally:
        blocker.close()
        admin.close()
    assert versions(private_settings, private_table, sids) == {
        hash_sid(sid).hex(): (f'{{"saved":{k}}}', 2) for k, sid in enumerate(sids)
    }


@pytest.mark.gen_test(timeout=60)
async def test_a_given_pool_coalesces_too(
    private_settings: Settings, private_table: str, clock: FakeClock, count_statements: Count
) -> None:
    pool = await create_pool(private_settings, 4, **MySQLStore.pool_options())
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    try:
        sids = await new_sessions(store, clock, 3)
        with count_statements(private_table) as seen:
            got = await asyncio.gather(*(store.get(sid) for sid in sids))
            saved = await asyncio.gather(
                *(store.set(sid, record(clock, '{"x":1}'), expected_version=1) for sid in sids)
            )
        assert [r.version for r in got if r] == [1, 1, 1]
        assert saved == [2, 2, 2]
        # Each time the first alone, the two behind it in one batch.
        assert seen.counts == {"SELECT": 2, "START": 1, "UPDATE": 1}, seen
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()


@pytest.mark.gen_test(timeout=90)
async def test_a_batch_chosen_as_deadlock_victim_is_sent_again_without_a_transaction(
    store: MySQLStore,
    clock: FakeClock,
    private_settings: Settings,
    private_table: str,
    count_statements: Count,
) -> None:
    pilot, *sids = await new_sessions(store, clock, 3)
    # The pilot's save goes alone; the two behind it leave as one batch,
    # which updates in key order: it takes `low`, then waits for `high`.
    low, high = sorted(hash_sid(sid).hex() for sid in sids)
    side = f"{private_table}_side"
    other = connect(private_settings)
    admin = connect(private_settings)
    try:
        with other.cursor() as cur:
            cur.execute(f"CREATE TABLE `{side}` (n INT PRIMARY KEY) ENGINE=InnoDB")
            cur.execute("BEGIN")
            # Many changed rows make the other transaction the heavier one,
            # so InnoDB rolls back the batch when the two deadlock.
            cur.executemany(f"INSERT INTO `{side}` VALUES (%s)", [(n,) for n in range(200)])
            cur.execute(
                f"SELECT id FROM `{private_table}` WHERE id = UNHEX(%s) FOR UPDATE", (high,)
            )
        trips = store.round_trips
        with count_statements(private_table) as seen:
            saves = asyncio.gather(
                *(
                    store.set(sid, record(clock, f'{{"saved":{k}}}'), expected_version=1)
                    for k, sid in enumerate([pilot, *sids])
                )
            )
            await running_statement(admin, f"UPDATE `{private_table}`%UNHEX('{high}')%")

            def close_the_cycle() -> None:
                with other.cursor() as cur:
                    cur.execute(
                        f"SELECT id FROM `{private_table}` WHERE id = UNHEX(%s) FOR UPDATE",
                        (low,),
                    )

            # Returns once the batch, the victim, has been rolled back.
            await asyncio.wait_for(asyncio.to_thread(close_the_cycle), 20)
            other.rollback()
            async with asyncio.timeout(20):
                assert await saves == [2, 2, 2]
        # The pilot alone, the batch, then the batch again without a
        # transaction (each UPDATE commits, and can conflict, on its own):
        # three round trips, not 1 + 1 + 2.
        assert store.round_trips - trips == 3
    finally:
        other.close()
        admin.close()
        query(private_settings, f"DROP TABLE IF EXISTS `{side}`")
    batches = [s for s in seen.statements if s.count("UPDATE ") == 2]
    assert len(batches) == 2, seen
    assert batches[0].startswith("START TRANSACTION"), seen  # rolled back
    assert batches[1].startswith("UPDATE"), seen  # no transaction
    assert versions(private_settings, private_table, [pilot, *sids]) == {
        hash_sid(sid).hex(): (f'{{"saved":{k}}}', 2) for k, sid in enumerate([pilot, *sids])
    }


def test_the_batch_limit_follows_the_peak_of_callers_over_two_windows() -> None:
    # Coalescer.limit alone, on a clock of our own: half the most callers at
    # once in this window and the one before, from WRITE_BATCH to BATCH;
    # after a quiet window, the callers at the store now.
    async def check() -> None:
        loop = asyncio.get_running_loop()
        now = [1000.0]
        loop.time = lambda: now[0]  # type: ignore[method-assign]
        batches = Coalescer(None, None, prepare=None)  # type: ignore[arg-type]

        def callers(n: int) -> None:
            while batches.callers < n:
                batches.enter()
            while batches.callers > n:
                batches.leave()

        assert batches.limit() == WRITE_BATCH  # nobody yet
        callers(40)
        callers(3)
        assert batches.limit() == 20  # the peak of this window, not the 3 now
        now[0] += WINDOW + 0.1
        assert batches.limit() == 20  # the window before still counts
        callers(0)
        now[0] += WINDOW + 0.1
        assert batches.limit() == WRITE_BATCH  # two windows of at most 3
        callers(500)
        assert batches.limit() == BATCH  # never more than a load batch
        callers(30)
        now[0] += 3 * WINDOW  # a quiet spell: the old peak is forgotten
        assert batches.limit() == 15
        callers(0)
        assert batches.callers == 0
        cheap = Coalescer(None, None, prepare=None, floor=2)  # type: ignore[arg-type]
        assert cheap.limit() == 2  # a driver's lower floor (asyncmy's)
        while cheap.callers < 7:
            cheap.enter()
        assert cheap.limit() == 3
        while cheap.callers < 40:
            cheap.enter()
        assert cheap.limit() == 20  # above the floor, the same as any driver's

    asyncio.run(check())
