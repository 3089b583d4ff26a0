"""Saves of one session combine: the write path of existing sessions.

When requests of this process save the same session at once (a browser's
parallel XHRs), they do not queue for a lock: their changes (the top-level
keys each request set or deleted, in the order the requests finished) are
applied to the latest state of the session this process knows, and written
by **one** version-checked update.  Each request waits only until the write
that carries its own change is durable; no request sleeps while another
request of this process could go ahead.

A write in flight is joined by the saves that arrive meanwhile, which then go
together in the next write.  A save alone is written as it is, with no extra
work: by the caller's own task, with no task of its own.  Only another
process can make a versioned write conflict: the row is then re-read, the
pending changes are applied to it again, and the write is retried (at once,
then after a short, bounded, randomized backoff).  A session that is gone
(logged out, expired) is never recreated.

This module knows the store contract and `.Session`, nothing of HTTP.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._rebase import Change, change_of
from .errors import SessionConflict, SessionGone, SessionTooLarge, StoreError
from .session import Session
from .stores.base import SessionStore
from .stores.records import new_record
from .values import dumps, loads, user_text

__all__ = ["MAX_SAVE_ATTEMPTS", "SaveCombiner", "SaveRequest"]

log = logging.getLogger("tornado_sessions")

#: How many versioned writes one combined save tries before giving up.
MAX_SAVE_ATTEMPTS = 16
#: The longest backoff after repeated conflicts with other processes (s).
MAX_BACKOFF = 0.05
#: Recently written states remembered (so that a save based on an older
#: load needs no re-read), and the largest data text remembered.
RECENT_SESSIONS = 256
RECENT_MAX_TEXT = 64 * 1024


@dataclass(slots=True, eq=False)
class SaveRequest:
    """One request's save of an existing session."""

    session: Session
    #: The request's whole data, serialized (checked by the caller).
    text: str
    #: The request moves the expiry (a touch is due, or set_expiry was called).
    slide: bool
    #: The expiry the request computed for itself.
    expires_at: int
    future: asyncio.Future[None] = field(init=False)
    base_version: int = field(init=False)
    exact: bool = field(init=False)
    #: The lifetime when the save was planned (set_expiry() may come later:
    #: that one is written, with its slide, by the next save).
    ttl: int | None = field(init=False)
    ttl_changed: bool = field(init=False)
    gens: tuple[int, int] = field(init=False)
    _change: Change | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.future = asyncio.get_running_loop().create_future()
        session = self.session
        self.base_version = session.version
        self.exact = session._base_exact
        self.ttl = session._ttl
        self.ttl_changed = session._ttl_changed
        self.gens = session._gens()

    def apply(self, data: dict[str, Any]) -> None:
        """Apply this request's change to ``data`` (the latest state): its keys,
        and its flash messages as "these were shown, these are new", so that
        concurrent requests neither show a message twice nor lose one
        (`._rebase.Change`)."""
        if self._change is None:
            self._change = change_of(self.session)
        self._change.apply(data)


@dataclass(slots=True)
class _State:
    """The latest stored state of a session that this process knows."""

    version: int
    text: str
    expires_at: int
    ttl: int | None
    created_at: int

    @classmethod
    def of(cls, session: Session, text: str | None = None) -> _State:
        return cls(
            session.version,
            session._snapshot if text is None else text,
            session._expires_at,
            session._stored_ttl,  # not ttl: set_expiry() may be unsaved
            session._created_at,
        )


@dataclass(slots=True)
class _Group:
    """The saves of one session: a write in flight and those queued behind it."""

    state: _State | None
    queue: list[SaveRequest] = field(default_factory=list)


