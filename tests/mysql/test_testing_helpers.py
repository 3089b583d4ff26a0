"""tornado_sessions.testing's MySQL helpers, on the test server."""

from __future__ import annotations

import pytest

from tests.mysql.conftest import Settings, query, session_config
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.testing import close_mysql_store, mysql_store, open_mysql_store

SECRET = "helpers-test-secret-Qm4Zt7WvX2kLp9RbN6cJs1HdF8gYa3Ue"


def exists(settings: Settings, table: str) -> bool:
    return bool(query(settings, "SHOW TABLES LIKE %s", (table,)))


@pytest.mark.gen_test
async def test_a_store_of_its_own_table_that_is_dropped_after(mysql_settings: Settings) -> None:
    async with mysql_store(session_config(mysql_settings)) as store:
        assert store.table.startswith("test_sessions_") and store.cleanup_interval is None
        assert exists(mysql_settings, store.table)
        assert await store.length() == 0
        other = await open_mysql_store(session_config(mysql_settings))
        assert other.table != store.table
        await close_mysql_store(other)
    assert not exists(mysql_settings, store.table)
    assert not exists(mysql_settings, other.table)


@pytest.mark.gen_test
async def test_a_table_that_was_there_before_is_kept(mysql_settings: Settings, table: str) -> None:
    query(mysql_settings, MySQLStore.create_table_sql(table))
    async with mysql_store(session_config(mysql_settings), table=table) as store:
        assert store.table_state == "exists"
    assert exists(mysql_settings, table)  # the table fixture drops it
