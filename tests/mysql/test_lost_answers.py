"""Writes whose answer is lost after the server applied them (a network
failure or a crash right after the commit): the store retries on a fresh
connection and must report the write as done, not as a duplicate or a
conflict, and must not apply it twice.  A real MariaDB behind a real TCP
proxy that drops the answer (tests/mysql/proxy.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.conftest import FakeClock
from tests.contract import record
from tests.mysql.conftest import Settings, versions
from tests.mysql.proxy import LosingProxy
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore


def rows(settings: Settings, table: str, sids: list[str]) -> dict[str, tuple[str, int]]:
    return versions(settings, table, sids)


@contextlib.asynccontextmanager
async def through_proxy(
    settings: Settings, table: str, clock: FakeClock
) -> AsyncIterator[tuple[LosingProxy, MySQLStore]]:
    """An opened store whose connections go through a `LosingProxy`."""
    proxy = LosingProxy(settings["host"], settings["port"])
    await proxy.start()
    store = MySQLStore(
        **{**settings, "port": proxy.port}, table=table, clock=clock, cleanup_interval=None
    )
    try:
        await store.open()
        yield proxy, store
    finally:
        await store.close()
        await proxy.stop()


@pytest.mark.gen_test(timeout=60)
async def test_an_insert_whose_answer_is_lost_is_created_once(
    private_settings: Settings, private_table: str, clock: FakeClock
) -> None:
    async with through_proxy(private_settings, private_table, clock) as (proxy, store):
        sid = new_sid()
        proxy.drop_answer_to(b"INSERT INTO")
        assert await store.set(sid, record(clock, '{"new":1}'), expected_version=None) == 1
        assert proxy.dropped == 1
    assert rows(private_settings, private_table, [sid]) == {hash_sid(sid).hex(): ('{"new":1}', 1)}


@pytest.mark.gen_test(timeout=60)
async def test_an_update_whose_answer_is_lost_counts_as_saved(
    private_settings: Settings, private_table: str, clock: FakeClock
) -> None:
    async with through_proxy(private_settings, private_table, clock) as (proxy, store):
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        proxy.drop_answer_to(b"UPDATE `")
        assert await store.set(sid, record(clock, '{"b":2}'), expected_version=1) == 2
        assert proxy.dropped == 1
        got = await store.get(sid)
        assert got is not None and (got.data, got.version) == ('{"b":2}', 2)


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_whose_answer_is_lost_counts_as_saved(
    private_settings: Settings, private_table: str, clock: FakeClock
) -> None:
    async with through_proxy(private_settings, private_table, clock) as (proxy, store):
        sids = [new_sid() for _ in range(3)]
        for sid in sids:
            await store.set(sid, record(clock), expected_version=None)
        proxy.drop_answer_to(b"START TRANSACTION")
        saved = await asyncio.gather(
            *(
                store.set(sid, record(clock, f'{{"k":{k}}}'), expected_version=1)
                for k, sid in enumerate(sids)
            )
        )
        assert saved == [2, 2, 2]
        assert proxy.dropped == 1
    assert rows(private_settings, private_table, sids) == {
        hash_sid(sid).hex(): (f'{{"k":{k}}}', 2) for k, sid in enumerate(sids)
    }
