"""The session before it is loaded: the empty stand-in of an early error
page, and the error that names why it is not loaded.

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

__all__ = ["not_loaded_cause", "standin"]


def standin(status: int) -> Session:
    """An empty session for a page answered with ``status`` before the load."""
    now = int(time.time())
    return Session(_StandIn(status), "", created_at=now, expires_at=now)


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
