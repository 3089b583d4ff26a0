"""Last use to the microsecond (issue 17, finding 5): every path that writes
``updated_at`` writes ``updated_us`` too (insert, update alone and in a
coalesced batch, touch), and stamps order uses that came within one second,
also across two stores (two processes' pools) on one clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import tornado.ioloop

from tests.conftest import FakeClock
from tests.contract import record
from tests.mysql.conftest import Settings, batches_as_on_aiomysql, make_store, query
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore


@pytest.fixture
def other(
    io_loop: tornado.ioloop.IOLoop, mysql_settings: Settings, table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    """A second store (another process's pool) on the same table and clock."""
    yield from make_store(io_loop, mysql_settings, table=table, clock=clock)


def stamps(settings: Settings, table: str, sids: list[str]) -> list[tuple[int, int]]:
    """(updated_us, created_seq) of each session, read at the server."""
    out = []
    for sid in sids:
        ((used, created),) = query(
            settings,
            f"SELECT updated_us, created_seq FROM `{table}` WHERE id = UNHEX(%s)",
            (hash_sid(sid).hex(),),
        )
        out.append((used, created))
    return out


@pytest.mark.gen_test(timeout=60)
async def test_every_write_path_stamps_the_last_use(
    store: MySQLStore, other: MySQLStore, mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    batches_as_on_aiomysql(store)
    # The clock stands still: one second for everything below.
    sids = [new_sid() for _ in range(4)]
    for n, sid in enumerate(sids):  # created in turn by the two processes
        await (store, other)[n % 2].set(sid, record(clock, user="u"), expected_version=None)
    created = stamps(mysql_settings, table, sids)
    assert all(used == seq for used, seq in created)  # creation is the first use
    assert [seq for _, seq in created] == sorted({seq for _, seq in created})  # strictly
    assert created[0][0] >= int(clock()) * 1_000_000

    # Saves in one turn of the loop: the first goes alone, the three that
    # start while it is in flight share a round trip (the batched path).
    trips = store.round_trips
    await asyncio.gather(
        *(store.set(sid, record(clock, '{"b":1}', user="u"), expected_version=1) for sid in sids)
    )
    assert store.round_trips - trips == 2
    batched = stamps(mysql_settings, table, sids)
    assert min(used for used, _ in batched) > max(used for used, _ in created)
    assert [seq for _, seq in batched] == [seq for _, seq in created]  # creation kept
    assert len({used for used, _ in batched}) == 4

    # A save alone, then a touch, each by another process.
    await other.set(sids[1], record(clock, '{"c":1}', user="u"), expected_version=2)
    assert await store.touch(sids[2], int(clock()) + 3600, ttl=None)
    alone = stamps(mysql_settings, table, sids)
    assert alone[2][0] > alone[1][0] > max(used for used, _ in batched)
    assert (alone[0], alone[3]) == (batched[0], batched[3])

    # The order the per-user cap ends by: least recently used first.
    listed = [i.fingerprint for i in await other.sessions_for_user("u")]
    ranked = sorted(sids, key=lambda sid: alone[sids.index(sid)], reverse=True)
    assert listed == [hash_sid(sid).hex()[:12] for sid in ranked]
    assert await other.limit_user_sessions("u", 3, current_sid=sids[2]) == 1
    assert await store.get(ranked[-1]) is None
