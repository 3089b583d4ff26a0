"""Run a coroutine at once, in the caller's stack, until it first waits.

`start` is what ``asyncio.Task(coro, eager_start=True)`` does on Python
3.12+ (the package supports 3.11): a coroutine that never waits (a save to
`.MemoryStore`, a session with nothing to write) finishes with no task, no
``call_soon`` and no extra loop turn; one that waits (a database round
trip) goes on in a task from the point where it waited.

.. versionadded:: 0.3
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["start"]

T = TypeVar("T")


def start(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run ``coro`` until it first waits; return a future of its result.

    The future is done already if ``coro`` finished without waiting, else
    it is the task that runs the rest.  An exception ``coro`` raises before
    waiting is set on the future, as a task would (``KeyboardInterrupt``
    and ``SystemExit`` propagate at once, as from a task's step).
    """
    future: asyncio.Future[T]
    try:
        waiting = coro.send(None)
    except StopIteration as stop:
        future = asyncio.get_running_loop().create_future()
        future.set_result(stop.value)
        return future
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # CancelledError included, as a task keeps it
        future = asyncio.get_running_loop().create_future()
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)
        return future
    return asyncio.ensure_future(_rest(coro, waiting))


async def _rest(coro: Coroutine[Any, Any, T], waiting: Any) -> T:
    result: T = await _Resumed(coro, waiting)
    return result


class _Resumed:
    """The rest of a started coroutine: hands the task driving it what the
    coroutine was waiting on, then passes each value or exception (a
    cancellation included) back into the coroutine, as if the task had
    driven it from the start."""

    __slots__ = ("_coro", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting = self._coro, self._waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:
                try:
                    waiting = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                waiting = coro.send(sent)
            except StopIteration as stop:
                return stop.value
