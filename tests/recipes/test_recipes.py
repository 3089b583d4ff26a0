"""Each recipe of docs/recipes.rst runs: the program behind them,
docs/recipes/myapp.py, on a real server, driven by a client that keeps
cookies and sends the XSRF token as a browser's form or script does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.parse
from pathlib import Path
from typing import Any

import myapp
import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket

from tests.conftest import SECRET, Browser, FakeClock, RecordingStore, set_cookies
from tornado_sessions import SessionConfig
from tornado_sessions.stores.base import fingerprint
from tornado_sessions.testing import session_manager

NAME = "__Host-session"
WAIT = 10  # seconds, for any one WebSocket message


@pytest.fixture
def config(clock: FakeClock, request: pytest.FixtureRequest) -> SessionConfig:
    limit = request.node.callspec.params.get("limit") if hasattr(request.node, "callspec") else None
    return SessionConfig(secret=SECRET, clock=clock, persistent=False, max_sessions_per_user=limit)


@pytest.fixture
def users() -> myapp.Users:
    users = myapp.Users()
    users.set_password("alice", "wonderland")
    users.set_password("bob", "builder")
    return users


@pytest.fixture
def app(store: RecordingStore, config: SessionConfig, users: myapp.Users) -> Any:
    return myapp.make_app(store, config, users)


def xsrf(browser: Browser) -> str:
    return browser.jar["_xsrf"]


async def post(browser: Browser, path: str, **fields: str) -> tornado.httpclient.HTTPResponse:
    """Submit a form of the app, as a browser does (the login page first, for
    the XSRF cookie, if none was seen yet)."""
    if "_xsrf" not in browser.jar:
        await browser.get("/login")
    body = urllib.parse.urlencode({"_xsrf": xsrf(browser), **fields})
    return await browser.get(path, method="POST", body=body)


async def log_in(
    browser: Browser, name: str = "alice", password: str = "wonderland", **more: str
) -> tornado.httpclient.HTTPResponse:
    response = await post(browser, "/login", name=name, password=password, **more)
    assert response.code == 302, response.body
    return response


def session_cookie(response: tornado.httpclient.HTTPResponse) -> Any:
    (cookie,) = [c for c in set_cookies(response) if c.key == NAME]
    return cookie


def sid(app: tornado.web.Application, cookie: str) -> str:
    payload = session_manager(app).decode_cookie(cookie)
    assert payload is not None
    return str(payload["i"])


# -- who is signed in: get_current_user, @authenticated, login_url --------------------


@pytest.mark.gen_test
async def test_authenticated_sends_visitors_to_the_login_url_and_back(browser: Browser) -> None:
    response = await browser.get("/")
    assert response.code == 302
    assert response.headers["Location"] == "/login?next=%2F"
    page = (await browser.get("/login?next=%2F")).body.decode()
    assert '<input type="hidden" name="next" value="/">' in page
    response = await log_in(browser, next="/")
    assert response.headers["Location"] == "/"
    home = await browser.get("/")
    assert home.code == 200 and b"Signed in as alice" in home.body


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "target",
    ["//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example", "evil"],
)
async def test_the_login_never_redirects_to_another_site(browser: Browser, target: str) -> None:
    response = await log_in(browser, next=target)
    assert response.headers["Location"] == "/"


@pytest.mark.gen_test
async def test_an_xsrf_failure_renders_a_page_that_reads_current_user(
    browser: Browser,
) -> None:
    await log_in(browser)
    response = await browser.get("/logout", method="POST", body="")  # no _xsrf
    assert response.code == 403
    assert b"<h1>403 Forbidden</h1>" in response.body
    assert b'<p id="who">Not signed in</p>' in response.body  # the empty stand-in
    assert (await browser.get("/")).code == 200  # still signed in


# -- log in with regenerate(), log out with destroy() ---------------------------------


@pytest.mark.gen_test
async def test_login_regenerates_the_id_and_logout_destroys_the_session(
    browser: Browser, app: Any, store: RecordingStore
) -> None:
    await browser.get("/login")
    wrong = await post(browser, "/login", name="alice", password="guess")
    assert wrong.code == 403 and b"Wrong user name or password." in wrong.body
    api = await browser.get("/api/cart")  # a visitor's session, before logging in
    assert api.code == 401
    await browser.get("/nowhere")
    before = browser.jar.get(NAME)

    await log_in(browser)
    after = browser.jar[NAME]
    assert after != before
    record = await store.inner.get(sid(app, after))
    assert record is not None and json.loads(record.data)["user_id"] == "alice"

    response = await post(browser, "/logout")
    assert response.code == 302 and response.headers["Location"] == "/login"
    assert await store.inner.get(sid(app, after)) is None  # the record is deleted
    fresh = browser.jar[NAME]  # the cookie names a fresh session: the message only
    assert fresh != after
    record = await store.inner.get(sid(app, fresh))
    assert record is not None and "user_id" not in json.loads(record.data)
    assert (await browser.get("/")).code == 302


# -- remember me ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_remember_me_ticked_or_not(
    http_client: tornado.httpclient.AsyncHTTPClient, base_url: str
) -> None:
    unticked = await log_in(Browser(http_client, base_url))
    cookie = session_cookie(unticked)
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # ends with the browser

    ticked = await log_in(Browser(http_client, base_url), remember="1")
    cookie = session_cookie(ticked)
    assert cookie["max-age"] == str(myapp.REMEMBER_ME)  # exactly 30 days


# -- a password change logs out everywhere ---------------------------------------------


@pytest.mark.gen_test
async def test_a_password_change_logs_out_every_other_browser(
    http_client: tornado.httpclient.AsyncHTTPClient, base_url: str, users: myapp.Users
) -> None:
    laptop, phone, thief = (Browser(http_client, base_url) for _ in range(3))
    for browser in (laptop, phone):
        await log_in(browser)
    thief.jar[NAME] = phone.jar[NAME]  # a stolen cookie
    bob = Browser(http_client, base_url)
    await log_in(bob, "bob", "builder")
    old_cookie = laptop.jar[NAME]

    response = await post(laptop, "/password", old="wonderland", new="looking-glass")
    assert response.code == 302 and response.headers["Location"] == "/?ended=1"
    assert laptop.jar[NAME] != old_cookie  # a new id, as at login
    home = await laptop.get("/?ended=1")
    assert home.code == 200 and b"Logged out 1 other session(s)." in home.body
    for browser in (phone, thief):
        assert (await browser.get("/")).code == 302  # signed out
    assert (await bob.get("/")).code == 200  # another user's sessions are untouched
    assert users.check("alice", "looking-glass") and not users.check("alice", "wonderland")

    wrong = await post(laptop, "/password", old="wonderland", new="x")
    assert wrong.code == 403 and b"Wrong password" in wrong.body


# -- an audit log of sessions ------------------------------------------------------------


def documented_audit_lines() -> list[str]:
    """The audit lines docs/recipes.rst shows, as they appear there."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "recipes.rst").read_text()
    start = page.index(".. _recipe-audit-log:")
    return re.findall(
        r"^    ((?:created|regenerated|user_ended|destroyed) .*)$", page[start:], re.M
    )[:6]


