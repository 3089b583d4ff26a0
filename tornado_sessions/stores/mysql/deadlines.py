"""Deadlines of round trips, kept by one timer per store.

Each round trip (the wait for a pooled connection and the statement) must
end within the store's timeout, ``SESSION_DB_TIMEOUT``.  ``asyncio.timeout``
would schedule and cancel a timer per round trip (with its object, its
context manager and the loop's clean-up of cancelled timers: about a
tenth of the client's work on a point ``SELECT`` on aiomysql);
`Deadlines` instead registers the round trip in a set, and one timer, set
for the earliest deadline under way, cancels every task whose deadline
has passed.  `Deadline.expired` turns that cancellation into a
`TimeoutError` exactly as ``asyncio.timeout`` does (a cancellation that
also came from elsewhere stays a cancellation).

.. versionadded:: 0.3
"""

from __future__ import annotations

import asyncio

__all__ = ["Deadline", "Deadlines"]


class Deadline:
    """One round trip's deadline (see `Deadlines.start`)."""

    __slots__ = ("at", "task", "cancelling", "fired")

    def __init__(self, at: float, task: asyncio.Task[object]) -> None:
        self.at = at
        self.task = task
        self.cancelling = task.cancelling()
        #: The timer cancelled the task for this deadline.
        self.fired = False

    def expired(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the cancellation this deadline caused, and no
        other: then raise a `TimeoutError` instead.  The deadline's
        cancellation request is withdrawn here in any case (call this with
        whatever ended the round trip)."""
        if not self.fired:
            return False
        self.fired = False  # withdrawn once, whatever ``exc`` is
        return self.task.uncancel() <= self.cancelling and isinstance(exc, asyncio.CancelledError)


class Deadlines:
    """The round trips under way in one store, and the timer that ends the
    ones past their deadline.

    The timer is set for the earliest deadline of the round trips under
    way; when it fires it cancels those past their deadline and is set
    again for the earliest that remains (none: it stops, and the next round
    trip sets it).  Round trips of one store share one timeout, so a round
    trip that begins never needs an earlier timer than the one set: under
    a steady load the timer fires about once per timeout, whatever the
    number of statements.
    """

    def __init__(self) -> None:
        self._open: set[Deadline] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, seconds: float) -> Deadline:
        """Register a round trip of the running task, to end within
        ``seconds``.  Pair with `end` in a ``finally``.

        :raises RuntimeError: outside a task (as ``asyncio.timeout`` does).
        """
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("the session store's round trips must run inside an asyncio task")
        loop = task.get_loop()
        deadline = Deadline(loop.time() + seconds, task)
        self._open.add(deadline)
        if self._timer is None or deadline.at < self._timer.when() or self._loop is not loop:
            # None yet, a later one (a shorter timeout), or another loop's.
            self._set(loop, deadline.at)
        return deadline

    def end(self, deadline: Deadline) -> None:
        """The round trip of ``deadline`` ended (however)."""
        self._open.discard(deadline)

    def _set(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._timer = loop.call_at(when, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        earliest = None
        for deadline in self._open:
            if deadline.fired:
                continue
            if deadline.at <= now:
                deadline.fired = True
                deadline.task.cancel()
            elif earliest is None or deadline.at < earliest:
                earliest = deadline.at
        if earliest is not None:
            self._set(loop, earliest)

    def close(self) -> None:
        """Stop the timer (the store is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
