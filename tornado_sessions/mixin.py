"""`SessionMixin`: server-side sessions for Tornado request handlers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import tornado.iostream
import tornado.web

from .config import SessionConfig
from .errors import SessionNotLoadedError, StoreError
from .manager import CookieAction, SessionManager, _Plan
from .session import Session
from .stores.base import SessionInfo

__all__ = ["SessionMixin"]

log = logging.getLogger("tornado_sessions")

if TYPE_CHECKING:
    _HandlerBase = tornado.web.RequestHandler
else:
    _HandlerBase = object

_MANAGER_ATTR = "_tornado_sessions_manager"


class SessionMixin(_HandlerBase):
    """Gives a `~tornado.web.RequestHandler` a server-side ``self.session``.

    List it *before* ``RequestHandler`` in the bases::

        class Counter(SessionMixin, tornado.web.RequestHandler):
            async def get(self):
                self.session["n"] = self.session.get("n", 0) + 1
                self.write({"n": self.session["n"]})

        app = tornado.web.Application(
            [(r"/", Counter)],
            session_store=MemoryStore(),
            session_config=SessionConfig.from_env(),
        )

    The session is loaded in `prepare` (a handler that overrides
    ``prepare()`` must call ``await super().prepare()``) and saved when the
    response finishes, **before** it is sent: `finish` (and so ``redirect()``,
    ``render()`` and Tornado's auto-finish) waits for the store write, so a
    client that follows a redirect always sees its own write.  The cookie is
    put in place before the first `flush`, so streaming handlers work.

    Application settings read: ``session_store`` (a `.SessionStore`,
    required) and ``session_config`` (a `.SessionConfig`; by default
    `.SessionConfig.from_env` on first use).  They are read once, when the
    application's `.SessionManager` is made by its first request (override
    `get_session_store` or `get_session_config` to supply them otherwise).
    Build the config at startup, as above, so that a misconfiguration
    fails before the server listens.

    A store failure answers ``503 Service Unavailable`` and is logged; no
    cookie is sent for data that was not stored.  Nothing is saved when the
    response status is 500 or more.

    When Tornado answers a request with an error before the session is
    loaded (an XSRF failure, a method not allowed: it checks those before
    ``prepare()``), the error page can still read `session` (and so
    ``current_user``): it is an empty session that is never saved.

    A response that reads the session, or sets or clears its cookie, gets
    ``Vary: Cookie`` and ``Cache-Control: private``, so that no shared cache
    serves one user's page or cookie to another.  A handler that sets its
    own ``Cache-Control`` keeps it, except that a response carrying a
    ``Set-Cookie`` never keeps ``public`` or ``s-maxage``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``Cache-Control: private`` also on responses that only read the
       session.
    .. versionchanged:: 0.2
       The session of an error page sent before the session was loaded is
       an empty stand-in (it raised `.SessionNotLoadedError`); a WebSocket
       handshake saves nothing (see `finish`).
    """

    _session: Session | None = None
    _session_done = False
    _session_pending: asyncio.Future[None] | None = None
    # prepare() has started loading the session.
    _session_loading = False
    # An error response began before the session was loaded, and the empty
    # session that stands in for it on the error page.
    _session_rejected = False
    _session_standin: Session | None = None

    # -- hooks -----------------------------------------------------------------

    def get_session_store(self) -> Any:
        """Return the application's `.SessionStore`.

        Called once, when the first request makes the application's
        `.SessionManager`; the default reads the ``session_store`` setting.
        """
        store = self.settings.get("session_store")
        if store is None:
            raise RuntimeError(
                "SessionMixin needs a session store: pass session_store=MemoryStore() "
                "(development) or session_store=MySQLStore.from_config(config) to "
                "tornado.web.Application(...)"
            )
        return store

    def get_session_config(self) -> SessionConfig:
        """Return the application's `.SessionConfig`.

        Called once, when the first request makes the application's
        `.SessionManager`; the default reads the ``session_config`` setting,
        or builds one with `.SessionConfig.from_env`.
        """
        config = self.settings.get("session_config")
        if config is None:
            return SessionConfig.from_env()
        if not isinstance(config, SessionConfig):
            raise TypeError("the session_config application setting must be a SessionConfig")
        return config

    def get_session_manager(self) -> SessionManager:
        """Return the application's `.SessionManager` (made once, on first use)."""
        app = self.application
        manager: SessionManager | None = app.__dict__.get(_MANAGER_ATTR)
        if manager is None:
            store = self.get_session_store()
            manager = SessionManager(store, self.get_session_config())
            store.attach(debug=bool(self.settings.get("debug")))
            setattr(app, _MANAGER_ATTR, manager)
        return manager

    # -- the session -----------------------------------------------------------

    @property
    def session(self) -> Session:
        """The current request's `.Session` (a mutable mapping), loaded by
        `prepare`.

        Before it is loaded, ``self.session`` follows one rule: on an error
        page sent before the load (`send_error`, when Tornado rejected the
        request before ``prepare()`` ran, or a ``prepare()`` raised before
        calling ``super().prepare()``), it is an empty session that is
        never saved and sets no cookie, so that `write_error`,
        ``get_current_user`` and templates work as for an anonymous
        visitor; anywhere else it raises `.SessionNotLoadedError` naming
        the cause.

        .. versionchanged:: 0.2
           The empty session of an early error page; the error names the
           cause that applies.
        """
        session = self._session
        if session is None:
            return self._session_unloaded()
        return session

    def _session_unloaded(self) -> Session:
        """``self.session`` before the session is loaded: the stand-in of an
        early error page, or the error that says why it is not loaded."""
        if self._session_rejected:
            if self._session_standin is None:
                now = int(time.time())
                self._session_standin = Session(
                    _StandIn(self.get_status()), "", created_at=now, expires_at=now
                )
            return self._session_standin
        raise SessionNotLoadedError(self._session_not_loaded_cause())

    def _session_not_loaded_cause(self) -> str:
        cls = type(self)
        name = cls.__name__
        mro = cls.__mro__
        base = next((c for c in mro if c.__dict__.get("session") is not None), SessionMixin)
        if tornado.web.RequestHandler in mro and mro.index(tornado.web.RequestHandler) < mro.index(
            base
        ):
            return (
                f"{name}.session cannot load: SessionMixin comes after RequestHandler in the "
                f"bases of {name}, so its prepare() never runs; list it first, as in "
                f"class {name}(SessionMixin, tornado.web.RequestHandler)"
            )
        if getattr(self, "path_args", None) is None:
            return (
                f"{name}.session was used in initialize() (or __init__): the session is "
                "loaded later, by prepare(); read it in prepare() after "
                "'await super().prepare()', or in the handler's methods"
            )
        if self._session_loading:
            return (
                f"{name}.session was used while prepare() was still loading it (from a "
                "hook such as get_session_store() or get_session_config()?)"
            )
        owner = next((c for c in mro if "prepare" in c.__dict__), SessionMixin)
        if owner is SessionMixin:
            return (
                f"{name}.session was used before prepare() ran: Tornado calls "
                "check_xsrf_cookie() and parses the body before it, so the session cannot "
                "be used there"
            )
        return (
            f"{name}.session was used before the session was loaded: "
            f"{owner.__name__}.prepare() overrides SessionMixin.prepare() and has not called "
            "it; call 'await super().prepare()' first in it"
        )

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Send an error page, as `tornado.web.RequestHandler.send_error`
        does; if the session was not loaded yet, the page sees an empty
        session (see `session`).

        .. versionadded:: 0.2
        """
        if self._session is None:
            self._session_rejected = True
        super().send_error(status_code, **kwargs)

    def _session_cookie(self, name: str) -> tuple[str | None, bool]:
        """Return (the cookie's value, whether it was sent more than once).

        Only our cookie is looked for, in one pass over the header (parsing
        every cookie, as ``get_cookie`` does, costs more than the rest of a
        returning visitor's session handling).  The value is returned
        exactly as sent: its form, surrounding quotes and any whitespace
        included, is checked by the cookie cipher alone.
        """
        header = self.request.headers.get("Cookie")
        if not header or name not in header:
            return None, False
        value: str | None = None
        count = 0
        for line in self.request.headers.get_list("Cookie"):
            for part in line.split(";"):
                key, sep, found = part.partition("=")
                if sep and key.strip(" \t") == name:
                    count += 1
                    value = found
        if count > 1:
            return None, True
        return value, False

    async def prepare(self) -> None:
        """Load the session, then run the next ``prepare()`` in the MRO.

        Handlers that override ``prepare()`` call ``await super().prepare()``
        before they touch ``self.session``.
        """
        self._session_loading = True
        manager = self.get_session_manager()
        value, duplicated = self._session_cookie(manager.config.cookie_name)
        client = self.request.remote_ip
        if duplicated:
            manager.log_rejected(
                "duplicated",
                "Rejected session cookies from %s: the cookie was sent more than once "
                "(possible cookie tossing); starting a fresh session",
                client,
            )
        try:
            session = await manager.load(self, value, client=client)
        except StoreError as exc:
            raise self._session_store_failed("loading the session", exc) from None
        if duplicated:
            session._stale_cookie = True
        if manager.config.track_client:
            session._client = (client, self.request.headers.get("User-Agent"))
        self._session = session
        result = super().prepare()
        if result is not None:
            await result

    # -- the user's sessions -------------------------------------------------

    async def get_user_sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        """List the live sessions of a user (by default the current one's).

        Each `.SessionInfo` carries a fingerprint, never a session id, so a
        "my sessions" page can show them and offer to end one with
        `end_user_session`.  Returns ``[]`` when no user is logged in.
        """
        manager = self.get_session_manager()
        user = user_id if user_id is not None else manager.user_of(self.session)
        if user is None:
            return []
        try:
            return await manager.user_sessions(user)
        except StoreError as exc:
            raise self._session_store_failed("listing a user's sessions", exc) from None

    async def end_user_sessions(
        self, user_id: str | None = None, *, keep_current: bool = True
    ) -> int:
        """End every session of a user: "log out everywhere".

        :param user_id: whose sessions; by default the current session's user.
        :param keep_current: keep this request's session (the default), as
            after a password change; False ends it too (its cookie is then
            cleared).
        :returns: how many sessions were ended.  Their cookies get a fresh,
            empty session on their next request, in every process.
        """
        manager = self.get_session_manager()
        session = self.session
        user = user_id if user_id is not None else manager.user_of(session)
        if user is None:
            return 0
        current_is_users = manager.user_of(session) == user
        try:
            count = await manager.end_user_sessions(
                user, except_session=session if keep_current else None
            )
            if not keep_current and current_is_users:
                await manager.destroy(session)
        except StoreError as exc:
            raise self._session_store_failed("ending a user's sessions", exc) from None
        return count

    async def end_user_session(self, fingerprint: str, user_id: str | None = None) -> bool:
        """End one session of a user, named by its fingerprint (from
        `get_user_sessions`); return whether one was ended."""
        manager = self.get_session_manager()
        user = user_id if user_id is not None else manager.user_of(self.session)
        if user is None:
            return False
        if fingerprint == self.session.fingerprint:
            await self.session.destroy()
            return True
        try:
            return await manager.store.destroy_user_session(user, fingerprint)
        except StoreError as exc:
            raise self._session_store_failed("ending a session", exc) from None

    # -- explicit verbs (called by Session) ----------------------------------

    def _session_store_failed(self, doing: str, exc: Exception) -> tornado.web.HTTPError:
        log.error("Session store failed while %s: %s", doing, exc)
        return tornado.web.HTTPError(503, reason="Service Unavailable")

    async def _session_save(self, session: Session) -> None:
        manager = self.get_session_manager()
        plan = manager.plan(session, headers_sent=self._headers_written)
        try:
            action = await manager.run(session, plan)
        except StoreError as exc:
            raise self._session_store_failed("saving the session", exc) from None
        self._session_apply(action)

    async def _session_reload(self, session: Session) -> None:
        try:
            await self.get_session_manager().reload(session)
        except StoreError as exc:
            raise self._session_store_failed("reloading the session", exc) from None

    async def _session_regenerate(
        self, session: Session, keep_data: bool, restart_lifetime: bool
    ) -> None:
        try:
            await self.get_session_manager().regenerate(session, keep_data, restart_lifetime)
        except StoreError as exc:
            raise self._session_store_failed("regenerating the session", exc) from None

    async def _session_destroy(self, session: Session) -> None:
        try:
            await self.get_session_manager().destroy(session)
        except StoreError as exc:
            raise self._session_store_failed("destroying the session", exc) from None

    # -- response plumbing -----------------------------------------------------

    def _session_apply(self, action: CookieAction) -> None:
        """Put the cookie decision and the caching headers on the response."""
        session = self._session
        if session is None or self._headers_written:
            if action is CookieAction.SET and session is not None and session._cookie_dirty:
                log.warning("Session cookie could not be updated: headers were already sent")
            return
        if session.accessed or action is not CookieAction.NONE:
            vary = self._headers.get("Vary")
            if not vary:
                self.set_header("Vary", "Cookie")
            elif "cookie" not in vary.lower():
                self.set_header("Vary", f"{vary}, Cookie")
        if action is CookieAction.NONE:
            # A response built from one user's session is that user's: no
            # shared cache may keep it, unless the handler chose otherwise.
            if session.accessed and "Cache-Control" not in self._headers:
                self.set_header("Cache-Control", "private")
            return
        manager = self.get_session_manager()
        config = manager.config
        if action is CookieAction.SET:
            max_age = manager.cookie_max_age(session)  # None: a browser-session cookie
            self.set_cookie(
                config.cookie_name,
                manager.cookie_value(session),
                domain=config.domain,
                path=config.path,
                expires=None if max_age is None else manager.now() + max_age,
                max_age=max_age,
                httponly=config.httponly,
                secure=config.secure,
                samesite=config.samesite.capitalize(),
            )
            session._cookie_dirty = False
            session._stale_cookie = False
        else:
            self.clear_cookie(
                config.cookie_name,
                domain=config.domain,
                path=config.path,
                httponly=config.httponly,
                secure=config.secure,
                samesite=config.samesite.capitalize(),
            )
            session._stale_cookie = False
        # A response that sets a cookie must not be stored by shared caches.
        directives = [
            d.strip()
            for d in self._headers.get("Cache-Control", "").split(",")
            if d.strip()
            and d.strip().lower() != "public"
            and not d.strip().lower().startswith("s-maxage")
        ]
        if not any(d.lower() in ("private", "no-store") for d in directives):
            directives.insert(0, "private")
        self.set_header("Cache-Control", ", ".join(directives))

    def _session_fail(self, status: int) -> None:
        """Replace the response with an error page and no session cookie."""
        if self._headers_written:
            log.error("The session could not be saved after the response headers were sent")
            if not self._finished:
                try:
                    super().finish()
                except Exception:  # pragma: no cover - the connection is already broken
                    log.debug("Could not finish the response", exc_info=True)
            return
        self.clear()
        if hasattr(self, "_new_cookie"):
            del self._new_cookie
        self.send_error(status)

    def _session_chain(self, step: Callable[[], Awaitable[None]]) -> asyncio.Future[None]:
        """Run ``step`` after any deferred flush still in flight."""
        previous = self._session_pending
        if previous is None:
            first: asyncio.Future[None] = asyncio.ensure_future(step())
            self._session_pending = first
            return first

        async def run() -> None:
            if previous is not None:
                try:
                    await previous
                except Exception:
                    pass
            await step()

        task: asyncio.Future[None] = asyncio.ensure_future(run())
        self._session_pending = task
        return task

    async def _session_commit(self, plan: _Plan | None, final: bool) -> bool:
        """Plan (unless given) and carry out the commit; on failure answer
        the error and return False."""
        session = self._session
        assert session is not None
        manager = self.get_session_manager()
        try:
            if plan is None:
                plan = manager.plan(
                    session, status=self.get_status(), headers_sent=self._headers_written
                )
            action = await manager.run(session, plan)
        except StoreError as exc:
            log.error("Session store failed while saving the session: %s", exc)
            self._session_done = True
            self._session_fail(503)
            return False
        except Exception:
            log.error("Session %s could not be saved", session.fingerprint, exc_info=True)
            self._session_done = True
            self._session_fail(500)
            return False
        self._session_apply(action)
        return True

    def flush(self, include_footers: bool = False) -> asyncio.Future[None]:
        """Flush the output, deciding (and if need be saving) the session
        first so its cookie goes out with the headers."""
        session = self._session
        # include_footers: called by RequestHandler.finish(), which goes on
        # synchronously; only our own finish() may defer the response.
        if session is None or self._headers_written or self._session_done or include_footers:
            return super().flush(include_footers)
        if self._session_pending is None:
            manager = self.get_session_manager()
            plan = manager.plan(session, status=self.get_status(), headers_sent=False)
            if plan.write == "none":
                self._session_apply(plan.cookie)
                return super().flush(include_footers)
        else:
            plan = None

        async def step() -> None:
            if not self._headers_written and not self._session_done:
                if not await self._session_commit(plan, final=False):
                    return
            if not self._finished:
                await super(SessionMixin, self).flush(include_footers)

        return self._session_chain(step)

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Finish the response once the session is saved.

        Returns a future that resolves when the response has been sent, as
        `tornado.web.RequestHandler.finish` does.

        A WebSocket handshake (status 101) finishes at once and saves
        nothing: the connection passes to the socket as soon as this
        returns, and the socket saves with ``await self.session.save()``.

        .. versionchanged:: 0.2
           A WebSocket handshake does not wait for a save.
        """
        session = self._session
        if session is None or self._session_done:
            return super().finish(chunk)
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        self._session_done = True
        if self.get_status() == 101:
            return self._session_handshake(session)
        if self._session_pending is None:
            manager = self.get_session_manager()
            try:
                plan = manager.plan(
                    session, status=self.get_status(), headers_sent=self._headers_written
                )
            except Exception:
                log.error("Session %s could not be saved", session.fingerprint, exc_info=True)
                self._session_fail(500)
                return _done()
            if plan.write == "none":
                self._session_apply(plan.cookie)
                return super().finish()
        else:
            plan = None

        # Until the save is done the handler counts as finished, so that
        # write() after finish() fails as usual and Tornado's auto-finish (or
        # a second finish() from redirect-then-return code) does not send the
        # response early.
        self._finished = True

        async def step() -> None:
            self._finished = False
            if await self._session_commit(plan, final=True) and not self._finished:
                try:
                    await super(SessionMixin, self).finish()
                except tornado.iostream.StreamClosedError:
                    log.debug("Client went away before the response was sent")

        return self._session_chain(step)

    def _session_handshake(self, session: Session) -> asyncio.Future[None]:
        """Finish a WebSocket handshake (status 101) at once.

        The connection passes to the socket the moment ``finish()`` returns,
        so nothing may wait here: the cookie decision is applied if it needs
        no write, and a write (a change, a due touch) is left to the
        socket's own ``await self.session.save()``.
        """
        manager = self.get_session_manager()
        plan = manager.plan(session, status=101, headers_sent=False)
        if plan.write == "none":
            self._session_apply(plan.cookie)
        elif plan.write != "touch":
            log.warning(
                "Session %s was changed before a WebSocket handshake, which saves nothing: "
                "call 'await self.session.save()' before the handshake or in the socket",
                session.fingerprint,
            )
        return super().finish()

    def on_finish(self) -> None:
        """Safety net: save a session still unsaved after the response left.

        This only happens when `finish` was bypassed; the save then races the
        client's next request, so a warning is logged.
        """
        session = self._session
        if session is not None and not self._session_done and self.get_status() < 500:
            self._session_done = True
            manager = self.get_session_manager()
            try:
                plan = manager.plan(session, status=self.get_status(), headers_sent=True)
            except Exception:
                log.error("Session %s could not be saved", session.fingerprint, exc_info=True)
                plan = None
            if plan is not None and plan.write != "none":
                log.warning(
                    "Session %s was still unsaved after the response was sent (was finish() "
                    "bypassed?); saving it now, after the response",
                    session.fingerprint,
                )
                task = asyncio.ensure_future(manager.run(session, plan))
                _BACKGROUND.add(task)
                task.add_done_callback(_late_save_done)
        super().on_finish()


class _StandIn:
    """The owner of the empty session an early error page sees: it has no
    store behind it, so its verbs say why."""

    def __init__(self, status: int) -> None:
        self.status = status

    def _refuse(self) -> SessionNotLoadedError:
        return SessionNotLoadedError(
            f"this request was answered with an error ({self.status}) before its session "
            "was loaded, so self.session is an empty stand-in that cannot be saved, "
            "reloaded, regenerated or destroyed"
        )

    async def _session_save(self, session: Session) -> None:
        raise self._refuse()

    async def _session_reload(self, session: Session) -> None:
        raise self._refuse()

    async def _session_regenerate(
        self, session: Session, keep_data: bool, restart_lifetime: bool
    ) -> None:
        raise self._refuse()

    async def _session_destroy(self, session: Session) -> None:
        raise self._refuse()


_BACKGROUND: set[asyncio.Future[Any]] = set()


def _late_save_done(task: asyncio.Future[Any]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("Late session save failed: %s", task.exception())


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
