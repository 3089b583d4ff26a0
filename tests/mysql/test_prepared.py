"""Server-side prepared statements (0.3): on asyncmy, the store's own pool
runs its five hot statements (a read, a save, a new session, a touch, a
destroy) as prepared statements, each prepared once per connection, and
everything else as text; on aiomysql, and on a pool passed in, every
statement is text.  Checked against the private server's query log, which
tells a ``Query`` from a prepared statement's ``Prepare`` and ``Execute``."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.ioloop

from tests.conftest import TEST_DRIVER, FakeClock
from tests.contract import record
from tests.mysql.conftest import Settings, create_pool, make_store, versions
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.stores.mysql.driver import PREPARED

Count = Callable[[str], Any]

#: A value a text statement would have to escape, and a prepared one sends
#: as it is.
AWKWARD = "\\u00e9 'quoted' \\\\ %s ; -- \U0001f600"


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock)


async def every_kind(store: MySQLStore, clock: FakeClock) -> list[str]:
    """A new session, a read, a save, a touch, a destroy, three saves at
    once (the first alone, the two behind it in one batch), a listing:
    return the ids still live."""
    sids = [new_sid() for _ in range(5)]
    for sid in sids:
        assert await store.set(sid, record(clock, '{"n":0}'), expected_version=None) == 1
    got = await store.get(sids[0])
    assert got is not None and got.data == '{"n":0}'
    data = '{"s":"' + AWKWARD + '"}'
    assert await store.set(sids[0], record(clock, data), expected_version=1) == 2
    assert await store.touch(sids[1], int(clock()) + 7200, ttl=None)
    assert await store.destroy(sids[4])
    saves = [
        store.set(sid, record(clock, '{"n":' + str(k) + "}"), expected_version=1)
        for k, sid in enumerate(sids[1:4], start=1)
    ]
    assert await asyncio.gather(*saves) == [2, 2, 2]
    assert await store.live(sids) == set(sids[:4])
    return sids[:4]


@pytest.mark.gen_test(timeout=60)
async def test_the_hot_statements_are_prepared_once_per_connection_on_asyncmy(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    with count_statements(private_table) as seen:
        live = await every_kind(store, clock)
    kinds = collections.Counter(command for command, _ in seen.commands)
    run = {(command, text.split(None, 1)[0].upper()) for command, text in seen.commands}
    assert ("Query", "START") in run, seen.commands  # the batch: text on both
    if store.driver == "aiomysql":
        assert set(kinds) == {"Query"}, seen.commands
    else:
        # The five hot statements run prepared; the listing is text.  Each
        # is prepared at most once per connection of the pool.
        for verb in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            assert ("Execute", verb) in run, seen.commands
        assert ("Query", "SELECT") in run, seen.commands  # live(): text
        assert kinds["Prepare"] <= 5 * store.pool_size, seen.commands
        prepared = [text for command, text in seen.commands if command == "Prepare"]
        assert all("?" in text and "%s" not in text for text in prepared), prepared
        assert PREPARED >= 5
    # The values arrived intact whichever way they travelled.
    rows = versions(private_settings, private_table, live)
    assert rows[hash_sid(live[0]).hex()] == ('{"s":"' + AWKWARD + '"}', 2)
    assert rows[hash_sid(live[1]).hex()] == ('{"n":1}', 2)
    assert rows[hash_sid(live[2]).hex()] == ('{"n":2}', 2)
    assert rows[hash_sid(live[3]).hex()] == ('{"n":3}', 2)


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_passed_in_runs_every_statement_as_text(
    clock: FakeClock, count_statements: Count, private_table: str, private_settings: Settings
) -> None:
    # An application's pool is its own: the store prepares nothing on it,
    # not even where the pool has asyncmy's statement cache on.
    cache = {} if TEST_DRIVER == "aiomysql" else {"stmt_cache_size": 8}
    pool = await create_pool(private_settings, 4, **MySQLStore.pool_options(), **cache)
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    try:
        with count_statements(private_table) as seen:
            await every_kind(store, clock)
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()
    assert {command for command, _ in seen.commands} == {"Query"}, seen.commands
