"""The world one example runs in: processes, browsers, and a store whose
every call waits for the scheduler.

Each process is a `.SessionManager` of its own (its own combined saves, its
own secrets after a key rotation), on the store under test (on Galera, on a
node of its own).  Each request and process operation runs as a task; every
store call it makes pauses at the `GatedStore` until the `Scheduler`
releases it.  The scheduler lets the tasks run until each is paused or done,
then releases the paused call the generated schedule picks, waits for it to
complete, and hands it to the model, which looks at the store and checks the
invariants.  So the order of store calls is the schedule's, not the event
loop's or the network's: a dangerous order (a login's delete between a
concurrent request's load and save, a stale touch after a set_expiry) is
reached because the schedule asks for it, and a failing example replays.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from tornado_sessions.config import SessionConfig
from tornado_sessions.manager import CookieAction, SessionManager
from tornado_sessions.session import Session
from tornado_sessions.stores.base import SessionInfo, SessionRecord, SessionStore, fingerprint

#: Who makes the store calls of the running task (inherited by the tasks it
#: starts, such as a combined save's writer).
ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("checker_actor", default="setup")
#: Why: "end" (a logout, the cap, log out everywhere), "move" (regenerate
#: keeping the data), or "" (anything else).
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

    async def run(self, coros: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
        """Run ``coros`` concurrently under the schedule; return their results
        (an exception is returned, not raised: the model judges it)."""
        tasks = [asyncio.ensure_future(coro) for coro in coros]
        deadline = time.monotonic() + EXAMPLE_TIMEOUT
        try:
            while True:
                await self._settle(tasks)
                if all(task.done() for task in tasks):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("an example ran for too long:\n" + "\n".join(self.trace))
                if not self.paused:  # a task sleeps (a save's backoff)
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
            for call in self.paused:
                if not call.released.done():
                    call.released.cancel()
            self.paused = []
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

    def __init__(self, inner: SessionStore, world: World) -> None:
        super().__init__(clock=inner.clock)
        self.inner = inner
        self.world = world

    async def _gated(
        self, method: str, sid: str | None, run: Callable[[], Awaitable[Any]], *args: Any
    ) -> Any:
        call = Call(ACTOR.get(), method, sid, PURPOSE.get(), args)
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
        return await self._gated(  # type: ignore[no-any-return]
            "clear_expired", None, self.inner.clear_expired
        )

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


@dataclasses.dataclass(frozen=True)
class Row:
    """One live record, as the model sees it."""

    sid: str
    data: dict[str, Any]
    version: int
    created_at: int
    expires_at: int
    ttl: int | None
    user_id: str | None
    updated_at: int


@dataclasses.dataclass
class Browser:
    """A client: the cookie it holds (None: none)."""

    name: str
    cookie: str | None = None


#: The secrets a key rotation moves through (strong, generated).
SECRETS = (
    "checker-secret-0-dTq8Zr2mX5vLw9KfJp3HcYb7NgE4sUaQ",
    "checker-secret-1-Vn6Rk2LpTz9QxWm4JcHf8BsYd3GaEu5K",
    "checker-secret-2-Hb4Qw8NzXk2Rm6TvLp9JfYc3DsGe7UaV",
)


class Process:
    """One application process: a `.SessionManager` on its own store handle."""

    def __init__(self, index: int, store: GatedStore, config: dict[str, Any], clock: Any) -> None:
        self.index = index
        self.store = store
        self.config = config
        self.clock = clock
        self.rotations = 0
        self.manager = self._manager()

    def _manager(self) -> SessionManager:
        secret = SECRETS[self.rotations % len(SECRETS)]
        old = tuple(SECRETS[(self.rotations - i) % len(SECRETS)] for i in (1,) if self.rotations)
        config = SessionConfig(secret=secret, secret_fallbacks=old, clock=self.clock, **self.config)
        return SessionManager(self.store, config)

    def rotate(self) -> None:
        """Rotate the cookie key (the old one still reads): a redeploy."""
        self.rotations += 1
        self.manager = self._manager()


class Request:
    """One request's handler, as far as the session sees it (the `_Owner`)."""

    def __init__(self, name: str, process: Process, browser: Browser) -> None:
        self.name = name
        self.process = process
        self.manager = process.manager
        self.browser = browser
        #: The cookie this response sets: None (untouched), "" (cleared) or a value.
        self.response_cookie: str | None = None
        self.session: Session | None = None

    def _apply(self, action: CookieAction, session: Session) -> None:
        if action is CookieAction.SET:
            self.response_cookie = self.manager.cookie_value(session)
        elif action is CookieAction.CLEAR:
            self.response_cookie = ""

    async def load(self) -> Session:
        self.session = await self.manager.load(self, self.browser.cookie)
        return self.session

    async def commit(self) -> CookieAction:
        """The end of the request (as `.SessionMixin.finish` does)."""
        assert self.session is not None
        action = await self.manager.run(self.session, self.manager.plan(self.session))
        self._apply(action, self.session)
        if self.response_cookie is not None:
            self.browser.cookie = self.response_cookie or None
        return action

    async def _session_save(self, session: Session) -> None:
        plan = self.manager.plan(session)
        self._apply(await self.manager.run(session, plan), session)

    async def _session_reload(self, session: Session) -> None:
        await self.manager.reload(session)

    async def _session_regenerate(
        self, session: Session, keep_data: bool, restart_lifetime: bool
    ) -> None:
        await self.manager.regenerate(session, keep_data, restart_lifetime)

    async def _session_destroy(self, session: Session) -> None:
        await self.manager.destroy(session)


class World:
    """The stores, processes and browsers of one example."""

    def __init__(
        self,
        stores: Sequence[SessionStore],
        clock: Any,
        config: dict[str, Any],
        *,
        processes: int = 2,
        browsers: int = 3,
    ) -> None:
        self.clock = clock
        self.config = config
        self.raw = stores[0]
        self.sids: dict[str, str] = {}
        self.scheduler = Scheduler([], self._no_step)
        self.processes = [
            Process(i, GatedStore(stores[i % len(stores)], self), config, clock)
            for i in range(processes)
        ]
        self.browsers = [Browser(f"b{i}") for i in range(browsers)]
        #: The cookie each request's response set: None (none), "" (cleared).
        self.responses: dict[str, str | None] = {}
        #: The example's model (`.model.Model`), once the runner made it.
        self.model: Any = None

    async def _no_step(self, call: Call) -> None:
        pass

    def now(self) -> int:
        return int(self.clock())

    async def peek(self) -> dict[str, Row]:
        """Every live record, read from the real store (not gated)."""
        users = {info.fingerprint: info for info in await self.raw.all()}
        rows: dict[str, Row] = {}
        for fp, info in users.items():
            sid = self.sids.get(fp)
            if sid is None:
                continue
            record = await self.raw.get(sid)
            if record is None:
                continue
            rows[sid] = Row(
                sid,
                json.loads(record.data),
                record.version,
                record.created_at,
                record.expires_at,
                record.ttl,
                info.user_id,
                info.updated_at,
            )
        return rows
