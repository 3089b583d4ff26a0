"""MemoryStore: the store contract, plus what only it does."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.contract import StoreContract, record
from tornado_sessions import MemoryStore
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


class TestMemoryStoreContract(StoreContract):
    pass


@pytest.mark.gen_test
async def test_keys_are_hashes_not_ids(store: MemoryStore, clock: FakeClock) -> None:
    sid = new_sid()
    await store.set(sid, record(clock), expected_version=None)
    assert list(store._records) == [hash_sid(sid)]


@pytest.mark.gen_test
async def test_expired_entries_are_swept_from_memory(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock, sweep_interval=60)
    for _ in range(5):
        await store.set(new_sid(), record(clock, ttl=10), expected_version=None)
    clock.advance(61)
    await store.set(new_sid(), record(clock), expected_version=None)  # a write triggers the sweep
    assert len(store._records) == 1


def test_warns_outside_debug_mode(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING):
        MemoryStore().attach(debug=True)
    assert caplog.records == []
    store = MemoryStore()
    with caplog.at_level(logging.WARNING):
        store.attach(debug=False)
        store.attach(debug=False)
    assert len(caplog.records) == 1
    assert "restart" in caplog.records[0].getMessage()
