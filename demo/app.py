"""The demo application: a visit counter, a login, notes and a session page.

Every handler is a `SessionMixin` handler; the session is loaded before the
handler runs and saved before the response leaves, so redirects always land
on a page that sees the write.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import tornado.httputil
import tornado.web

import tornado_sessions.ui
from tornado_sessions import MemoryStore, SessionConfig, SessionMixin
from tornado_sessions.config import ENV_NAMES, config, generate_secret

__all__ = [
    "demo_config",
    "describe_store",
    "local_url",
    "make_app",
    "secure_over_http",
    "short_agent",
    "store_details",
]

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


def store_details(store: Any, session_config: SessionConfig) -> tuple[str, str]:
    """The store's class name, and where it keeps the sessions."""
    name = type(store).__name__
    if isinstance(store, MemoryStore):
        return name, (
            "in this process: sessions are lost at every restart "
            "(set SESSION_HOST to keep them in MySQL/MariaDB)"
        )
    if not session_config.host:
        return name, ""
    return name, (
        f"{session_config.user or '?'}@{session_config.host}:{session_config.port}/"
        f"{session_config.database or '?'}, table {session_config.table}"
    )


def describe_store(store: Any, session_config: SessionConfig) -> str:
    """One line saying where the demo keeps its sessions."""
    name, where = store_details(store, session_config)
    return f"{name}, {where}" if where else name


def secure_over_http(host: str) -> bool:
    """Whether browsers keep a ``Secure`` cookie that ``host`` sends over
    plain http: only on a loopback name or address (localhost,
    ``*.localhost``, 127.0.0.0/8, ::1), which they count as secure."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def local_url(url: str) -> str:
    """``url`` if it is a path on this site, else ``/``: a login's
    ``?next=`` must never send the browser to another site."""
    parts = urllib.parse.urlsplit(url)
    if (
        url.startswith("/")
        and not url.startswith("//")
        and "\\" not in url  # browsers read "/\evil.example" as "//evil.example"
        and not any(ord(c) < 0x21 or ord(c) == 0x7F for c in url)
        and not parts.scheme
        and not parts.netloc
    ):
        return url
    return "/"


_BROWSERS = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),  # Safari's own version; Chrome's UA names Safari too
]
_SYSTEMS = [
    ("Windows", "Windows"),
    ("Android", "Android"),  # before Linux, which Android's UA also names
    ("iPhone", "iOS"),  # before Mac OS X, likewise
    ("iPad", "iPadOS"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
]
SHORT_AGENT = 32


def short_agent(agent: str) -> str:
    """A User-Agent in a few words (``Chrome 131 on Linux``), or its first
    characters when it names no browser the demo knows."""
    for token, browser in _BROWSERS:
        match = re.search(re.escape(token) + r"(\d+)", agent)
        if match:
            system = next((name for key, name in _SYSTEMS if key in agent), None)
            return f"{browser} {match.group(1)}" + (f" on {system}" if system else "")
    return agent if len(agent) <= SHORT_AGENT else agent[: SHORT_AGENT - 1] + "\u2026"


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

    def refused_host(self) -> str | None:
        """The host name this page was asked for, if browsers refuse the
        demo's Secure cookies (the session's and the XSRF token's) there:
        plain http on anything but localhost.  Shown on every page."""
        session_config: SessionConfig = self.settings["session_config"]
        host = self.request.host_name
        if session_config.cookie_for(self.request.protocol).secure and (
            self.request.protocol == "http"
        ):
            if not secure_over_http(host):
                return host
        return None

    def localhost_url(self) -> str:
        """This page's site as seen from the machine the demo runs on."""
        port = tornado.httputil.split_host_and_port(self.request.host)[1]
        return f"http://localhost:{port}/" if port else "http://localhost/"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        message = error.log_message if isinstance(error, tornado.web.HTTPError) else None
        # write, not render: send_error() finishes the response itself.
        self.write(
            self.render_string(
                "error.html",
                status_code=status_code,
                reason=self._reason,
                xsrf="xsrf" in (message or "").lower(),
            )
        )


class HomeHandler(BaseHandler):
    async def get(self) -> None:
        visits = self.session.get("visits", 0) + 1
        self.session["visits"] = visits
        manager = self.get_session_manager()
        store_name, store_where = store_details(manager.store, manager.config)
        self.render("home.html", visits=visits, store_name=store_name, store_where=store_where)


class LoginHandler(BaseHandler):
    def next_url(self) -> str:
        """Where to go after the login: ``?next=`` (set by
        ``@tornado.web.authenticated``) if it is a page of this site."""
        return local_url(self.get_argument("next", "/"))

    async def get(self) -> None:
        self.render("login.html", error=None, username="", next_url=self.next_url())

    async def post(self) -> None:
        username = self.get_body_argument("username", "").strip()
        if not username or len(username) > MAX_USERNAME:
            self.set_status(400)
            self.render(
                "login.html",
                error=f"Enter a user name of 1 to {MAX_USERNAME} characters.",
                username=username[:MAX_USERNAME],
                next_url=self.next_url(),
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
        # A one-time message, shown by the next page (base.html).
        self.session.flash(f"Welcome, {username}.", "success")
        self.redirect(self.next_url())


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        await self.session.destroy()
        # The fresh session carries the message to the next page.
        self.session.flash("You are signed out.", "info")
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
        self.session.flash("Note saved.", "success")
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
                    "client": " · ".join(
                        filter(None, [info.ip, info.user_agent and short_agent(info.user_agent)])
                    )
                    or unknown,
                    "client_full": " · ".join(filter(None, [info.ip, info.user_agent])),
                }
                for info in sessions
            ],
            ended=self.get_argument("ended", None),
            tracking=tracking,
            limit=self.get_session_manager().config.max_sessions_per_user,
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
        "xsrf_cookie_kwargs": {
            "httponly": True,
            "samesite": "Lax",
            "secure": config.secure is True,
        },
        "default_handler_class": NotFoundHandler,
        "login_url": "/login",
        "session_store": store if store is not None else MemoryStore(),
        "session_config": config,
        # pop_flashes() in templates: the one-time messages (base.html).
        "ui_methods": tornado_sessions.ui,
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
