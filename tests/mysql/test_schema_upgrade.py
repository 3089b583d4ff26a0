"""A table made by 0.1 (no ``ttl`` column) is upgraded in place, rows intact:
at first use when the store may create tables, by the CLI's
``create-table --apply``, and otherwise refused with what to run."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import FakeClock
from tests.mysql.conftest import Settings, query
from tornado_sessions import StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import SessionRecord, hash_sid
from tornado_sessions.stores.mysql import MySQLStore

# The DDL MySQLStore 0.1 created, verbatim.
OLD_DDL = """CREATE TABLE `{t}` (
  `id` BINARY(32) NOT NULL,
  `data` MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  `created_at` BIGINT NOT NULL,
  `updated_at` BIGINT NOT NULL,
  `expires_at` BIGINT NOT NULL,
  `version` INT UNSIGNED NOT NULL,
  `user_id` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  `ip` VARCHAR(45) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  `user_agent` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  PRIMARY KEY (`id`),
  KEY `{t}_expires_at` (`expires_at`),
  KEY `{t}_user_id` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


def old_table(settings: Settings, table: str, clock: FakeClock, rows: int) -> list[str]:
    query(settings, OLD_DDL.format(t=table))
    now = int(clock())
    sids = [new_sid() for _ in range(rows)]
    for k, sid in enumerate(sids):
        query(
            settings,
            f"INSERT INTO `{table}` VALUES (UNHEX(%s), %s, %s, %s, %s, 3, %s, NULL, NULL)",
            (hash_sid(sid).hex(), f'{{"k":{k}}}', now, now, now + 3600, f"user{k % 3}"),
        )
    return sids


def columns(settings: Settings, table: str) -> list[str]:
    rows = query(
        settings,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,),
    )
    return [name.decode() if isinstance(name, bytes) else name for (name,) in rows]


