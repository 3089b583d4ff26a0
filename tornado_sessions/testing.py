"""Helpers for an application's own tests.

Log a test user in without going through the login form, and look at the
session a response left behind:

.. skip-example: a sketch; the quickstart's "Testing your handlers" is the complete, tested file

::

    from tornado_sessions.testing import make_session_cookie, read_session

    async def test_dashboard(http_client, base_url, app):
        cookie = await make_session_cookie(app, {"user_id": "alice"})
        response = await http_client.fetch(base_url + "/dashboard", headers={"Cookie": cookie})
        assert b"Hello, alice" in response.body
        assert (await read_session(app, response, cookie))["seen_dashboard"] is True

Both use the application's own ``session_store`` and ``session_config``
settings, so the cookie is exactly what the application would have issued.

.. versionadded:: 0.1
"""

from __future__ import annotations

import http.cookies
from collections.abc import Mapping
from typing import Any

import tornado.httpclient
import tornado.web

from .appconfig import app_config
from .manager import SessionManager
from .session import Session

__all__ = ["make_session_cookie", "read_session", "session_manager"]


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
        manager = SessionManager(store, app_config(app))
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
