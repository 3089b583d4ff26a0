"""Session events on MySQLStore, through real HTTP requests (see
tests/events.py), and the cleanup's events per batch of a real ``DELETE``."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import SECRET, FakeClock
from tests.contract import record
from tests.events import (  # noqa: F401 - collected by pytest
    app,
    recorder,
    test_a_failing_hook_is_logged_and_costs_the_request_nothing,
    test_a_session_found_expired_is_reported_with_its_timeout,
    test_a_slow_hook_does_not_hold_the_response,
    test_created_regenerated_destroyed_reach_the_hook_in_order,
    test_log_out_everywhere_is_one_event_with_its_count,
    test_the_cleanup_reports_counts_not_one_event_per_row,
    test_the_per_user_limit_reports_what_it_ended,
)
from tornado_sessions import SessionConfig, SessionManager
from tornado_sessions.events import EventKind, SessionEvent
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.mysql import MySQLStore


@pytest.mark.gen_test(timeout=60)
async def test_each_cleanup_batch_is_one_event_with_its_count(
    store: MySQLStore, clock: FakeClock
) -> None:
    got: list[SessionEvent] = []

    async def hook(event: SessionEvent) -> None:
        got.append(event)

    manager = SessionManager(store, SessionConfig(secret=SECRET, clock=clock), on_event=hook)
    for _ in range(5):
        await store.set(new_sid(), record(clock, ttl=10), expected_version=None)
    await store.set(new_sid(), record(clock, ttl=3600), expected_version=None)
    clock.advance(11)
    assert await store.clear_expired(batch_size=2) == 5
    async with asyncio.timeout(10):
        await manager.events.join()
    assert [(e.kind, e.count, e.fingerprint) for e in got] == [
        (EventKind.CLEANED, 2, None),
        (EventKind.CLEANED, 2, None),
        (EventKind.CLEANED, 1, None),
    ]
    assert all(e.time == int(clock()) for e in got)
    assert await store.length() == 1
