"""The session cookie's rules: what its payload holds, when a cookie is
refused (and how that is logged), and how long it and the record last.

`CookieRules` is a base of `.SessionManager`.  The cookie holds a Fernet
token (`.crypto.CookieCipher`) over ``{"v", "i", "c", "e"}``: the payload
version, the session id, its creation time and its expiry; never the
session's data, nor its lifetime, which the server keeps.  A cookie that is
not one we issued, or has expired, is refused before any store call, and
logged at most once a minute per kind of refusal.

.. versionadded:: 0.2
   (Moved out of ``manager.py``.)
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from ._ratelimit import RateLimitedLog
from .events import EventKind
from .stores.base import fingerprint

if TYPE_CHECKING:
    from .config import SessionConfig
    from .crypto import CookieCipher
    from .events import SessionEvents
    from .session import Session

__all__ = ["CookieRules", "CookieSpec", "cookie_specs", "trusted_over_http"]

log = logging.getLogger("tornado_sessions")

#: How many host names the plain-http warning remembers (each is warned
#: about once); past that, further hosts are warned about at most once a
#: minute, like every other warning, and not remembered.
PLAIN_HTTP_HOSTS = 256

_PLAIN_HTTP = (
    "A Secure session cookie was sent over plain http (as Tornado sees the request) to "
    "host %s: browsers keep Secure cookies from plain http only on localhost, 127.0.0.1 "
    "and [::1], so they drop this one and every visitor stays logged out. Fix one of: "
    "serve the site over https; behind a TLS-terminating proxy, start the server with "
    "xheaders=True (app.listen(port, xheaders=True)) so that Tornado sees the proxy's "
    "X-Forwarded-Proto: https; or, for local development only, set "
    "SESSION_COOKIE_SECURE=false (SESSION_COOKIE_SECURE=auto sets Secure exactly on the "
    "requests Tornado sees as https). Logged once per host"
)

_SECURE_WITHOUT_XHEADERS = (
    "A Secure session cookie was sent over plain http (as Tornado sees the request) to "
    "host %s, on a request that a proxy forwarded from https (X-Forwarded-Proto: https): "
    "browsers keep this cookie, since the visitor is on https, but Tornado sees plain http "
    "(request.protocol, full_url(), SESSION_COOKIE_SECURE=auto) because the server was not "
    "started with xheaders=True. Start the server with xheaders=True "
    "(app.listen(port, xheaders=True)) if a proxy you trust sets that header. Logged once"
)


_PROXY_WITHOUT_XHEADERS = (
    "A session cookie went out without Secure on a request that a proxy forwarded from https "
    "(X-Forwarded-Proto: https), which Tornado sees as plain http because the server was not "
    "started with xheaders=True: with SESSION_COOKIE_SECURE=auto the cookie then lacks Secure "
    "(and the __Host- name) although the visitor is on https. Start the server with "
    "xheaders=True (app.listen(port, xheaders=True)) if a proxy you trust sets that header. "
    "Logged once"
)


class CookieSpec(NamedTuple):
    """The session cookie's name and ``Secure`` flag for one request
    (`.SessionConfig.cookie_for`).

    .. versionadded:: 0.3
    """

    name: str
    secure: bool


_PREFIXES = ("__Host-", "__Secure-")


def _unprefixed(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def cookie_specs(name: str, secure: bool | str) -> tuple[CookieSpec, CookieSpec]:
    """The cookie of https requests and that of http ones, for the cookie
    name ``name`` and the ``secure`` setting (see `.SessionConfig.cookie_for`)."""
    if secure == "auto":
        return CookieSpec(name, True), CookieSpec(_unprefixed(name), False)
    spec = CookieSpec(name, bool(secure))
    return spec, spec


def trusted_over_http(host: str) -> bool:
    """Whether browsers keep a ``Secure`` cookie that ``host`` sends over
    plain http: only a loopback name or address (``localhost``,
    ``*.localhost``, 127.0.0.0/8, ``::1``), which they count as secure.

    .. versionadded:: 0.3
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_SID = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
_PAYLOAD_VERSION = 1


