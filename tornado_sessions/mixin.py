"""`SessionMixin`: server-side sessions for Tornado request handlers."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

import tornado.iostream
import tornado.web

from . import appconfig, response, unloaded
from .config import SessionConfig
from .errors import ConfigError, SessionNotLoadedError, StoreError
from .finishing import SessionFinishing
from .manager import SessionManager
from .session import Session
from .users import UserSessionsMixin

__all__ = ["SessionMixin"]

log = logging.getLogger("tornado_sessions")

if TYPE_CHECKING:
    _HandlerBase = tornado.web.RequestHandler
else:
    _HandlerBase = object

_MANAGER_ATTR = "_tornado_sessions_manager"


class SessionMixin(UserSessionsMixin, SessionFinishing, _HandlerBase):
    """Gives a `~tornado.web.RequestHandler` a server-side ``self.session``.

    .. example: mixin-counter given imports module

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

    A request outside ``SESSION_COOKIE_PATH`` (where the browser never
    sends the cookie) neither loads nor sets a session: its `session` is
    empty and refuses changes.

    A response that reads the session (its identity included: ``id``,
    ``fingerprint``, ``expires_at``...), or sets or clears its cookie, gets
    ``Vary: Cookie`` and ``Cache-Control: private``, so that no shared cache
    serves one user's page or cookie to another; a streamed response gets
    them at its first `flush`.  A handler that sets its own
    ``Cache-Control`` keeps it, except that a response carrying a
    ``Set-Cookie`` never keeps ``public`` or ``s-maxage``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``Cache-Control: private`` also on responses that only read the
       session.
    .. versionchanged:: 0.3
       Requests outside the cookie path load no session; cache headers on
       identity reads and at the first flush.
    .. versionchanged:: 0.2
       The session of an error page sent before the session was loaded is
       an empty stand-in (it raised `.SessionNotLoadedError`); a WebSocket
       handshake saves nothing (see `finish`).
    """

    # (_session, _session_done and _session_pending: see SessionFinishing.)
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
        `.SessionManager`; the default reads the ``session_config`` setting.
        Without one, it builds one with `.SessionConfig.from_env`, once per
        application (logged once); if that fails, the error is logged once,
        with the fix, and each request answers 500 with no traceback of its
        own.

        .. versionchanged:: 0.3
           The config read from the environment is built once per
           application, and its failure logged once, not once per request.
        """
        try:
            return appconfig.app_config(self.application)
        except ConfigError:  # logged once (then once a minute) by app_config
            raise tornado.web.HTTPError(500) from None

    def get_session_manager(self) -> SessionManager:
        """Return the application's `.SessionManager` (made once, on first use)."""
        app = self.application
        manager: SessionManager | None = app.__dict__.get(_MANAGER_ATTR)
        if manager is None:
            store = self.get_session_store()
            manager = SessionManager(
                store, self.get_session_config(), on_event=self.settings.get("session_events")
            )
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

        .. example: load-session given BaseHandler module

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
        cookie_path = manager.config.path
        if not unloaded.path_matches(self.request.path, cookie_path):
            # The browser never sends the cookie here: no load, no cookie.
            self._session = unloaded.outside_path(self.request.path, cookie_path)
            self._session_done = True
            self._session_loading = False
            return
        name = manager.config.cookie_for(self.request.protocol).name
        value, duplicated = response.cookie_value(self.request, name)
        client = self.request.remote_ip
        if duplicated:
            manager.log_rejected(
                "duplicated",
                "Rejected session cookies from %s: the cookie was sent more than once "
                "(possible cookie tossing); starting a fresh session",
                client,
            )
        try:
            # The session reaches its handler through a weak proxy: a strong
            # reference back would make the handler, its request and headers
            # a reference cycle, kept until the garbage collector's next pass
            # rather than freed when the response ends (about a seventh of a
            # write's CPU in the layer, in memory touched again).
            session = await manager.load(weakref.proxy(self), value, client=client)
        except StoreError as exc:
            raise self._session_store_failed("loading the session", exc) from None
        session._detached = manager.after_response
        if duplicated:
            session._stale_cookie = session._cookie_held = True
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

    def on_connection_close(self) -> None:
        """Stop watching a WebSocket whose connection closed (see
        `.revocation`), then close as Tornado does.

        .. versionadded:: 0.3
        """
        manager: SessionManager | None = self.application.__dict__.get(_MANAGER_ATTR)
        if manager is not None:
            manager.revocation.forget(self)
        super().on_connection_close()
