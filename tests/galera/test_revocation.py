"""Live revocation on a real 3-node Galera cluster: a receive-only WebSocket
open in process B (on node 2) closes, code 4001 "session ended", when its
session ends through process A (on node 1) or C (on node 3): a logout, "log
out everywhere", the per-user limit, expiry; and a socket whose session
lives through both nodes' writes is never closed.  B's check is a causal
read (wsrep_sync_wait=1), so it sees every end acknowledged through any node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import tornado.httpclient

from tests.conftest import Browser, body
from tests.galera.cluster import GaleraCluster
from tests.mysql.app_server import AppProcess
from tests.mysql.test_revocation import INTERVAL, ended, logged_in
from tests.ws import FeedClient


@pytest.fixture
def apps(galera: GaleraCluster, galera_table: str) -> Iterator[tuple[str, str, str]]:
    """Processes A, B and C on nodes 1, 2 and 3, on one table."""
    env = {"SESSION_REVOCATION_INTERVAL": str(INTERVAL), "SESSION_MAX_PER_USER": "2"}
    with (
        AppProcess(galera.settings(1), galera_table, env=env) as a,
        AppProcess(galera.settings(2), galera_table, env=env) as b,
        AppProcess(galera.settings(3), galera_table, env=env) as c,
    ):
        yield a.url, b.url, c.url


@pytest.fixture
def client() -> Iterator[tornado.httpclient.AsyncHTTPClient]:
    http = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    yield http
    http.close()


@pytest.mark.gen_test(timeout=300)
async def test_ends_through_other_nodes_close_a_feed_on_node_2_and_no_live_one(
    apps: tuple[str, str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b, c = apps
    # A logout through node 1.
    browser = await logged_in(client, a)
    feed = await FeedClient.open(b, browser.jar)
    assert (await browser.get("/logout")).code == 200
    await ended(feed)

    # "Log out everywhere" through node 3: the other session's feed closes,
    # the asking session's stays open.
    laptop = await logged_in(client, c)
    phone = await logged_in(client, a)
    phone_feed = await FeedClient.open(b, phone.jar)
    laptop_feed = await FeedClient.open(b, laptop.jar)
    assert body(await laptop.get("/u/end-others")) == {"ended": 1}
    await ended(phone_feed)

    # The laptop's session lives through writes on all three nodes, around
    # B's checks: its feed is never closed.
    deadline = time.monotonic() + 4 * INTERVAL
    while time.monotonic() < deadline:
        for url in (a, b, c):
            writer = Browser(client, url)
            writer.jar = laptop.jar
            assert (await writer.get("/counter")).code == 200
            assert (await writer.get("/touch")).code == 200
        await asyncio.sleep(INTERVAL / 3)
    assert (await laptop_feed.ping()) == laptop_feed.hello
    assert laptop_feed.closed_at is None
    await laptop_feed.close()


@pytest.mark.gen_test(timeout=300)
async def test_the_per_user_limit_and_expiry_on_other_nodes_close_feeds_on_node_2(
    apps: tuple[str, str, str], client: tornado.httpclient.AsyncHTTPClient
) -> None:
    a, b, c = apps
    oldest = await logged_in(client, a)
    await asyncio.sleep(1.1)  # "least recently used" is by the second
    newer = await logged_in(client, c)
    oldest_feed = await FeedClient.open(b, oldest.jar)
    newer_feed = await FeedClient.open(b, newer.jar)
    await asyncio.sleep(1.1)
    await logged_in(client, c)  # SESSION_MAX_PER_USER=2, through node 3
    await ended(oldest_feed)
    assert (await newer_feed.ping())["user"] == "alice"

    # The newer session given 3 seconds through node 3, then left alone.
    assert (await newer.get("/expiry?s=3")).code == 200
    await ended(newer_feed)
