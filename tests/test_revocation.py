"""Live revocation in one process (MemoryStore): open WebSockets close, with
code 4001 and reason "session ended", when their session ends by any route,
and never while it lives.  Real HTTP server, real WebSocket clients
(tornado.websocket.websocket_connect); tests/mysql/test_revocation.py does
the same across two processes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket

import tornado_sessions.ui
from tests.conftest import ROUTES, Browser, FakeClock, RecordingStore, body
from tests.test_user_sessions import Base, EndOne, EndOthers, Mine
from tests.ws import FEED_ROUTES, Feed, FeedClient, revocation
from tornado_sessions import SessionConfig
from tornado_sessions.revocation import CLOSE_CODE, CLOSE_REASON

from .conftest import SECRET

# Long enough that a test passing within it proves the close came at once,
# not from the periodic check.
NEVER = 3600.0


@pytest.fixture
def app(store: RecordingStore, config: SessionConfig) -> tornado.web.Application:
    routes = (
        ROUTES
        + FEED_ROUTES
        + [
            (r"/u/mine", Mine),
            (r"/u/end-others", EndOthers),
            (r"/u/end-one", EndOne),
            (r"/admin/end", AdminEnd),
        ]
    )
    return tornado.web.Application(
        routes,
        session_store=store,
        session_config=config,
        debug=True,
        ui_methods=tornado_sessions.ui,
    )


class AdminEnd(Base):
    """An administrator's page that acts on the `.SessionManager` itself,
    not through the mixin's per-user methods."""

    async def get(self) -> None:
        manager = self.get_session_manager()
        self.write({"ended": await manager.end_user_sessions(self.get_argument("user"))})


def new_browser(browser: Browser) -> Browser:
    """Another browser on the same server."""
    return Browser(browser.client, browser.base_url)


async def log_in(browser: Browser, user: str = "alice") -> None:
    response = await browser.get(f"/login?user={user}")
    assert response.code == 200, response.body


async def feed(browser: Browser) -> FeedClient:
    return await FeedClient.open(browser.base_url, browser.jar)


async def ended(client: FeedClient, timeout: float = 5.0) -> None:
    assert await client.closed(timeout), "the socket of an ended session is still open"
    assert (client.close_code, client.close_reason) == (CLOSE_CODE, CLOSE_REASON)
    assert (CLOSE_CODE, CLOSE_REASON) == (4001, "session ended")


async def checks(app: tornado.web.Application, count: int) -> None:
    """Wait until ``count`` more periodic checks have run."""
    registry = revocation(app)
    target = registry.checks + count
    async with asyncio.timeout(10):
        while registry.checks < target:
            await asyncio.sleep(0.01)


# -- this process ends the session: the sockets close at once --------------------


@pytest.mark.session_config(revocation_interval=NEVER)
@pytest.mark.gen_test
async def test_a_logout_closes_the_sessions_sockets_at_once_and_no_other(
    browser: Browser, app: tornado.web.Application, store: RecordingStore
) -> None:
    await log_in(browser)
    other = new_browser(browser)
    await log_in(other, "bob")
    mine = [await feed(browser), await feed(browser)]  # two tabs
    bobs = await feed(other)
    store.calls.clear()
    assert (await browser.get("/logout")).code == 200  # destroy()
    for client in mine:
        await ended(client)
    assert "live" not in store.calls  # known here: no statement needed
    assert (await bobs.ping())["user"] == "bob"
    assert revocation(app).sockets == 1
    await bobs.close()


@pytest.mark.session_config(revocation_interval=NEVER)
@pytest.mark.gen_test
async def test_a_login_regenerating_the_session_closes_the_old_ids_sockets(
    browser: Browser,
) -> None:
    await log_in(browser)
    before = await feed(browser)
    await log_in(browser, "carol")  # regenerate(): the old id ends
    await ended(before)
    after = await feed(browser)  # the new id's socket lives
    assert (await after.ping())["user"] == "carol"
    await after.close()


@pytest.mark.session_config(revocation_interval=NEVER)
@pytest.mark.gen_test
async def test_log_out_everywhere_closes_the_users_other_sockets_in_one_check(
    browser: Browser, store: RecordingStore
) -> None:
    phone, laptop, stranger = (new_browser(browser) for _ in range(3))
    for b in (browser, phone, laptop):
        await log_in(b, "alice")
    await log_in(stranger, "bob")
    sockets = {b: await feed(b) for b in (browser, phone, laptop, stranger)}
    store.live_asked.clear()
    response = await browser.get("/u/end-others")  # keeps this session
    assert body(response) == {"ended": 2}
    await ended(sockets[phone])
    await ended(sockets[laptop])
    assert store.live_asked == [4]  # one lookup for all four sockets
    assert (await sockets[browser].ping())["user"] == "alice"
    assert (await sockets[stranger].ping())["user"] == "bob"
    for b in (browser, stranger):
        await sockets[b].close()


