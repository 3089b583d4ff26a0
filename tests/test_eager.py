"""tornado_sessions._eager.start: a coroutine runs at once until it first
waits, then in a task, with its results, errors and cancellations intact."""

from __future__ import annotations

import asyncio

import pytest

from tornado_sessions._eager import start


def run(coro_fn):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_fn())


def test_a_coroutine_that_never_waits_finishes_before_start_returns() -> None:
    async def main() -> None:
        steps: list[str] = []

        async def quick() -> int:
            steps.append("ran")
            return 7

        before = len(asyncio.all_tasks())
        future = start(quick())
        assert steps == ["ran"]
        assert future.done() and future.result() == 7
        assert len(asyncio.all_tasks()) == before  # no task was made

    run(main)


def test_a_coroutine_that_waits_runs_its_first_part_at_once_and_the_rest_in_a_task() -> None:
    async def main() -> None:
        steps: list[str] = []
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def slow() -> str:
            steps.append("before")
            got = await gate
            steps.append(f"after {got}")
            await asyncio.sleep(0)  # a bare yield, as a task sees it
            steps.append("end")
            return got.upper()

        future = start(slow())
        assert steps == ["before"]
        assert not future.done()
        gate.set_result("x")
        assert await asyncio.wait_for(future, 5) == "X"
        assert steps == ["before", "after x", "end"]

    run(main)


def test_an_error_before_the_first_wait_is_the_futures() -> None:
    async def main() -> None:
        async def broken() -> None:
            raise ValueError("no")

        future = start(broken())
        assert future.done()
        with pytest.raises(ValueError, match="no"):
            await future

    run(main)


def test_an_error_after_a_wait_is_the_tasks_and_the_coroutine_can_catch_one_thrown_in() -> None:
    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        caught: list[str] = []

        async def body() -> str:
            try:
                await gate
            except KeyError as exc:
                caught.append(str(exc))
            raise RuntimeError("after")

        future = start(body())
        gate.set_exception(KeyError("gate"))
        with pytest.raises(RuntimeError, match="after"):
            await asyncio.wait_for(future, 5)
        assert caught == ["'gate'"]

    run(main)


def test_cancelling_the_rest_cancels_the_coroutine_where_it_waits() -> None:
    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        cleaned: list[str] = []

        async def body() -> None:
            try:
                await gate
            finally:
                cleaned.append("finally")

        future = start(body())
        await asyncio.sleep(0)
        future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await future
        assert cleaned == ["finally"]
        assert gate.cancelled()  # what it waited on was cancelled, as by a task

    run(main)


def test_a_coroutine_cancelled_before_it_waits_gives_a_cancelled_future() -> None:
    async def main() -> None:
        async def body() -> None:
            raise asyncio.CancelledError

        future = start(body())
        assert future.cancelled()

    run(main)


def test_a_result_travels_through_several_waits() -> None:
    async def main() -> None:
        async def body() -> int:
            total = 0
            for i in range(5):
                await asyncio.sleep(0)
                total += await asyncio.wait_for(asyncio.sleep(0, i), 5)
            return total

        assert await asyncio.wait_for(start(body()), 5) == 10

    run(main)
