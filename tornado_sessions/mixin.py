"""`SessionMixin`: server-side sessions for Tornado request handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import tornado.iostream
import tornado.web

from . import response, unloaded
from .config import SessionConfig
from .errors import SessionNotLoadedError, StoreError
from .manager import CookieAction, SessionManager, _Plan
from .session import Session
from .users import UserSessionsMixin

__all__ = ["SessionMixin"]

log = logging.getLogger("tornado_sessions")

if TYPE_CHECKING:
    _HandlerBase = tornado.web.RequestHandler
else:
    _HandlerBase = object

_MANAGER_ATTR = "_tornado_sessions_manager"


class SessionMixin(UserSessionsMixin, _HandlerBase):
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
    _session_prepared = False

    #: Load the session only when `load_session` is awaited, not in
    #: `prepare`: a handler that never needs it (a health check, a static-like
    #: endpoint, one of many handlers sharing a base class) then costs no
    #: store call at all.  ``self.session`` works once it is loaded.
    #:
    #: .. versionadded:: 0.2
    lazy_session: bool = False

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
                self._session_standin = unloaded.standin(self.get_status())
            return self._session_standin
        if self.lazy_session and self._session_prepared and not self._session_loading:
            raise SessionNotLoadedError(
                f"{type(self).__name__}.session is not loaded: the handler has "
                "lazy_session = True, so it loads only when asked: call "
                "'session = await self.load_session()' first"
            )
        raise SessionNotLoadedError(
            unloaded.not_loaded_cause(self, self._session_loading, SessionMixin)
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

    async def prepare(self) -> None:
        """Load the session (unless `lazy_session`), then run the next
        ``prepare()`` in the MRO.

        Handlers that override ``prepare()`` call ``await super().prepare()``
        before they touch ``self.session``.
        """
        self._session_prepared = True
        if not self.lazy_session:
            await self._session_load()
        result = super().prepare()
        if result is not None:
            await result

    async def load_session(self) -> Session:
        """Return the session, loading it now if it is not loaded yet.

        The way to the session in a `lazy_session` handler, which pays for
        the load (one ``SELECT`` for a returning visitor) only when it calls
        this.  In other handlers the session is already loaded and this
        returns it at once::

            class Health(BaseHandler):  # BaseHandler has SessionMixin
                lazy_session = True

                async def get(self):
                    if self.get_argument("who", None):
                        session = await self.load_session()
                        self.write({"user": session.get("user_id")})
                    else:
                        self.write("ok")  # no store call at all

        .. versionadded:: 0.2
        """
        if self._session is None:
            await self._session_load()
        assert self._session is not None
        return self._session

    async def _session_load(self) -> None:
        self._session_loading = True
        manager = self.get_session_manager()
        value, duplicated = response.cookie_value(self.request, manager.config.cookie_name)
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
        self._session_loading = False

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
        response.apply(self, self.get_session_manager(), self._session, action)

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


_BACKGROUND: set[asyncio.Future[Any]] = set()


def _late_save_done(task: asyncio.Future[Any]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("Late session save failed: %s", task.exception())


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