@pytest.mark.gen_test(timeout=60)
async def test_an_old_table_is_upgraded_at_first_use_with_its_rows_intact(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    sids = old_table(mysql_settings, table, clock, 50)
    store = MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
    try:
        await store.open()
        assert store.table_state == "upgraded"
        assert "ttl" in columns(mysql_settings, table)
        for k, sid in enumerate(sids):
            got = await store.get(sid)
            assert got is not None
            assert (got.data, got.version, got.ttl) == (f'{{"k":{k}}}', 3, None)
        assert len(await store.sessions_for_user("user1")) == 17
        upgraded = SessionRecord(
            data="{}", created_at=got.created_at, expires_at=got.expires_at, ttl=60
        )
        assert await store.set(sids[0], upgraded, expected_version=3) == 4
        again_got = await store.get(sids[0])
        assert again_got is not None and again_got.ttl == 60
    finally:
        await store.close()
    # A second store (another process) finds it up to date.
    again = MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
    try:
        await again.open()
        assert again.table_state == "exists"
    finally:
        await again.close()


@pytest.mark.gen_test(timeout=60)
async def test_an_old_table_without_create_table_is_refused_saying_what_to_run(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    old_table(mysql_settings, table, clock, 3)
    store = MySQLStore(
        **mysql_settings, table=table, clock=clock, cleanup_interval=None, create_table=False
    )
    try:
        with pytest.raises(StoreError) as caught:
            await store.open()
        message = str(caught.value)
        assert "lacks the column(s) ttl" in message
        assert "python -m tornado_sessions create-table --apply" in message
        assert f"ALTER TABLE `{table}` ADD COLUMN `ttl` INT UNSIGNED NULL" in message
    finally:
        await store.close()
    assert "ttl" not in columns(mysql_settings, table)
    assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}`") == [(3,)]


@pytest.mark.gen_test(timeout=60)
async def test_stores_upgrading_at_once_all_start(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    old_table(mysql_settings, table, clock, 5)
    stores = [
        MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
        for _ in range(4)
    ]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert sorted(s.table_state or "" for s in stores).count("upgraded") >= 1
        assert columns(mysql_settings, table).count("ttl") == 1
        assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}`") == [(5,)]
    finally:
        for s in stores:
            await s.close()


# The DDL MySQLStore 0.2 created: user_id in utf8mb4_bin, a PAD SPACE collation.
DDL_0_2 = OLD_DDL.replace("  `user_id`", "  `ttl` INT UNSIGNED NULL,\n  `user_id`")


@pytest.mark.gen_test(timeout=60)
async def test_a_table_of_0_2_is_upgraded_and_alice_with_a_space_is_another_user(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    query(mysql_settings, DDL_0_2.format(t=table))
    now = int(clock())
    users = {"alice": new_sid(), "alice ": new_sid(), "Alice": new_sid(), "alicé": new_sid()}
    for user, sid in users.items():
        query(
            mysql_settings,
            f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, version, "
            "user_id) VALUES (UNHEX(%s), '{}', %s, %s, %s, 2, %s)",
            (hash_sid(sid).hex(), now, now, now + 3600, user),
        )
    refused = MySQLStore(
        **mysql_settings, table=table, clock=clock, cleanup_interval=None, create_table=False
    )
    try:
        with pytest.raises(StoreError) as caught:
            await refused.open()
        assert "has an older type for user_id" in str(caught.value)
        assert "MODIFY COLUMN `user_id` VARBINARY(1020) NULL" in str(caught.value)
    finally:
        await refused.close()
    store = MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
    try:
        await store.open()
        assert store.table_state == "upgraded"
        rows = query(mysql_settings, f"SELECT HEX(user_id) FROM `{table}`")
        stored = sorted((h.decode() if isinstance(h, bytes) else h) for (h,) in rows)
        assert stored == sorted(u.encode().hex().upper() for u in users)  # the bytes, intact
        for user, sid in users.items():
            listed = await store.sessions_for_user(user)
            assert [(i.user_id, i.fingerprint) for i in listed] == [
                (user, hash_sid(sid).hex()[:12])
            ]
        assert await store.destroy_user_sessions("alice ") == 1
        assert await store.get(users["alice"]) is not None
    finally:
        await store.close()
    again = MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
    try:
        await again.open()
        assert again.table_state == "exists"
    finally:
        await again.close()


@pytest.mark.gen_test(timeout=60)
async def test_rows_of_0_2_keep_their_place_in_the_least_recently_used_order(
    mysql_settings: Settings, table: str, clock: FakeClock
) -> None:
    # Rows written before 0.3 have no updated_us: their whole second stands in.
    query(mysql_settings, DDL_0_2.format(t=table))
    now = int(clock())
    older, newer = new_sid(), new_sid()
    for sid, used in ((older, now - 10), (newer, now - 1)):
        query(
            mysql_settings,
            f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, version, "
            "user_id) VALUES (UNHEX(%s), '{}', %s, %s, %s, 1, 'erin')",
            (hash_sid(sid).hex(), now - 20, used, now + 3600),
        )
    store = MySQLStore(**mysql_settings, table=table, clock=clock, cleanup_interval=None)
    try:
        await store.open()
        assert {"updated_us", "created_seq"} <= set(columns(mysql_settings, table))
        assert query(
            mysql_settings, f"SELECT COUNT(*) FROM `{table}` WHERE updated_us IS NULL"
        ) == [(2,)]
        login = new_sid()
        await store.set(
            login,
            SessionRecord(data="{}", created_at=now, expires_at=now + 60, user_id="erin"),
            expected_version=None,
        )
        listed = [i.fingerprint for i in await store.sessions_for_user("erin")]
        assert listed == [hash_sid(s).hex()[:12] for s in (login, newer, older)]
        assert await store.limit_user_sessions("erin", 2, current_sid=login) == 1
        assert await store.get(older) is None and await store.get(newer) is not None
        # A touch stamps the old row to the microsecond.
        assert await store.touch(newer, now + 3600, ttl=None)
        (stamp,) = query(
            mysql_settings,
            f"SELECT updated_us FROM `{table}` WHERE id = UNHEX(%s)",
            (hash_sid(newer).hex(),),
        )
        assert stamp[0] is not None and stamp[0] >= now * 1_000_000
    finally:
        await store.close()
