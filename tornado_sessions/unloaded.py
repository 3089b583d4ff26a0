"""The session before it is loaded (or where none is): the empty stand-in of
an early error page, the read-only empty session of a request outside the
cookie path, and the error that names why a session is not loaded.

Tornado checks XSRF tokens, and may refuse a method, before ``prepare()``
runs: the error page (``write_error``, ``get_current_user``, a template) then
reads ``self.session`` before any load.  It gets `standin`, an empty session
that is never saved and sets no cookie.  Anywhere else an unloaded session is
a `.SessionNotLoadedError` whose message (`not_loaded_cause`) names the cause
that applies.

.. versionadded:: 0.2
"""

from __future__ import annotations

import time
from typing import Any

import tornado.web

from .errors import SessionNotLoadedError
from .session import Session

__all__ = ["not_loaded_cause", "outside_path", "path_matches", "standin"]


def standin(status: int) -> Session:
    """An empty session for a page answered with ``status`` before the load."""
    now = int(time.time())
    return Session(_StandIn(status), "", created_at=now, expires_at=now)


def path_matches(request_path: str, cookie_path: str) -> bool:
    """Whether a browser sends a cookie of path ``cookie_path`` with a request
    for ``request_path`` (RFC 6265, 5.1.4: the same path, or a prefix of it
    ending at a ``/``)."""
    if request_path == cookie_path or cookie_path == "/":
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"


def outside_path(request_path: str, cookie_path: str) -> Session:
    """The session of a request outside ``SESSION_COOKIE_PATH``: empty,
    never loaded nor saved, and refusing changes (the browser would never
    send its cookie back here), as express-session skips such requests."""
    now = int(time.time())
    owner = _OutsidePath(request_path, cookie_path)
    return _ReadOnlySession(owner, "", created_at=now, expires_at=now)


def not_loaded_cause(handler: Any, loading: bool, mixin: type) -> str:
    """Why ``handler.session`` is not loaded, in a sentence that says what to do."""
    cls = type(handler)
    name = cls.__name__
    mro = cls.__mro__
    base = next((c for c in mro if c.__dict__.get("session") is not None), mixin)
    if tornado.web.RequestHandler in mro and mro.index(tornado.web.RequestHandler) < mro.index(
        base
    ):
        return (
            f"{name}.session cannot load: SessionMixin comes after RequestHandler in the "
            f"bases of {name}, so its prepare() never runs; list it first, as in "
            f"class {name}(SessionMixin, tornado.web.RequestHandler)"
        )
    if getattr(handler, "path_args", None) is None:
        return (
            f"{name}.session was used in initialize() (or __init__): the session is "
            "loaded later, by prepare(); read it in prepare() after "
            "'await super().prepare()', or in the handler's methods"
        )
    if loading:
        return (
            f"{name}.session was used while prepare() was still loading it (from a "
            "hook such as get_session_store() or get_session_config()?)"
        )
    owner = next((c for c in mro if "prepare" in c.__dict__), mixin)
    if owner is mixin:
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


class _OutsidePath:
    """The owner of a request's session outside the cookie path."""

    def __init__(self, request_path: str, cookie_path: str) -> None:
        self.request_path = request_path
        self.cookie_path = cookie_path

    def _refuse(self) -> SessionNotLoadedError:
        return SessionNotLoadedError(
            f"no session is loaded for {self.request_path!r}: it is outside the session "
            f"cookie's path {self.cookie_path!r} (SESSION_COOKIE_PATH), where browsers never "
            "send the cookie, so a session here could never be read back; serve this "
            "handler under that path, or widen SESSION_COOKIE_PATH"
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


class _ReadOnlySession(Session):
    """An empty session that refuses every change (see `outside_path`)."""

    _owner: _OutsidePath

    def __setitem__(self, key: str, value: Any) -> None:
        raise self._owner._refuse()

    def __delitem__(self, key: str) -> None:
        raise self._owner._refuse()

    def flash(self, message: str, category: str = "message") -> None:
        raise self._owner._refuse()

    def set_expiry(self, seconds: int | None) -> None:
        raise self._owner._refuse()

    def touch(self) -> None:
        raise self._owner._refuse()
