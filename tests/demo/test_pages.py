"""Every page and flow of the demo, over HTTP against a real server."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

import pytest
import tornado.httpclient

from tornado_sessions import MemoryStore
from tornado_sessions.manager import SessionManager
from tornado_sessions.stores.base import fingerprint

from .conftest import COOKIE, Clock, Visitor, is_removal, session_cookies

Response = tornado.httpclient.HTTPResponse


def text(response: Response) -> str:
    return response.body.decode("utf-8")


def visits(response: Response) -> int:
    match = re.search(r'id="visits">(\d+)<', text(response))
    assert match, text(response)
    return int(match.group(1))


def signed_in_as(response: Response) -> str | None:
    match = re.search(r"Signed in as <strong>([^<]*)</strong>", text(response))
    return html.unescape(match.group(1)) if match else None


def notes(response: Response) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'<li class="note">([^<]*)</li>', text(response))]


def flashes(response: Response) -> list[tuple[str, str]]:
    """The one-time messages a page shows (base.html)."""
    found = re.findall(r'<p class="flash ([a-z]+)">([^<]*)</p>', text(response))
    return [(category, html.unescape(message)) for category, message in found]


async def read_session(manager: SessionManager, cookie: str | None) -> object:
    """The stored data of the session a cookie names."""
    record = await manager.store.get(sid_of(manager, cookie))
    assert record is not None
    return json.loads(record.data)


def sid_of(manager: SessionManager, cookie: str | None) -> str:
    assert cookie
    payload = manager.decode_cookie(cookie)
    assert payload is not None
    return str(payload["i"])


async def login(visitor: Visitor, username: str) -> Response:
    await visitor.get("/login")
    return await visitor.post("/login", {"username": username})


# -- home: the counter ----------------------------------------------------------


@pytest.mark.gen_test
async def test_home_counts_visits_with_the_session_cookie(
    visitor: Visitor, new_visitor: Callable[[], Visitor], demo_store: MemoryStore
) -> None:
    first = await visitor.get("/")
    assert first.code == 200
    assert visits(first) == 1
    (cookie,) = session_cookies(first)
    # The original app's cookie: secure, a month long; and our safe defaults.
    assert cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""
    assert cookie["max-age"] == "2628000"
    assert "Cookie" in first.headers["Vary"]

    assert visits(await visitor.get("/")) == 2
    assert visits(await visitor.get("/")) == 3
    assert await demo_store.length() == 1

    other = new_visitor()
    assert visits(await other.get("/")) == 1
    assert visits(await visitor.get("/")) == 4


@pytest.mark.gen_test
async def test_home_without_the_cookie_starts_over(visitor: Visitor) -> None:
    await visitor.get("/")
    await visitor.get("/")
    visitor.jar.pop(COOKIE)
    assert visits(await visitor.get("/")) == 1


@pytest.mark.gen_test
async def test_a_tampered_cookie_gets_a_fresh_session(visitor: Visitor) -> None:
    await visitor.get("/")
    cookie = visitor.session_cookie
    assert cookie
    visitor.jar[COOKIE] = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    response = await visitor.get("/")
    assert response.code == 200
    assert visits(response) == 1


# -- login ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_login_regenerates_the_session_id_and_keeps_the_data(
    visitor: Visitor,
    new_visitor: Callable[[], Visitor],
    manager: SessionManager,
    demo_store: MemoryStore,
) -> None:
    await visitor.get("/")
    await visitor.get("/")
    old_cookie = visitor.session_cookie
    old_sid = sid_of(manager, old_cookie)

    page = await visitor.get("/login")
    assert page.code == 200
    assert 'name="username"' in text(page)
    response = await visitor.post("/login", {"username": "Alice"})
    assert response.code == 302
    assert response.headers["Location"] == "/"
    (cookie,) = session_cookies(response)
    assert cookie.value != old_cookie
    new_sid = sid_of(manager, visitor.session_cookie)
    assert new_sid != old_sid
    # The old id's record is gone, the new one holds the user.
    assert await demo_store.get(old_sid) is None
    record = await demo_store.get(new_sid)
    assert record is not None and record.user_id == "alice"

    home = await visitor.get("/")
    assert signed_in_as(home) == "Alice"
    assert visits(home) == 3  # the data came along to the new id

    # Whoever kept the old cookie (say, an attacker who planted it) is not
    # logged in: it names no session any more, so they get a fresh one.
    attacker = new_visitor()
    attacker.jar[COOKIE] = old_cookie  # type: ignore[assignment]
    stolen = await attacker.get("/")
    assert stolen.code == 200
    assert signed_in_as(stolen) is None
    assert "Not signed in" in text(stolen)
    assert visits(stolen) == 1
    assert attacker.session_cookie not in (old_cookie, visitor.session_cookie)


@pytest.mark.gen_test
async def test_login_escapes_the_user_name(visitor: Visitor) -> None:
    await login(visitor, "<script>x</script>")
    home = await visitor.get("/")
    assert "<script>x</script>" not in text(home)
    assert "&lt;script&gt;x&lt;/script&gt;" in text(home)
    assert signed_in_as(home) == "<script>x</script>"


@pytest.mark.gen_test
async def test_login_without_a_name_is_refused(visitor: Visitor) -> None:
    await visitor.get("/login")
    response = await visitor.post("/login", {"username": "   "})
    assert response.code == 400
    assert 'id="error"' in text(response)
    assert signed_in_as(await visitor.get("/")) is None

    response = await visitor.post("/login", {"username": "x" * 41})
    assert response.code == 400
    assert signed_in_as(await visitor.get("/")) is None


# -- logout ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_logout_destroys_the_session_and_a_fresh_one_carries_the_message(
    visitor: Visitor,
    new_visitor: Callable[[], Visitor],
    manager: SessionManager,
    demo_store: MemoryStore,
) -> None:
    await login(visitor, "Bob")
    home = await visitor.get("/")
    assert signed_in_as(home) == "Bob"
    assert 'id="logout"' in text(home)
    cookie = visitor.session_cookie
    sid = sid_of(manager, cookie)
    assert await demo_store.get(sid) is not None

    response = await visitor.post("/logout")
    assert response.code == 302
    assert response.headers["Location"] == "/"
    # The old session is gone; its cookie is replaced by a fresh session's,
    # which carries only the one-time message to the next page.
    (fresh,) = session_cookies(response)
    assert fresh.value and fresh.value != cookie and not is_removal(fresh)
    assert await demo_store.get(sid) is None
    (left,) = await demo_store.all()
    assert left.user_id is None
    assert await read_session(manager, visitor.session_cookie) == {
        "__flashes__": [["info", "You are signed out."]]
    }

    after = await visitor.get("/")
    assert signed_in_as(after) is None
    assert visits(after) == 1
    assert flashes(after) == [("info", "You are signed out.")]
    assert flashes(await visitor.get("/")) == []  # once

    # The old cookie, replayed, no longer shows the user.
    replay = new_visitor()
    replay.jar[COOKIE] = cookie  # type: ignore[assignment]
    replayed = await replay.get("/")
    assert replayed.code == 200
    assert signed_in_as(replayed) is None
    assert "Not signed in" in text(replayed)


@pytest.mark.gen_test
async def test_logout_is_post_only(visitor: Visitor) -> None:
    await login(visitor, "Bob")
    response = await visitor.get("/logout")
    assert response.code == 405
    assert signed_in_as(await visitor.get("/")) == "Bob"


# -- my session -----------------------------------------------------------------


def session_data(response: Response) -> object:
    match = re.search(r'<pre id="data">(.*?)</pre>', text(response), re.S)
    assert match, text(response)
    return json.loads(html.unescape(match.group(1)))


def field(response: Response, name: str) -> str:
    match = re.search(rf'id="{name}">([^<]*)<', text(response))
    assert match, (name, text(response))
    return html.unescape(match.group(1))


@pytest.mark.gen_test
async def test_my_session_shows_the_data_times_and_fingerprint_never_the_id(
    visitor: Visitor, manager: SessionManager, demo_clock: Clock
) -> None:
    await visitor.get("/")
    await login(visitor, "Carol")
    await visitor.get("/notes")
    await visitor.post("/notes", {"note": 'say "hi" & <bye>'})
    demo_clock.now += 60

    response = await visitor.get("/session")
    assert response.code == 200
    assert session_data(response) == {
        "notes": ['say "hi" & <bye>'],
        "user_id": "carol",
        "username": "Carol",
        "visits": 1,
    }
    # Pretty JSON (indented), escaped in the page.
    assert "\n  &quot;username&quot;: &quot;Carol&quot;" in text(response)
    assert "&lt;bye&gt;" in text(response) and "<bye>" not in text(response)

    sid = sid_of(manager, visitor.session_cookie)
    assert field(response, "fingerprint") == fingerprint(sid)
    assert sid not in text(response)
    assert visitor.session_cookie not in text(response)
    assert field(response, "created") == "2030-03-17 17:46:40 UTC"  # T0
    assert field(response, "expires") == "2030-04-17 03:46:40 UTC"  # T0 + 2628000 s
    assert field(response, "is-new") == "yes"
    assert COOKIE in text(response)


@pytest.mark.gen_test
async def test_my_session_of_a_first_visit(visitor: Visitor, manager: SessionManager) -> None:
    response = await visitor.get("/session")
    assert response.code == 200
    assert session_data(response) == {}
    assert field(response, "is-new") == "no (new session)"
    assert field(response, "created") == "2030-03-17 17:46:40 UTC"
    # The library's default (saveUninitialized off): an empty session that
    # was only looked at is not stored and gets no cookie, so each such visit
    # is a new session.
    assert visitor.session_cookie is None
    again = await visitor.get("/session")
    assert field(again, "is-new") == "no (new session)"
    assert field(again, "fingerprint") != field(response, "fingerprint")
    # Once something is stored, the page shows that session.
    await visitor.get("/")
    stored = await visitor.get("/session")
    assert field(stored, "is-new") == "yes"
    sid = sid_of(manager, visitor.session_cookie)
    assert field(stored, "fingerprint") == fingerprint(sid)
    assert sid not in text(stored)


# -- notes ----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_notes_add_list_and_delete(
    visitor: Visitor, new_visitor: Callable[[], Visitor]
) -> None:
    page = await visitor.get("/notes")
    assert page.code == 200
    assert "No notes yet." in text(page)
    assert notes(page) == []

    first = await visitor.post("/notes", {"note": "buy milk"})
    assert first.code == 302
    assert first.headers["Location"] == "/notes"
    second = await visitor.post("/notes", {"note": "<b>bold</b> & co"})
    assert second.code == 302

    page = await visitor.get("/notes")
    assert notes(page) == ["buy milk", "<b>bold</b> & co"]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text(page)
    assert "<b>bold</b>" not in text(page)
    # Still there on the next request (saved, not just rendered).
    assert notes(await visitor.get("/notes")) == ["buy milk", "<b>bold</b> & co"]

    # Another browser has its own session, without these notes.
    other = new_visitor()
    assert notes(await other.get("/notes")) == []

    cleared = await visitor.post("/notes/clear")
    assert cleared.code == 302
    assert cleared.headers["Location"] == "/notes"
    page = await visitor.get("/notes")
    assert notes(page) == []
    assert "No notes yet." in text(page)


@pytest.mark.gen_test
async def test_an_empty_note_is_refused(visitor: Visitor) -> None:
    await visitor.get("/notes")
    response = await visitor.post("/notes", {"note": "  "})
    assert response.code == 400
    assert 'id="error"' in text(response)
    assert notes(await visitor.get("/notes")) == []


@pytest.mark.gen_test
async def test_notes_survive_login_and_go_at_logout(visitor: Visitor) -> None:
    await visitor.get("/notes")
    await visitor.post("/notes", {"note": "before login"})
    await login(visitor, "Dan")
    assert notes(await visitor.get("/notes")) == ["before login"]
    await visitor.post("/logout")
    assert notes(await visitor.get("/notes")) == []


# -- XSRF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, fields",
    [
        ("/login", {"username": "mallory"}),
        ("/logout", {}),
        ("/notes", {"note": "forged"}),
        ("/notes/clear", {}),
    ],
)
@pytest.mark.gen_test
async def test_posts_without_the_xsrf_token_are_refused(
    visitor: Visitor, path: str, fields: dict[str, str]
) -> None:
    await login(visitor, "Erin")
    await visitor.get("/notes")
    await visitor.post("/notes", {"note": "mine"})

    response = await visitor.post(path, fields, xsrf=False)
    assert response.code == 403
    assert "XSRF" in text(response)
    assert session_cookies(response) == []

    # Nothing happened.
    page = await visitor.get("/notes")
    assert signed_in_as(page) == "Erin"
    assert notes(page) == ["mine"]


@pytest.mark.gen_test
async def test_a_token_from_another_browser_is_refused(
    visitor: Visitor, new_visitor: Callable[[], Visitor]
) -> None:
    other = new_visitor()
    await other.get("/login")
    await visitor.get("/notes")
    visitor.xsrf = other.xsrf
    response = await visitor.post("/notes", {"note": "forged"})
    assert response.code == 403
    assert notes(await visitor.get("/notes")) == []


# -- the rest -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_every_page_has_the_nav_bar_and_the_stylesheet(visitor: Visitor) -> None:
    for path in ("/", "/login", "/notes", "/session"):
        response = await visitor.get(path)
        assert response.code == 200, path
        page = text(response)
        for link in ('href="/notes"', 'href="/session"', 'href="/login"'):
            assert link in page, (path, link)
        assert "/static/demo.css" in page
        assert "http://" not in page and "https://" not in page  # no external assets
    css = await visitor.get("/static/demo.css")
    assert css.code == 200


@pytest.mark.gen_test
async def test_an_unknown_page_is_a_404_page_with_the_nav(visitor: Visitor) -> None:
    response = await visitor.get("/no-such-page")
    assert response.code == 404
    assert "404 Not Found" in text(response)
    assert 'href="/notes"' in text(response)


# -- flash messages (0.2) ----------------------------------------------------------


@pytest.mark.gen_test
async def test_login_logout_and_a_saved_note_each_show_a_message_once(visitor: Visitor) -> None:
    await visitor.get("/login")
    response = await visitor.post("/login", {"username": "Eve <&>"})
    assert response.code == 302
    home = await visitor.get(response.headers["Location"])
    assert flashes(home) == [("success", "Welcome, Eve <&>.")]  # escaped in the page
    assert "Welcome, Eve &lt;&amp;&gt;." in text(home)
    assert flashes(await visitor.get("/")) == []
    await visitor.get("/notes")
    saved = await visitor.post("/notes", {"note": "buy milk"})
    notes_page = await visitor.get(saved.headers["Location"])
    assert flashes(notes_page) == [("success", "Note saved.")]
    assert notes(notes_page) == ["buy milk"]
    assert flashes(await visitor.get("/notes")) == []
    out = await visitor.post("/logout")
    assert flashes(await visitor.get(out.headers["Location"])) == [("info", "You are signed out.")]
