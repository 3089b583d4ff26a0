"""The demo application: a visit counter, a login, notes and a session page.

Every handler is a `SessionMixin` handler; the session is loaded before the
handler runs and saved before the response leaves, so redirects always land
on a page that sees the write.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from typing import Any

import tornado.web

from tornado_sessions import MemoryStore, SessionConfig, SessionMixin
from tornado_sessions.config import ENV_NAMES, config, generate_secret

__all__ = ["demo_config", "make_app"]

HERE = os.path.dirname(os.path.abspath(__file__))

MAX_USERNAME = 40
MAX_NOTE = 500
MAX_NOTES = 50


def demo_config(env: Callable[..., Any] = config, **overrides: Any) -> tuple[SessionConfig, bool]:
    """Return the demo's `SessionConfig` and whether its secret is a throwaway.

    Settings come from the environment and ``.env`` (python-decouple), with
    the library's own (secure) defaults for what they leave unset, as in an
    application.  Without ``SESSION_SECRET`` a random secret is generated
    for this run only: only the demo does that, never the library.
    """
    values: dict[str, Any] = {}
    generated = False
    if env(ENV_NAMES["secret"], default="") in (None, "") and "secret" not in overrides:
        values["secret"] = generate_secret()
        generated = True
    values.update(overrides)
    return SessionConfig.from_env(env, **values), generated


def utc(timestamp: int | float) -> str:
    """Format epoch seconds as a readable UTC time."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


class BaseHandler(SessionMixin, tornado.web.RequestHandler):
    """Shared bits: the logged-in user, a tidy error page, no framing."""

    def set_default_headers(self) -> None:
        # No other site may frame these pages: their buttons ("End", "Log out
        # everywhere") must not be clickable through a disguised frame.
        self.set_header("Content-Security-Policy", "frame-ancestors 'none'")
        self.set_header("X-Frame-Options", "DENY")

    def get_current_user(self) -> str | None:
        # Also on an error page Tornado sends before prepare() (an XSRF
        # failure): the session is then an empty one, so nobody is signed in.
        username = self.session.get("username")
        return username if isinstance(username, str) else None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # write, not render: send_error() finishes the response itself.
        self.write(self.render_string("error.html", status_code=status_code, reason=self._reason))


class HomeHandler(BaseHandler):
    async def get(self) -> None:
        visits = self.session.get("visits", 0) + 1
        self.session["visits"] = visits
        self.render("home.html", visits=visits)


