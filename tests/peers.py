"""What users of the peers take for granted (0.2), on every store: flash
messages, a limit on sessions per user, handlers that need no session pay
nothing.  Imported by tests/test_peers.py (MemoryStore, calls counted by the
recording store) and tests/mysql/test_peers.py (MySQLStore, statements counted
at the server)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Browser, FakeClock, body

NAME = "__Host-session"


async def follow(browser: Browser, path: str) -> Any:
    """GET ``path`` and follow its redirect, as a browser would."""
    response = await browser.get(path)
    assert response.code == 302, response.code
    return await browser.get(response.headers["Location"])


# -- flash messages ---------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_flash_survives_a_redirect_and_shows_once(browser: Browser) -> None:
    shown = await follow(browser, "/flash/add?m=Saved.")
    assert body(shown) == {"flashes": [["message", "Saved."]]}
    assert body(await browser.get("/flash/show")) == {"flashes": []}  # once only


@pytest.mark.gen_test
async def test_popping_an_empty_queue_writes_nothing(browser: Browser, count: Any) -> None:
    await browser.get("/counter")  # an existing session, no message queued
    with count() as seen:
        shown = await browser.get("/flash/show")
        page = await browser.get("/flash/page")
    assert body(shown) == {"flashes": []} and page.body == b""
    assert seen() == {"load": 2}  # one SELECT each, no write


@pytest.mark.gen_test
async def test_flash_categories_and_order_are_kept(browser: Browser) -> None:
    await browser.get("/flash/add?m=first&c=info")
    await browser.get("/flash/add?m=second&c=error")
    await browser.get("/counter")  # other requests leave them queued
    shown = await follow(browser, "/flash/add?m=third")
    assert body(shown) == {
        "flashes": [["info", "first"], ["error", "second"], ["message", "third"]]
    }
    assert body(await browser.get("/read"))["data"] == {"n": 1}  # hidden from the mapping


@pytest.mark.gen_test
async def test_the_template_helper_shows_flashes_escaped(browser: Browser) -> None:
    await browser.get("/flash/add?m=%3Cb%3Ebold%3C%2Fb%3E+%26+more&c=warn")
    page = await browser.get("/flash/page")
    assert page.body == b"<p class='warn'>&lt;b&gt;bold&lt;/b&gt; &amp; more</p>"
    assert (await browser.get("/flash/page")).body == b""


# -- handlers that need no session --------------------------------------------------


@pytest.mark.gen_test
async def test_a_lazy_handler_that_never_reads_the_session_costs_nothing(
    browser: Browser, count: Any
) -> None:
    await browser.get("/counter")
    with count() as seen:
        response = await browser.get("/lazy/nothing")
    assert response.code == 200 and response.body == b"no session needed"
    assert seen() == {}  # a cookie was sent: no load, no write
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers
    with count() as seen:
        assert body(await browser.get("/lazy/reads")) == {"n": 1, "same": True}
    assert seen() == {"load": 1}
    with count() as seen:
        assert body(await browser.get("/read"))["data"] == {"n": 1}  # an eager handler
    assert seen() == {"load": 1}
    with count() as seen:
        assert body(await browser.get("/lazy/writes")) == {"lazy": 1}
    assert seen() == {"load": 1, "save": 1}
    assert body(await browser.get("/read"))["data"] == {"n": 1, "lazy": 1}


@pytest.mark.gen_test
async def test_a_lazy_handler_that_forgets_to_load_is_told_how(
    browser: Browser, caplog: Any
) -> None:
    await browser.get("/counter")
    response = await browser.get("/lazy/forgets")
    assert response.code == 500
    assert "lazy_session = True" in caplog.text and "await self.load_session()" in caplog.text


# -- a limit on sessions per user ---------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.session_config(max_sessions_per_user=2)
async def test_three_logins_of_one_user_leave_the_two_most_recent(
    browser: Browser, clock: FakeClock, count: Any
) -> None:
    devices = [Browser(browser.client, browser.base_url) for _ in range(3)]
    bob = Browser(browser.client, browser.base_url)
    await bob.get("/login?user=bob")
    for device in devices[:2]:
        clock.advance(10)
        assert (await device.get("/login?user=alice")).code == 200
    clock.advance(10)
    with count() as seen:
        assert (await devices[2].get("/login?user=alice")).code == 200
    assert seen().get("limit", 0) == 1  # one extra store call at login, no more
    with count() as seen:
        assert body(await devices[1].get("/read"))["data"]["user_id"] == "alice"
    assert seen() == {"load": 1}  # and none on other requests
    # The least recently used one is over: a fresh session on its next request.
    assert body(await devices[0].get("/read")) == {"data": {}, "new": True}
    assert body(await devices[2].get("/read"))["data"]["user_id"] == "alice"
    assert body(await bob.get("/read"))["data"]["user_id"] == "bob"  # others untouched


@pytest.mark.gen_test
@pytest.mark.session_config(max_sessions_per_user=1)
async def test_a_limit_of_one_ends_every_other_session_at_login(
    browser: Browser, clock: FakeClock
) -> None:
    first, second = (Browser(browser.client, browser.base_url) for _ in range(2))
    await first.get("/login?user=carol")
    clock.advance(5)
    await second.get("/login?user=carol")
    assert body(await first.get("/read")) == {"data": {}, "new": True}
    assert body(await second.get("/read"))["data"]["user_id"] == "carol"


@pytest.mark.gen_test
async def test_without_a_limit_nothing_is_ended(browser: Browser, count: Any) -> None:
    devices = [Browser(browser.client, browser.base_url) for _ in range(4)]
    for device in devices:
        with count() as seen:
            await device.get("/login?user=dave")
        assert "limit" not in seen()
    for device in devices:
        assert body(await device.get("/read"))["data"]["user_id"] == "dave"
