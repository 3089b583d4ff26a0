"""`Session`: the session data seen by a handler, with change tracking."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SessionNotLoadedError
from .flashes import FLASH_KEY, FlashMessages
from .stores.base import fingerprint
from .values import check_value, dumps, lifetime_arg, same_json, user_text

if TYPE_CHECKING:
    from .stores.base import SessionRecord

__all__ = ["FLASH_KEY", "Session"]

EMPTY = "{}"


class _Owner(Protocol):
    async def _session_save(self, session: Session) -> None: ...
    async def _session_reload(self, session: Session) -> None: ...
    async def _session_regenerate(
        self, session: Session, keep_data: bool, restart_lifetime: bool
    ) -> None: ...
    async def _session_destroy(self, session: Session) -> None: ...


class Session(FlashMessages, MutableMapping[str, Any]):
    """The session of one request: a mutable mapping of JSON values.

    Handlers get it as ``self.session`` (see `.SessionMixin`); they never
    build one.  Changes are found by comparing the serialized data with a
    snapshot taken at load, so nested edits such as
    ``session["cart"].append(item)`` count without any ``changed()`` call.
    Values must be JSON that comes back as it went in: anything else (a
    datetime, a set, a tuple, bytes, a lone surrogate) raises `TypeError`
    naming the key when it is assigned, or, for a nested edit such as
    ``session["cart"].append(when)``, when the session is saved (a tuple
    put inside a value that is already stored comes back as a list).  The
    value of the user key (``SESSION_USER_KEY``, ``"user_id"`` by default)
    must be a `str` or an `int` of at most 255 characters: ``42`` and
    ``"42"`` are the same user.

    Besides the mapping it offers the session's lifecycle: `save`,
    `reload`, `regenerate` (call it at login), `destroy` (logout), `touch`
    and `set_expiry` (for "remember me").

    The session reaches its handler weakly, so that a finished request's
    handler, request and session are freed at once rather than by the
    garbage collector.  Its verbs work after the response too, once the
    handler is gone (``asyncio.ensure_future(self.session.save())`` from a
    WebSocket's ``on_close()``): they act on the store directly, set no
    cookie, and a store failure raises `.StoreError` (see `.detached`).

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       The session holds its handler weakly.
    """

    # What carries out the verbs once a weakly held owner is gone (set by
    # SessionMixin: the manager's `.detached.AfterResponse`).
    _detached: _Owner | None = None
    # The client's cookie names another expiry than the record (a concurrent
    # response left it an older view): re-issued when a response can, with
    # no warning when one cannot (a WebSocket's saves).  Set by the load.
    _cookie_behind = False
    # How many times set_expiry(), and set_expiry() or touch(), were called:
    # a save planned before the last call leaves it pending (the lifetime
    # is written, and the expiry slides, at the next save).
    _lifetime_gen = 0
    _slide_gen = 0

    def __init__(
        self,
        owner: _Owner,
        sid: str,
        *,
        data: dict[str, Any] | None = None,
        snapshot: str = EMPTY,
        is_new: bool = True,
        created_at: int,
        expires_at: int,
        version: int = 0,
        ttl: int | None = None,
        user_key: str = "user_id",
    ) -> None:
        self._owner = owner
        self._id = sid
        self._data: dict[str, Any] = data if data is not None else {}
        self._snapshot = snapshot
        self._is_new = is_new
        self._created_at = created_at
        self._expires_at = expires_at
        self.version = version
        self._ttl = ttl
        self._user_key = user_key
        # set_expiry() was called: this request changes the session's lifetime.
        self._ttl_changed = False
        # The lifetime the store holds (ttl is this request's, maybe unsaved).
        self._stored_ttl = ttl
        # The snapshot is exactly the stored data at `version` (False after a
        # save that merged other requests' changes the handler has not seen).
        self._base_exact = True
        # The user key was set (a login): the per-user limit applies at save.
        self._user_bound = False
        #: True once the handler has read or written the session (drives ``Vary: Cookie``).
        self.accessed = False
        # False while the data cannot differ from the snapshot: nothing was
        # set or deleted, and no mutable value (dict, list) was handed out,
        # through which a nested edit could happen.  Saves serializing the
        # data of read-only requests.
        self._maybe_changed = False
        # The cookie needs re-issuing (key rotation, expiry change, new id).
        self._cookie_dirty = False
        # The client holds a cookie that no longer names a live session.
        self._stale_cookie = False
        # Extend the expiry at the next commit even if not due.
        self._force_touch = False
        # destroy() was called: the fresh session is not saved unless modified.
        self._destroyed = False
        # (ip, user agent) recorded with the session when track_client is on.
        self._client: tuple[str | None, str | None] = (None, None)
        # The client holds our cookie (the request carried one), or this
        # response sets one: only then does ending the session clear it.
        self._cookie_held = False
        # A write of this session succeeded during this request (so that
        # resave does not write it a second time at the end).
        self._written = False
        # The data a regenerate() moved to this unsaved id, as JSON: what
        # reload() goes back to until the first save stores it (None: the
        # session holds no moved data).
        self._carried: str | None = None
        # Made at the first save(), reload(), regenerate() or destroy(), or
        # the response's save: they run one at a time on one session object
        # (two messages of one WebSocket handled at once).
        self._turns: asyncio.Lock | None = None

    # -- identity and state -------------------------------------------------
    #
    # Each public accessor marks the session accessed: a response built from
    # any of them (a CSRF token derived from the id, "expires in 3 days")
    # depends on the session and must not be kept by a shared cache.  The
    # library's own code reads the private fields.

    @property
    def id(self) -> str:
        """The session id (a secret: never log it; see `fingerprint`)."""
        self.accessed = True
        return self._id

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible tag of the id, safe to log and display."""
        self.accessed = True
        return fingerprint(self._id)

    @property
    def is_new(self) -> bool:
        """True until the session has been written to the store."""
        self.accessed = True
        return self._is_new

    @property
    def created_at(self) -> int:
        """When the session was created (seconds since the epoch).

        .. versionchanged:: 0.3
           Reading it marks the session accessed (as `id`, `fingerprint`,
           `is_new`, `expires_at` and `ttl` do).
        """
        self.accessed = True
        return self._created_at

    @property
    def expires_at(self) -> int:
        """When the session expires unless used again (seconds since the
        epoch), as stored."""
        self.accessed = True
        return self._expires_at

    @property
    def ttl(self) -> int | None:
        """The per-session lifetime set by `set_expiry` (as stored with the
        session), or None for the configured ``max_age``."""
        self.accessed = True
        return self._ttl

    @property
    def _fingerprint(self) -> str:
        # For the library's log lines: does not mark the session accessed.
        return fingerprint(self._id)

    @property
    def modified(self) -> bool:
        """True if the data differs from what was loaded or last saved."""
        return self.serialize() != self._snapshot

    def serialize(self) -> str:
        """Return the data as canonical JSON text (raises `TypeError` naming
        the key of a value JSON cannot hold)."""
        if not self._maybe_changed:
            return self._snapshot
        return dumps(self._data)

    def changed_keys(self) -> tuple[set[str], set[str]]:
        """Return ``(set_keys, deleted_keys)``: the top-level keys whose value
        differs from the snapshot, and those that were removed."""
        original = json.loads(self._snapshot)
        changed = {
            key
            for key, value in self._data.items()
            if key not in original or not same_json(value, original[key])
        }
        return changed, set(original) - set(self._data)

    # -- mapping -------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        if key == FLASH_KEY:
            raise KeyError(key)
        value = self._data[key]
        if isinstance(value, (dict, list)):
            self._maybe_changed = True
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be strings, not {type(key).__name__}")
        if key == FLASH_KEY:
            raise TypeError(f"session[{key!r}] is reserved for flash messages: use flash()")
        check_value(key, value)
        if key == self._user_key:
            user_text(value, name=f"session[{key!r}] (the user key, SESSION_USER_KEY)")
            self._user_bound = value is not None
        self.accessed = True
        self._maybe_changed = True
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        if key == FLASH_KEY:
            raise KeyError(key)
        self._maybe_changed = True
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        if FLASH_KEY in self._data:
            return (key for key in self._data if key != FLASH_KEY)
        return iter(self._data)

    def __len__(self) -> int:
        self.accessed = True
        return len(self._data) - (FLASH_KEY in self._data)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key != FLASH_KEY and key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` if it is not set."""
        self.accessed = True
        if key == FLASH_KEY:
            return default
        value = self._data.get(key, default)
        if isinstance(value, (dict, list)):
            self._maybe_changed = True
        return value

    def __repr__(self) -> str:
        keys = sorted(key for key in self._data if key != FLASH_KEY)
        return f"<Session {self._fingerprint} new={self._is_new} keys={keys}>"

    # -- lifecycle -----------------------------------------------------------

    async def save(self) -> None:
        """Write the session to the store now (if it needs writing) and put
        its cookie on the response.

        Not needed in ordinary handlers (the session is saved when the
        response finishes); useful before a long streamed response, and in
        a WebSocket.  Waits for a `save`, `reload`, `regenerate` or
        `destroy` of this session object under way (see `regenerate`).
        """
        async with self._turn():
            await self._handler()._session_save(self)

    async def reload(self) -> None:
        """Replace the data with what the store holds now, dropping unsaved
        changes.  If the session is gone from the store it becomes a fresh,
        empty one.  After a `regenerate` of a stored session, until the
        next save, it goes back to the data the (last) regenerate moved; a
        session never stored goes back to empty.  Waits for a call under
        way, as `save`.

        .. versionchanged:: 0.3
           After a `regenerate`, the data it moved is kept (it was emptied).
        """
        async with self._turn():
            await self._handler()._session_reload(self)

    async def regenerate(self, keep_data: bool = True, *, restart_lifetime: bool = False) -> None:
        """Give the session a new id and delete the record of the old one.

        Call it when privileges change (at login), so that an id planted
        before login is worthless after (session fixation).

        :param keep_data: keep the data under the new id (the default);
            False starts empty.  What moves is the newest stored data
            with this request's changes on top: a change that a
            concurrent request saved on the old id meanwhile is carried
            over, not lost.
        :param restart_lifetime: restart the absolute timeout's clock; by
            default the new id inherits the old session's creation time.
        :raises TypeError: the data (kept) holds a value JSON cannot hold,
            named; nothing is deleted and the old session lives on.

        Calls of `save`, `reload`, `regenerate` and `destroy` on one session
        object (say by two messages of one WebSocket handled at once) run
        one after the other, in the order they were made: each starts from
        what the one before left, so a login racing a login or a save
        neither drops the data nor logs the socket out.

        .. versionchanged:: 0.3
           A change saved on the old id by a concurrent request is carried
           over (it was dropped).  Calls on one session object take turns.
           Data that cannot be stored raises before the old record is
           deleted (it was deleted, then the save failed).
        """
        async with self._turn():
            await self._handler()._session_regenerate(self, keep_data, restart_lifetime)

    async def destroy(self) -> None:
        """Delete the session's record now and clear its cookie (logout).

        The handler can go on using ``self.session``: it is a fresh, empty
        session with a new id, saved only if modified.  Waits for a call
        under way, as `save`.
        """
        async with self._turn():
            await self._handler()._session_destroy(self)

    def _handler(self) -> _Owner:
        """The handler (or other owner) whose calls carry out the verbs; once
        a handler is gone, the owner that does without it (`.detached`)."""
        owner = self._owner
        try:
            # A handler is held through a weak proxy (see SessionMixin).
            owner.__class__  # noqa: B018
        except ReferenceError:
            if self._detached is None:
                raise SessionNotLoadedError(
                    "this session's request has ended and its handler is gone"
                ) from None
            return self._detached
        return owner

    def _turn(self) -> asyncio.Lock:
        """The lock that makes this object's store calls take turns."""
        if self._turns is None:
            self._turns = asyncio.Lock()
        return self._turns

    def touch(self) -> None:
        """Extend the session's expiry when this response finishes, even if
        the throttled touch is not due yet."""
        self._force_touch = True
        self._slide_gen += 1  # a save already at the store leaves it pending

    def set_expiry(self, seconds: int | None) -> None:
        """Give this session its own idle lifetime, e.g. for "remember me".

        :param seconds: lifetime in seconds (at most 400 days, and capped by
            the absolute timeout if one is set); None returns to the
            configured ``max_age``.

        The new expiry and the lifetime are written with the session when
        the response finishes, and the cookie is re-issued.  The server
        keeps the lifetime: a cookie issued earlier, with a longer one, can
        never lengthen the session again.

        .. versionchanged:: 0.2
           The lifetime is stored with the session, no longer in the cookie.
        """
        self._ttl = lifetime_arg(seconds)
        self._ttl_changed = True
        self._force_touch = True
        self._cookie_dirty = True
        self._lifetime_gen += 1
        self._slide_gen += 1

    # -- used by the manager -------------------------------------------------

    def _gens(self) -> tuple[int, int]:
        """The counters a save takes when it is planned (`_settle`)."""
        return self._lifetime_gen, self._slide_gen

    def _settle(self, gens: tuple[int, int]) -> bool:
        """A save planned when `_gens` read ``gens`` has been written: clear
        what it wrote (a changed lifetime, a slide asked for), unless
        set_expiry() or touch() was called since, which the next save then
        writes.  Return whether no set_expiry() was (the lifetime written
        is still the session's)."""
        if self._lifetime_gen != gens[0]:
            return False
        self._ttl_changed = False
        if self._slide_gen == gens[1]:
            self._force_touch = False
        return True

    def _load(self, record: SessionRecord, data: dict[str, Any]) -> None:
        self._data = data
        self._snapshot = record.data
        self._maybe_changed = False
        self._is_new = False
        self._created_at = record.created_at
        self._expires_at = record.expires_at
        self.version = record.version
        self._ttl = record.ttl
        self._stored_ttl = record.ttl
        self._ttl_changed = False
        self._base_exact = True
        self._user_bound = False

    def _reset(self, sid: str, *, created_at: int, expires_at: int, keep_data: bool) -> None:
        """Turn this into a new, unsaved session with id ``sid``."""
        self._id = sid
        if not keep_data:
            self._data = {}
            self._ttl = None
            self._carried = None
        elif not self._is_new or self._carried is not None:
            # Stored data moves (or moved data moves on): reload() keeps it.
            try:
                self._carried = dumps(self._data)
            except (TypeError, ValueError):
                self._carried = None  # its save will name what JSON cannot hold
        self._snapshot = EMPTY
        self._stored_ttl = None
        self._maybe_changed = True
        self._is_new = True
        self.version = 0
        self._base_exact = True
        self._created_at = created_at
        self._expires_at = expires_at
        self._cookie_dirty = True
        # The old id's cookie, if the client holds one, must go.
        self._stale_cookie = self._cookie_held
