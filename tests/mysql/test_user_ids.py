"""User ids on MySQL: kept as their utf-8 bytes (``VARBINARY``) and
compared byte for byte, so ``"alice "`` is not alice (issue 17, finding 4),
with every per-user statement served by the ``user_id`` index."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.contract import record
from tests.mysql.conftest import Settings, connect, query
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore

USERS = ("alice", "alice ", "alice\t", "Alice", "alicé", "alice\u0301", "ℵ" * 255)


@pytest.mark.gen_test(timeout=60)
async def test_a_user_id_is_stored_as_its_utf8_bytes(
    store: MySQLStore, mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    for user in USERS:
        await store.set(new_sid(), record(clock, user=user), expected_version=None)
    rows = query(mysql_settings, f"SELECT HEX(user_id) FROM `{table}` ORDER BY user_id")
    assert sorted(_text(hex_) for (hex_,) in rows) == sorted(
        u.encode().hex().upper() for u in USERS
    )
    (kind,) = query(
        mysql_settings,
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = %s AND COLUMN_NAME = 'user_id'",
        (table,),
    )
    assert _text(kind[0]).lower() == "varbinary(1020)"
    # Read back as the text given, each its own user.
    for user in USERS:
        assert [i.user_id for i in await store.sessions_for_user(user)] == [user]
    assert await store.destroy_user_sessions("alice ") == 1
    assert {i.user_id for i in await store.all()} == set(USERS) - {"alice "}


def fill(settings: Settings, table: str, now: int) -> None:
    rows: list[tuple[Any, ...]] = [
        (hash_sid(f"s{n}").hex(), "{}", now, now, now + 3600, f"user{n % 400}") for n in range(4000)
    ]
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, "
                "version, user_id) VALUES (UNHEX(%s), %s, %s, %s, %s, 1, %s)",
                rows,
            )
            cur.execute(f"ANALYZE TABLE `{table}`")
    finally:
        conn.close()


def plan(settings: Settings, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("EXPLAIN " + sql, args)
            columns = [d[0].lower() for d in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=60)
async def test_every_per_user_statement_reads_the_user_id_index(
    store: MySQLStore, mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    now = int(clock())
    fill(mysql_settings, table, now)
    sql, key = store._sql, hash_sid("s7").hex()
    statements = {
        "sessions_for_user": (sql.infos("user_id = %s AND expires_at > %s"), ("user7", now)),
        "destroy_user_sessions": (sql.destroy_user, ("user7",)),
        "destroy_user_sessions except": (sql.destroy_user_except, ("user7", key)),
        "limit_user_sessions": (sql.limit_user, ("user7", key, now, "user7", key, now, 1)),
        "destroy_user_session": (sql.destroy_user_one, ("user7", "ab" + "00" * 31, "ab" * 32)),
    }
    for name, (text, args) in statements.items():
        steps = [step for step in plan(mysql_settings, text, args) if step["table"] == table]
        assert steps, (name, steps)
        for step in steps:
            assert step["type"] != "ALL", (name, steps)  # never a scan of the table
            allowed = {f"{table}_user_id"}
            if name == "destroy_user_session":
                allowed.add("PRIMARY")  # the fingerprint's key range is narrower still
            assert step["key"] in allowed, (name, steps)
            assert int(step["rows"]) <= 40, (name, steps)  # the user's 10 rows, not 4,000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