@pytest.mark.session_config(revocation_interval=NEVER)
@pytest.mark.gen_test
async def test_ends_through_the_session_manager_itself_close_the_sockets_at_once(
    browser: Browser, store: RecordingStore
) -> None:
    phone, admin, stranger = (new_browser(browser) for _ in range(3))
    for b in (browser, phone):
        await log_in(b, "alice")
    await log_in(stranger, "bob")
    sockets = {b: await feed(b) for b in (browser, phone, stranger)}
    store.live_asked.clear()
    assert body(await admin.get("/admin/end?user=alice")) == {"ended": 2}
    await ended(sockets[browser])
    await ended(sockets[phone])
    assert store.live_asked == [3]  # one lookup, at once, for every socket
    assert (await sockets[stranger].ping())["user"] == "bob"
    await sockets[stranger].close()


@pytest.mark.session_config(revocation_interval=NEVER)
@pytest.mark.gen_test
async def test_ending_one_session_from_my_sessions_closes_its_socket(browser: Browser) -> None:
    phone = new_browser(browser)
    await log_in(browser)
    await log_in(phone)
    phone_feed, my_feed = await feed(phone), await feed(browser)
    response = await browser.get(f"/u/end-one?fp={phone_feed.hello['fp']}")
    assert body(response) == {"ended": True}
    await ended(phone_feed)
    assert (await my_feed.ping())["user"] == "alice"
    await my_feed.close()


@pytest.mark.session_config(revocation_interval=NEVER, max_sessions_per_user=2)
@pytest.mark.gen_test
async def test_the_per_user_limit_closes_the_socket_of_the_session_it_ends(
    browser: Browser, clock: FakeClock
) -> None:
    first, second, third = browser, new_browser(browser), new_browser(browser)
    await log_in(first)
    clock.advance(10)
    await log_in(second)
    oldest, newer = await feed(first), await feed(second)
    clock.advance(10)
    await log_in(third)  # a third login ends the least recently used: first
    await ended(oldest)
    assert (await newer.ping())["user"] == "alice"
    await newer.close()


# -- ended elsewhere: the periodic check -------------------------------------------


@pytest.mark.session_config(revocation_interval=0.05)
@pytest.mark.gen_test
async def test_expiry_closes_the_socket_at_the_next_check(
    browser: Browser, clock: FakeClock, app: tornado.web.Application
) -> None:
    await log_in(browser)
    assert (await browser.get("/expiry?s=60")).code == 200
    client = await feed(browser)
    await checks(app, 3)
    assert client.closed_at is None
    clock.advance(61)  # no request: the session expires on its own
    await ended(client)


@pytest.mark.session_config(revocation_interval=0.05, absolute_max_age=3600)
@pytest.mark.gen_test
async def test_the_absolute_timeout_closes_the_socket(browser: Browser, clock: FakeClock) -> None:
    await log_in(browser)
    client = await feed(browser)
    clock.advance(3600)
    await ended(client)


