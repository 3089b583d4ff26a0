"""The demo explains itself to a new user: what it shows, which store it runs
on and where to look in the code; a login that goes back where it was sent
from (never to another site); a readable "my sessions" table; and a warning,
at startup and on its pages, when it is served where browsers refuse its
Secure cookies."""

from __future__ import annotations

import html
import re
import signal
import urllib.parse
from typing import Any

import pytest
import tornado.httpclient

from demo.app import describe_store, local_url, secure_over_http, short_agent
from tornado_sessions import MemoryStore, SessionConfig

from .conftest import SECRET, Visitor

Response = tornado.httpclient.HTTPResponse

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def text(response: Response) -> str:
    """The page's text, as a reader sees it (tags gone, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.body.decode())).split())


# -- the home page ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_home_page_says_what_it_shows_which_store_and_where_the_code_is(
    visitor: Visitor,
) -> None:
    page = text(await visitor.get("/"))
    assert "What this demo shows" in page
    for feature in ("regenerate()", "destroy()", "Notes", "My session", "log out everywhere"):
        assert feature in page, feature
    assert "Sessions are kept in MemoryStore (in this process: sessions are lost at every " in page
    assert "demo/app.py" in page and "tornado_sessions/" in page and "recipes" in page


def test_the_store_is_named_with_where_it_keeps_the_sessions() -> None:
    config = SessionConfig(secret=SECRET)
    assert describe_store(MemoryStore(), config).startswith("MemoryStore, in this process")
    mysql = config.replace(host="db.internal", user="app", database="web", table="sess")

    class MySQLStore:  # only the name and the config matter
        pass

    assert describe_store(MySQLStore(), mysql) == "MySQLStore, app@db.internal:3306/web, table sess"


# -- login goes back to ?next=, on this site only ------------------------------------------


async def sign_in(visitor: Visitor, next_url: str) -> Response:
    page = await visitor.get("/login?next=" + urllib.parse.quote(next_url, safe=""))
    assert page.code == 200
    return await visitor.post("/login", {"username": "Alice", "next": next_url})


@pytest.mark.gen_test
async def test_login_goes_back_to_the_page_that_asked(visitor: Visitor) -> None:
    protected = await visitor.get("/sessions")
    assert protected.code == 302
    location = protected.headers["Location"]
    assert location == "/login?next=%2Fsessions"
    page = await visitor.get(location)
    assert 'name="next" id="next" value="/sessions"' in page.body.decode()
    response = await visitor.post("/login", {"username": "Alice", "next": "/sessions"})
    assert response.code == 302 and response.headers["Location"] == "/sessions"
    assert (await visitor.get("/sessions")).code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "http://evil.example/sessions",
        "/\\evil.example",
        "/\t/evil.example",
        "///evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
async def test_login_never_sends_the_browser_to_another_site(visitor: Visitor, target: str) -> None:
    response = await sign_in(visitor, target)
    assert response.code == 302
    assert response.headers["Location"] == "/"


def test_local_url_keeps_paths_with_a_query() -> None:
    assert local_url("/notes?x=1#top") == "/notes?x=1#top"
    assert local_url("/a//b") == "/a//b"


# -- the sessions table stays readable -------------------------------------------------------


@pytest.mark.parametrize("demo_session_config", [True], indirect=True)
@pytest.mark.gen_test
async def test_the_sessions_table_shortens_the_user_agent_with_the_full_one_on_hover(
    visitor: Visitor, demo_session_config: SessionConfig
) -> None:
    assert demo_session_config.track_client
    await visitor.get("/login", headers={"User-Agent": CHROME})
    await visitor.post("/login", {"username": "Alice"}, headers={"User-Agent": CHROME})
    page = (await visitor.get("/sessions", headers={"User-Agent": CHROME})).body.decode()
    (cell,) = re.findall(r'<td class="client" title="([^"]*)">([^<]*)</td>', page)
    title, shown = (html.unescape(part) for part in cell)
    assert shown == "127.0.0.1 · Chrome 131 on Linux"
    assert title == f"127.0.0.1 · {CHROME}"


@pytest.fixture
def demo_session_config(request: pytest.FixtureRequest, demo_clock: Any) -> SessionConfig:
    return SessionConfig(
        secret=SECRET, clock=demo_clock, track_client=getattr(request, "param", False)
    )


@pytest.mark.parametrize(
    ("agent", "short"),
    [
        (CHROME, "Chrome 131 on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox 133 on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari 17 on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome 131 on Android",
        ),
        ("curl/8.5.0", "curl/8.5.0"),
        ("x" * 100, "x" * 31 + "\u2026"),
    ],
)
def test_short_agent(agent: str, short: str) -> None:
    assert short_agent(agent) == short


# -- Secure cookies refused on other hosts -------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kept"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.20", False),
        ("demo.example", False),
        ("localhost.example", False),
    ],
)
def test_browsers_keep_secure_cookies_over_http_only_on_loopback(host: str, kept: bool) -> None:
    assert secure_over_http(host) is kept


@pytest.mark.gen_test
async def test_the_403_page_says_why_on_a_host_that_refuses_secure_cookies(
    visitor: Visitor,
) -> None:
    # What a browser on another machine gets: no cookie kept, so no token.
    refused = await visitor.post(
        "/notes", {"note": "x"}, xsrf=False, headers={"Host": "demo.lan:8888"}
    )
    assert refused.code == 403
    page = text(refused)
    assert "without a valid XSRF token" in page
    assert "came over plain http from demo.lan" in page
    assert "http://localhost:8888/" in page and "SESSION_COOKIE_SECURE=false" in page
    # The home page says it too, where the counter stays at 1.
    home = text(await visitor.get("/", headers={"Host": "192.168.1.20:8888"}))
    assert "came over plain http from 192.168.1.20" in home


@pytest.mark.gen_test
async def test_no_warning_on_localhost(visitor: Visitor) -> None:
    for host in ("localhost:8888", "127.0.0.1:8888"):
        page = (await visitor.get("/", headers={"Host": host})).body.decode()
        assert 'id="secure-hint"' not in page
    refused = await visitor.post("/notes", {"note": "x"}, xsrf=False)
    assert refused.code == 403 and 'id="secure-hint"' not in refused.body.decode()


@pytest.mark.parametrize(
    ("host", "where"),
    [
        ("0.0.0.0", "from other machines"),
        ("127.0.0.2", None),
        ("localhost", None),
    ],
)
def test_python_m_demo_warns_at_startup_when_browsers_will_refuse_the_cookie(
    run_demo: Any, host: str, where: str | None
) -> None:
    proc, banner = run_demo("--host", host, "--port", "0", "--no-reload")
    text = "\n".join(banner)
    warning = "WARNING:    the session cookie is Secure"
    if where is None:
        assert warning not in text, text
    else:
        assert warning in text and where in text, text
        assert "SESSION_COOKIE_SECURE=false" in text and "XSRF" in text
        assert re.search(r"open: +http://localhost:\d+/", text)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


def test_no_startup_warning_when_the_cookie_is_not_secure(run_demo: Any) -> None:
    proc, banner = run_demo(
        "--host", "0.0.0.0", "--port", "0", "--no-reload", SESSION_COOKIE_SECURE="false"
    )
    assert "WARNING:    the session cookie is Secure" not in "\n".join(banner)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
