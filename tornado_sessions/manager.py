"""`SessionManager`: the rules that turn cookies into sessions and back.

The manager knows the store, the cookie cipher and the configuration, and
decides, for one request, what to load and what to write.  It knows nothing
of Tornado: `.SessionMixin` feeds it the cookie and applies the cookie action
it returns.  The testing helpers use it directly.
"""

from __future__ import annotations

import enum
import logging
import secrets
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from ._rebase import hand_over
from .config import SessionConfig
from .cookies import CookieRules
from .crypto import CookieCipher
from .detached import AfterResponse
from .errors import SessionExists, SessionGone, SessionTooLarge
from .events import EventHook, EventKind, SessionEvents
from .peruser import PerUserRules
from .revocation import Revocation
from .saves import MAX_SAVE_ATTEMPTS, SaveCombiner, SaveRequest
from .session import EMPTY, Session, _Owner
from .stores.base import SessionRecord, SessionStore, fingerprint
from .stores.records import new_record
from .values import loads, user_text

__all__ = ["MAX_SAVE_ATTEMPTS", "CookieAction", "SessionManager"]

log = logging.getLogger("tornado_sessions")


class CookieAction(enum.Enum):
    """What the response must do with the session cookie."""

    NONE = "none"
    SET = "set"
    CLEAR = "clear"


@dataclass(slots=True)
class _Plan:
    write: str  # "none" | "insert" | "update" | "touch"
    cookie: CookieAction
    text: str = EMPTY
    expires_at: int = 0
    #: The write moves the expiry (else it keeps the stored one).
    slide: bool = False
    #: The checked record of an insert.
    record: SessionRecord | None = None


_NOTHING = _Plan("none", CookieAction.NONE)


