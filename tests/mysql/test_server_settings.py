"""Session variables on the store's connections, what the store learns of its
server at first use, the error hints, and cleanup by several stores at once,
on a real (single) MariaDB; tests/galera runs the cluster side."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.contract import record
from tests.mysql.conftest import Settings, create_pool, query
from tornado_sessions import ConfigError, StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.stores.mysql.hints import hint


async def session_value(store: MySQLStore, variable: str) -> Any:
    """A session variable as one of the store's own connections sees it."""
    result = await store._conns.execute("test", f"SELECT @@session.{variable}", fetch=True)
    return result.rows[0][0]


@pytest.mark.gen_test(timeout=60)
async def test_session_variables_are_set_on_the_stores_connections(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    store = MySQLStore(
        **mysql_settings,
        table=table,
        clock=clock,
        cleanup_interval=None,
        session_variables={"max_statement_time": 7, "sql_mode": "STRICT_ALL_TABLES"},
    )
    try:
        await store.open()
        assert float(await session_value(store, "max_statement_time")) == 7.0
        assert "STRICT_ALL_TABLES" in str(await session_value(store, "sql_mode"))
        assert int(await session_value(store, "innodb_lock_wait_timeout")) == 4
        assert store.server is not None and not store.server.galera  # a single server
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_pool_options_carry_session_variables(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    options = MySQLStore.pool_options(session_variables={"max_statement_time": 9})
    assert options["init_command"] == "SET SESSION sql_notes=0, max_statement_time=9, NAMES utf8mb4"
    pool = await create_pool(mysql_settings, 2, **options)
    store = MySQLStore(pool=pool, table=table, clock=clock, cleanup_interval=None)
    try:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        assert float(await session_value(store, "max_statement_time")) == 9.0
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()


@pytest.mark.parametrize(
    "variables",
    [{"x; DROP TABLE t": 1}, {"sql_mode": "a'b"}, {"a": "1, b=2"}, {"": 1}],
)
def test_session_variables_that_are_not_a_name_and_a_value_are_refused(
    mysql_settings: Settings, variables: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match="SESSION_DB_VARIABLES"):
        MySQLStore(**mysql_settings, session_variables=variables)


def test_cluster_errors_have_hints_of_their_own() -> None:
    assert "not ready" in hint(1047) and "Synced" in hint(1047)
    assert "primary component" in hint(1180)
    assert "long transactions" in hint(1213)
    assert "certification" in hint(1213, cluster=True)
    assert "through different nodes" in hint(1213, cluster=True)


@pytest.mark.gen_test(timeout=120)
async def test_several_stores_clean_up_at_once_without_errors(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    stores = [
        MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
        for _ in range(3)
    ]
    try:
        await stores[0].open()
        now = int(clock())
        rows = [(new_sid(), now - 10 if k % 4 else now + 3600) for k in range(2000)]
        from tornado_sessions.stores.mysql import statements

        query(
            mysql_settings,
            f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, version) "
            "VALUES " + ", ".join(["(UNHEX(%s), '{}', %s, %s, %s, 1)"] * len(rows)),
            [v for sid, e in rows for v in (statements.key(sid), now - 20, now - 20, e)],
        )
        expired = sum(1 for _, e in rows if e <= now)
        deleted = await asyncio.gather(*(s.clear_expired(batch_size=100) for s in stores))
        assert sum(deleted) == expired  # every expired row once, no error
        assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}`") == [(2000 - expired,)]
        for sid, e in rows[:20]:
            assert (await stores[1].get(sid) is None) == (e <= now)
    finally:
        for s in stores:
            await s.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_cleanup_that_meets_a_locked_row_ends_quietly(
    mysql_settings: Settings, table: str, clock: FakeClock, caplog: Any
) -> None:
    from tests.mysql.conftest import connect

    # A 2 s timeout: the server's lock wait (a second less) reports 1205 first.
    store = MySQLStore(
        **mysql_settings, table=table, clock=clock, cleanup_interval=None, timeout=2.0
    )
    try:
        expired = [new_sid() for _ in range(5)]
        for sid in expired:
            await store.set(sid, record(clock, ttl=5), expected_version=None)
        clock.advance(10)
        blocker = connect(mysql_settings)
        try:
            with blocker.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(f"SELECT id FROM `{table}` FOR UPDATE")
            with caplog.at_level("INFO", logger="tornado_sessions"):
                assert await store.clear_expired() == 0  # ended, no exception
        finally:
            blocker.rollback()
            blocker.close()
        # Every row is locked, the lease's place included: the run yields.
        assert "error 1205" in caplog.text or "holds the cleanup lease" in caplog.text
        assert await store.clear_expired() == 5  # the next run picks up
    except StoreError:
        raise
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_one_instance_cleans_at_a_time_and_a_lapsed_lease_is_taken_over(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    from tornado_sessions.stores.mysql.admin import LEASE_KEY, LEASE_SECONDS

    store = MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
    try:
        for _ in range(7):
            await store.set(new_sid(), record(clock, ttl=5), expected_version=None)
        clock.advance(10)
        now = int(clock())
        # Another instance (it died mid-run) holds the lease.
        query(
            mysql_settings,
            f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, version) "
            "VALUES (UNHEX(%s), 'other', %s, %s, 0, 1)",
            (LEASE_KEY, now, now + LEASE_SECONDS),
        )
        assert await store.clear_expired() == 0 and store.cleanup_skipped
        assert await store.stats() == {**(await store.stats()), "live": 0, "expired": 7}
        clock.advance(LEASE_SECONDS + 1)  # the lease lapsed
        assert await store.clear_expired() == 7 and not store.cleanup_skipped
        # The run gave the lease back: the table holds no row at all.
        assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}`") == [(0,)]
    finally:
        await store.close()
