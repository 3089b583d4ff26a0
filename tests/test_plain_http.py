"""The plain-http trap: a ``Secure`` session cookie sent on a request
Tornado sees as http, to a host where browsers drop it, is logged once per
host with the three fixes; and ``SESSION_COOKIE_SECURE=auto``.

Requests go to a real server on 127.0.0.1 with the ``Host`` header a browser
would send for another name (``shop.test`` mapped to 127.0.0.1).  The TLS
proxy and the browser: tests/test_tls_proxy.py and tests/demo/test_plain_http_browser.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import Browser, FakeClock, body, set_cookies
from tornado_sessions import ConfigError, SessionConfig
from tornado_sessions.config import CookieSpec
from tornado_sessions.cookies import PLAIN_HTTP_HOSTS, trusted_over_http
from tornado_sessions.env import parse

from .conftest import SECRET


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tornado_sessions" and "plain http" in r.getMessage()
    ]


async def login(browser: Browser, host: str) -> list[str]:
    response = await browser.get("/login", headers={"Host": host})
    assert response.code == 200
    return response.headers.get_list("Set-Cookie")


@pytest.mark.gen_test
async def test_a_secure_cookie_over_http_to_another_host_is_warned_about_once(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    (line,) = await login(browser, "shop.test:8888")
    assert line.startswith("__Host-session=") and "Secure" in line  # still sent as configured
    await login(Browser(browser.client, browser.base_url), "shop.test")
    await login(Browser(browser.client, browser.base_url), "SHOP.TEST:80")
    (warning,) = warnings(caplog)  # one per host, whatever the port or case
    assert "to host 'shop.test'" in warning
    assert "serve the site over https" in warning
    assert "xheaders=True" in warning
    assert "SESSION_COOKIE_SECURE=false" in warning and "local development" in warning
    assert "SESSION_COOKIE_SECURE=auto" in warning


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8888", "127.0.0.1:8888", "[::1]:8888", "app.localhost"]
)
async def test_loopback_hosts_keep_secure_cookies_so_no_warning(
    browser: Browser, caplog: pytest.LogCaptureFixture, host: str
) -> None:
    assert "Secure" in (await login(browser, host))[0]
    assert warnings(caplog) == []


@pytest.mark.gen_test
@pytest.mark.session_config(secure=False)
async def test_no_warning_when_the_cookie_is_not_secure(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    (line,) = await login(browser, "shop.test")
    assert line.startswith("session=") and "Secure" not in line
    assert warnings(caplog) == []


@pytest.mark.gen_test
async def test_other_hosts_share_the_rate_limit_and_are_warned_about_later(
    browser: Browser, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    await login(browser, "shop.test")
    await login(Browser(browser.client, browser.base_url), "other.test")  # within the minute
    assert len(warnings(caplog)) == 1
    clock.advance(61)
    await login(Browser(browser.client, browser.base_url), "other.test")
    await login(Browser(browser.client, browser.base_url), "shop.test")  # already warned
    first, second = warnings(caplog)
    assert "'other.test'" in second
    assert "1 more like it were not logged" in second


@pytest.mark.gen_test
async def test_the_hosts_remembered_are_bounded(
    browser: Browser, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    hosts = [f"h{n}.test" for n in range(PLAIN_HTTP_HOSTS + 2)]
    for host in hosts:
        await login(Browser(browser.client, browser.base_url), host)
        clock.advance(61)
    assert len(warnings(caplog)) == len(hosts)
    # The first ones are remembered: no second line for them ...
    await login(Browser(browser.client, browser.base_url), hosts[0])
    assert len(warnings(caplog)) == len(hosts)
    # ... the last ones were not (the set is full): warned again, a minute apart.
    await login(Browser(browser.client, browser.base_url), hosts[-1])
    assert len(warnings(caplog)) == len(hosts) + 1


@pytest.mark.gen_test
async def test_a_long_host_header_is_cut_in_the_log(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    await login(browser, "a" * 300 + ".test")
    (warning,) = warnings(caplog)
    assert "'" + "a" * 100 + "'" in warning and "a" * 101 not in warning


# -- SESSION_COOKIE_SECURE=auto ----------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.session_config(secure="auto")
async def test_auto_over_http_sends_a_plain_cookie_that_is_read_back(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    (line,) = await login(browser, "shop.test")
    assert line.startswith("session=") and "Secure" not in line
    assert "HttpOnly" in line and "SameSite=Lax" in line
    response = await browser.get("/read", headers={"Host": "shop.test"})
    assert body(response)["data"] == {"user_id": "alice"}  # the login survives
    assert warnings(caplog) == []


@pytest.mark.gen_test
@pytest.mark.session_config(secure="auto")
async def test_auto_reads_only_the_cookie_of_the_requests_protocol(browser: Browser) -> None:
    (line,) = await login(browser, "shop.test")
    value = line.split(";")[0].split("=", 1)[1]
    # The same value under the https name, on an http request: not ours here.
    response = await browser.get("/read", headers={"Cookie": f"__Host-session={value}"})
    assert body(response) == {"data": {}, "new": True}
    # A logout over http clears the http cookie.
    response = await browser.get("/logout")
    (cleared,) = set_cookies(response)
    assert (cleared.key, cleared.value, cleared["secure"]) == ("session", "", "")


@pytest.mark.gen_test
@pytest.mark.session_config(secure="auto")
async def test_auto_over_direct_http_with_no_proxy_header_is_quiet(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    await login(browser, "shop.test")
    assert not [r for r in caplog.records if r.name == "tornado_sessions"]


def test_cookie_for_each_setting() -> None:
    auto = SessionConfig(secret=SECRET, secure="auto")
    assert auto.cookie_for("https") == CookieSpec("__Host-session", True)
    assert auto.cookie_for("http") == CookieSpec("session", False)
    named = SessionConfig(secret=SECRET, secure="auto", cookie_name="__Secure-shop")
    assert named.cookie_for("http") == CookieSpec("shop", False)
    assert SessionConfig(secret=SECRET, secure="auto", path="/app").cookie_for(
        "https"
    ) == CookieSpec("session", True)
    for protocol in ("http", "https"):
        assert SessionConfig(secret=SECRET).cookie_for(protocol) == ("__Host-session", True)
        assert SessionConfig(secret=SECRET, secure=False).cookie_for(protocol) == (
            "session",
            False,
        )


def test_auto_from_the_environment_and_what_it_refuses() -> None:
    assert parse("secure", " AUTO ") == "auto"
    with pytest.raises(ConfigError, match="accepted values: true, false .*, auto"):
        parse("secure", "sometimes")
    with pytest.raises(ConfigError, match="accepted values: true, false, auto"):
        SessionConfig(secret=SECRET, secure="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="samesite.*=none requires .*secure.*=true"):
        SessionConfig(secret=SECRET, secure="auto", samesite="none")


def test_trusted_over_http() -> None:
    assert all(
        map(trusted_over_http, ["localhost", "127.0.0.1", "127.1.2.3", "[::1]", "a.localhost"])
    )
    assert not any(map(trusted_over_http, ["shop.test", "10.0.0.1", "[::2]", "localhost.test"]))
