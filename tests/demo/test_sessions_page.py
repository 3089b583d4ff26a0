"""The "my sessions" page: list, end one, log out other devices, everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import tornado.httpclient

from tornado_sessions import SessionConfig

from .conftest import SECRET, Clock, Visitor

Response = tornado.httpclient.HTTPResponse


def rows(response: Response) -> list[tuple[str, bool]]:
    page = response.body.decode("utf-8")
    return [
        (fp, "current" in classes)
        for classes, fp in re.findall(
            r'<tr class="session([^"]*)" data-fingerprint="([0-9a-f]{12})">', page
        )
    ]


def signed_in(response: Response) -> bool:
    return "Signed in as" in response.body.decode("utf-8")


async def login(visitor: Visitor, username: str) -> None:
    await visitor.get("/login")
    response = await visitor.post("/login", {"username": username})
    assert response.code in (200, 302)


@pytest.fixture
def demo_session_config(demo_clock: Clock, request: pytest.FixtureRequest) -> SessionConfig:
    """The demo's config; parametrized indirectly with ``track_client`` (a
    bool) or with a dict of fields."""
    param = getattr(request, "param", False)
    fields = param if isinstance(param, dict) else {"track_client": param}
    return SessionConfig(secret=SECRET, clock=demo_clock, **fields)


@pytest.mark.parametrize("demo_session_config", [True], indirect=True)
@pytest.mark.gen_test
async def test_with_client_tracking_on_the_page_shows_each_client(
    visitor: Visitor, demo_session_config: SessionConfig
) -> None:
    assert demo_session_config.track_client
    await login(visitor, "Alice")
    page = (await visitor.get("/sessions")).body.decode()
    assert "127.0.0.1" in page
    assert 'id="not-tracking"' not in page


@pytest.mark.gen_test
async def test_list_end_one_others_and_everywhere(
    visitor: Visitor, new_visitor: Callable[[], Visitor]
) -> None:
    laptop, phone, tablet, bob = visitor, new_visitor(), new_visitor(), new_visitor()
    for device in (laptop, phone, tablet):
        await login(device, "Alice")
    await login(bob, "Bob")

    listing = rows(await laptop.get("/sessions"))
    assert len(listing) == 3
    assert sum(current for _, current in listing) == 1
    page = (await laptop.get("/sessions")).body.decode()
    # The demo keeps the library's default: clients are not recorded.
    assert "127.0.0.1" not in page and "not recorded" in page
    assert 'id="not-tracking"' in page

    phone_fp = next(fp for fp, current in rows(await phone.get("/sessions")) if current)
    # Bob cannot end Alice's session, even knowing its fingerprint.
    await bob.get("/sessions")
    response = await bob.post("/sessions/end", {"fingerprint": phone_fp})
    assert response.headers["Location"] == "/sessions?ended=0"
    assert signed_in(await phone.get("/"))

    # Alice ends her phone's session from the laptop.
    await laptop.post("/sessions/end", {"fingerprint": phone_fp})
    assert not signed_in(await phone.get("/"))
    assert len(rows(await laptop.get("/sessions"))) == 2

    # Log out other devices: the tablet is out, the laptop stays.
    await laptop.post("/sessions/end-all", {})
    assert not signed_in(await tablet.get("/"))
    assert signed_in(await laptop.get("/"))
    assert len(rows(await laptop.get("/sessions"))) == 1

    # Log out everywhere: this browser too.
    await laptop.post("/sessions/end-all", {"everywhere": "1"})
    assert not signed_in(await laptop.get("/"))
    assert signed_in(await bob.get("/"))


@pytest.mark.gen_test
async def test_sessions_page_needs_a_login(visitor: Visitor) -> None:
    response = await visitor.get("/sessions")
    assert response.code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.gen_test
async def test_revoke_forms_need_the_xsrf_token(
    visitor: Visitor, new_visitor: Callable[[], Visitor]
) -> None:
    await login(visitor, "Alice")
    other = new_visitor()
    await login(other, "Alice")
    response = await visitor.post("/sessions/end-all", {}, xsrf=False)
    assert response.code == 403
    assert signed_in(await other.get("/"))


@pytest.mark.gen_test
async def test_the_page_says_there_is_no_limit_by_default(visitor: Visitor) -> None:
    await login(visitor, "Alice")
    page = (await visitor.get("/sessions")).body.decode()
    assert re.search(r'id="limit">No limit on sessions per user', page)


@pytest.mark.parametrize("demo_session_config", [{"max_sessions_per_user": 2}], indirect=True)
@pytest.mark.gen_test
async def test_the_page_shows_the_limit_and_a_login_past_it_ends_the_oldest(
    demo_session_config: SessionConfig, demo_clock: Clock, new_visitor: Callable[[], Visitor]
) -> None:
    assert demo_session_config.max_sessions_per_user == 2
    browsers = [new_visitor() for _ in range(3)]
    for browser in browsers:
        demo_clock.now += 5
        await login(browser, "Grace")
    page = await browsers[2].get("/sessions")
    assert "at most <strong>2</strong>" in page.body.decode()
    assert len(rows(page)) == 2
    assert not signed_in(await browsers[0].get("/"))  # the oldest was ended
    assert signed_in(await browsers[1].get("/"))
