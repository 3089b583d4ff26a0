"""The store contract every session store implements.

A store maps a session id to a `SessionRecord` (JSON text, times, a version
and an optional user id) and knows nothing of HTTP, cookies or Tornado.
Stores never see session data as Python objects: the `.Session` serializes
it once, and the store keeps the text.

Session ids are secrets: a store keys its records by `hash_sid` of the id, so
a leaked table or memory dump is not a list of live cookies, and logs show
only `fingerprint`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import abc
import builtins
import logging
import time
from collections.abc import Callable, Iterable

from .. import sealing
from .._ratelimit import RateLimitedLog
from ..sealing import Unsealable, seal
from . import stamps
from .records import (
    SessionInfo,
    SessionRecord,
    check_record,
    fingerprint,
    hash_sid,
    replaced,
)

__all__ = [
    "SessionInfo",
    "SessionRecord",
    "SessionStore",
    "check_record",
    "fingerprint",
    "hash_sid",
]

log = logging.getLogger("tornado_sessions.stores")


class SessionStore(abc.ABC):
    """Abstract base class of session stores.

    Required: `get`, `set`, `destroy`, `touch`.  Also part of the contract
    (every bundled store implements them, and the contract test suite checks
    them): `all`, `length`, `clear`, `clear_expired`, `sessions_for_user` and
    `destroy_user_sessions`.  A store raises `.StoreError` when its backend
    fails; `.SessionMixin` turns that into a 503.

    :param clock: returns the current time in seconds; tests inject their own.

    .. versionadded:: 0.1
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._unsealable = RateLimitedLog(log)
        self._cleanup_listeners: list[Callable[[int], object]] = []

    def now(self) -> int:
        """The current time in whole seconds, from the store's clock."""
        return int(self.clock())

    def stamp(self) -> int:
        """The current time in microseconds, from the store's clock, never
        tied or behind within this process (`.stamps.stamp`): what orders
        the last uses of sessions.

        .. versionadded:: 0.3
        """
        return stamps.stamp(self.clock)

    def attach(self, *, debug: bool) -> None:  # noqa: B027 - optional hook
        """Called once when an application first uses this store.

        ``debug`` is the application's ``debug`` setting.  The default does
        nothing; `.MemoryStore` uses it to warn in production.
        """

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect now, so that a bad configuration fails at startup.

        Optional: stores connect on first use otherwise.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and stop background tasks."""

    @abc.abstractmethod
    async def get(self, sid: str) -> SessionRecord | None:
        """Return the live record of ``sid``, or None if it is missing or
        expired (the expiry is checked by the store, in the same lookup).

        The record must carry ``data``, ``created_at``, ``expires_at`` and
        ``version``; the other fields may be left at their defaults (a
        session's user, client and last use are read through `SessionInfo`:
        `all`, `sessions_for_user`), so that the lookup every request makes
        fetches no more than it needs.
        """

    @abc.abstractmethod
    async def set(self, sid: str, record: SessionRecord, *, expected_version: int | None) -> int:
        """Create or update the record of ``sid`` and return its new version.

        The record is first passed through `check_record` (so a lone
        surrogate or an over-long user id fails here, with nothing written).

        With ``expected_version=None`` the record is created; if the id exists
        `.SessionExists` is raised.  Otherwise the record is updated only if
        its stored version equals ``expected_version``: a missing or expired
        record raises `.SessionGone` (and is **not** recreated, so a
        concurrent logout wins), a different version raises
        `.SessionConflict`.  ``record.created_at`` is written at creation
        only.  An update never moves the expiry earlier unless it changes the
        session's lifetime (``record.ttl``), so that it cannot undo a
        concurrent `touch`.
        """

    @abc.abstractmethod
    async def destroy(self, sid: str, *, expected_version: int | None = None) -> bool:
        """Delete the record of ``sid``; return whether a live one existed
        (and was deleted).

        An expired record counts as none (a store may leave it to
        `clear_expired`): `.Session.regenerate` relies on the answer to
        never carry an ended session's data under a new id.  With
        ``expected_version`` the record is deleted only if its stored version
        is that one (else False, and nothing is deleted): `.Session.regenerate`
        deletes the version whose data it moves, so that a change saved by a
        concurrent request meanwhile is carried over, not lost.

        .. versionchanged:: 0.3
           The answer is about a *live* record; ``expected_version``.
        """

    @abc.abstractmethod
    async def touch(self, sid: str, expires_at: int, *, ttl: int | None) -> bool:
        """Set the expiry of a live record to ``expires_at`` without touching
        its data or version, but only if its stored lifetime (`SessionRecord.ttl`)
        is still ``ttl``, the one the request loaded; return True if it was
        set, False if it was not: the record is gone (missing or expired) or
        its lifetime changed.  A touch that is applied also records a use
        (`SessionInfo.updated_at`).

        The condition keeps a stale request from undoing a concurrent
        `.Session.set_expiry`: a request that loaded a 30-day session and
        finishes after another request shortened it to a minute must not
        give it 30 days again.  On False the manager reads the record
        (`get`): if it is live, the request's cookie is issued with the
        stored expiry, not the one the request computed, so that its
        cookie does not say the session ends before its record does.

        .. versionchanged:: 0.3
           ``ttl``: the touch applies only if the stored lifetime is
           unchanged, and False also means "not applied" (a store that
           answers True for a live record it did not change still works,
           but its cookie may then end before the record).
        """

    @abc.abstractmethod
    async def all(self) -> list[SessionInfo]:
        """Return every live session (for administration; may be slow)."""

    @abc.abstractmethod
    async def length(self) -> int:
        """Return the number of live sessions."""

    @abc.abstractmethod
    async def clear(self) -> int:
        """Delete every session; return how many were deleted."""

    @abc.abstractmethod
    async def clear_expired(self) -> int:
        """Delete expired records; return how many were deleted."""

    @abc.abstractmethod
    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """Return the live sessions bound to ``user_id``, most recently used
        first (by the last write or touch to the microsecond, then the most
        recently created).

        ``user_id`` is compared as text (`.values.user_text`): ``42`` and
        ``"42"`` name the same user, and ``"042"`` another.  Every per-user
        method compares it byte for byte: ``"alice "`` and ``"Alice"`` are
        not ``"alice"``.

        .. versionchanged:: 0.3
           Byte for byte on `.MySQLStore` too (its column ignored trailing
           spaces).
        """

    @abc.abstractmethod
    async def destroy_user_sessions(self, user_id: str, *, except_sid: str | None = None) -> int:
        """End every session of ``user_id`` (but ``except_sid``, if given):
        "log out everywhere".  Return how many were ended."""

    def add_cleanup_listener(self, listener: Callable[[int], object]) -> None:
        """Call ``listener(count)`` after each batch of expired records the
        store's cleanup removes (`clear_expired`, or a periodic sweep), with
        the batch's count; `.SessionManager` turns it into a
        `~.EventKind.CLEANED` event.  A listener that raises is logged.

        .. versionadded:: 0.3
        """
        self._cleanup_listeners.append(listener)

    def report_cleanup(self, count: int) -> None:
        """Tell the cleanup listeners (`add_cleanup_listener`) that the
        store's cleanup removed ``count`` expired records; a store of your
        own that cleans up calls it after each batch (nothing happens for a
        count of 0, and a failing listener is logged, never raised).

        .. versionadded:: 0.3
        """
        if not count:
            return
        for listener in getattr(self, "_cleanup_listeners", ()):
            try:
                listener(count)
            except Exception:
                log.exception("A cleanup listener failed (the cleanup went on)")

    def seal_data(self, sid: str, data: str, row_key: bytes) -> str:
        """Return ``data`` (a session's JSON) sealed for ``sid``
        (`.sealing.seal`), as a store keeps it; ``row_key`` is `hash_sid`
        of ``sid``.  The bundled stores call it in `set`, after
        `check_record`, and keep what it returns.

        .. versionadded:: 0.3
        """
        return seal(sid, row_key, data)

    def open_data(self, sid: str, data: str, row_key: bytes) -> str | None:
        """Return the JSON text of a stored ``data``: opened if it is sealed,
        as it is if it is the plain JSON of a row written before 0.3; or None
        if it does not open under ``sid`` (a row copied from another session,
        or altered), which is logged (rate-limited, with the `fingerprint`
        only): the request then gets a fresh session, as for a missing one.
        The bundled stores call it in `get`.

        .. versionadded:: 0.3
        """
        try:
            return sealing.open_data(sid, row_key, data)
        except Unsealable:
            self._unsealable.warning(
                "unsealable",
                "Stored session %s does not open under its own id (a row copied from another "
                "session, or altered): it is treated as missing",
                fingerprint(sid),
            )
            return None

    def seal_record(self, sid: str, record: SessionRecord, row_key: bytes) -> SessionRecord:
        """Return ``record`` with its data sealed for ``sid`` (`seal_data`),
        as a store keeps it; ``row_key`` is `hash_sid` of ``sid``.

        A store of your own calls it in `set`, after `check_record` (or
        `seal_data` on the text alone), and `open_record` in `get`.  The
        bundled stores call `seal_data` and `open_data` only: to seal
        differently in a subclass of one of them, override those two.

        .. versionadded:: 0.3
        """
        return replaced(record, data=self.seal_data(sid, record.data, row_key))

    def open_record(
        self, sid: str, record: SessionRecord | None, row_key: bytes
    ) -> SessionRecord | None:
        """Return a stored ``record`` with its data opened (`open_data`):
        plain JSON of a row written before 0.3 passes as it is; None if it
        does not open under ``sid`` (logged), a missing session.

        .. versionadded:: 0.3
        """
        if record is None:
            return None
        data = self.open_data(sid, record.data, row_key)
        if data is None:
            return None
        return record if data is record.data else replaced(record, data=data)

    async def count_unsealed(self) -> int:
        """Return how many stored sessions still hold plain JSON data, written
        before sealing (0.3); each is sealed at its next write.

        .. versionadded:: 0.3
        """
        raise NotImplementedError(f"{type(self).__name__} cannot count unsealed sessions")

    async def limit_user_sessions(self, user_id: str, limit: int, *, current_sid: str) -> int:
        """End the least recently used sessions of ``user_id`` so that, with
        ``current_sid``, it holds at most ``limit`` live sessions; return how
        many were ended.

        "Least recently used" is by the last write or touch, to the
        microsecond (`SessionRecord.updated_us`), ties broken by creation
        order: the order `sessions_for_user` lists.  The default lists the
        user's sessions and ends the extra ones one by one; the bundled
        stores do it in one statement.

        .. versionadded:: 0.2
        """
        if limit < 1:
            raise ValueError(f"a session limit must be at least 1, not {limit!r}")
        mine = fingerprint(current_sid)
        others = [
            info for info in await self.sessions_for_user(user_id) if info.fingerprint != mine
        ]
        ended = 0
        for info in others[limit - 1 :]:  # newest first: keep the first limit - 1
            ended += await self.destroy_user_session(user_id, info.fingerprint)
        return ended

    async def live(self, sids: Iterable[str]) -> builtins.set[str]:
        """Return those of ``sids`` whose session is live (stored and not
        expired), in one lookup.

        `.revocation` asks this for every open WebSocket of a process at
        each check, so the bundled stores answer in one step whatever the
        number of ids (`.MySQLStore`: one ``SELECT ... WHERE id IN (...)``
        on the id hashes).  The default asks `get` for each id.

        .. versionadded:: 0.3
        """
        return {sid for sid in set(sids) if await self.get(sid) is not None}

    @abc.abstractmethod
    async def destroy_user_session(self, user_id: str, fingerprint: str) -> bool:
        """End the one session of ``user_id`` whose `fingerprint` is given.

        Lets a "my sessions" page revoke a session without ever handling its
        id.  Returns whether one was ended.
        """