@pytest.mark.gen_test
async def test_the_audit_log_gets_a_line_per_session_event(
    app: tornado.web.Application,
    http_client: tornado.httpclient.AsyncHTTPClient,
    base_url: str,
    caplog: Any,
) -> None:
    audit: myapp.AuditLog = app.settings["session_events"]
    laptop, phone = Browser(http_client, base_url), Browser(http_client, base_url)
    with caplog.at_level(logging.INFO, logger="myapp.audit"):
        await log_in(laptop)
        first = fingerprint(sid(app, laptop.jar[NAME]))
        await log_in(phone)
        await post(laptop, "/password", old="wonderland", new="looking-glass")
        second = fingerprint(sid(app, laptop.jar[NAME]))
        await post(laptop, "/logout")
        await session_manager(app).events.join()
    lines = list(audit.recent)
    assert [r.getMessage() for r in caplog.records if r.name == "myapp.audit"] == lines
    # What the docs show is what the app writes, fingerprints aside.
    shown = documented_audit_lines()
    assert len(shown) == len(lines) == 6
    for got, doc in zip(lines, shown, strict=True):
        assert re.sub(r"[0-9a-f]{12}", "FP", got) == re.sub(r"[0-9a-f]{12}", "FP", doc)
    assert lines[0].startswith(f"created session={first} user=alice ")
    assert lines[3] == (
        f"regenerated session={second} user=alice count=1 reason=regenerate() previous={first}"
    )
    assert lines[2].startswith(f"user_ended session={first} user=alice count=1 ")  # the phone
    assert lines[4].startswith(f"destroyed session={second} user=alice ")
    raw_ids = [sid(app, c) for c in (phone.jar[NAME],)]
    assert not any(raw in line for line in lines for raw in raw_ids)


# -- a JSON API on the same sessions ---------------------------------------------------


@pytest.mark.gen_test
async def test_the_json_api_shares_the_pages_session(browser: Browser) -> None:
    anonymous = await browser.get("/api/cart")
    assert anonymous.code == 401
    assert json.loads(anonymous.body) == {"error": "Log in first"}

    await log_in(browser)
    home = (await browser.get("/")).body.decode()
    token = home.split('<meta name="xsrf" content="')[1].split('"')[0]  # as a script reads it
    script = {"X-XSRFToken": token, "Content-Type": "application/json"}
    for sku in ("tea", "scones"):
        response = await browser.get(
            "/api/cart", method="POST", body=json.dumps({"sku": sku}), headers=script
        )
        assert response.code == 200
    assert json.loads((await browser.get("/api/cart")).body) == {
        "user": "alice",
        "cart": [{"sku": "tea"}, {"sku": "scones"}],
    }
    assert b"2 item(s) in the cart" in (await browser.get("/")).body  # the page sees it

    no_token = await browser.get("/api/cart", method="POST", body="{}")
    assert no_token.code == 403 and "error" in json.loads(no_token.body)
    bad = await browser.get("/api/cart", method="POST", body="not json", headers=script)
    assert bad.code == 400 and json.loads(bad.body) == {"error": "The body is not JSON"}