class SaveCombiner:
    """Writes the saves of existing sessions, combining those of one session.

    :param store: the store written to.
    :param expiry: ``expiry(created_at, ttl)``: the expiry a session written
        now gets when it slides.
    :param max_size: the largest serialized session accepted, in bytes.
    :param user_key: the data key that binds a session to a user.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        expiry: Callable[[int, int | None], int],
        max_size: int,
        user_key: str,
    ) -> None:
        self.store = store
        self._expiry = expiry
        self._max_size = max_size
        self._user_key = user_key
        self._groups: dict[str, _Group] = {}
        self._recent: collections.OrderedDict[str, _State] = collections.OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Versioned writes sent so far, and how many of them met a save of
        #: another process (for tests and monitoring).
        self.writes = 0
        self.conflicts = 0

    def forget(self, sid: str) -> None:
        """Drop what is remembered of ``sid`` (it was destroyed or renamed)."""
        self._recent.pop(sid, None)

    def touched(self, sid: str, expires_at: int, ttl: int | None) -> None:
        """Note that ``sid``'s expiry was moved by a touch made with the
        lifetime ``ttl`` (which the store applied only if it was the stored one)."""
        state = self._recent.get(sid)
        if state is not None and state.ttl == ttl:
            state.expires_at = expires_at

    async def save(self, request: SaveRequest) -> None:
        """Write ``request``'s change, combined with concurrent saves of the
        same session; return once it is durable.

        :raises SessionGone: the session no longer exists (it is not recreated).
        :raises SessionTooLarge: this request's change made the data too large.
        :raises StoreError: the store failed.
        """
        sid = request.session._id
        group = self._groups.get(sid)
        if group is not None:
            self._learn(group, request)
            group.queue.append(request)
            await request.future
            return
        # Nothing in flight: the caller writes its own save at once (a lone
        # save needs no task of its own); whatever queues behind it meanwhile
        # is written after it by a task of the session's, which also takes
        # over the saves of a caller cancelled mid-write (its own timeout).
        group = self._groups[sid] = _Group(self._start_state(sid, request))
        try:
            await self._write(sid, group, [request], hand_over=True)
        finally:
            if group.queue:
                task = asyncio.get_running_loop().create_task(self._drain(sid, group))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                del self._groups[sid]
        await request.future  # settled by the write: its result or its error

    # -- internals -----------------------------------------------------------

    def _start_state(self, sid: str, request: SaveRequest) -> _State | None:
        """The newest of what the request loaded and what this process last
        wrote (None: unknown, to be read)."""
        own = _State.of(request.session) if request.exact else None
        recent = self._recent.get(sid)
        if recent is not None and (own is None or recent.version > own.version):
            return recent
        return own

    def _learn(self, group: _Group, request: SaveRequest) -> None:
        # A request that loaded a newer version than the one known (written
        # by another process) brings it along.  After a conflict the state
        # is unknown (None) until re-read: a load is not trusted then.
        state = group.state
        if request.exact and state is not None and request.base_version > state.version:
            group.state = _State.of(request.session)

    async def _drain(self, sid: str, group: _Group) -> None:
        try:
            while group.queue:
                batch, group.queue = group.queue, []
                await self._write(sid, group, batch)
        finally:
            del self._groups[sid]
            # Cancelled (the loop is closing): nothing may wait for ever.
            for request in group.queue:
                if not request.future.done():
                    request.future.cancel()

    async def _write(
        self, sid: str, group: _Group, batch: list[SaveRequest], *, hand_over: bool = False
    ) -> None:
        """Write ``batch`` (one session's saves, in finishing order) and settle
        each request's future; never raises.  With ``hand_over`` (the caller
        writes its own save), a cancellation is raised, and the saves the
        write took on go back to the head of the queue, to be written."""
        # Every request this write takes on, those that ride along after a
        # conflict included: on any failure each of them is settled.
        carried = list(batch)
        try:
            await self._write_batch(sid, group, batch, carried)
        except BaseException as exc:
            if hand_over and not isinstance(exc, Exception):
                group.state = None  # the write was interrupted: re-read first
                group.queue[:0] = [r for r in carried if not r.future.done()]
                raise
            for request in carried:
                if not request.future.done():
                    if isinstance(exc, Exception):
                        request.future.set_exception(_copy(exc))
                    else:
                        request.future.cancel()
            if not isinstance(exc, Exception):
                raise

    async def _write_batch(
        self, sid: str, group: _Group, batch: list[SaveRequest], carried: list[SaveRequest]
    ) -> None:
        conflicts = 0
        while True:
            if group.state is None:
                fresh = await self.store.get(sid)
                if fresh is None:
                    return self._gone(sid, group, batch)
                group.state = _State(
                    fresh.version, fresh.data, fresh.expires_at, fresh.ttl, fresh.created_at
                )
            state = group.state
            only = batch[0]
            if len(batch) == 1 and only.exact and only.base_version == state.version:
                text, slide, ttl = only.text, only.slide, only.ttl
                expires = only.expires_at
                data: dict[str, Any] | None = None
            else:
                data, text, slide, ttl, batch = self._merge(state, batch)
                if not batch:
                    return
                expires = self._expiry(state.created_at, ttl) if slide else state.expires_at
            last = batch[-1].session
            ip, agent = last._client
            user = user_text((data if data is not None else only.session._data).get(self._user_key))
            # SessionRecord(data=text, created_at=..., ...) at half the cost:
            record = new_record(text, state.created_at, expires, 0, user, 0, ip, agent, ttl)
            self.writes += 1
            try:
                version = await self.store.set(sid, record, expected_version=state.version)
            except SessionGone:
                return self._gone(sid, group, batch)
            except SessionConflict:
                self.conflicts += 1
                conflicts += 1
                if conflicts >= MAX_SAVE_ATTEMPTS:
                    raise StoreError(
                        f"session {last._fingerprint} could not be saved: {MAX_SAVE_ATTEMPTS} "
                        "saves by other processes won the race in a row"
                    ) from None
                group.state = None  # re-read, then apply the changes again
                # Saves that arrived meanwhile ride along.
                batch = batch + group.queue
                carried.extend(group.queue)
                group.queue = []
                if conflicts > 1:
                    cap = min(MAX_BACKOFF, 0.002 * 2 ** (conflicts - 2))
                    await asyncio.sleep(random.uniform(0, cap))
                continue
            new = _State(version, text, expires, ttl, state.created_at)
            group.state = new
            self._remember(sid, new)
            for request in batch:
                _saved(request, new)
            return

    def _merge(
        self, state: _State, batch: list[SaveRequest]
    ) -> tuple[dict[str, Any], str, bool, int | None, list[SaveRequest]]:
        """Apply the batch's changes, in order, to ``state``; a request whose
        change would make the data too large fails alone."""
        data: dict[str, Any] = loads(state.text)
        ttl, slide = state.ttl, False
        for request in batch:
            request.apply(data)
            if request.ttl_changed:
                ttl = request.ttl
            slide = slide or request.slide
        text = dumps(data)
        if not self._too_large(text):
            return data, text, slide, ttl, batch
        # Too large together: apply one change at a time, and refuse the
        # ones that push the data over the limit (as they would be alone).
        data = loads(state.text)
        ttl, slide, kept = state.ttl, False, []
        for request in batch:
            trial = dict(data)
            request.apply(trial)
            size = len(dumps(trial).encode("utf-8"))
            if size > self._max_size:
                if request.future.done():
                    continue
                request.future.set_exception(
                    SessionTooLarge(
                        f"session data would be {size} bytes, over the limit of "
                        f"{self._max_size} (SESSION_MAX_DATA_SIZE); this request's changes "
                        "were not saved and the stored session is unchanged by them"
                    )
                )
                continue
            data = trial
            kept.append(request)
            if request.ttl_changed:
                ttl = request.ttl
            slide = slide or request.slide
        return data, dumps(data), slide, ttl, kept

    def _too_large(self, text: str) -> bool:
        return len(text) > self._max_size // 4 and len(text.encode("utf-8")) > self._max_size

    def _remember(self, sid: str, state: _State) -> None:
        if len(state.text) > RECENT_MAX_TEXT:
            self._recent.pop(sid, None)
            return
        self._recent[sid] = state
        self._recent.move_to_end(sid)
        while len(self._recent) > RECENT_SESSIONS:
            self._recent.popitem(last=False)

    def _gone(self, sid: str, group: _Group, batch: list[SaveRequest]) -> None:
        group.state = None
        self.forget(sid)
        for request in batch + group.queue:
            if not request.future.done():
                request.future.set_exception(SessionGone("the session no longer exists"))
        group.queue = []


def _saved(request: SaveRequest, state: _State) -> None:
    """Bring the request's session up to the state just written."""
    session = request.session
    session.version = state.version
    session._expires_at = state.expires_at
    session._stored_ttl = state.ttl
    if session._settle(request.gens):  # no set_expiry() since the plan
        session._ttl = state.ttl
    session._is_new = False
    # The snapshot stays the request's own view of the data; it is exact
    # only if no other request's change was merged into the write.
    session._snapshot = request.text
    session._base_exact = request.text == state.text
    if not request.future.done():
        request.future.set_result(None)


def _copy(exc: Exception) -> Exception:
    """Each waiter raises its own exception object (one object raised in
    several tasks would share, and grow, one traceback)."""
    if isinstance(exc, StoreError):
        return exc.copy()
    if isinstance(exc, SessionConflict | SessionGone | SessionTooLarge):
        return type(exc)(*exc.args)
    return exc
