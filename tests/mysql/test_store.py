"""What only MySQLStore does: its schema, configuration checks, an existing
pool, and the retry of a statement whose connection was killed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import SECRET, FakeClock
from tests.contract import record
from tests.mysql.conftest import (
    Settings,
    connect,
    create_pool,
    new_table_name,
    pool_serves,
    query,
    running_statement,
)
from tornado_sessions import ConfigError, SessionConfig, StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore


def test_create_table_sql_has_the_schema() -> None:
    ddl = MySQLStore.create_table_sql("my_sessions")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `my_sessions`")
    for part in (
        "`id` BINARY(32) NOT NULL",
        "MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
        "`expires_at` BIGINT NOT NULL",
        "`version` INT UNSIGNED NOT NULL",
        "PRIMARY KEY (`id`)",
        "(`expires_at`)",
        "(`user_id`)",
        "ENGINE=InnoDB",
    ):
        assert part in ddl
    assert "JSON" not in ddl


@pytest.mark.parametrize("name", ["", "a-b", "x`; DROP TABLE y; --", "sessions ", "t" * 65])
def test_bad_table_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        MySQLStore.create_table_sql(name)
    with pytest.raises(ConfigError):
        MySQLStore(host="h", user="u", database="d", table=name)


def test_from_config_needs_host_user_database() -> None:
    with pytest.raises(ConfigError, match="SESSION_HOST, SESSION_USER, SESSION_DATABASE"):
        MySQLStore.from_config(SessionConfig(secret=SECRET))
    config = SessionConfig(
        secret=SECRET,
        host="db.example",
        port=3307,
        user="app",
        password="pw",
        database="appdb",
        table="web_sessions",
        pool_size=7,
        db_timeout=2.5,
    )
    store = MySQLStore.from_config(config)
    assert (store.host, store.port, store.user, store.database, store.table) == (
        "db.example",
        3307,
        "app",
        "appdb",
        "web_sessions",
    )
    assert (store.pool_size, store.timeout) == (7, 2.5)
    message = str(store._error("loading a session", 2003, "Can't connect"))
    for part in ("db.example:3307", "'appdb'", "'app'", "'web_sessions'", "2003", "SESSION_HOST"):
        assert part in message
    assert "pw" not in message and "pw" not in repr(store.__dict__.get("host"))


def test_table_is_created_on_open_with_utf8mb4(
    io_loop: Any, mysql_settings: Settings, table: str
) -> None:
    store = MySQLStore(**mysql_settings, table=table, cleanup_interval=None)
    assert query(mysql_settings, "SHOW TABLES LIKE %s", (table,)) == []
    io_loop.run_sync(store.open, timeout=30)
    io_loop.run_sync(store.open, timeout=30)  # idempotent
    io_loop.run_sync(store.close, timeout=30)
    ((_, ddl),) = query(mysql_settings, f"SHOW CREATE TABLE `{table}`")
    assert "utf8mb4" in ddl and "PRIMARY KEY (`id`)" in ddl


@pytest.mark.gen_test(timeout=60)
async def test_an_existing_pool_is_used_and_left_open(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    pool = await create_pool(mysql_settings, 2, **MySQLStore.pool_options())
    try:
        store = MySQLStore(pool=pool, table=table, clock=clock, cleanup_interval=None)
        sid = new_sid()
        assert await store.set(sid, record(clock), expected_version=None) == 1
        assert (await store.get(sid)) is not None
        await store.close()
        assert await pool_serves(pool)  # left open
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            assert await cur.fetchone() == (1,)
    finally:
        pool.close()
        await pool.wait_closed()


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_without_found_rows_is_refused(mysql_settings: Settings, table: str) -> None:
    pool = await create_pool(mysql_settings, 1, autocommit=True)
    try:
        store = MySQLStore(pool=pool, table=table, cleanup_interval=None)
        with pytest.raises(ConfigError, match="FOUND_ROWS"):
            await store.open()
    finally:
        pool.close()
        await pool.wait_closed()


@pytest.mark.gen_test(timeout=60)
async def test_touch_in_the_same_second_still_counts_as_found(
    store: MySQLStore, clock: FakeClock
) -> None:
    sid = new_sid()
    rec = record(clock)
    await store.set(sid, rec, expected_version=None)
    # Same expiry, same second: no column changes, but the row is there.
    assert await store.touch(sid, rec.expires_at, ttl=None) is True


@pytest.mark.gen_test(timeout=60)
async def test_a_killed_connection_is_retried_once_on_a_fresh_one(
    store: MySQLStore, clock: FakeClock, mysql_settings: Settings
) -> None:
    sid = new_sid()
    await store.set(sid, record(clock), expected_version=None)
    key = hash_sid(sid).hex()
    # Another client holds the row, so our UPDATE waits in the server...
    blocker = connect(mysql_settings)
    admin = connect(mysql_settings)
    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(
                f"SELECT id FROM `{store.table}` WHERE HEX(id) = %s FOR UPDATE", (key.upper(),)
            )
        save = asyncio.ensure_future(store.set(sid, record(clock, '{"a":2}'), expected_version=1))
        # ...until its connection is killed under it (a server restart would
        # do the same).  Find the waiting statement and kill its connection.
        waiting = await running_statement(admin, f"UPDATE `{store.table}`%")
        with admin.cursor() as cur:
            cur.execute(f"KILL CONNECTION {waiting}")
        await asyncio.sleep(0.2)  # let the retry reach the lock, then free it
        blocker.rollback()
        async with asyncio.timeout(20):
            assert await save == 2
    finally:
        blocker.close()
        admin.close()
    got = await store.get(sid)
    assert got is not None and (got.data, got.version) == ('{"a":2}', 2)


@pytest.mark.gen_test(timeout=60)
async def test_insert_over_an_expired_leftover_row(store: MySQLStore, clock: FakeClock) -> None:
    sid = new_sid()
    await store.set(sid, record(clock, ttl=10), expected_version=None)
    clock.advance(11)
    assert await store.set(sid, record(clock, '{"new":1}'), expected_version=None) == 1
    got = await store.get(sid)
    assert got is not None and got.data == '{"new":1}'


def test_store_table_names_do_not_collide() -> None:
    assert new_table_name() != new_table_name()


@pytest.mark.gen_test(timeout=60)
async def test_a_table_of_another_layout_is_refused_with_advice(
    secret_password_settings: Settings,
) -> None:
    settings = secret_password_settings  # a random password: its absence means something
    table = new_table_name()
    # express-mysql-session's table, for instance.
    query(
        settings,
        f"CREATE TABLE `{table}` (session_id VARCHAR(128) PRIMARY KEY, "
        "expires INT UNSIGNED NOT NULL, data MEDIUMTEXT)",
    )
    store = MySQLStore(**settings, table=table, cleanup_interval=None)
    try:
        with pytest.raises(StoreError) as caught:
            await store.open()
        message = str(caught.value)
        assert "lacks the columns id, created_at, updated_at, expires_at, version" in message
        assert "SESSION_TABLE" in message and "create_table_sql()" in message
        assert settings["password"] not in message
        # Nothing was changed, and the next call fails the same way.
        with pytest.raises(StoreError, match="lacks the columns"):
            await store.get(new_sid())
        columns = query(
            settings,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (table,),
        )
        assert [c for (c,) in columns] == ["session_id", "expires", "data"]
    finally:
        await store.close()
        query(settings, f"DROP TABLE IF EXISTS `{table}`")


@pytest.mark.gen_test(timeout=60)
async def test_an_id_column_that_is_not_binary_is_refused(
    mysql_settings: Settings, table: str
) -> None:
    ddl = MySQLStore.create_table_sql(table).replace("`id` BINARY(32)", "`id` VARCHAR(64)")
    query(mysql_settings, ddl)
    store = MySQLStore(**mysql_settings, table=table, cleanup_interval=None)
    try:
        with pytest.raises(StoreError, match="its id column is not BINARY"):
            await store.open()
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_missing_table_without_create_table_fails_until_it_is_created(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    store = MySQLStore(
        **mysql_settings, table=table, create_table=False, clock=clock, cleanup_interval=None
    )
    try:
        with pytest.raises(StoreError) as caught:
            await store.open()
        assert "error 1146" in str(caught.value) and "create_table_sql()" in str(caught.value)
        assert query(
            mysql_settings,
            "SELECT COUNT(*) FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        ) == [(0,)]  # the store did not create it
        # Created by a migration meanwhile: the same store works, no restart.
        query(mysql_settings, MySQLStore.create_table_sql(table))
        sid = new_sid()
        assert await store.set(sid, record(clock), expected_version=None) == 1
        assert await store.get(sid) is not None
    finally:
        await store.close()
