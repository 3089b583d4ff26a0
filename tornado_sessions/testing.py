"""Helpers for an application's own tests (:doc:`testing` shows them at work).

Log a test user in without going through the login form
(`make_session_cookie`) and look at the session a response left behind
(`read_session`); both use the application's own ``session_store`` and
``session_config`` settings, so the cookie is exactly what the application
would have issued.  Give a test a store: `memory_store` (no "outside debug
mode" warning), or a `.MySQLStore` made on the test's event loop in a table
of its own (`open_mysql_store` and `close_mysql_store`, or `mysql_store`).

.. versionadded:: 0.1

.. versionchanged:: 0.3
   The store helpers.
"""

from __future__ import annotations

import contextlib
import http.cookies
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import tornado.httpclient
import tornado.web

from .appconfig import app_config
from .manager import SessionManager
from .session import Session
from .stores.memory import MemoryStore

if TYPE_CHECKING:
    from .config import DatabaseConfig
    from .stores.mysql import MySQLStore

__all__ = [
    "close_mysql_store",
    "make_session_cookie",
    "memory_store",
    "mysql_store",
    "open_mysql_store",
    "read_session",
    "session_manager",
]


class _NoOwner:
    """Stands in for a handler: the helpers call the manager directly, so a
    session they build has no request to save itself through."""

    async def _session_save(self, session: Session) -> None:
        raise RuntimeError("not available in tornado_sessions.testing")

    async def _session_reload(self, session: Session) -> None:
        raise RuntimeError("not available in tornado_sessions.testing")

    async def _session_regenerate(
        self, session: Session, keep_data: bool, restart_lifetime: bool
    ) -> None:
        raise RuntimeError("not available in tornado_sessions.testing")

    async def _session_destroy(self, session: Session) -> None:
        raise RuntimeError("not available in tornado_sessions.testing")


def session_manager(app: tornado.web.Application) -> SessionManager:
    """Return the `.SessionManager` the application's handlers use.

    It reads the ``session_store`` and ``session_config`` settings (or
    `.SessionConfig.from_env`) exactly as `.SessionMixin` does, and shares
    the instance with it.
    """
    manager: SessionManager | None = app.__dict__.get("_tornado_sessions_manager")
    if manager is None:
        store = app.settings.get("session_store")
        if store is None:
            raise RuntimeError("the application has no session_store setting")
        manager = SessionManager(
            store, app_config(app), on_event=app.settings.get("session_events")
        )
        store.attach(debug=bool(app.settings.get("debug")))  # as the mixin does
        app._tornado_sessions_manager = manager  # type: ignore[attr-defined]
    return manager


async def make_session_cookie(
    app: tornado.web.Application,
    data: Mapping[str, Any],
    *,
    max_age: int | None = None,
    protocol: str = "http",
) -> str:
    """Store a session holding ``data`` and return a ``Cookie`` header value
    (``name=value``) that names it.

    :param app: the application under test.
    :param data: the session's contents, e.g. ``{"user_id": "alice"}``.
    :param max_age: a per-session lifetime (as `.Session.set_expiry`).
    :param protocol: the protocol of the requests the cookie goes with, as
        the server sees them (a test server is plain http); it matters only
        with ``SESSION_COOKIE_SECURE=auto``, whose cookie name depends on it
        (`.SessionConfig.cookie_for`).

    .. versionchanged:: 0.3
       The ``protocol`` argument.
    """
    manager = session_manager(app)
    session = manager.new_session(_NoOwner())
    session.update(data)
    if max_age is not None:
        session.set_expiry(max_age)
    await manager.run(session, manager.plan(session))
    return f"{manager.config.cookie_for(protocol).name}={manager.cookie_value(session)}"


def _cookie_value(name: str, source: str) -> str | None:
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    try:
        jar.load(source)
    except http.cookies.CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


async def read_session(
    app: tornado.web.Application,
    response: tornado.httpclient.HTTPResponse | None = None,
    cookie: str | None = None,
) -> dict[str, Any] | None:
    """Return the stored data of the session behind a response, or None.

    The session is the one named by the response's ``Set-Cookie`` if it set
    one, else by ``cookie`` (the ``Cookie`` header value the request sent).
    A cleared cookie, or one naming no live session, gives None.
    """
    manager = session_manager(app)
    # Either name of SESSION_COOKIE_SECURE=auto (the https one first).
    names = dict.fromkeys(manager.config.cookie_for(p).name for p in ("https", "http"))
    value: str | None = None
    if response is not None:
        for line in response.headers.get_list("Set-Cookie"):
            for name in names:
                found = _cookie_value(name, line)
                if found is not None:
                    if not found:
                        return None  # the response cleared the cookie
                    value = found
    for name in names:
        if value is None and cookie is not None:
            value = _cookie_value(name, cookie)
    if not value:
        return None
    session = await manager.load(_NoOwner(), value)
    return None if session._is_new else dict(session._data)


# -- stores for tests ----------------------------------------------------------


def memory_store(*, clock: Callable[[], float] = time.time) -> MemoryStore:
    """A `.MemoryStore` for tests: it does not log "in use outside debug
    mode" (``MemoryStore(warn=False)``).

    :param clock: returns the current time in seconds: a function the test
       moves by hand makes expiry deterministic (give the same one to
       `.SessionConfig`).

    .. versionadded:: 0.3
    """
    return MemoryStore(clock=clock, warn=False)


async def open_mysql_store(
    config: DatabaseConfig, *, table: str | None = None, **options: Any
) -> MySQLStore:
    """Make and open a `.MySQLStore` for one test, on the running event loop.

    Its pool is made on the loop that runs this coroutine, the test's own
    (an ``AsyncHTTPTestCase``'s ``self.io_loop``, pytest-tornado's
    ``io_loop``): a pool made on another loop fails there.  Close it with
    `close_mysql_store` on the same loop, before the loop closes.

    :param config: a `.SessionConfig` (or `.DatabaseConfig`) that reaches
       the test server, e.g. ``SessionConfig.from_env(secret=...)``.
    :param table: the table; by default a new one, ``test_sessions_<random>``,
       so that tests never share rows (nor touch the application's table).
       A table the store creates is dropped by `close_mysql_store`.
    :param options: other `.MySQLStore` arguments.  ``cleanup_interval``
       defaults to None here: no cleanup task runs during a test.

    .. versionadded:: 0.3
    """
    from .stores.mysql import MySQLStore

    options.setdefault("cleanup_interval", None)
    store = MySQLStore.from_config(
        config, table=table or f"test_sessions_{uuid.uuid4().hex[:12]}", **options
    )
    try:
        await store.open()
    except BaseException:
        await store.close()
        raise
    return store


async def close_mysql_store(store: MySQLStore) -> None:
    """Drop the table `open_mysql_store` created (if it did) and close the
    store and its pool.

    .. versionadded:: 0.3
    """
    try:
        if store.table_state == "created":
            # The name passed the store's check (letters, digits, underscores).
            await store._conns.execute("dropping the test table", f"DROP TABLE `{store.table}`")
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def mysql_store(
    config: DatabaseConfig, *, table: str | None = None, **options: Any
) -> AsyncIterator[MySQLStore]:
    """`open_mysql_store` and `close_mysql_store` around an ``async with``
    block, which gets the store.

    .. versionadded:: 0.3
    """
    store = await open_mysql_store(config, table=table, **options)
    try:
        yield store
    finally:
        await close_mysql_store(store)
