"""`tornado_sessions.stores.stamps`: last-use stamps never tie or go back
within a process, whatever the clock does (issue 17, finding 5)."""

from __future__ import annotations

import time

from tests.conftest import FakeClock
from tornado_sessions.stores.memory import MemoryStore
from tornado_sessions.stores.stamps import stamp


def test_a_clock_standing_still_still_gives_increasing_stamps() -> None:
    clock = FakeClock(1_700_000_000.25)
    got = [stamp(clock) for _ in range(1000)]
    assert got[0] == 1_700_000_000_250_000
    assert got == list(range(got[0], got[0] + 1000))


def test_a_clock_going_back_never_takes_the_stamps_back() -> None:
    clock = FakeClock(1_700_000_100.0)
    first = stamp(clock)
    clock.advance(-5)  # an NTP step back
    assert stamp(clock) == first + 1
    clock.advance(10)
    assert stamp(clock) == 1_700_000_105_000_000  # the clock again once ahead


def test_stores_on_one_clock_share_the_sequence_and_other_clocks_do_not() -> None:
    clock, elsewhere = FakeClock(1_700_000_200.0), FakeClock(1_700_000_200.0)
    one, two = MemoryStore(clock=clock, warn=False), MemoryStore(clock=clock, warn=False)
    a, b, c = one.stamp(), two.stamp(), one.stamp()
    assert a < b < c
    assert MemoryStore(clock=elsewhere, warn=False).stamp() == 1_700_000_200_000_000


def test_the_real_clock_gives_microseconds() -> None:
    before = int(time.time() * 1_000_000)
    got = [stamp(time.time) for _ in range(100)]
    assert got == sorted(set(got)) and before <= got[0] <= int(time.time() * 1_000_000) + 100


def test_the_default_clock_is_held_strongly() -> None:
    """`time.time`, every store's default clock, has its last stamp in the
    plain map: held weakly, each stamp made a weak reference and two calls
    of the weak map."""
    from tornado_sessions.stores import stamps

    first = stamp(time.time)
    assert stamp(time.time) > first
    assert stamps._strong[time.time] >= first + 1
    assert time.time not in stamps._weak
