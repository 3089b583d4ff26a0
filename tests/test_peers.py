"""Flash messages, a limit on sessions per user and lazy handlers on
MemoryStore (see tests/peers.py); store calls counted by the recording store."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import FakeClock, RecordingStore
from tests.contract import record
from tests.peers import (  # noqa: F401 - collected by pytest
    test_a_flash_survives_a_redirect_and_shows_once,
    test_a_lazy_handler_that_forgets_to_load_is_told_how,
    test_a_lazy_handler_that_never_reads_the_session_costs_nothing,
    test_a_limit_of_one_ends_every_other_session_at_login,
    test_flash_categories_and_order_are_kept,
    test_popping_an_empty_queue_writes_nothing,
    test_the_template_helper_shows_flashes_escaped,
    test_three_logins_of_one_user_leave_the_two_most_recent,
    test_without_a_limit_nothing_is_ended,
)
from tornado_sessions import MemoryStore, SessionStore
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import fingerprint

KINDS = {"get": "load", "set": "save", "touch": "touch", "destroy": "destroy"}


@pytest.fixture
def count(store: RecordingStore) -> Callable[[], Any]:
    """``with count() as seen: ...``, then ``seen()``: the store calls made,
    as ``{"load": n, "save": n, "limit": n, ...}``."""

    @contextlib.contextmanager
    def counting() -> Iterator[Callable[[], dict[str, int]]]:
        start = len(store.calls)
        yield lambda: dict(
            collections.Counter(
                KINDS.get(call, "limit" if call == "limit_user_sessions" else call)
                for call in store.calls[start:]
            )
        )

    return counting


@pytest.mark.gen_test
async def test_the_default_limit_of_any_store_ends_the_least_recently_used(
    clock: FakeClock,
) -> None:
    """`SessionStore.limit_user_sessions` as a third-party store inherits it."""
    store = MemoryStore(clock=clock)
    sids = [new_sid() for _ in range(4)]
    for sid in sids:
        await store.set(sid, record(clock, user="erin"), expected_version=None)
        clock.advance(10)
    ended = await SessionStore.limit_user_sessions(store, "erin", 2, current_sid=sids[0])
    assert ended == 2
    assert {i.fingerprint for i in await store.sessions_for_user("erin")} == {
        fingerprint(sids[0]),
        fingerprint(sids[3]),
    }
