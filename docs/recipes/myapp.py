"""A small application on tornado_sessions, the program behind the recipes in
the docs: a login with "remember me", a protected page, logout, a password
change that logs out everywhere, a JSON API and a WebSocket, all on the same
sessions.

Run it from this directory, with SESSION_SECRET in the environment or in a
``.env`` file here (``python -m tornado_sessions secret`` prints one)::

    python myapp.py

then open http://localhost:8888/ and sign in as alice, password wonderland.
Its tests, an ``AsyncHTTPTestCase``, are in ``test_myapp.py`` beside it.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import os
import time
import urllib.parse
from typing import Any

import tornado.escape
import tornado.web
import tornado.websocket

from tornado_sessions import MemoryStore, SessionConfig, SessionMixin, SessionStore
from tornado_sessions.events import SessionEvent

#: How long a "remember me" login lasts without a visit: 30 days.
REMEMBER_ME = 30 * 24 * 3600


class Users:
    """Password hashes (scrypt) by user name: your user table, in a dict."""

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[bytes, bytes]] = {}

    @staticmethod
    def _hash(password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)

    def set_password(self, name: str, password: str) -> None:
        salt = os.urandom(16)
        self._hashes[name] = (salt, self._hash(password, salt))

    def check(self, name: str, password: str) -> bool:
        salt, digest = self._hashes.get(name, (b"", b""))
        return bool(salt) and hmac.compare_digest(digest, self._hash(password, salt))


def local_url(url: str) -> str:
    """``url`` if it is a path on this site, else ``/``: a ``?next=`` that
    names another site (``//evil.example``, ``https://evil.example``) must
    not turn the login into an open redirect."""
    parts = urllib.parse.urlsplit(url)
    if (
        url.startswith("/")
        and not url.startswith("//")
        and "\\" not in url  # browsers read "/\evil.example" as "//evil.example"
        and not any(ord(c) < 0x21 for c in url)  # nor tabs, newlines, spaces
        and not parts.scheme
        and not parts.netloc
    ):
        return url
    return "/"


def html_page(handler: BaseHandler, title: str, body: str) -> str:
    user = handler.current_user
    who = f"Signed in as {tornado.escape.xhtml_escape(user)}" if user else "Not signed in"
    return (
        f"<!doctype html><title>{tornado.escape.xhtml_escape(title)}</title>"
        f'<meta name="xsrf" content="{tornado.escape.xhtml_escape(handler.xsrf_token)}">'
        f'<p id="who">{who}</p>{flashes(handler)}<h1>{tornado.escape.xhtml_escape(title)}</h1>'
        f"{body}"
    )


def flashes(handler: BaseHandler) -> str:
    """The one-time messages queued for this visitor, shown (and gone)."""
    return "".join(
        f'<p class="flash {tornado.escape.xhtml_escape(category)}">'
        f"{tornado.escape.xhtml_escape(message)}</p>"
        for category, message in handler.session.pop_flashes()
    )


def form(handler: tornado.web.RequestHandler, action: str, fields: str, button: str) -> str:
    return (
        f'<form method="post" action="{action}">{handler.xsrf_form_html()}'
        f"{fields}<button>{button}</button></form>"
    )


# -- who is signed in ------------------------------------------------------------


class BaseHandler(SessionMixin, tornado.web.RequestHandler):
    """The pages' base: the signed-in user is the session's ``user_id``."""

    def get_current_user(self) -> str | None:
        # On an error page Tornado sends before prepare() (a failed XSRF
        # check), the session is an empty one: nobody is signed in.
        return self.session.get("user_id")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write(html_page(self, f"{status_code} {self._reason}", ""))


class HomeHandler(BaseHandler):
    @tornado.web.authenticated  # nobody signed in: a redirect to login_url?next=/
    async def get(self) -> None:
        ended = self.get_argument("ended", None)
        self.write(
            html_page(
                self,
                "Home",
                (f'<p id="ended">Logged out {int(ended)} other session(s).</p>' if ended else "")
                + f'<p id="cart">{len(self.session.get("cart", []))} item(s) in the cart</p>'
                + form(self, "/logout", "", "Log out")
                + form(
                    self,
                    "/password",
                    '<input type="password" name="old"><input type="password" name="new">',
                    "Change the password",
                ),
            )
        )


# -- log in, log out ---------------------------------------------------------------


class LoginHandler(BaseHandler):
    def login_form(self, error: str = "") -> str:
        next_url = tornado.escape.xhtml_escape(local_url(self.get_argument("next", "/")))
        return html_page(
            self,
            "Log in",
            (f'<p id="error">{error}</p>' if error else "")
            + form(
                self,
                "/login",
                f'<input type="hidden" name="next" value="{next_url}">'
                '<input name="name"><input type="password" name="password">'
                '<label><input type="checkbox" name="remember" value="1"> Remember me</label>',
                "Log in",
            ),
        )

    async def get(self) -> None:
        self.write(self.login_form())

    async def post(self) -> None:
        name = self.get_body_argument("name", "")
        if not self.settings["users"].check(name, self.get_body_argument("password", "")):
            self.set_status(403)
            self.write(self.login_form("Wrong user name or password."))
            return
        # A new session id at login: an id planted in the browser before it
        # is worthless after it (session fixation).  The data is kept.
        await self.session.regenerate()
        self.session["user_id"] = name
        if self.get_body_argument("remember", None):
            # A cookie that outlives the browser, for 30 days without a
            # visit.  Unticked, the cookie ends with the browser (this app
            # has persistent=False, i.e. SESSION_COOKIE_PERSISTENT=false).
            self.session.set_expiry(REMEMBER_ME)
        self.session["signed_in_at"] = int(time.time())  # a datetime would be a TypeError
        # Shown once, by the page the redirect lands on.
        self.session.flash(f"Welcome back, {name}.", "success")
        self.redirect(local_url(self.get_body_argument("next", "/")))


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        # Deletes the stored session now; the fresh one that replaces it
        # carries only the message to the login page.
        await self.session.destroy()
        self.session.flash("You are logged out.", "info")
        self.redirect("/login")


# -- a password change logs out everywhere ------------------------------------------


class PasswordHandler(BaseHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        users: Users = self.settings["users"]
        user = self.current_user
        if not users.check(user, self.get_body_argument("old", "")):
            raise tornado.web.HTTPError(403, reason="Wrong password")
        users.set_password(user, self.get_body_argument("new"))
        # Every other session of this user ends, in every process: a thief
        # holding an old cookie is out.  This browser stays signed in...
        ended = await self.end_user_sessions(keep_current=True)
        # ...under a new session id, as after a login.
        await self.session.regenerate()
        self.session.flash(f"Password changed; {ended} other session(s) logged out.", "success")
        self.redirect(f"/?ended={ended}")


# -- a JSON API on the same sessions --------------------------------------------------


class CartAPI(BaseHandler):
    """``GET /api/cart`` and ``POST /api/cart`` (a JSON item): the page's
    own scripts call it with the browser's session cookie."""

    async def prepare(self) -> None:
        await super().prepare()  # loads the session
        if self.current_user is None:  # an API answers 401; it does not redirect
            raise tornado.web.HTTPError(401, reason="Log in first")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write({"error": self._reason})  # JSON errors, a 403 from the XSRF check too

    async def get(self) -> None:
        self.write({"user": self.current_user, "cart": self.session.get("cart", [])})

    async def post(self) -> None:
        # Tornado's XSRF check passed before prepare(): the script sent the
        # token in an X-XSRFToken header (from the page's <meta name="xsrf">).
        try:
            item = tornado.escape.json_decode(self.request.body)
        except ValueError:
            raise tornado.web.HTTPError(400, reason="The body is not JSON") from None
        # A nested edit: noticed and saved, before the response, without a call.
        self.session.setdefault("cart", []).append(item)
        self.write({"cart": self.session["cart"]})


# -- a handler that needs no session ------------------------------------------------


class HealthHandler(BaseHandler):
    """``/health`` for a load balancer: it shares the pages' base class, but
    never needs the session, so it never loads it (no store call, even when
    the browser sends its cookie)."""

    lazy_session = True

    async def get(self) -> None:
        self.write("ok")


class WhoAmI(BaseHandler):
    """``/whoami``: loads the session only when asked to (``?check=1``)."""

    lazy_session = True

    async def get(self) -> None:
        if self.get_argument("check", None):
            session = await self.load_session()  # one SELECT, now
            self.write({"user": session.get("user_id")})
        else:
            self.write({"user": "not checked"})


# -- a WebSocket on the same sessions ----------------------------------------------


class CartSocket(SessionMixin, tornado.websocket.WebSocketHandler):
    """``/ws/cart``: add to the cart (a text message), live."""

    def get_current_user(self) -> str | None:
        return self.session.get("user_id")

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # prepare() loaded the session before the upgrade: refuse anonymous
        # visitors with a plain 403, before any socket opens.
        if self.current_user is None:
            raise tornado.web.HTTPError(403)
        await super().get(*args, **kwargs)

    async def on_message(self, message: str | bytes) -> None:
        # Other requests may have changed the session since the handshake
        # (a logout among them): read it again first.
        await self.session.reload()
        if self.session.get("user_id") is None:
            self.close(4001, "logged out")
            return
        self.session.setdefault("cart", []).append(tornado.escape.to_unicode(message))
        # No response will finish to save it: save now.  (The cookie cannot
        # change any more, so log in, log out and regenerate() over HTTP.)
        await self.session.save()
        await self.write_message({"cart": self.session["cart"]})


# -- the application ------------------------------------------------------------------


# -- an audit log of sessions --------------------------------------------------------


class AuditLog:
    """Receives every session event (the ``session_events`` setting) and
    writes one line per event to the ``myapp.audit`` logger; the latest lines
    are kept for an admin page.  Sessions appear by fingerprint, never id."""

    def __init__(self, keep: int = 1000) -> None:
        self.log = logging.getLogger("myapp.audit")
        self.recent: collections.deque[str] = collections.deque(maxlen=keep)

    async def __call__(self, event: SessionEvent) -> None:
        line = (
            f"{event.kind} session={event.fingerprint or '-'} user={event.user_id or '-'} "
            f"count={event.count} reason={event.reason}"
        )
        if event.previous is not None:  # regenerated: the fingerprint it had
            line += f" previous={event.previous}"
        self.recent.append(line)
        self.log.info("%s", line)


def make_app(
    store: SessionStore | None = None,
    config: SessionConfig | None = None,
    users: Users | None = None,
) -> tornado.web.Application:
    if users is None:
        users = Users()
        users.set_password("alice", "wonderland")
    return tornado.web.Application(
        [
            (r"/", HomeHandler),
            (r"/login", LoginHandler),
            (r"/logout", LogoutHandler),
            (r"/password", PasswordHandler),
            (r"/api/cart", CartAPI),
            (r"/ws/cart", CartSocket),
            (r"/health", HealthHandler),
            (r"/whoami", WhoAmI),
        ],
        login_url="/login",  # where @tornado.web.authenticated sends visitors
        xsrf_cookies=True,
        session_store=store if store is not None else MemoryStore(),
        # Read now, so that a missing SESSION_SECRET stops the app before it
        # serves.  persistent=False: cookies end with the browser unless
        # "remember me" is ticked (as SESSION_COOKIE_PERSISTENT=false does);
        # max_sessions_per_user: a sixth login ends the least recently used
        # of a user's sessions (as SESSION_MAX_PER_USER=5 does).
        session_config=(
            config
            if config is not None
            else SessionConfig.from_env(persistent=False, max_sessions_per_user=5)
        ),
        users=users,
        # Every created, regenerated, destroyed, ended, limited, expired or
        # cleaned-up session, as it happens (a failing hook is only logged).
        session_events=AuditLog(),
    )


async def main() -> None:
    make_app().listen(8888, address="localhost")
    print("myapp: http://localhost:8888/ (alice, password wonderland); Ctrl+C stops it")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
