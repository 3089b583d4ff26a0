"""MySQLStore on a real 3-node Galera cluster: the store contract on a node,
causal reads made by default, and a pool passed in checked."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.ioloop
from pymysql.constants import CLIENT

from tests.conftest import FakeClock
from tests.contract import StoreContract, record
from tests.galera.cluster import GaleraCluster
from tests.mysql.conftest import create_pool, make_store
from tornado_sessions import ConfigError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.mysql import MySQLStore

Settings = dict[str, Any]


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop,
    galera_settings: Callable[[int], Settings],
    galera_table: str,
    clock: FakeClock,
) -> Iterator[MySQLStore]:
    """A store on node 1 of the cluster (the contract suite's ``store``)."""
    yield from make_store(io_loop, galera_settings(1), table=galera_table, clock=clock)


class TestGaleraStoreContract(StoreContract):
    """Every contract test, on a Galera node."""


async def sync_wait_of(store: MySQLStore) -> int:
    result = await store._conns.execute("test", "SELECT @@session.wsrep_sync_wait", fetch=True)
    return int(result.rows[0][0])


@pytest.mark.gen_test(timeout=60)
async def test_the_store_recognizes_galera_and_makes_its_reads_causal(
    store: MySQLStore, galera: GaleraCluster
) -> None:
    assert store.server is not None and store.server.galera
    with galera.connect(1) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@global.wsrep_sync_wait")
        assert cur.fetchone() == (0,)  # the server's default is left alone
    assert await sync_wait_of(store) == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_chosen_sync_wait_is_kept_with_a_warning(
    galera_settings: Callable[[int], Settings], galera_table: str, clock: FakeClock, caplog: Any
) -> None:
    store = MySQLStore(
        **galera_settings(2),
        table=galera_table,
        clock=clock,
        cleanup_interval=None,
        session_variables={"wsrep_sync_wait": 0},
    )
    try:
        with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
            await store.open()
        assert await sync_wait_of(store) == 0
        assert "reads through one node may miss writes" in caplog.text
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_passed_in_needs_causal_reads(
    galera_settings: Callable[[int], Settings], galera_table: str, clock: FakeClock
) -> None:
    plain = await create_pool(
        galera_settings(1), 2, autocommit=True, client_flag=CLIENT.FOUND_ROWS, charset="utf8mb4"
    )
    store = MySQLStore(pool=plain, table=galera_table, clock=clock, cleanup_interval=None)
    try:
        with pytest.raises(ConfigError) as caught:
            await store.set(new_sid(), record(clock), expected_version=None)
        assert "wsrep_sync_wait=0" in str(caught.value)
        assert "pool_options(session_variables={'wsrep_sync_wait': 1})" in str(caught.value)
    finally:
        await store.close()
        plain.close()
        await plain.wait_closed()
    causal = await create_pool(
        galera_settings(1), 2, **MySQLStore.pool_options(session_variables={"wsrep_sync_wait": 1})
    )
    store = MySQLStore(pool=causal, table=galera_table, clock=clock, cleanup_interval=None)
    try:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        assert await store.get(sid) is not None
    finally:
        await store.close()
        causal.close()
        await causal.wait_closed()
