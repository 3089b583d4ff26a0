"""`Deadlines`: one timer ends every round trip past its deadline, with
``asyncio.timeout``'s meaning of cancellation (on asyncio itself; the MySQL
side is tests/mysql/test_deadlines.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tornado_sessions.stores.mysql.deadlines import Deadlines


async def _round_trip(deadlines: Deadlines, seconds: float, work: asyncio.Future[str]) -> str:
    """What `.Connections.on_connection` does around a round trip."""
    deadline = deadlines.start(seconds)
    try:
        return await work
    except BaseException as caught:
        if deadline.expired(caught):
            raise TimeoutError() from None
        raise
    finally:
        deadlines.end(deadline)


def test_a_round_trip_past_its_deadline_is_a_timeout_within_one_check() -> None:
    async def main() -> float:
        deadlines = Deadlines()
        never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await _round_trip(deadlines, 0.2, never)
        elapsed = time.monotonic() - started
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # withdrawn
        return elapsed

    elapsed = asyncio.run(main())
    assert 0.2 <= elapsed < 0.2 + 0.15, elapsed


def test_round_trips_in_time_are_untouched_and_the_timer_stops() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        loop = asyncio.get_running_loop()
        for n in range(50):
            done: asyncio.Future[str] = loop.create_future()
            loop.call_later(0.002, done.set_result, f"r{n}")
            assert await _round_trip(deadlines, 0.05, done) == f"r{n}"
        await asyncio.sleep(0.1)  # the timer finds nothing under way
        assert deadlines._timer is None
        # ...and the next round trip starts it again.
        never: asyncio.Future[str] = loop.create_future()
        with pytest.raises(TimeoutError):
            await _round_trip(deadlines, 0.05, never)

    asyncio.run(main())


def test_under_a_steady_stream_the_timer_fires_about_once_per_timeout() -> None:
    checks = 0

    class Counted(Deadlines):
        def _check(self, loop: asyncio.AbstractEventLoop) -> None:
            nonlocal checks
            checks += 1
            super()._check(loop)

    async def main() -> float:
        deadlines = Counted()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        for _ in range(300):  # 300 round trips of ~2 ms, timeout 50 ms
            done: asyncio.Future[str] = loop.create_future()
            loop.call_later(0.002, done.set_result, "ok")
            assert await _round_trip(deadlines, 0.05, done) == "ok"
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert checks <= elapsed / 0.05 + 2, (checks, elapsed)


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(_round_trip(deadlines, 5.0, never))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadlines._open

    asyncio.run(main())


def test_a_cancellation_from_elsewhere_at_the_deadline_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        loop = asyncio.get_running_loop()
        never: asyncio.Future[str] = loop.create_future()
        task = asyncio.ensure_future(_round_trip(deadlines, 0.05, never))
        await asyncio.sleep(0)
        (deadline,) = deadlines._open
        # The timer and the caller cancel in the same turn of the loop.
        loop.call_at(deadline.at, task.cancel)
        await asyncio.sleep(0.05 + 0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_each_round_trip_keeps_its_own_timeout() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        loop = asyncio.get_running_loop()
        slow: asyncio.Future[str] = loop.create_future()
        loop.call_later(0.3, slow.set_result, "slow")
        long = asyncio.ensure_future(_round_trip(deadlines, 2.0, slow))
        never: asyncio.Future[str] = loop.create_future()
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # a short timeout beside a long one
            await _round_trip(deadlines, 0.1, never)
        assert time.monotonic() - started < 0.1 + 0.15
        assert await long == "slow"  # the long one was not cut

    asyncio.run(main())


def test_the_same_deadlines_work_on_a_second_event_loop() -> None:
    deadlines = Deadlines()

    async def main() -> None:
        never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        with pytest.raises(TimeoutError):
            await _round_trip(deadlines, 0.05, never)

    async def first() -> None:
        # A round trip in flight when the loop ends leaves the timer behind.
        never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        asyncio.ensure_future(_round_trip(deadlines, 10.0, never))
        await asyncio.sleep(0)

    asyncio.run(first())
    asyncio.run(main())


def test_outside_a_task_is_refused() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        said: asyncio.Future[str] = loop.create_future()

        def callback() -> None:  # on the loop, but in no task
            try:
                Deadlines().start(1.0)
            except RuntimeError as exc:
                said.set_result(str(exc))

        loop.call_soon(callback)
        return await said

    assert "inside an asyncio task" in asyncio.run(main())
