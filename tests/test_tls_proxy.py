"""Behind a real TLS-terminating proxy (tests/tls_proxy.py, https on
loopback with a self-signed certificate): ``SESSION_COOKIE_SECURE=auto``
with ``xheaders=True`` sends the ``Secure`` ``__Host-`` cookie and reads it
back; without ``xheaders`` a ``Secure`` cookie is warned about, since
Tornado then sees plain http.

The client speaks https to the proxy, checking its certificate, with the
``Host`` header a browser sends for ``https://shop.test:PORT/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.web

from tests.conftest import ROUTES, SECRET, body, parse_set_cookie
from tests.tls_proxy import Backend, TLSProxy, make_certificate
from tornado_sessions import MemoryStore, SessionConfig

Site = Callable[..., Any]


class Client:
    """https to the proxy as a browser of ``shop.test`` would: keeps cookies."""

    def __init__(self, proxy: TLSProxy, ca: Path) -> None:
        self.proxy = proxy
        self.ca = ca
        self.jar: dict[str, str] = {}
        self.client = tornado.httpclient.AsyncHTTPClient(force_instance=True)

    async def get(self, path: str) -> tornado.httpclient.HTTPResponse:
        headers = {"Host": f"shop.test:{self.proxy.port}"}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        response = await self.client.fetch(
            f"https://127.0.0.1:{self.proxy.port}{path}",
            headers=headers,
            ca_certs=str(self.ca),
            follow_redirects=False,
            raise_error=False,
            request_timeout=10,
        )
        for line in response.headers.get_list("Set-Cookie"):
            morsel = parse_set_cookie(line)
            if morsel.value:
                self.jar[morsel.key] = morsel.coded_value
            else:
                self.jar.pop(morsel.key, None)
        return response


@pytest.fixture
def site(tmp_path: Path, io_loop: tornado.ioloop.IOLoop) -> Iterator[Site]:
    """``site(xheaders=..., **config)``: an app behind a TLS proxy, and a
    client of it."""
    certificate = make_certificate(tmp_path)
    running: list[Any] = []

    def start(*, xheaders: bool, **fields: Any) -> Client:
        app = tornado.web.Application(
            ROUTES,
            session_store=MemoryStore(),
            session_config=SessionConfig(secret=SECRET, **fields),
        )
        backend = Backend(app, xheaders=xheaders)
        proxy = TLSProxy(backend.port, certificate)
        proxy.start()
        client = Client(proxy, certificate[0])
        running.extend([client, proxy, backend])
        return client

    yield start

    async def stop() -> None:
        for thing in running:
            if isinstance(thing, Client):
                thing.client.close()
            else:
                await thing.stop()

    io_loop.run_sync(stop, timeout=10)


def plain_http_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]


@pytest.mark.gen_test
async def test_auto_behind_the_proxy_with_xheaders_sends_a_secure_host_cookie(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client = site(xheaders=True, secure="auto")
    response = await client.get("/login?user=alice")
    assert response.code == 200
    (line,) = response.headers.get_list("Set-Cookie")
    morsel = parse_set_cookie(line)
    assert morsel.key == "__Host-session"
    assert morsel["secure"] is True and morsel["httponly"] is True and morsel["path"] == "/"
    assert client.proxy.forwarded == 1  # it went through the proxy
    # Read back through the proxy: the login survives.
    for _ in range(2):
        assert body(await client.get("/read"))["data"] == {"user_id": "alice"}
    assert plain_http_warnings(caplog) == []


@pytest.mark.gen_test
async def test_auto_without_xheaders_sees_http_drops_secure_and_says_so_once(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # Without xheaders, Tornado believes the proxy's plain http: auto then
    # sends the http cookie, without Secure, and the proxy's header tells.
    client = site(xheaders=False, secure="auto")
    response = await client.get("/login")
    (line,) = response.headers.get_list("Set-Cookie")
    assert line.startswith("session=") and "Secure" not in line
    await site(xheaders=False, secure="auto").get("/login")  # another app: its own line
    for user in ("bob", "carol"):
        await client.get(f"/login?user={user}")
    warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-Proto" in r.getMessage()]
    assert len(warnings) == 2  # once per application
    assert "xheaders=True" in warnings[0] and "SESSION_COOKIE_SECURE=auto" in warnings[0]


@pytest.mark.gen_test
async def test_secure_behind_the_proxy_without_xheaders_is_warned_about_once(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tornado_sessions")
    client = site(xheaders=False)  # SESSION_COOKIE_SECURE=true, the default
    for user in ("alice", "bob"):
        await client.get(f"/login?user={user}")
    # The visitor is on https: the Secure cookie is kept, the login works...
    assert body(await client.get("/read"))["data"] == {"user_id": "bob"}
    # ...so the line says so, and asks for xheaders=True (Tornado sees http).
    (warning,) = plain_http_warnings(caplog)
    assert "host 'shop.test'" in warning and "xheaders=True" in warning
    assert "browsers keep this cookie" in warning
    assert "drop" not in warning and "logged out" not in warning


@pytest.mark.gen_test
async def test_a_forwarded_https_header_does_not_silence_the_plain_http_warning(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # A client can send X-Forwarded-Proto itself: after a proxied request,
    # plain http straight to the server for the same host is still warned
    # about, with the cookie that browsers drop there.
    caplog.set_level(logging.WARNING, "tornado_sessions")
    client = site(xheaders=False)
    await client.get("/login")
    direct = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        response = await direct.fetch(
            f"http://127.0.0.1:{client.proxy.backend_port}/login",
            headers={"Host": "shop.test"},
            raise_error=False,
            request_timeout=10,
        )
    finally:
        direct.close()
    assert "Secure" in response.headers["Set-Cookie"]
    kept, dropped = plain_http_warnings(caplog)
    assert "browsers keep this cookie" in kept
    assert "host 'shop.test'" in dropped and "every visitor stays logged out" in dropped


@pytest.mark.gen_test
async def test_secure_behind_the_proxy_with_xheaders_is_quiet(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    client = site(xheaders=True)
    await client.get("/login")
    assert body(await client.get("/read"))["data"] == {"user_id": "alice"}
    assert plain_http_warnings(caplog) == []
