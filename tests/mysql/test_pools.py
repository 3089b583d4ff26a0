"""`create_pool` and `pool_options`: one aiomysql pool built from the
config, shared by the application and the store, on a real server."""

from __future__ import annotations

import pytest

from tests.conftest import SECRET
from tests.mysql.conftest import Settings, new_table_name, pool_serves, query, session_config
from tornado_sessions import ConfigError, SessionConfig
from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.mysql import MySQLStore, create_pool, pool_options
from tornado_sessions.stores.mysql.store import MySQLStore as StoreClass


def test_pool_options_map_the_config() -> None:
    config = SessionConfig(
        secret=SECRET,
        host="db.internal",
        port=3307,
        user="app",
        password="pw",
        database="appdb",
        pool_size=7,
        db_timeout=3.0,
        db_variables=(("wsrep_sync_wait", "1"),),
    )
    options = pool_options(config)
    assert {k: options[k] for k in ("host", "port", "user", "password", "db", "maxsize")} == {
        "host": "db.internal",
        "port": 3307,
        "user": "app",
        "password": "pw",
        "db": "appdb",
        "maxsize": 7,
    }
    assert (options["minsize"], options["connect_timeout"], options["autocommit"]) == (0, 3.0, True)
    assert options["init_command"] == (
        "SET SESSION sql_notes=0, innodb_lock_wait_timeout=2, wsrep_sync_wait=1, NAMES utf8mb4"
    )
    # The store's required options are part of it, and overrides win.
    assert StoreClass.pool_options()["client_flag"] == options["client_flag"]
    assert pool_options(config, maxsize=20)["maxsize"] == 20


def test_pool_options_refuse_what_the_store_cannot_work_with() -> None:
    with pytest.raises(ConfigError, match="SESSION_HOST, SESSION_USER, SESSION_DATABASE"):
        pool_options(SessionConfig(secret=SECRET))
    config = SessionConfig(secret=SECRET, host="h", user="u", database="d")
    with pytest.raises(ConfigError, match="autocommit=False cannot be used"):
        pool_options(config, autocommit=False)
    with pytest.raises(ConfigError, match="charset='latin1' cannot be used"):
        pool_options(config, charset="latin1")


@pytest.mark.gen_test(timeout=60)
async def test_one_pool_for_the_application_and_the_store(mysql_settings: Settings) -> None:
    table = new_table_name()
    config = session_config(mysql_settings, table=table, pool_size=3, db_timeout=4.0)
    pool = await create_pool(config)
    store = MySQLStore.from_config(config, pool=pool, cleanup_interval=None)
    try:
        await store.open()
        assert store.table_state == "created"
        version = await store.set(
            "s" * 43,
            SessionRecord(data='{"k":1}', created_at=1, expires_at=2_000_000_000),
            expected_version=None,
        )
        assert version == 1
        async with pool.acquire() as conn, conn.cursor() as cur:  # the application's own query
            await cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            assert await cur.fetchone() == (1,)
            await cur.execute(
                "SELECT @@session.innodb_lock_wait_timeout, @@session.sql_notes, "
                "@@character_set_client, @@autocommit"
            )
            assert await cur.fetchone() == (3, 0, "utf8mb4", 1)
        assert pool.maxsize == 3
    finally:
        await store.close()
        assert await pool_serves(pool)  # the store never closes a pool it did not make
        pool.close()
        await pool.wait_closed()
        query(mysql_settings, f"DROP TABLE IF EXISTS `{table}`")


@pytest.mark.gen_test(timeout=60)
async def test_creating_the_pool_needs_no_server() -> None:
    # minsize 0: nothing is opened until a connection is needed.
    config = SessionConfig(secret=SECRET, host="127.0.0.1", port=1, user="u", database="d")
    pool = await create_pool(config)
    assert pool.size == 0
    pool.close()
    await pool.wait_closed()
