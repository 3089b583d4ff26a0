"""Live revocation across processes on one MariaDB: a receive-only WebSocket
(tests/ws.py's ``/ws/feed``) open in process B closes, with code 4001 and
reason "session ended", when its session ends through process A by any route
(destroy, log out everywhere, the per-user limit, expiry, the cleanup), and
never while its session lives.  Two real server processes
(tests/mysql/app_server.py), real WebSocket clients; and, on the private
server's general log, one statement per check whatever the number of sockets.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.web

from tests.conftest import ROUTES, SECRET, Browser, body
from tests.mysql.app_server import AppProcess
from tests.mysql.conftest import Settings, make_store, query
from tests.test_user_sessions import Login as UserLogin
from tests.ws import FEED_ROUTES, FeedClient, revocation
from tornado_sessions import SessionConfig
from tornado_sessions.manager import new_sid
from tornado_sessions.revocation import CLOSE_CODE, CLOSE_REASON
from tornado_sessions.stores.mysql import MySQLStore

INTERVAL = 1.0  # SESSION_REVOCATION_INTERVAL of the two processes
# The longest wait for a close: the interval, with room for a busy machine.
CLOSE_WITHIN = INTERVAL + 9.0


@pytest.fixture
def apps(mysql_settings: Settings, table: str) -> Iterator[tuple[str, str]]:
    """Processes A and B on one table (a balancer would send a user to either)."""
    env = {"SESSION_REVOCATION_INTERVAL": str(INTERVAL), "SESSION_MAX_PER_USER": "2"}
    with (
        AppProcess(mysql_settings, table, env=env) as a,
        AppProcess(mysql_settings, table, env=env) as b,
    ):
        yield a.url, b.url


@pytest.fixture
def client() -> Iterator[tornado.httpclient.AsyncHTTPClient]:
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    yield http
    http.close()


async def logged_in(
    client: tornado.httpclient.AsyncHTTPClient, url: str, user: str = "alice"
) -> Browser:
    browser = Browser(client, url)
    response = await browser.get(f"/u/login?user={user}")
    assert response.code == 200, response.body
    return browser


async def ended(feed: FeedClient) -> None:
    assert await feed.closed(CLOSE_WITHIN), "the socket of an ended session is still open"
    assert (feed.close_code, feed.close_reason) == (CLOSE_CODE, CLOSE_REASON)


@pytest.mark.gen_test(timeout=120)
async def test_a_logout_in_process_a_closes_a_feed_in_process_b(
    apps: tuple[str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b = apps
    browser = await logged_in(client, a)
    other = await logged_in(client, a, "bob")
    feed = await FeedClient.open(b, browser.jar)
    bobs = await FeedClient.open(b, other.jar)
    assert feed.hello["user"] == "alice"
    assert (await browser.get("/logout")).code == 200  # destroy(), in process A
    await ended(feed)
    assert (await bobs.ping())["user"] == "bob"  # another session: untouched
    await bobs.close()


@pytest.mark.gen_test(timeout=120)
async def test_log_out_everywhere_in_a_closes_the_users_other_feeds_in_b(
    apps: tuple[str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b = apps
    laptop = await logged_in(client, a)
    phone = await logged_in(client, a)
    phone_feed = await FeedClient.open(b, phone.jar)
    laptop_feed = await FeedClient.open(b, laptop.jar)
    assert body(await laptop.get("/u/end-others")) == {"ended": 1}
    await ended(phone_feed)
    assert (await laptop_feed.ping())["user"] == "alice"  # the session that asked
    await laptop_feed.close()


@pytest.mark.gen_test(timeout=120)
async def test_the_per_user_limit_in_a_closes_the_ended_sessions_feed_in_b(
    apps: tuple[str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b = apps
    oldest = await logged_in(client, a)
    await asyncio.sleep(1.1)  # "least recently used" is by the second
    newer = await logged_in(client, a)
    oldest_feed = await FeedClient.open(b, oldest.jar)
    newer_feed = await FeedClient.open(b, newer.jar)
    await asyncio.sleep(1.1)
    await logged_in(client, a)  # a third login: SESSION_MAX_PER_USER=2 ends the oldest
    await ended(oldest_feed)
    assert (await newer_feed.ping())["user"] == "alice"
    await newer_feed.close()


@pytest.mark.gen_test(timeout=120)
async def test_expiry_closes_the_feed_in_b(
    apps: tuple[str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b = apps
    browser = await logged_in(client, a)
    assert (await browser.get("/expiry?s=3")).code == 200  # set_expiry(3), through A
    feed = await FeedClient.open(b, browser.jar)
    started = time.monotonic()
    await ended(feed)  # no request at all: the session expired on its own
    assert feed.closed_at is not None and feed.closed_at - started >= 1.5


@pytest.mark.gen_test(timeout=120)
async def test_the_cleanup_closes_the_feed_in_b(
    apps: tuple[str, str],
    client: tornado.httpclient.AsyncHTTPClient,
    mysql_settings: Settings,
    table: str,
) -> None:
    a, b = apps
    browser = await logged_in(client, a)
    feed = await FeedClient.open(b, browser.jar)
    # The row's expiry passes behind both processes' backs, and the
    # cleanup (python -m tornado_sessions clear-expired) deletes it.
    query(mysql_settings, f"UPDATE `{table}` SET expires_at = 1 WHERE user_id = 'alice'")
    store = MySQLStore(**mysql_settings, table=table, cleanup_interval=None)
    try:
        assert await store.clear_expired() == 1
    finally:
        await store.close()
    await ended(feed)


@pytest.mark.gen_test(timeout=120)
async def test_no_feed_of_a_live_session_is_closed(
    apps: tuple[str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b = apps
    browser = await logged_in(client, a)
    other = await logged_in(client, a)  # the same user, another session
    feed = await FeedClient.open(b, browser.jar)
    hello = feed.hello
    deadline = time.monotonic() + 5 * INTERVAL
    while time.monotonic() < deadline:
        # Saves and touches through A and B, and the user's other session
        # logging in again (a regenerate, which ends its old id), around
        # B's checks; at the end it logs out.
        for url in (a, b):
            session_browser = Browser(client, url)
            session_browser.jar = browser.jar
            assert (await session_browser.get("/counter")).code == 200
            assert (await session_browser.get("/touch")).code == 200
        # (Two sessions: within SESSION_MAX_PER_USER=2, which would
        # rightly end the least recently used at a third login.)
        assert (await other.get("/u/login?user=alice")).code == 200
        await asyncio.sleep(INTERVAL / 3)
    assert (await other.get("/logout")).code == 200
    await asyncio.sleep(2 * INTERVAL)
    assert await feed.ping() == hello
    assert feed.closed_at is None
    await feed.close()


# -- one statement per check, counted by the server ---------------------------------


@pytest.fixture
def private_app(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str
) -> Iterator[tornado.web.Application]:
    for store in make_store(io_loop, private_settings, table=private_table):
        config = SessionConfig(secret=SECRET, revocation_interval=0.2)
        yield tornado.web.Application(
            ROUTES + FEED_ROUTES + [(r"/u/login", UserLogin)],
            session_store=store,
            session_config=config,
        )


@pytest.fixture
def app(private_app: tornado.web.Application) -> tornado.web.Application:
    return private_app


@pytest.mark.gen_test(timeout=120)
async def test_one_select_per_check_for_every_socket_on_the_servers_log(
    app: tornado.web.Application,
    base_url: str,
    http_client: tornado.httpclient.AsyncHTTPClient,
    private_table: str,
    count_statements: Callable[[str], Any],
) -> None:
    browsers = [await logged_in(http_client, base_url, f"user{n}") for n in range(30)]
    feeds = [await FeedClient.open(base_url, b.jar) for b in browsers for _ in range(2)]
    registry = revocation(app)
    assert registry.sockets == 60
    with count_statements(private_table) as seen:
        before = registry.checks
        await asyncio.sleep(1.5)
        done = registry.checks - before
    checks = [s for s in seen.statements if " IN (" in s]
    assert 5 <= done and abs(len(checks) - done) <= 1, (done, seen.counts)
    assert seen.counts == {"SELECT": len(checks)}  # nothing else, per socket or not
    for statement in checks:  # 30 sessions of 60 sockets, in one statement each
        assert len(re.findall(r"UNHEX\(", statement)) == 30
    for feed in feeds:
        await feed.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_store_says_which_sessions_live_in_one_statement(
    app: tornado.web.Application, private_table: str, count_statements: Callable[[str], Any]
) -> None:
    from tests.conftest import FakeClock
    from tests.contract import record

    store = app.settings["session_store"]
    clock = FakeClock(time.time())
    live, gone, expired = new_sid(), new_sid(), new_sid()
    for sid in (live, gone):
        await store.set(sid, record(clock), expected_version=None)
    await store.set(expired, record(clock, ttl=-10), expected_version=None)
    await store.destroy(gone)
    with count_statements(private_table) as seen:
        assert await store.live([live, gone, expired, new_sid()]) == {live}
        assert await store.live([]) == set()
    assert seen.counts == {"SELECT": 1}
