"""The gate every store call of the checker's world passes: each waits
until the `Scheduler` releases it, one at a time, in the order the
schedule picks (see `.world`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import dataclasses
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tornado_sessions.stores.base import SessionInfo, SessionRecord, SessionStore, fingerprint

if TYPE_CHECKING:
    from .world import World

#: Who makes the store calls of the running task (inherited by the tasks it
#: starts, such as a combined save's writer).
ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("checker_actor", default="setup")
#: Why: "move" (regenerate keeping the data), "renew" (regenerate dropping
#: it), or "" (anything else).
PURPOSE: contextvars.ContextVar[str] = contextvars.ContextVar("checker_purpose", default="")

#: The longest one example may run (a hang fails the example, never the run).
EXAMPLE_TIMEOUT = 60.0


@dataclasses.dataclass
class Call:
    """One store call, as the scheduler saw it."""

    actor: str
    method: str
    sid: str | None
    purpose: str
    args: tuple[Any, ...] = ()
    #: The process whose store handle made the call.
    process: int = -1
    result: Any = None
    error: BaseException | None = None
    released: asyncio.Future[None] = dataclasses.field(default_factory=asyncio.Future)
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def label(self) -> str:
        """The call, before it runs: actor, method, session, purpose."""
        what = f"{self.actor}: {self.method}"
        if self.sid is not None:
            what += f"({fingerprint(self.sid)[:6]})"
        if self.purpose:
            what += f" [{self.purpose}]"
        return what

    def __str__(self) -> str:
        what = self.label
        outcome = type(self.error).__name__ if self.error is not None else repr(self.result)
        return f"{what} -> {outcome[:60]}"


class Scheduler:
    """Releases paused store calls one at a time, in the schedule's order.

    :param choices: a fixed schedule: at each step, the index (modulo the
        number of paused calls) of the call to release.  When it runs out,
        the oldest paused call goes first.
    :param on_step: awaited after each call completes (the model's check).

    A generated run sets `choose` instead: at each step where more than one
    call waits, it is handed the calls waiting at that moment and returns
    the index of the one to release (the runner draws it from Hypothesis,
    so every order is reachable and a failing one shrinks towards "oldest
    first").
    """

    def __init__(self, choices: Sequence[int], on_step: Callable[[Call], Awaitable[None]]) -> None:
        self.choices = list(choices)
        self.choose: Callable[[Sequence[Call]], int] | None = None
        #: A fixed order to reach (regressions): ``"r5 set"`` releases the
        #: next ``set`` of the actor whose name starts with ``r5`` as soon
        #: as it is paused; the generated choices decide the rest.
        self.script: list[str] = []
        self.on_step = on_step
        #: Called each time every task is paused at the store or done.
        self.on_settle: Callable[[], None] = lambda: None
        #: Whether work the actors started in the background is still under
        #: way (a combined save's drain, a socket check, event delivery): a
        #: round does not end before it is done, so that no task outlives
        #: its example.
        self.busy: Callable[[], bool] = lambda: False
        #: Exceptions that end the run as soon as an actor raises one (an
        #: invariant's violation): raised before the next schedule draw, so
        #: that Hypothesis running out of data there cannot discard it.
        self.fatal: tuple[type[BaseException], ...] = ()
        self.paused: list[Call] = []
        self.trace: list[str] = []

    async def pause(self, call: Call) -> None:
        self.paused.append(call)
        await call.released

    def _pick(self) -> int:
        if self.script:
            prefix, method = self.script[0].split()
            for index, call in enumerate(self.paused):
                if call.actor.startswith(prefix) and call.method == method:
                    self.script.pop(0)
                    return index
        if self.choose is not None:
            return self.choose(self.paused) if len(self.paused) > 1 else 0
        step = len(self.trace)
        pick = self.choices[step] if step < len(self.choices) else 0
        return pick % len(self.paused)

    async def _settle(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Let every task run until it is paused at the store or done."""
        quiet, last = 0, None
        for _ in range(500):
            await asyncio.sleep(0)
            now = (len(self.paused), sum(task.done() for task in tasks))
            quiet = quiet + 1 if now == last else 0
            last = now
            if quiet >= 4:
                return

    async def _wind_down(self) -> None:
        """Cancel the calls still paused, and those that the cancellations
        start (a cancelled save hands its queue to a drain), until none is
        left: an example cut short (a failure, or Hypothesis ending a draw)
        leaves no task waiting for ever."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for call in self.paused:
                if not call.released.done():
                    call.released.cancel()
            self.paused = []
            await asyncio.sleep(0)
            if self.paused:
                continue
            if not self.busy():
                return
            await asyncio.sleep(0.001)  # a drain at the database
        print("checker: background work still under way after 5 s of winding down", file=sys.stderr)

    async def run(self, coros: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
        """Run ``coros`` concurrently under the schedule; return their results
        (an exception is returned, not raised: the model judges it)."""
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        deadline = time.monotonic() + EXAMPLE_TIMEOUT
        try:
            while True:
                await self._settle(tasks)
                for task in tasks:
                    if task.done() and not task.cancelled():
                        error = task.exception()
                        if isinstance(error, self.fatal):
                            raise error
                self.on_settle()
                # Also the calls of what the actors started in the background
                # (a revocation check, a combined save) run before the round ends.
                if all(task.done() for task in tasks) and not self.paused and not self.busy():
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("an example ran for too long:\n" + "\n".join(self.trace))
                if not self.paused:  # a task sleeps (a save's backoff), or is at the database
                    await asyncio.sleep(0.002)
                    continue
                call = self.paused.pop(self._pick())
                call.released.set_result(None)
                await asyncio.wait_for(call.done.wait(), EXAMPLE_TIMEOUT)
                self.trace.append(str(call))
                await self.on_step(call)
        finally:
            for task in tasks:
                task.cancel()
            await self._wind_down()
        out = []
        for task in tasks:
            if task.cancelled():
                out.append(asyncio.CancelledError())
            else:
                out.append(task.exception() or task.result())
        return out


class GatedStore(SessionStore):
    """The store under test, every call of which waits for the scheduler.

    Not a mock: each call goes to the real store once released.  It also
    learns the ids of the sessions it creates (`World.sids`), so the model
    can read every record back.
    """

    def __init__(self, inner: SessionStore, world: World, index: int = 0) -> None:
        super().__init__(clock=inner.clock)
        self.inner = inner
        self.world = world
        self.index = index
        # The cleanup's counts reach this handle's listeners (its process's
        # manager) only for a cleanup run through this handle.
        self._cleaning = False
        inner.add_cleanup_listener(self._relay)

    def _relay(self, count: int) -> None:
        if self._cleaning:
            self.report_cleanup(count)

    async def _gated(
        self, method: str, sid: str | None, run: Callable[[], Awaitable[Any]], *args: Any
    ) -> Any:
        call = Call(ACTOR.get(), method, sid, PURPOSE.get(), args, self.index)
        await self.world.scheduler.pause(call)
        try:
            call.result = await run()
            return call.result
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            call.done.set()

    async def get(self, sid: str) -> SessionRecord | None:
        return await self._gated("get", sid, lambda: self.inner.get(sid))  # type: ignore[no-any-return]

    async def set(self, sid: str, record: SessionRecord, *, expected_version: int | None) -> int:
        self.world.sids[fingerprint(sid)] = sid
        return await self._gated(  # type: ignore[no-any-return]
            "set",
            sid,
            lambda: self.inner.set(sid, record, expected_version=expected_version),
            expected_version,
        )

    async def destroy(self, sid: str, *, expected_version: int | None = None) -> bool:
        return await self._gated(  # type: ignore[no-any-return]
            "destroy",
            sid,
            lambda: self.inner.destroy(sid, expected_version=expected_version),
            expected_version,
        )

    async def touch(self, sid: str, expires_at: int, *, ttl: int | None) -> bool:
        return await self._gated(  # type: ignore[no-any-return]
            "touch", sid, lambda: self.inner.touch(sid, expires_at, ttl=ttl), expires_at, ttl
        )

    async def all(self) -> list[SessionInfo]:
        return await self._gated("all", None, self.inner.all)  # type: ignore[no-any-return]

    async def length(self) -> int:
        return await self._gated("length", None, self.inner.length)  # type: ignore[no-any-return]

    async def clear(self) -> int:
        return await self._gated("clear", None, self.inner.clear)  # type: ignore[no-any-return]

    async def clear_expired(self) -> int:
        async def run() -> int:
            self._cleaning = True
            try:
                return await self.inner.clear_expired()
            finally:
                self._cleaning = False

        return await self._gated("clear_expired", None, run)  # type: ignore[no-any-return]

    async def live(self, sids: Iterable[str]) -> builtins.set[str]:
        asked = frozenset(sids)
        return await self._gated("live", None, lambda: self.inner.live(asked), asked)  # type: ignore[no-any-return]

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return await self._gated(  # type: ignore[no-any-return]
            "sessions_for_user", None, lambda: self.inner.sessions_for_user(user_id), user_id
        )

    async def destroy_user_sessions(self, user_id: str, *, except_sid: str | None = None) -> int:
        return await self._gated(  # type: ignore[no-any-return]
            "destroy_user_sessions",
            except_sid,
            lambda: self.inner.destroy_user_sessions(user_id, except_sid=except_sid),
            user_id,
        )

    async def limit_user_sessions(self, user_id: str, limit: int, *, current_sid: str) -> int:
        return await self._gated(  # type: ignore[no-any-return]
            "limit_user_sessions",
            current_sid,
            lambda: self.inner.limit_user_sessions(user_id, limit, current_sid=current_sid),
            user_id,
            limit,
        )

    async def destroy_user_session(self, user_id: str, fingerprint: str) -> bool:
        return await self._gated(  # type: ignore[no-any-return]
            "destroy_user_session",
            None,
            lambda: self.inner.destroy_user_session(user_id, fingerprint),
            user_id,
            fingerprint,
        )
