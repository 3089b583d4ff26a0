"""``SESSION_COOKIE_SECURE`` in a real browser (headless Chromium, as in
test_browser.py), on a host that is not localhost: ``shop.test``, which
Chromium resolves to 127.0.0.1 (``--host-resolver-rules``).

* Behind a TLS-terminating proxy (tests/tls_proxy.py, a self-signed
  certificate Chromium is told to accept) in front of an application started
  with ``xheaders=True``, ``auto`` sends the ``Secure`` ``__Host-`` cookie and
  a login survives.
* Over plain http with the default ``Secure`` cookie, Chromium drops the
  cookie: the login is lost, and the application logs the warning, once.
* Over plain http with ``auto``, the cookie goes without ``Secure`` and the
  login survives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.web

from tests.conftest import ROUTES
from tests.tls_proxy import Backend, TLSProxy, make_certificate
from tornado_sessions import MemoryStore, SessionConfig

from .conftest import SECRET
from .serving import ServedFromThread
from .test_browser import _require_browser, chromium


class Sites(ServedFromThread):
    """Three applications, served from a thread with its own event loop:
    ``proxied`` (auto, xheaders=True, behind the TLS proxy at ``proxy_port``),
    ``secure_http`` (the default Secure cookie, plain http) and
    ``auto_http`` (auto, plain http)."""

    def __init__(self, certificate: tuple[Path, Path]) -> None:
        super().__init__("the proxy sites")
        self.certificate = certificate
        self.ports: dict[str, int] = {}

    async def serve(self) -> Callable[[], Awaitable[None]]:
        def app(**fields: Any) -> tornado.web.Application:
            config = SessionConfig(secret=SECRET, **fields)
            return tornado.web.Application(
                ROUTES, session_store=MemoryStore(), session_config=config
            )

        proxied = Backend(app(secure="auto"), xheaders=True)
        proxy = TLSProxy(proxied.port, self.certificate)
        proxy.start()
        secure_http = Backend(app(), xheaders=False)
        auto_http = Backend(app(secure="auto"), xheaders=False)
        self.ports = {"proxy": proxy.port, "secure_http": secure_http.port}
        self.ports["auto_http"] = auto_http.port

        async def shut_down() -> None:
            await proxy.stop()
            for backend in (proxied, secure_http, auto_http):
                await backend.stop()

        return shut_down


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    _require_browser()
    running = Sites(make_certificate(tmp_path))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
def shop_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download
    with chromium(
        tmp_path,
        "--host-resolver-rules=MAP shop.test 127.0.0.1",
        "--ignore-certificate-errors",  # the proxy's certificate is self-signed
    ) as browser:
        yield browser


def page_json(driver: Any, url: str) -> Any:
    from selenium.webdriver.common.by import By

    driver.get(url)
    return json.loads(driver.find_element(By.TAG_NAME, "body").text)


def test_auto_behind_a_tls_proxy_keeps_the_login_in_chromium(
    sites: Sites, shop_browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    site = f"https://shop.test:{sites.ports['proxy']}"
    assert page_json(shop_browser, f"{site}/login?user=alice") == {"ok": True}
    (cookie,) = shop_browser.get_cookies()
    assert (cookie["name"], cookie["secure"], cookie["httpOnly"]) == ("__Host-session", True, True)
    for _ in range(2):  # the login survives, request after request
        assert page_json(shop_browser, f"{site}/read")["data"] == {"user_id": "alice"}
    assert not [r for r in caplog.records if "plain http" in r.getMessage()]


def test_plain_http_loses_the_secure_cookie_and_says_so_once(
    sites: Sites, shop_browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tornado_sessions")
    site = f"http://shop.test:{sites.ports['secure_http']}"
    assert page_json(shop_browser, f"{site}/login?user=alice") == {"ok": True}
    assert shop_browser.get_cookies() == []  # Chromium dropped the Secure cookie
    assert page_json(shop_browser, f"{site}/read") == {"data": {}, "new": True}
    page_json(shop_browser, f"{site}/login?user=alice")
    (warning,) = [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]
    assert "host 'shop.test'" in warning and "xheaders=True" in warning


def test_auto_over_plain_http_keeps_the_login_in_chromium(
    sites: Sites, shop_browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    site = f"http://shop.test:{sites.ports['auto_http']}"
    assert page_json(shop_browser, f"{site}/login?user=alice") == {"ok": True}
    (cookie,) = shop_browser.get_cookies()
    assert (cookie["name"], cookie["secure"]) == ("session", False)
    assert page_json(shop_browser, f"{site}/read")["data"] == {"user_id": "alice"}
    assert not [r for r in caplog.records if "plain http" in r.getMessage()]
