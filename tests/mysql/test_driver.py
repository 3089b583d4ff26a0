"""The two drivers: ``SESSION_DB_DRIVER`` reaches the store's own pool and
`create_pool`, a pool of either driver passed in works, and every driver
that is installed stores and reads sessions on the real server.

The whole MySQL suite runs on each driver (``TEST_SESSION_DB_DRIVER``;
scripts/test runs it on aiomysql, then on asyncmy).  Here the run's driver
is checked to be the one in use, and, when asyncmy is installed (the asyncmy
run), the other driver is exercised in the same run too.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.conftest import TEST_DRIVER, FakeClock
from tests.mysql.conftest import Settings, new_table_name, query, session_config
from tornado_sessions import ConfigError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.mysql import MySQLStore, driver
from tornado_sessions.stores.mysql import create_pool as config_pool


def _usable() -> list[str]:
    """The drivers this run can import (asyncmy is blocked on the aiomysql run)."""
    return [name for name in ("aiomysql", "asyncmy") if driver.installed(name)]


async def _round_trip(store: MySQLStore, settings: Settings, clock: FakeClock) -> None:
    """A session written with ``"`` ``\\`` NUL and an emoji reads back intact,
    and its row is in the table (sealed: the data is not stored as sent)."""
    sid = new_sid()
    data = '{"k":"\\u0000 \' \\" \\\\ 😀"}'
    record = SessionRecord(data=data, created_at=int(clock()), expires_at=int(clock()) + 600)
    assert await store.set(sid, record, expected_version=None) == 1
    got = await store.get(sid)
    assert got is not None and got.data == data
    assert query(settings, f"SELECT COUNT(*) FROM `{store.table}`") == [(1,)]


def test_the_run_uses_the_driver_it_asked_for() -> None:
    # auto (the store's default) resolves to the run's driver: asyncmy when
    # installed, aiomysql when it is not (as for a user without the extra).
    store = MySQLStore(host="127.0.0.1", database="d", cleanup_interval=None)
    assert store.driver == TEST_DRIVER
    assert driver.choose("auto") == TEST_DRIVER


@pytest.mark.gen_test(timeout=60)
async def test_session_db_driver_chooses_the_pool_of_the_store_and_of_create_pool(
    mysql_settings: Settings, clock: FakeClock
) -> None:
    for name in ("aiomysql", "asyncmy"):
        table = new_table_name()
        if name not in _usable():
            with pytest.raises(ConfigError) as caught:
                session_config(mysql_settings, table=table, db_driver=name)
            assert "SESSION_DB_DRIVER" in str(caught.value)
            assert "pip install 'tornado_sessions[asyncmy]'" in str(caught.value)
            continue
        config = session_config(mysql_settings, table=table, db_driver=name)
        store = MySQLStore.from_config(config, cleanup_interval=None, clock=clock)
        pool = await config_pool(config)
        try:
            assert store.driver == name
            assert type(pool).__module__.partition(".")[0] == name
            await _round_trip(store, mysql_settings, clock)
        finally:
            await store.close()
            pool.close()
            await pool.wait_closed()
            query(mysql_settings, f"DROP TABLE IF EXISTS `{table}`")


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_of_either_driver_is_used_with_its_own_driver(
    mysql_settings: Settings, clock: FakeClock
) -> None:
    for name in _usable():
        table = new_table_name()
        module: Any = __import__(name)
        pool = await module.create_pool(
            minsize=0,
            maxsize=2,
            host=mysql_settings["host"],
            port=mysql_settings["port"],
            user=mysql_settings["user"],
            password=mysql_settings["password"],
            db=mysql_settings["database"],
            **MySQLStore.pool_options(),
        )
        # The driver asked for is the other one: the pool's own wins.
        other = "asyncmy" if name == "aiomysql" else "aiomysql"
        asked = other if other in _usable() else "auto"
        store = MySQLStore(pool=pool, table=table, clock=clock, cleanup_interval=None, driver=asked)
        try:
            assert store.driver == name
            await _round_trip(store, mysql_settings, clock)
        finally:
            await store.close()
            pool.close()
            await pool.wait_closed()
            query(mysql_settings, f"DROP TABLE IF EXISTS `{table}`")


def test_something_else_than_a_pool_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be an aiomysql or asyncmy pool, not dict"):
        MySQLStore(pool={}, table="t")  # type: ignore[arg-type]


def test_asyncmy_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # As without the extra: importing asyncmy fails.
    monkeypatch.setitem(sys.modules, "asyncmy", None)
    assert driver.choose("auto") == "aiomysql"
    with pytest.raises(ConfigError) as caught:
        MySQLStore(host="h", database="d", driver="asyncmy")
    assert "asyncmy, which is not installed: pip install 'tornado_sessions[asyncmy]'" in str(
        caught.value
    )
