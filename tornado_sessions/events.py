"""Session events: what happened to sessions, for an audit log.

An application registers an async callable, as the ``session_events``
setting of its `tornado.web.Application` or as ``on_event`` of a
`.SessionManager`, and receives a `SessionEvent` each time a session is
created, regenerated, destroyed, ended for its user ("log out everywhere"),
ended by the per-user limit, found expired, or removed by the cleanup:

.. example: events-hook given handlers,store

.. code-block:: python

    import logging

    import tornado.web
    from tornado_sessions.events import SessionEvent

    audit_log = logging.getLogger("myapp.audit")

    async def audit(event: SessionEvent) -> None:
        audit_log.info("%s %s user=%s: %s", event.kind, event.fingerprint,
                       event.user_id, event.reason)

    app = tornado.web.Application(handlers, session_store=store, session_events=audit)

Events are delivered in the order they happened, by one background task per
`.SessionManager`: the request that caused an event never waits for the
hook, and a hook that raises (or a queue overfull because the hook is too
slow) is logged and costs the request nothing, its save included.  An event
names a session by its `~tornado_sessions.stores.fingerprint`, never by its id.

.. versionadded:: 0.3
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ._ratelimit import RateLimitedLog

__all__ = ["EventHook", "EventKind", "SessionEvent", "SessionEvents"]

log = logging.getLogger("tornado_sessions.events")

#: Events waiting for the hook, at most; past it new events are dropped (and
#: the drop is logged, rate-limited) rather than held without bound.
MAX_PENDING = 10_000


class EventKind(enum.StrEnum):
    """What happened to a session (the values are the kinds' names)."""

    #: A new session was stored (its first save).
    CREATED = "created"
    #: The session moved to a new id (`.Session.regenerate`): ``previous`` is
    #: the old fingerprint, ``fingerprint`` the new one.
    REGENERATED = "regenerated"
    #: The session was ended by its own request (`.Session.destroy`: logout).
    DESTROYED = "destroyed"
    #: Sessions of a user were ended from another session ("log out
    #: everywhere", or one ended from a "my sessions" page): ``count`` of them.
    USER_ENDED = "user_ended"
    #: A login ended the user's least recently used sessions past
    #: ``SESSION_MAX_PER_USER``: ``count`` of them.
    LIMITED = "limited"
    #: A request presented a session that is over by time (idle or absolute
    #: timeout).
    EXPIRED = "expired"
    #: The cleanup removed ``count`` expired rows (one event per batch).
    CLEANED = "cleaned"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One thing that happened to a session (or, for ``count`` > 1, to several).

    .. versionadded:: 0.3
    """

    kind: EventKind
    #: The session's `~tornado_sessions.stores.fingerprint` (never its id):
    #: for `EventKind.USER_ENDED` and `EventKind.LIMITED`, the session whose
    #: request ended the others
    #: (or the one ended, when one was ended by fingerprint); None when no
    #: single session is concerned (`EventKind.CLEANED`).
    fingerprint: str | None
    #: The user the session belongs to, when known.
    user_id: str | None
    #: Why, in a few words (e.g. "idle timeout", "log out everywhere").
    reason: str
    #: When, in whole seconds since the epoch (the configured clock).
    time: int
    #: The fingerprint before `EventKind.REGENERATED` (else None).
    previous: str | None = None
    #: How many sessions the event concerns.
    count: int = 1


#: What receives events: an async callable taking one `SessionEvent`.
EventHook = Callable[[SessionEvent], Awaitable[object]]


class SessionEvents:
    """Delivers events to the hooks, in order, in a background task.

    :param hooks: the async callables that receive each event.
    :param clock: returns the current time in seconds.

    .. versionadded:: 0.3
    """

    def __init__(self, hooks: Iterable[EventHook], clock: Callable[[], float]) -> None:
        self.hooks = list(hooks)
        self.clock = clock
        self._pending: collections.deque[SessionEvent] = collections.deque()
        # Runs while events wait, and ends when none is left (so that no
        # task outlives its event loop).
        self._task: asyncio.Task[None] | None = None
        self._limited = RateLimitedLog(log)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def emit(
        self,
        kind: EventKind,
        fingerprint: str | None,
        user_id: str | None,
        reason: str,
        *,
        previous: str | None = None,
        count: int = 1,
    ) -> None:
        """Queue an event for the hooks (nothing if there is none); never
        blocks and never raises."""
        if not self.hooks:
            return
        if len(self._pending) >= MAX_PENDING:
            self._limited.warning(
                "full",
                "Session event %s dropped: %d events wait for a hook that is too slow",
                kind.value,
                MAX_PENDING,
            )
            return
        event = SessionEvent(
            kind, fingerprint, user_id, reason, int(self.clock()), previous=previous, count=count
        )
        self._pending.append(event)
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._deliver())
            except RuntimeError:  # no running event loop: nothing can deliver it
                self._pending.pop()
                log.warning("Session event %s dropped: no running event loop", kind.value)

    async def _deliver(self) -> None:
        while self._pending:
            event = self._pending.popleft()
            for hook in self.hooks:
                try:
                    await hook(event)
                except Exception:
                    log.exception(
                        "A session event hook failed on a %s event (the request that caused "
                        "it was not affected)",
                        event.kind.value,
                    )

    def cleaned(self, count: int) -> None:
        """A store's cleanup listener: ``count`` expired rows were removed
        (one batch)."""
        self.emit(EventKind.CLEANED, None, None, "expired rows removed by the cleanup", count=count)

    async def join(self) -> None:
        """Wait until every event emitted so far has been delivered (for
        tests, and for a clean shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