def new_sid() -> str:
    """Return a new session id: 256 random bits, url-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class SessionManager(PerUserRules, CookieRules):
    """Loads and saves sessions for one application.

    :param store: where session records live.
    :param config: the settings (secrets, lifetimes, cookie and save rules).
    :param on_event: an async callable, or several, that receive a
        `.SessionEvent` for each thing that happens to a session (see
        `.events`); `.SessionMixin` passes the application's
        ``session_events`` setting.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       ``on_event``.
    """

    def __init__(
        self,
        store: SessionStore,
        config: SessionConfig,
        *,
        on_event: EventHook | Iterable[EventHook] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        hooks = [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
        #: Delivers this manager's `.SessionEvent` s to its hooks.
        self.events = SessionEvents(hooks, clock=config.clock)
        if hooks:  # the cleanup reports what it removes, a count per batch
            store.add_cleanup_listener(self.events.cleaned)
        #: This process's open WebSockets of the application, closed when
        #: their session ends (`.revocation`); this manager's ends tell it.
        self.revocation = Revocation(self)
        # Sessions regenerated and not saved yet: their insert is no "created".
        self._moved: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
        self.cipher = CookieCipher(config.secrets, clock=config.clock)
        #: Carries out the verbs of a session whose handler is gone (`.detached`).
        self.after_response = AfterResponse(self)
        # Saves of one session by this process's concurrent requests combine
        # into one versioned write; only other processes can still make such
        # a write conflict.
        self.saves = SaveCombiner(
            store,
            expiry=self._expiry_of,
            max_size=config.max_data_size,
            user_key=config.user_key,
        )

    # -- sessions ------------------------------------------------------------

    def new_session(self, owner: _Owner, *, stale_cookie: bool = False) -> Session:
        """Return a fresh, unsaved, empty session."""
        now = self.now()
        session = Session(
            owner,
            new_sid(),
            created_at=now,
            expires_at=now + self.config.max_age,
            user_key=self.config.user_key,
        )
        session._stale_cookie = session._cookie_held = stale_cookie
        return session

    async def load(
        self, owner: _Owner, cookie: str | None, *, client: str | None = None
    ) -> Session:
        """Return the session named by ``cookie`` (a cookie value, or None).

        A cookie that is not valid for us gives a fresh session without any
        store call.  Raises `.StoreError` if the store fails.
        """
        if cookie is None:
            return self.new_session(owner)
        payload = self.decode_cookie(cookie, client)
        if payload is None:
            return self.new_session(owner, stale_cookie=True)
        sid = payload["i"]
        record = await self.store.get(sid)
        now = self.now()
        absolute = self.config.absolute_max_age
        if record is not None and absolute is not None and record.created_at + absolute <= now:
            self._expired(sid, "absolute timeout", record.user_id)
            record = None
        if record is None:
            # Logout and expiry are no attack, but a replayed cookie can repeat
            # this line at will: it is rate-limited like the rejections.
            self._rejections.info(
                "ended",
                "A session cookie from %s names a session that is over or ended (no live "
                "record); starting a fresh session",
                client or "unknown client",
            )
            return self.new_session(owner, stale_cookie=True)
        try:
            data = loads(record.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.error(
                "Session %s holds data that is not a JSON object; starting a fresh session",
                fingerprint(sid),
            )
            return self.new_session(owner, stale_cookie=True)
        # The lifetime set by set_expiry() is the store's (record.ttl): a
        # cookie's own "t" (written by 0.1) is never trusted.
        session = Session(
            owner,
            sid,
            created_at=record.created_at,
            expires_at=record.expires_at,
            user_key=self.config.user_key,
        )
        session._load(record, data)
        session._cookie_held = True
        session._cookie_dirty = bool(payload["rotated"])
        if payload["e"] != record.expires_at:
            # A concurrent response of the browser's may have left it an
            # older view of the expiry: this response heals it.
            session._cookie_behind = True
        return session

    # -- committing ------------------------------------------------------------

    def _check_size(self, text: str) -> None:
        limit = self.config.max_data_size
        if len(text) > limit // 4:
            size = len(text.encode("utf-8"))
            if size > limit:
                raise SessionTooLarge(
                    f"session data is {size} bytes, over the limit of {limit} "
                    "(SESSION_MAX_DATA_SIZE); it was not saved and the stored session is unchanged"
                )

    def plan(self, session: Session, *, status: int = 200, headers_sent: bool = False) -> _Plan:
        """Decide what committing ``session`` must write and do to the cookie.

        Everything that could make the store refuse the write is checked
        here, before the save can join anyone else's.

        :raises TypeError: data JSON cannot hold (naming the key).
        :raises ValueError: a user id over 255 characters.
        :raises SessionTooLarge: data over ``SESSION_MAX_DATA_SIZE``.
        """
        if status >= 500:
            return _NOTHING
        text = session.serialize()
        modified = text != session._snapshot
        if session._is_new:
            # After destroy() (logout) the empty session is not stored even with
            # save_uninitialized: the cookie is cleared, as express-session sets none.
            if modified or (self.config.save_uninitialized and not session._destroyed):
                if headers_sent:
                    log.warning(
                        "A new session was modified after the response headers were sent; "
                        "it cannot get a cookie and was not saved (call await "
                        "self.session.save() before the first flush())"
                    )
                    return _NOTHING
                self._check_size(text)
                expires = self._expiry(session, self.now())
                record = self._record(session, text, expires)
                return _Plan("insert", CookieAction.SET, text, expires, True, record)
            if session._stale_cookie:
                return _Plan("none", CookieAction.CLEAR)
            return _NOTHING
        expires = self._expiry(session, self.now())
        # The expiry slides at most once per touch interval, for writes as for
        # reads; the cookie is re-issued exactly when it moves (or must be
        # re-encrypted), so that browser and server agree on it.
        due = self._touch_due(session, expires)
        cookie = (
            CookieAction.SET
            if due or session._cookie_dirty or self.config.rolling or session._cookie_behind
            else CookieAction.NONE
        )
        # resave: the session is written back once per request even if
        # unmodified, not again after an explicit save().
        resave = self.config.resave and not session._written
        if modified or resave or session._ttl_changed:
            self._check_size(text)
            # The user id is checked now: a bad one fails this save alone.
            user_text(session._data.get(self.config.user_key))
            return _Plan("update", cookie, text, expires if due else session._expires_at, due)
        if due:
            return _Plan("touch", cookie, text, expires, True)
        return _Plan("none", cookie)

    def _record(self, session: Session, text: str, expires: int) -> SessionRecord:
        ip, agent = session._client
        # The store normalizes the record (`.stores.base.check_record`) in set().
        user = user_text(session._data.get(self.config.user_key))
        # SessionRecord(data=text, created_at=..., ...) at half the cost:
        return new_record(text, session._created_at, expires, 0, user, 0, ip, agent, session._ttl)

    async def run(self, session: Session, plan: _Plan) -> CookieAction:
        """Carry out ``plan`` against the store; return the cookie action.

        Raises `.StoreError` if the store fails; the session's stored state
        is then unchanged.
        """
        if plan.write == "insert":
            record = plan.record or self._record(session, plan.text, plan.expires_at)
            sid, gens = session._id, session._gens()
            try:
                version = await self.store.set(sid, record, expected_version=None)
            except SessionExists:  # 256 random bits collided: never in practice
                sid = session._id = new_sid()
                version = await self.store.set(sid, record, expected_version=None)
            if self._moved.pop(sid, None) is not session:
                self.events.emit(EventKind.CREATED, fingerprint(sid), record.user_id, "first save")
            # Regenerated or destroyed meanwhile (Session's methods and the
            # response's save take turns, but a late save after a bypassed
            # finish() does not): no cookie carries sid.
            if session._id != sid:
                if await self.store.destroy(sid):
                    reason = "regenerated during its first save"
                    self.events.emit(EventKind.DESTROYED, fingerprint(sid), record.user_id, reason)
                return plan.cookie
            session.version = version
            session._snapshot = plan.text
            session._is_new = False
            session._carried = None
            session._base_exact = True
            session._stored_ttl = record.ttl
            session._expires_at = plan.expires_at
            session._settle(gens)
        elif plan.write == "update":
            request = SaveRequest(session, plan.text, plan.slide, plan.expires_at)
            try:
                await self.saves.save(request)
            except SessionGone:
                self._gone(session)
                return CookieAction.CLEAR
        elif plan.write == "touch":
            # Only if the stored lifetime is still the one this request
            # loaded: a stale request must not undo a concurrent set_expiry().
            ttl, gens = session._stored_ttl, session._gens()
            if await self.store.touch(session._id, plan.expires_at, ttl=ttl):
                self.saves.touched(session._id, plan.expires_at, ttl)
                session._expires_at = plan.expires_at
            elif not await self._adopt(session):
                return CookieAction.CLEAR
            session._settle(gens)  # planned with no lifetime change: clears the slide
        if plan.write != "none":
            session._written = True
        if session._user_bound and plan.write in ("insert", "update"):
            await self._limit_user_sessions(session)
        return plan.cookie

    async def _adopt(self, session: Session) -> bool:
        """After a touch the store refused: take the stored state (another
        request changed the session's lifetime since this one loaded it), so
        that the cookie re-issued carries the stored expiry; return False,
        the session made fresh, if it is gone."""
        record = await self.store.get(session._id)
        if record is None:
            self._gone(session)
            return False
        # Only the lifetime: the data is left to the next save, which
        # combines with what was stored as any save does.
        session._expires_at = record.expires_at
        session._stored_ttl = record.ttl
        if not session._ttl_changed:  # a set_expiry() made since still applies
            session._ttl = record.ttl
        return True

    def _gone(self, session: Session) -> None:
        log.info(
            "Session %s was ended by another request (logout or expiry); "
            "this request's changes were dropped and it was not recreated",
            session._fingerprint,
        )
        self.saves.forget(session._id)
        self._fresh(session)

    def _fresh(self, session: Session) -> None:
        """Turn ``session`` into a fresh, empty, unsaved one (its cookie, if
        the client holds one, is cleared unless the request stores it anew)."""
        now = self.now()
        session._reset(
            new_sid(), created_at=now, expires_at=now + self.config.max_age, keep_data=False
        )

    # -- explicit verbs --------------------------------------------------------

    async def reload(self, session: Session) -> None:
        """Replace the session's data with the stored one (for a session
        regenerated and not saved yet, the data its regenerate() moved)."""
        if session._is_new:
            moved = session._carried
            session._data = loads(moved if moved is not None else session._snapshot)
            return
        record = await self.store.get(session._id)
        if record is None:
            self._gone(session)
            return
        session._load(record, loads(record.data))

    async def regenerate(self, session: Session, keep_data: bool, restart_lifetime: bool) -> None:
        """Move the session to a new id and delete the old record.

        If the session ended meanwhile (logged out everywhere, destroyed by
        another request, ended by the per-user limit, expired), its data is
        not carried anywhere: the session becomes a fresh, empty one and the
        old cookie is cleared, so an in-flight request cannot revive it under
        a new id.

        Data that cannot be stored raises `TypeError` (naming it) before
        anything is deleted: the old session lives on.
        """
        if keep_data:
            session.serialize()
        if session._is_new:
            self._move(session, restart_lifetime, keep_data=keep_data)
            return
        start = session._id
        ended = await hand_over(self.store, session, keep_data=keep_data)
        live = ended is not None
        # The id whose record this call deleted: the one it started from, or
        # the one a concurrent regenerate() of this session object (another
        # message of the same WebSocket) gave it meanwhile.
        old_sid = start if ended is None else ended
        old = fingerprint(old_sid)
        self.saves.forget(old_sid)
        absolute = self.config.absolute_max_age
        if absolute is not None and session._created_at + absolute <= self.now():
            live = False
        if live:
            self._move(session, restart_lifetime, keep_data=keep_data)
            self._moved[session._id] = session  # its first save is no "created"
            self.events.emit(
                EventKind.REGENERATED,
                session._fingerprint,
                self.user_of(session),
                "regenerate()",
                previous=old,
            )
        else:
            log.info(
                "Session %s ended before this request could regenerate it (a logout, "
                "the per-user limit or expiry); its data was dropped and the request "
                "goes on with a fresh, empty session",
                old,
            )
            self._fresh(session)
        # The old id is over: its WebSockets in this process close now (the
        # session itself holds its new id already, so its own socket stays).
        self.revocation.ended(old_sid)

    def _move(self, session: Session, restart_lifetime: bool, *, keep_data: bool) -> None:
        """Give ``session`` a new id (its old record is gone or it had none)."""
        created = self.now() if restart_lifetime else session._created_at
        session._reset(
            new_sid(), created_at=created, expires_at=session._expires_at, keep_data=keep_data
        )
        log.info("Session regenerated as %s", session._fingerprint)

    async def destroy(self, session: Session) -> None:
        """Delete the session's record; the session becomes a fresh one."""
        sid = None if session._is_new else session._id
        if sid is not None:
            live = await self.store.destroy(sid)
            self.saves.forget(sid)
            log.info("Session %s destroyed", session._fingerprint)
            if live:
                self.events.emit(
                    EventKind.DESTROYED, session._fingerprint, self.user_of(session), "destroy()"
                )
        self._fresh(session)
        session._destroyed = True
        if sid is not None:  # its WebSockets in this process close now
            self.revocation.ended(sid)
