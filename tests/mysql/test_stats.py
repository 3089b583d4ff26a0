"""``MySQLStore.stats()``: exact counts of live and expired rows, read from
the ``expires_at`` index alone, on a real MariaDB; the size is the server's
estimate (the CLI says so: tests/mysql/test_cli.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.mysql.conftest import Settings, connect
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore

LIVE, EXPIRED = 1500, 1000


def fill(settings: Settings, table: str, now: int) -> None:
    rows: list[tuple[Any, ...]] = []
    for n in range(LIVE + EXPIRED):
        expires = now + 1 + n if n < LIVE else now - n  # expires_at == now is expired
        rows.append((hash_sid(f"s{n}").hex(), "{}", now - 7200, now - 7200, expires))
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, version) "
                "VALUES (UNHEX(%s), %s, %s, %s, %s, 1)",
                rows,
            )
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_counts_are_exact_at_this_moment(
    store: MySQLStore, mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    now = int(clock())
    fill(mysql_settings, table, now)
    stats = await store.stats()
    assert (stats["live"], stats["expired"]) == (LIVE, EXPIRED)
    clock.advance(100)  # 100 more have expired
    stats = await store.stats()
    assert (stats["live"], stats["expired"]) == (LIVE - 100, EXPIRED + 100)


@pytest.mark.gen_test(timeout=60)
async def test_the_counts_read_only_the_expiry_index(
    store: MySQLStore, mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    now = int(clock())
    fill(mysql_settings, table, now)
    conn = connect(mysql_settings)
    try:
        with conn.cursor() as cur:
            cur.execute("EXPLAIN " + store._sql.counts, (now, now, "00" * 32))
            columns = [d[0].lower() for d in cur.description]
            plan = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()
    reads = [step for step in plan if step.get("table") == table]
    assert len(reads) == 2, plan  # one per count
    for step in reads:
        assert step["key"] == f"{table}_expires_at", plan
        assert step["type"] in ("range", "index"), plan  # never a scan of the rows ("ALL")
        assert "Using index" in (step.get("extra") or ""), plan  # the index alone