@pytest.mark.session_config(revocation_interval=0.05)
@pytest.mark.gen_test
async def test_an_end_the_process_never_saw_is_found_by_the_periodic_check(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    # As another process's logout, or an administrator: straight in the store.
    await log_in(browser)
    client = await feed(browser)
    await (await feed(browser)).close()
    assert await store.inner.destroy_user_sessions("alice") == 1
    await ended(client)
    # The cleanup of expired rows, likewise.
    await log_in(browser)
    assert (await browser.get("/expiry?s=60")).code == 200
    again = await feed(browser)
    clock.advance(61)
    assert await store.inner.clear_expired() == 1
    await ended(again)


# -- never a live session ------------------------------------------------------------


@pytest.mark.session_config(revocation_interval=0.02, max_age=600)
@pytest.mark.gen_test
async def test_no_socket_of_a_live_session_is_closed(
    browser: Browser, clock: FakeClock, app: tornado.web.Application, store: RecordingStore
) -> None:
    await log_in(browser)
    other = new_browser(browser)
    await log_in(other)  # the same user, another session
    client = await feed(browser)
    for _ in range(10):
        # Kept alive by requests elsewhere (touches and saves move its
        # expiry past the one the socket loaded), while the same user's
        # other session is regenerated and destroyed.
        clock.advance(100)
        assert (await browser.get("/touch")).code == 200
        assert (await browser.get("/counter")).code == 200
        await log_in(other)
        await checks(app, 2)
    assert (await other.get("/logout")).code == 200
    await checks(app, 2)
    assert (clock(), (await client.ping())["user"]) == (clock(), "alice")
    assert client.closed_at is None
    assert store.live_asked and all(n == 1 for n in store.live_asked)
    await client.close()


@pytest.mark.session_config(revocation_interval=0.02)
@pytest.mark.gen_test
async def test_a_store_failure_during_a_check_closes_nothing(
    browser: Browser, app: tornado.web.Application, store: RecordingStore
) -> None:
    await log_in(browser)
    client = await feed(browser)
    store.fail.add("live")
    await checks(app, 3)
    assert (await client.ping())["user"] == "alice"
    store.fail.clear()
    await store.inner.destroy_user_sessions("alice")
    await ended(client)


@pytest.mark.session_config(revocation_interval=0.02)
@pytest.mark.gen_test
async def test_one_lookup_per_check_for_every_socket_started_by_the_first_stopped_by_the_last(
    browser: Browser, app: tornado.web.Application, store: RecordingStore
) -> None:
    browsers = [new_browser(browser) for _ in range(20)]
    for n, b in enumerate(browsers):
        await log_in(b, f"user{n}")
    assert (await browsers[0].get("/counter")).code == 200
    registry = revocation(app)
    assert not registry.running  # no socket yet: no check
    clients = [await feed(b) for b in browsers for _ in range(2)]  # 40 sockets, 20 sessions
    assert registry.running and registry.sockets == 40
    store.live_asked.clear()
    before = registry.checks
    await checks(app, 5)
    done = registry.checks - before
    # One lookup per check, each for the 20 sessions of the 40 sockets.
    assert store.live_asked[:done] == [20] * done
    for client in clients:
        await client.close()
    async with asyncio.timeout(5):
        while registry.running or registry.sockets:
            await asyncio.sleep(0.01)
    asked = len(store.live_asked)
    await asyncio.sleep(0.2)  # ten intervals: no lookup without a socket
    assert len(store.live_asked) == asked


@pytest.mark.session_config(revocation_interval=NEVER)
@pytest.mark.gen_test
async def test_an_anonymous_socket_is_never_checked_nor_closed(
    browser: Browser, app: tornado.web.Application, store: RecordingStore, clock: FakeClock
) -> None:
    class Anonymous(Feed):
        async def get(self, *args: Any, **kwargs: Any) -> None:
            await tornado.websocket.WebSocketHandler.get(self, *args, **kwargs)

    app.add_handlers(r".*", [(r"/ws/anonymous", Anonymous)])
    url = browser.base_url.replace("http://", "ws://") + "/ws/anonymous"
    socket = await tornado.websocket.websocket_connect(url)
    try:
        assert await asyncio.wait_for(socket.read_message(), 5) is not None
        revocation(app).check_soon()
        assert await revocation(app).check() == 0
        assert store.live_asked == []
    finally:
        socket.close()


def test_the_interval_is_configurable() -> None:
    assert SessionConfig(secret=SECRET).revocation_interval == 5.0
    assert SessionConfig(secret=SECRET, revocation_interval=0.5).revocation_interval == 0.5
    with pytest.raises(Exception, match="SESSION_REVOCATION_INTERVAL"):
        SessionConfig(secret=SECRET, revocation_interval=0)
    config = SessionConfig.from_env(
        lambda name, default=None: "2.5" if name == "SESSION_REVOCATION_INTERVAL" else default,
        secret=SECRET,
    )
    assert config.revocation_interval == 2.5


@pytest.mark.gen_test
async def test_the_memory_store_answers_which_sessions_live(clock: FakeClock) -> None:
    from tests.contract import record
    from tornado_sessions import MemoryStore

    store = MemoryStore(clock=clock)
    await store.set("a" * 43, record(clock, "{}"), expected_version=None)
    await store.set("b" * 43, record(clock, "{}"), expected_version=None)
    await store.destroy("b" * 43)
    assert await store.live(["a" * 43, "b" * 43, "c" * 43]) == {"a" * 43}
    assert await store.live([]) == set()


@pytest.mark.gen_test
async def test_a_store_without_its_own_live_is_checked_through_get(clock: FakeClock) -> None:
    from tornado_sessions import MemoryStore
    from tornado_sessions.stores.base import SessionStore

    class ThirdParty(RecordingStore):
        live = SessionStore.live  # the contract's default: get() for each id

    from tests.contract import record

    store = ThirdParty(MemoryStore(clock=clock))
    keep, end = "k" * 43, "e" * 43
    for sid in (keep, end):
        await store.set(sid, record(clock), expected_version=None)
    await store.inner.destroy(end)
    store.calls.clear()
    assert await store.live([keep, end, keep]) == {keep}
    assert sorted(store.calls) == ["get", "get"]  # once per distinct id
