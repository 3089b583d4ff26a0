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

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from tornado_sessions.config import SessionConfig
from tornado_sessions.events import SessionEvent
from tornado_sessions.manager import CookieAction, SessionManager
from tornado_sessions.session import Session
from tornado_sessions.stores.base import SessionStore

from .gate import ACTOR, PURPOSE, Call, GatedStore, Scheduler

__all__ = ["ACTOR", "PURPOSE", "TOKEN", "Browser", "Call", "Process", "Request", "Row", "World"]


#: The data key of a session's lineage token (see `.model`).
TOKEN = "_t"


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
        #: The events this process's managers delivered, in order.
        self.events: list[SessionEvent] = []
        self.manager = self._manager()
        #: Every manager the process had (a key rotation makes a new one).
        self.managers = [self.manager]
        #: The process's open WebSockets are watched by its first manager's
        #: revocation (a key rotation changes the cookie key, not the sockets).
        self.revocation = self.manager.revocation

    def _manager(self) -> SessionManager:
        secret = SECRETS[self.rotations % len(SECRETS)]
        old = tuple(SECRETS[(self.rotations - i) % len(SECRETS)] for i in (1,) if self.rotations)
        config = SessionConfig(secret=secret, secret_fallbacks=old, clock=self.clock, **self.config)
        return SessionManager(self.store, config, on_event=self._event)

    async def _event(self, event: SessionEvent) -> None:
        self.events.append(event)

    def rotate(self) -> None:
        """Rotate the cookie key (the old one still reads): a redeploy."""
        self.rotations += 1
        # The old manager is gone with the redeploy: its cleanup listener too.
        self.store._cleanup_listeners.remove(self.manager.events.cleaned)
        self.manager = self._manager()
        self.managers.append(self.manager)


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
            Process(i, GatedStore(stores[i % len(stores)], self, i), config, clock)
            for i in range(processes)
        ]
        self.scheduler.busy = self._background_busy
        self.browsers = [Browser(f"b{i}") for i in range(browsers)]
        #: The cookie each request's response set: None (none), "" (cleared).
        self.responses: dict[str, str | None] = {}
        #: The example's model (`.model.Model`), once the runner made it.
        self.model: Any = None
        #: The WebSockets opened (`.live.Socket`), open or closed.
        self.sockets: list[Any] = []
        #: The manager each actor's store calls come from.
        self.managers: dict[str, SessionManager] = {}

    async def _no_step(self, call: Call) -> None:
        pass

    def _background_busy(self) -> bool:
        """Whether work a process does in the background is under way: a
        combined save being written, a check of open sockets, event delivery."""
        for process in self.processes:
            for manager in process.managers:
                if manager.saves._tasks:
                    return True
                for task in (manager.revocation._checking, manager.events._task):
                    if task is not None and not task.done():
                        return True
        return False

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
