"""The session's part of the HTTP exchange: finding its cookie in the
request, and putting the cookie decision and the caching headers on the
response (``Set-Cookie``, ``Vary: Cookie``, ``Cache-Control: private``).

.. versionadded:: 0.2
   (Moved out of ``mixin.py``; the behaviour is 0.1's, with 0.2's rules for
   ``Cache-Control`` and browser-session cookies.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .manager import CookieAction

if TYPE_CHECKING:
    from .manager import SessionManager
    from .session import Session

__all__ = ["apply", "cookie_value"]

log = logging.getLogger("tornado_sessions")


def cookie_value(request: Any, name: str) -> tuple[str | None, bool]:
    """Return (the cookie's value, whether it was sent more than once).

    Only our cookie is looked for, in one pass over the header (parsing
    every cookie, as ``get_cookie`` does, costs more than the rest of a
    returning visitor's session handling).  The value is returned
    exactly as sent: its form, surrounding quotes and any whitespace
    included, is checked by the cookie cipher alone.
    """
    # get_list: the header lines as received (get() would join them into a
    # new string on Tornado 6.6, through Mapping.get's try/except).
    value: str | None = None
    count = 0
    for line in request.headers.get_list("Cookie"):
        if name not in line:
            continue
        for part in line.split(";"):
            key, sep, found = part.partition("=")
            if sep and key.strip(" \t") == name:
                count += 1
                value = found
    if count > 1:
        return None, True
    return value, False


def apply(
    handler: Any, manager: SessionManager, session: Session | None, action: CookieAction
) -> None:
    """Put the cookie decision and the caching headers on the response."""
    if session is None or handler._headers_written:
        if action is CookieAction.SET and session is not None and session._cookie_dirty:
            log.warning("Session cookie could not be updated: headers were already sent")
        return
    headers = handler._headers
    # Set directly: the values are constants or already checked headers
    # (set_header() would check them again), on every response with a session.
    if session.accessed or action is not CookieAction.NONE:
        vary = _header(headers, "Vary")
        if not vary:
            headers["Vary"] = "Cookie"
        elif "cookie" not in vary.lower():
            headers["Vary"] = f"{vary}, Cookie"
    if action is CookieAction.NONE:
        # A response built from one user's session is that user's: no
        # shared cache may keep it, unless the handler chose otherwise.
        if session.accessed and _header(headers, "Cache-Control") is None:
            headers["Cache-Control"] = "private"
        return
    config = manager.config
    protocol = handler.request.protocol  # https behind a proxy only with xheaders=True
    cookie = config.cookie_for(protocol)
    if action is CookieAction.SET:
        max_age = manager.cookie_max_age(session)  # None: a browser-session cookie
        if cookie.secure:
            manager.check_plain_http(
                protocol,
                handler.request.host_name,
                forwarded_proto=handler.request.headers.get("X-Forwarded-Proto", ""),
            )
        elif config.secure == "auto":
            manager.check_proxy_without_xheaders(handler.request)
        handler.set_cookie(
            cookie.name,
            manager.cookie_value(session),
            domain=config.domain,
            path=config.path,
            expires=None if max_age is None else manager.now() + max_age,
            max_age=max_age,
            httponly=config.httponly,
            secure=cookie.secure,
            samesite=config.samesite.capitalize(),
        )
        session._cookie_dirty = session._cookie_behind = False
        session._stale_cookie = False
        session._cookie_held = True
    else:
        handler.clear_cookie(
            cookie.name,
            domain=config.domain,
            path=config.path,
            httponly=config.httponly,
            secure=cookie.secure,
            samesite=config.samesite.capitalize(),
        )
        session._stale_cookie = session._cookie_held = False
    # A response that sets a cookie must not be stored by shared caches.
    directives = [
        d.strip()
        for d in (_header(headers, "Cache-Control") or "").split(",")
        if d.strip()
        and d.strip().lower() != "public"
        and not d.strip().lower().startswith("s-maxage")
    ]
    if not any(d.lower() in ("private", "no-store") for d in directives):
        directives.insert(0, "private")
    handler.set_header("Cache-Control", ", ".join(directives))


def _header(headers: Any, name: str) -> str | None:
    """A response header's value, or None: ``HTTPHeaders.get`` raises and
    catches a KeyError for each absent header; its dict of normalized names
    does not."""
    table = getattr(headers, "_dict", None)
    return table.get(name) if isinstance(table, dict) else headers.get(name)