# -- a WebSocket on the same sessions ---------------------------------------------------


def cookie_header(browser: Browser) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.jar.items())


async def connect(browser: Browser, base_url: str) -> tornado.websocket.WebSocketClientConnection:
    url = base_url.replace("http://", "ws://") + "/ws/cart"
    request = tornado.httpclient.HTTPRequest(
        url, headers={"Cookie": cookie_header(browser)}, request_timeout=WAIT
    )
    return await tornado.websocket.websocket_connect(request)


async def receive(socket: tornado.websocket.WebSocketClientConnection) -> Any:
    message = await asyncio.wait_for(socket.read_message(), WAIT)
    return None if message is None else json.loads(message)


@pytest.mark.gen_test
async def test_the_websocket_reads_and_saves_the_session(
    browser: Browser, base_url: str, store: RecordingStore
) -> None:
    await log_in(browser)
    socket = await connect(browser, base_url)
    try:
        await socket.write_message("tea")
        assert await receive(socket) == {"cart": ["tea"]}
        # An HTTP request in between: the socket reloads before it writes.
        await browser.get(
            "/api/cart",
            method="POST",
            body='"jam"',
            headers={"X-XSRFToken": xsrf(browser)},
        )
        await socket.write_message("scones")
        assert await receive(socket) == {"cart": ["tea", "jam", "scones"]}
    finally:
        socket.close()
    # Saved in the store: the pages see it.
    cart = json.loads((await browser.get("/api/cart")).body)["cart"]
    assert cart == ["tea", "jam", "scones"]


@pytest.mark.gen_test
async def test_the_websocket_refuses_visitors_and_closes_after_a_logout(
    browser: Browser, base_url: str
) -> None:
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await connect(browser, base_url)
    assert refused.value.code == 403

    await log_in(browser)
    socket = await connect(browser, base_url)
    try:
        await post(browser, "/logout")  # in another tab
        # The library closes the socket at once, before it sends anything.
        assert await receive(socket) is None  # closed
        assert (socket.close_code, socket.close_reason) == (4001, "session ended")
    finally:
        socket.close()


@pytest.mark.gen_test
async def test_the_websocket_opens_when_the_expiry_is_due_to_slide(
    browser: Browser, base_url: str, clock: FakeClock, app: Any, store: RecordingStore
) -> None:
    await log_in(browser)
    clock.advance(300_000)  # past the touch interval: the handshake would write
    socket = await connect(browser, base_url)  # the handshake does not wait for it...
    try:
        await socket.write_message("tea")
        assert await receive(socket) == {"cart": ["tea"]}
    finally:
        socket.close()
    # ... the socket's save slid the expiry.
    record = await store.inner.get(sid(app, browser.jar[NAME]))
    assert record is not None and record.expires_at == int(clock()) + 2_628_000


# -- flash messages ---------------------------------------------------------------------


def flash_texts(response: tornado.httpclient.HTTPResponse) -> list[str]:
    import re

    return re.findall(r'<p class="flash [a-z]+">([^<]*)</p>', response.body.decode())


@pytest.mark.gen_test
async def test_flash_messages_show_once_after_login_logout_and_a_password_change(
    browser: Browser,
) -> None:
    landed = await browser.get((await log_in(browser)).headers["Location"])
    assert flash_texts(landed) == ["Welcome back, alice."]
    assert flash_texts(await browser.get("/")) == []  # once
    other = Browser(browser.client, browser.base_url)
    await log_in(other)
    changed = await post(browser, "/password", old="wonderland", new="looking-glass")
    home = await browser.get(changed.headers["Location"])
    assert flash_texts(home) == ["Password changed; 1 other session(s) logged out."]
    out = await post(browser, "/logout")
    assert flash_texts(await browser.get(out.headers["Location"])) == ["You are logged out."]


# -- handlers that need no session -----------------------------------------------------


@pytest.mark.gen_test
async def test_a_lazy_handler_pays_for_the_session_only_when_it_asks(
    browser: Browser, store: RecordingStore
) -> None:
    await log_in(browser)
    store.calls.clear()
    assert (await browser.get("/health")).body == b"ok"  # the cookie is sent...
    assert json.loads((await browser.get("/whoami")).body) == {"user": "not checked"}
    assert store.calls == []  # ...and no store call is made
    assert json.loads((await browser.get("/whoami?check=1")).body) == {"user": "alice"}
    assert store.calls == ["get"]


# -- a limit on sessions per user --------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("limit", [2])
async def test_the_limit_on_sessions_per_user(
    http_client: Any, base_url: str, limit: int, config: SessionConfig, clock: FakeClock
) -> None:
    assert config.max_sessions_per_user == limit
    browsers = [Browser(http_client, base_url) for _ in range(3)]
    for browser in browsers:
        clock.advance(5)
        await log_in(browser)
    assert (await browsers[0].get("/")).code == 302  # the oldest was logged out
    for browser in browsers[1:]:
        assert (await browser.get("/")).code == 200