class LoginHandler(BaseHandler):
    async def get(self) -> None:
        self.render("login.html", error=None, username="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "").strip()
        if not username or len(username) > MAX_USERNAME:
            self.set_status(400)
            self.render(
                "login.html",
                error=f"Enter a user name of 1 to {MAX_USERNAME} characters.",
                username=username[:MAX_USERNAME],
            )
            return
        user_id = username.lower()
        previous = self.session.get("user_id")
        # A new id at login: an id planted before login is worthless after.
        # A visitor who signs in keeps what the session holds (notes), and
        # so does the same user signing in again; a different user signing
        # in on this browser starts empty, with a new lifetime, and never
        # sees the previous user's data.
        same = previous is None or previous == user_id
        await self.session.regenerate(keep_data=same, restart_lifetime=not same)
        self.session["user_id"] = user_id
        self.session["username"] = username
        self.redirect("/")


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        await self.session.destroy()
        self.redirect("/")


class SessionPageHandler(BaseHandler):
    async def get(self) -> None:
        session = self.session
        self.render(
            "session.html",
            data_json=json.dumps(dict(session), indent=2, sort_keys=True, ensure_ascii=False),
            fingerprint=session.fingerprint,
            is_new=session.is_new,
            created=utc(session.created_at),
            expires=utc(session.expires_at),
            cookie_name=self.get_session_manager().config.cookie_name,
        )


class NotesHandler(BaseHandler):
    async def get(self) -> None:
        self.render("notes.html", notes=self.session.get("notes", []), error=None)

    async def post(self) -> None:
        text = self.get_body_argument("note", "").strip()
        notes = self.session.get("notes", [])
        error = None
        if not text or len(text) > MAX_NOTE:
            error = f"A note is 1 to {MAX_NOTE} characters."
        elif len(notes) >= MAX_NOTES:
            error = f"That is {MAX_NOTES} notes already: delete them first."
        if error:
            self.set_status(400)
            self.render("notes.html", notes=notes, error=error)
            return
        # A nested edit: the session notices the change without any call.
        self.session.setdefault("notes", []).append(text)
        self.redirect("/notes")


class ClearNotesHandler(BaseHandler):
    async def post(self) -> None:
        self.session.pop("notes", None)
        self.redirect("/notes")


class SessionsHandler(BaseHandler):
    """The signed-in user's sessions, with revoke buttons."""

    @tornado.web.authenticated
    async def get(self) -> None:
        sessions = await self.get_user_sessions()
        current = self.session.fingerprint
        tracking = self.get_session_manager().config.track_client
        unknown = "unknown" if tracking else "not recorded"
        self.render(
            "sessions.html",
            sessions=[
                {
                    "fingerprint": info.fingerprint,
                    "current": info.fingerprint == current,
                    "created": utc(info.created_at),
                    "last_seen": utc(info.updated_at),
                    "expires": utc(info.expires_at),
                    "client": " · ".join(filter(None, [info.ip, info.user_agent])) or unknown,
                }
                for info in sessions
            ],
            ended=self.get_argument("ended", None),
            tracking=tracking,
        )


class EndSessionHandler(BaseHandler):
    """End one of the user's sessions, named by its fingerprint."""

    @tornado.web.authenticated
    async def post(self) -> None:
        fingerprint = self.get_body_argument("fingerprint", "")
        ended = await self.end_user_session(fingerprint)
        if ended and self.session.is_new:  # it was this very session
            self.redirect("/")
            return
        self.redirect(f"/sessions?ended={1 if ended else 0}")


class EndAllSessionsHandler(BaseHandler):
    """Log out other devices, or everywhere (this one too)."""

    @tornado.web.authenticated
    async def post(self) -> None:
        everywhere = self.get_body_argument("everywhere", "0") == "1"
        count = await self.end_user_sessions(keep_current=not everywhere)
        self.redirect("/" if everywhere else f"/sessions?ended={count}")


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404)


def make_app(
    store: Any = None, config: SessionConfig | None = None, **settings: Any
) -> tornado.web.Application:
    """Build the demo application.

    :param store: the session store (a new `MemoryStore` by default).
    :param config: the `SessionConfig` (by default `demo_config`, from the
        environment and ``.env``).
    :param settings: more Tornado application settings (``debug=True``...).
    """
    if config is None:
        config, _ = demo_config()
    app_settings: dict[str, Any] = {
        "template_path": os.path.join(HERE, "templates"),
        "static_path": os.path.join(HERE, "static"),
        "xsrf_cookies": True,
        "xsrf_cookie_kwargs": {"httponly": True, "samesite": "Lax", "secure": config.secure},
        "default_handler_class": NotFoundHandler,
        "login_url": "/login",
        "session_store": store if store is not None else MemoryStore(),
        "session_config": config,
    }
    app_settings.update(settings)
    return tornado.web.Application(
        [
            (r"/", HomeHandler),
            (r"/login", LoginHandler),
            (r"/logout", LogoutHandler),
            (r"/session", SessionPageHandler),
            (r"/notes", NotesHandler),
            (r"/notes/clear", ClearNotesHandler),
            (r"/sessions", SessionsHandler),
            (r"/sessions/end", EndSessionHandler),
            (r"/sessions/end-all", EndAllSessionsHandler),
        ],
        **app_settings,
    )
