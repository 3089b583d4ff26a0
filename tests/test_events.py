"""Session events on MemoryStore, through real HTTP requests (see tests/events.py)."""

from typing import Any

import pytest

from tests.conftest import SECRET, FakeClock
from tests.events import (  # noqa: F401 - collected by pytest
    app,
    recorder,
    test_a_failing_hook_is_logged_and_costs_the_request_nothing,
    test_a_session_found_expired_is_reported_with_its_timeout,
    test_a_slow_hook_does_not_hold_the_response,
    test_created_regenerated_destroyed_reach_the_hook_in_order,
    test_log_out_everywhere_is_one_event_with_its_count,
    test_no_hook_no_events,
    test_the_cleanup_reports_counts_not_one_event_per_row,
    test_the_per_user_limit_reports_what_it_ended,
)
from tornado_sessions import MemoryStore, SessionConfig, SessionManager
from tornado_sessions.events import EventKind, SessionEvent
from tornado_sessions.stores.base import SessionRecord


@pytest.mark.gen_test
async def test_on_event_of_a_manager_and_the_periodic_sweep(clock: FakeClock) -> None:
    """``SessionManager(on_event=...)`` takes one hook or several; MemoryStore's
    own sweep (during a write) reports what it removed, as one event."""
    store = MemoryStore(clock=clock, sweep_interval=60)
    got: list[tuple[str, SessionEvent]] = []

    async def first(event: SessionEvent) -> None:
        got.append(("first", event))

    async def second(event: SessionEvent) -> None:
        got.append(("second", event))

    manager = SessionManager(
        store, SessionConfig(secret=SECRET, clock=clock), on_event=[first, second]
    )
    now = int(clock())
    for i in range(3):
        record = SessionRecord(data="{}", created_at=now, expires_at=now + 10)
        await store.set(f"{i:043d}", record, expected_version=None)
    clock.advance(61)
    await store.set(
        "x" * 43,
        SessionRecord(data="{}", created_at=now, expires_at=now + 999),
        expected_version=None,
    )
    await manager.events.join()
    assert [(who, e.kind, e.count) for who, e in got] == [
        ("first", EventKind.CLEANED, 3),
        ("second", EventKind.CLEANED, 3),
    ]


def test_a_listener_that_raises_does_not_stop_the_cleanup(clock: FakeClock, caplog: Any) -> None:
    store = MemoryStore(clock=clock)

    def broken(count: int) -> None:
        raise RuntimeError("listener bug")

    store.add_cleanup_listener(broken)
    store._records[b"k" * 32] = SessionRecord(data="{}", created_at=0, expires_at=1)
    assert store._sweep(int(clock())) == 1
    assert not store._records
    assert any("cleanup listener failed" in r.getMessage() for r in caplog.records)