class CookieRules:
    """The cookie half of `.SessionManager` (see the module)."""

    config: SessionConfig
    cipher: CookieCipher
    events: SessionEvents

    def now(self) -> int:
        """The current time in whole seconds, from the configured clock."""
        return int(self.config.clock())

    def _expired(self, sid: str, timeout: str, user_id: str | None = None) -> None:
        """A request presented a session that is over by time: an event."""
        self.events.emit(EventKind.EXPIRED, fingerprint(sid), user_id, timeout)

    # -- lifetime: the record's expiry, which the cookie follows -------------------

    def _ttl(self, session: Session) -> int:
        return session._ttl or self.config.max_age

    def _expiry(self, session: Session, now: int) -> int:
        return self._expiry_of(session._created_at, session._ttl, now)

    def _expiry_of(self, created_at: int, ttl: int | None, now: int | None = None) -> int:
        expires = (self.now() if now is None else now) + (ttl or self.config.max_age)
        if self.config.absolute_max_age is not None:
            expires = min(expires, created_at + self.config.absolute_max_age)
        return expires

    def _touch_due(self, session: Session, new_expiry: int) -> bool:
        gain = new_expiry - session._expires_at
        if session._force_touch or (self.config.rolling and gain > 0):
            return True
        interval = self.config.touch_interval
        if interval is None:
            interval = max(1, self._ttl(session) // 10)
        return gain > 0 and gain >= interval

    @functools.cached_property
    def _rejections(self) -> RateLimitedLog:
        return RateLimitedLog(log, clock=self.config.clock)

    def log_rejected(self, kind: str, message: str, client: str | None) -> None:
        """Log a rejected cookie at WARNING, at most once per ``kind`` a minute.

        ``message`` has one ``%s`` for the client's address; the cookie's
        value never goes in.  Rejections held back are counted, and the
        count is added to the next line of their kind.
        """
        self._rejections.warning(kind, message, client or "unknown client")

    @functools.cached_property
    def _plain_http_hosts(self) -> set[str]:
        return set()

    def check_plain_http(self, protocol: str, host: str, *, forwarded_proto: str = "") -> None:
        """Warn (once per host) that a ``Secure`` cookie just went out on a
        request Tornado sees as plain http, to a host where browsers drop it.

        Called by `.response.apply` when it sets a ``Secure`` session cookie.
        At most `PLAIN_HTTP_HOSTS` hosts are remembered; the lines share the
        rate limit of the other warnings (one a minute, then a count).  When
        ``forwarded_proto`` (the request's ``X-Forwarded-Proto``) is https,
        a proxy served the visitor over https, so browsers keep the cookie:
        the line (once) says so and asks for ``xheaders=True`` instead, and
        the host is not remembered (a client can send that header itself).

        .. versionadded:: 0.3
        """
        if protocol != "http" or host in self._plain_http_hosts or trusted_over_http(host):
            return
        if forwarded_proto.strip().lower() == "https":
            if not self.__dict__.get("_secure_proxy_warned") and self._rejections.warning(
                "secure-without-xheaders", _SECURE_WITHOUT_XHEADERS, ascii(host[:100])
            ):
                self.__dict__["_secure_proxy_warned"] = True
            return
        shown = ascii(host[:100])  # the Host header is the client's: never raw in a log
        logged = self._rejections.warning("plain-http", _PLAIN_HTTP, shown)
        if logged and len(self._plain_http_hosts) < PLAIN_HTTP_HOSTS:
            self._plain_http_hosts.add(host)

    def check_proxy_without_xheaders(self, request: Any) -> None:
        """Warn (once) that a cookie without ``Secure`` went out, under
        ``SESSION_COOKIE_SECURE=auto``, on a request Tornado sees as http
        while a proxy says the visitor is on https: the server lacks
        ``xheaders=True``.

        .. versionadded:: 0.3
        """
        if self.__dict__.get("_proxy_warned"):
            return
        if request.headers.get("X-Forwarded-Proto", "").strip().lower() != "https":
            return
        if self._rejections.warning("proxy-without-xheaders", _PROXY_WITHOUT_XHEADERS):
            self.__dict__["_proxy_warned"] = True

    def decode_cookie(self, value: str, client: str | None = None) -> dict[str, Any] | None:
        """Return the checked payload of a cookie value, or None (logged,
        rate-limited: see `log_rejected`).

        .. versionchanged:: 0.3
           A returning visitor's payload is parsed and checked once, with
           its token (`.CookieCipher.decrypt_checked`); each request then
           checks only the token's age and the session's expiry.
        """
        result = self.cipher.decrypt_checked(value, self.config.cookie_ttl, _checked_payload)
        if result is None:
            self.log_rejected(
                "token",
                "Rejected a session cookie from %s: not a valid token for this application "
                "(not in the form it issues, tampered, truncated, expired, or made with an "
                "unknown secret); starting a fresh session",
                client,
            )
            return None
        payload = result[0]
        if payload is None:
            self.log_rejected(
                "payload",
                "Rejected a session cookie from %s: unexpected payload; starting a fresh session",
                client,
            )
            return None
        now = self.now()
        absolute = self.config.absolute_max_age
        expires = payload["e"]
        if expires <= now or (absolute is not None and payload["c"] + absolute <= now):
            timeout = "idle" if expires <= now else "absolute"
            self.log_rejected(
                f"expired-{timeout}",
                f"Rejected an expired session cookie from %s ({timeout} timeout); "
                "starting a fresh session",
                client,
            )
            self._expired(payload["i"], f"{timeout} timeout")
            return None
        # A copy: the checked payload is shared by every request with the cookie.
        return dict(payload)

    def cookie_value(self, session: Session) -> str:
        """Return the encrypted cookie value naming ``session``."""
        payload: dict[str, Any] = {
            "v": _PAYLOAD_VERSION,
            "i": session._id,
            "c": session._created_at,
            "e": session._expires_at,
        }
        return self.cipher.encrypt(payload)

    def cookie_max_age(self, session: Session) -> int | None:
        """The cookie's ``Max-Age``: seconds until the session expires, or
        None for a browser-session cookie (neither ``Max-Age`` nor
        ``Expires``).

        The cookie is a browser-session one when ``SESSION_COOKIE_PERSISTENT``
        is false and the session has no lifetime of its own; a session given
        one with `.Session.set_expiry` ("remember me") always gets a
        persistent cookie, issued with exactly that lifetime (less only
        where the absolute timeout ends the session sooner).

        .. versionchanged:: 0.2
           None for a browser-session cookie.
        """
        if session._ttl is None and not self.config.persistent:
            return None
        return max(1, session._expires_at - self.now())


def _checked_payload(payload: dict[str, Any], rotated: bool) -> dict[str, Any] | None:
    """The payload with ``"rotated"`` added, if it has the form we issue."""
    sid, created, expires, ttl = (payload.get(k) for k in ("i", "c", "e", "t"))
    if (
        payload.get("v") != _PAYLOAD_VERSION
        or not isinstance(sid, str)
        or not _SID.match(sid)
        or not isinstance(created, int)
        or not isinstance(expires, int)
        or not (ttl is None or isinstance(ttl, int))
    ):
        return None
    return {**payload, "rotated": rotated}
