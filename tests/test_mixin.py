"""SessionMixin end to end: a real Tornado server, real HTTP requests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import tornado.httpclient

from tests.conftest import OLD_SECRET, SECRET, Browser, FakeClock, RecordingStore, body, set_cookies
from tornado_sessions.testing import session_manager

NAME = "__Host-session"


def session_cookie(response: tornado.httpclient.HTTPResponse) -> Any:
    found = [m for m in set_cookies(response) if m.key == NAME]
    assert len(found) <= 1
    return found[0] if found else None


# -- the basic path ------------------------------------------------------------


@pytest.mark.gen_test
async def test_counter_keeps_state_across_requests(browser: Browser) -> None:
    for expected in (1, 2, 3):
        response = await browser.get("/counter")
        assert response.code == 200
        assert body(response) == {"n": expected}


@pytest.mark.gen_test
async def test_cookie_attributes_are_secure_by_default(browser: Browser, clock: FakeClock) -> None:
    response = await browser.get("/counter")
    morsel = session_cookie(response)
    assert morsel is not None
    assert morsel["httponly"] is True
    assert morsel["secure"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    assert morsel["max-age"] == "2628000"
    assert morsel["expires"]  # both Max-Age and Expires, for old clients
    # The value is a Fernet token: opaque, no session id or data in clear.
    assert morsel.value.startswith("gAAAAA")
    assert '"n"' not in morsel.value
    assert response.headers["Vary"] == "Cookie"
    assert "private" in response.headers["Cache-Control"]


@pytest.mark.gen_test
async def test_set_cookie_response_is_not_publicly_cacheable(browser: Browser) -> None:
    response = await browser.get("/public-cache")
    assert session_cookie(response) is not None
    directives = [d.strip() for d in response.headers["Cache-Control"].split(",")]
    assert "public" not in directives
    assert "private" in directives
    assert "max-age=600" in directives


@pytest.mark.gen_test
async def test_vary_cookie_only_when_the_session_is_read(browser: Browser) -> None:
    response = await browser.get("/nothing")
    assert response.code == 200
    assert "Vary" not in response.headers or "Cookie" not in response.headers["Vary"]
    response = await browser.get("/read")
    assert "Cookie" in response.headers["Vary"]


# -- save rules -----------------------------------------------------------------


@pytest.mark.gen_test
async def test_new_untouched_session_gets_no_record_and_no_cookie(
    browser: Browser, store: RecordingStore
) -> None:
    response = await browser.get("/read")
    assert body(response) == {"data": {}, "new": True}
    assert session_cookie(response) is None
    assert store.calls == []
    assert await store.length() == 0


@pytest.mark.session_config(save_uninitialized=True)
@pytest.mark.gen_test
async def test_save_uninitialized_stores_empty_new_sessions(
    browser: Browser, store: RecordingStore
) -> None:
    response = await browser.get("/read")
    assert session_cookie(response) is not None
    assert store.calls == ["set"]
    assert await store.length() == 1


@pytest.mark.gen_test
async def test_unmodified_existing_session_is_not_written(
    browser: Browser, store: RecordingStore
) -> None:
    await browser.get("/counter")
    store.calls.clear()
    response = await browser.get("/read")
    assert body(response)["data"] == {"n": 1}
    assert store.calls == ["get"]
    assert session_cookie(response) is None


@pytest.mark.session_config(resave=True)
@pytest.mark.gen_test
async def test_resave_writes_unmodified_sessions(browser: Browser, store: RecordingStore) -> None:
    await browser.get("/counter")
    store.calls.clear()
    response = await browser.get("/read")
    assert store.calls == ["get", "set"]
    assert session_cookie(response) is None  # the expiry did not move: no new cookie


@pytest.mark.session_config(rolling=True)
@pytest.mark.gen_test
async def test_rolling_resends_the_cookie_every_response(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    clock.advance(5)
    store.calls.clear()
    response = await browser.get("/read")
    morsel = session_cookie(response)
    assert morsel is not None
    assert morsel["max-age"] == "2628000"
    assert store.calls == ["get", "touch"]


@pytest.mark.gen_test
async def test_nested_edit_counts_as_a_modification(browser: Browser) -> None:
    for expected in ([0], [0, 1], [0, 1, 2]):
        response = await browser.get("/nested")
        assert body(response) == {"cart": expected}
    response = await browser.get("/read")
    assert body(response)["data"] == {"cart": [0, 1, 2]}


@pytest.mark.gen_test
async def test_deleting_a_key_is_saved(browser: Browser) -> None:
    await browser.get('/set?k=a&v="1"')
    await browser.get('/set?k=b&v="2"')
    await browser.get("/delete?k=a")
    response = await browser.get("/read")
    assert body(response)["data"] == {"b": "2"}


@pytest.mark.gen_test
async def test_no_save_on_5xx(browser: Browser, store: RecordingStore, caplog: Any) -> None:
    await browser.get("/counter")
    store.calls.clear()
    with caplog.at_level(logging.ERROR):
        response = await browser.get("/fail500")
    assert response.code == 500
    assert b"Traceback" not in response.body
    assert session_cookie(response) is None
    response = await browser.get("/status503")
    assert response.code == 503
    assert session_cookie(response) is None
    assert "set" not in store.calls
    response = await browser.get("/read")
    assert body(response)["data"] == {"n": 1}


# -- the write completes before the response -------------------------------------


@pytest.mark.gen_test
async def test_redirect_then_read_sees_the_write(browser: Browser) -> None:
    for i in range(20):
        response = await browser.get(f"/redirect?v=v{i}")
        assert response.code == 302
        assert response.headers["Location"] == "/read"
        followed = await browser.get("/read")
        assert body(followed)["data"]["r"] == f"v{i}"


class SlowStore(RecordingStore):
    """A real MemoryStore whose writes take a while (as a database's do)."""

    async def set(self, sid: str, record: Any, *, expected_version: int | None) -> int:
        await asyncio.sleep(0.05)
        return await super().set(sid, record, expected_version=expected_version)


@pytest.mark.gen_test
async def test_response_waits_for_a_slow_store(
    http_client: Any, base_url: str, app: Any, clock: FakeClock
) -> None:
    from tornado_sessions import MemoryStore

    app.settings["session_store"] = SlowStore(MemoryStore(clock=clock))
    browser = Browser(http_client, base_url)
    # A client that sends its next request the moment a response arrives
    # always sees its own write, even though the store takes 50 ms to write.
    for expected in (1, 2, 3):
        response = await browser.get("/counter")
        assert body(response) == {"n": expected}
    response = await browser.get("/redirect?v=slow")
    assert body(await browser.get("/read"))["data"]["r"] == "slow"


@pytest.mark.gen_test
async def test_streaming_handler_gets_its_cookie_with_the_first_flush(browser: Browser) -> None:
    response = await browser.get("/stream")
    assert response.code == 200
    assert response.body == b"first;second"
    assert session_cookie(response) is not None
    assert body(await browser.get("/read"))["data"] == {"streamed": True}


@pytest.mark.gen_test
async def test_explicit_save_then_more_changes(browser: Browser, store: RecordingStore) -> None:
    response = await browser.get("/save-now")
    assert response.code == 200
    assert store.calls == ["set", "set"]
    assert session_cookie(response) is not None
    assert body(await browser.get("/read"))["data"] == {"early": 1, "late": 2}


@pytest.mark.gen_test
async def test_reload_drops_unsaved_changes(browser: Browser) -> None:
    await browser.get('/set?k=a&v="kept"')
    response = await browser.get("/reload")
    assert body(response) == {"data": {"a": "kept"}}


# -- login, logout ------------------------------------------------------------------


@pytest.mark.gen_test
async def test_regenerate_issues_a_new_id_and_deletes_the_old_record(
    browser: Browser, store: RecordingStore
) -> None:
    await browser.get('/set?k=cart&v=["book"]')
    old_cookie = browser.jar[NAME]
    response = await browser.get("/login?user=alice")
    new_cookie = session_cookie(response)
    assert new_cookie is not None and new_cookie.value != old_cookie
    assert await store.length() == 1
    assert body(await browser.get("/read"))["data"] == {"cart": ["book"], "user_id": "alice"}
    # The pre-login cookie is worthless now: a fresh session, no data.
    replay = await browser.get("/read", headers={"Cookie": f"{NAME}={old_cookie}"})
    assert body(replay) == {"data": {}, "new": True}


@pytest.mark.gen_test
async def test_reload_after_regenerate_goes_back_to_the_data_it_moved(
    browser: Browser, store: RecordingStore
) -> None:
    await browser.get('/set?k=cart&v=["book"]')
    old_cookie = browser.jar[NAME]
    response = await browser.get("/login-then-reload")
    # The change after the login is dropped; the data the login moved is not.
    assert body(response) == {"data": {"cart": ["book"]}}
    assert browser.jar[NAME] != old_cookie
    assert await store.length() == 1
    assert body(await browser.get("/read"))["data"] == {"cart": ["book"]}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("query", "named"),
    [("", "session['cart'][1]"), ("?deep=1", "nested more than 100 levels deep")],
)
async def test_a_login_with_data_json_cannot_hold_deletes_nothing(
    browser: Browser, store: RecordingStore, caplog: Any, query: str, named: str
) -> None:
    await browser.get('/set?k=cart&v=["book"]')
    cookie = browser.jar[NAME]
    store.calls.clear()
    with caplog.at_level(logging.ERROR):
        response = await browser.get("/login-with-bad-data" + query)
    assert response.code == 500
    assert any(named in r.getMessage() or named in (r.exc_text or "") for r in caplog.records)
    # The old session lives on, untouched, under the cookie the client holds.
    assert "destroy" not in store.calls and "set" not in store.calls
    assert browser.jar[NAME] == cookie
    assert body(await browser.get("/read"))["data"] == {"cart": ["book"]}
    assert await store.length() == 1


@pytest.mark.gen_test
async def test_an_unawaited_flush_and_a_save_store_a_new_session_once(
    browser: Browser, store: RecordingStore
) -> None:
    store.delays["set"] = 0.05  # the first insert is still at the store
    response = await browser.get("/flush-then-save")
    assert response.code == 200 and response.body == b"ab"
    assert await store.length() == 1
    assert store.calls.count("set") == 1
    assert body(await browser.get("/read"))["data"] == {"x": 1}


@pytest.mark.gen_test
async def test_regenerate_without_keeping_data(browser: Browser) -> None:
    await browser.get('/set?k=cart&v=["book"]')
    await browser.get("/login?user=bob&keep=0")
    assert body(await browser.get("/read"))["data"] == {"user_id": "bob"}


@pytest.mark.gen_test
async def test_destroy_deletes_the_record_and_clears_the_cookie(
    browser: Browser, store: RecordingStore
) -> None:
    await browser.get("/login?user=alice")
    old_cookie = browser.jar[NAME]
    response = await browser.get("/logout")
    cleared = session_cookie(response)
    assert cleared is not None
    assert cleared.value == ""
    assert cleared["path"] == "/" and cleared["secure"] is True
    assert await store.length() == 0
    replay = await browser.get("/read", headers={"Cookie": f"{NAME}={old_cookie}"})
    assert body(replay) == {"data": {}, "new": True}


# -- hostile cookies ------------------------------------------------------------------


@pytest.mark.gen_test
async def test_hostile_cookies_give_a_fresh_session_without_a_store_call(
    browser: Browser, store: RecordingStore, caplog: Any, config: Any, clock: FakeClock
) -> None:
    from tornado_sessions.crypto import CookieCipher

    await browser.get("/counter")
    good = browser.jar[NAME]
    other_key = CookieCipher(["another-secret-" + "x" * 40]).encrypt({"v": 1})
    hostile = {
        "garbage": "hello",
        "truncated": good[:-10],
        "tampered": good[:60] + ("A" if good[60] != "A" else "B") + good[61:],
        "wrong key": other_key,
        "over 4 KB": good + "A" * 4200,
        "empty": "",
        "unsigned id": "s%3Aabc.def",
    }
    for label, value in hostile.items():
        store.calls.clear()
        caplog.clear()
        clock.advance(61)  # past the log rate limit (tests/test_log_flood.py)
        with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
            response = await browser.get("/read", headers={"Cookie": f"{NAME}={value}"})
        assert response.code == 200, label
        assert body(response) == {"data": {}, "new": True}, label
        assert store.calls == [], label
        if value:
            assert any("Rejected" in r.getMessage() for r in caplog.records), label
        for record in caplog.records:
            assert value not in record.getMessage() or not value, label
    # duplicated cookie (cookie tossing): rejected even though one is valid
    store.calls.clear()
    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        response = await browser.get("/read", headers={"Cookie": f"{NAME}={good}; {NAME}={good}"})
    assert body(response) == {"data": {}, "new": True}
    assert store.calls == []
    assert any("more than once" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test
async def test_quoted_tokens_are_accepted(browser: Browser) -> None:
    # (padded and other spellings are refused: tests/test_cookie_form.py)
    await browser.get("/counter")
    token = browser.jar[NAME]
    for value in (token, f'"{token}"'):
        response = await browser.get("/read", headers={"Cookie": f"{NAME}={value}"})
        assert body(response)["data"] == {"n": 1}, value


@pytest.mark.gen_test
async def test_expired_cookie_is_rejected_without_a_store_call(
    browser: Browser, store: RecordingStore, clock: FakeClock, caplog: Any
) -> None:
    await browser.get("/counter")
    clock.advance(2_628_000 + 1)
    store.calls.clear()
    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        response = await browser.get("/read")
    assert body(response) == {"data": {}, "new": True}
    assert store.calls == []
    assert any("expired" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test
async def test_cookie_from_the_future_is_rejected(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    clock.advance(-3600)  # the token's timestamp is now an hour ahead
    store.calls.clear()
    response = await browser.get("/read")
    assert body(response) == {"data": {}, "new": True}
    assert store.calls == []


# -- failures ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_store_failure_on_load_is_a_503(
    browser: Browser, store: RecordingStore, caplog: Any
) -> None:
    await browser.get("/counter")
    store.fail = {"get"}
    with caplog.at_level(logging.ERROR, logger="tornado_sessions"):
        response = await browser.get("/counter")
    assert response.code == 503
    assert b"Traceback" not in response.body
    assert session_cookie(response) is None
    assert any("loading the session" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test
async def test_store_failure_on_save_is_a_503_without_cookie(
    browser: Browser, store: RecordingStore, caplog: Any
) -> None:
    store.fail = {"set"}
    with caplog.at_level(logging.ERROR, logger="tornado_sessions"):
        response = await browser.get("/counter")
    assert response.code == 503
    assert b'{"n"' not in response.body
    assert response.headers.get_list("Set-Cookie") == []
    assert any("saving the session" in r.getMessage() for r in caplog.records)
    store.fail = set()
    assert body(await browser.get("/counter")) == {"n": 1}


@pytest.mark.gen_test
async def test_store_failure_on_destroy_is_a_503(browser: Browser, store: RecordingStore) -> None:
    await browser.get("/login")
    store.fail = {"destroy"}
    response = await browser.get("/logout")
    assert response.code == 503
    store.fail = set()
    assert body(await browser.get("/read"))["data"] == {"user_id": "alice"}


@pytest.mark.gen_test
async def test_non_json_value_fails_naming_the_key(
    browser: Browser, store: RecordingStore, caplog: Any
) -> None:
    with caplog.at_level(logging.ERROR, logger="tornado_sessions"):
        response = await browser.get("/bad-value")
    assert response.code == 500
    assert response.headers.get_list("Set-Cookie") == []
    assert store.calls == []
    assert any("session['when'] cannot be stored" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.gen_test
async def test_forgetting_super_prepare_is_explained(browser: Browser, caplog: Any) -> None:
    with caplog.at_level(logging.ERROR):
        response = await browser.get("/forgets-super")
    assert response.code == 500
    text = "\n".join((r.exc_text or "") + r.getMessage() for r in caplog.records)
    assert "await super().prepare()" in text


@pytest.mark.session_config(max_data_size=1000)
@pytest.mark.gen_test
async def test_oversized_session_is_refused_and_old_data_kept(
    browser: Browser, caplog: Any
) -> None:
    await browser.get('/set?k=small&v="ok"')
    with caplog.at_level(logging.ERROR, logger="tornado_sessions"):
        response = await browser.get('/set?k=big&v="' + "x" * 2000 + '"')
    assert response.code == 500
    assert response.headers.get_list("Set-Cookie") == []
    assert any("SESSION_MAX_DATA_SIZE" in (r.exc_text or "") for r in caplog.records)
    assert body(await browser.get("/read"))["data"] == {"small": "ok"}


# -- expiry, touch, rotation -------------------------------------------------------------


@pytest.mark.gen_test
async def test_touch_is_throttled_and_reissues_the_cookie(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    clock.advance(1000)  # well under 10% of the max age
    store.calls.clear()
    response = await browser.get("/read")
    assert store.calls == ["get"]
    assert session_cookie(response) is None
    clock.advance(262_800)  # 10% of the max age has passed
    store.calls.clear()
    response = await browser.get("/read")
    assert store.calls == ["get", "touch"]
    morsel = session_cookie(response)
    assert morsel is not None and morsel["max-age"] == "2628000"
    # The slid expiry keeps the session alive past its original end.
    clock.advance(2_628_000 - 263_800 + 100)
    assert body(await browser.get("/read"))["data"] == {"n": 1}


@pytest.mark.gen_test
async def test_explicit_touch_writes_the_expiry(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    clock.advance(10)
    store.calls.clear()
    response = await browser.get("/touch")
    assert store.calls == ["get", "touch"]
    assert session_cookie(response) is not None


@pytest.mark.gen_test
async def test_set_expiry_for_remember_me(browser: Browser, clock: FakeClock) -> None:
    response = await browser.get("/expiry?s=31536000")
    morsel = session_cookie(response)
    assert morsel["max-age"] == "31536000"
    clock.advance(2_628_000 + 10)  # past the default max age, within a year
    assert body(await browser.get("/read"))["data"] == {"remember": True}


@pytest.mark.gen_test
async def test_idle_expiry_on_the_server(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    cookie = browser.jar[NAME]
    clock.advance(2_628_000)
    response = await browser.get("/read", headers={"Cookie": f"{NAME}={cookie}"})
    assert body(response) == {"data": {}, "new": True}


@pytest.mark.session_config(absolute_max_age=7200, max_age=3600)
@pytest.mark.gen_test
async def test_absolute_timeout_caps_an_active_session(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    for _ in range(5):  # active every 20 minutes: the idle timeout never fires
        clock.advance(1200)
        assert "n" in body(await browser.get("/read"))["data"]
    clock.advance(1200)  # 7200 s since creation: the absolute timeout
    store.calls.clear()
    response = await browser.get("/read")
    assert body(response) == {"data": {}, "new": True}
    assert store.calls == []  # rejected from the cookie alone


@pytest.mark.session_config(absolute_max_age=7200, max_age=3600)
@pytest.mark.gen_test
async def test_regenerate_keeps_the_absolute_clock_unless_asked(
    browser: Browser, clock: FakeClock
) -> None:
    await browser.get("/counter")
    clock.advance(3000)
    await browser.get("/login?user=a")
    clock.advance(3000)
    await browser.get("/counter")
    clock.advance(1500)  # 7500 s after creation
    assert body(await browser.get("/read"))["new"] is True
    await browser.get("/counter")
    clock.advance(3000)
    await browser.get("/login?user=b&restart=1")
    clock.advance(3000)
    await browser.get("/counter")
    clock.advance(1500)  # 7500 s after creation, 4500 s after the restart
    assert body(await browser.get("/read"))["data"]["user_id"] == "b"


@pytest.mark.gen_test
async def test_rotation_reads_old_secret_and_reissues(
    http_client: Any, base_url: str, app: Any, store: RecordingStore, clock: FakeClock
) -> None:
    from tornado_sessions import SessionConfig
    from tornado_sessions.manager import SessionManager

    # A session made while OLD_SECRET was current...
    old_config = SessionConfig(secret=OLD_SECRET, clock=clock)
    old_manager = SessionManager(store, old_config)
    session = old_manager.new_session(owner=None)  # type: ignore[arg-type]
    session["n"] = 41
    plan = old_manager.plan(session)
    await old_manager.run(session, plan)
    old_cookie = old_manager.cookie_value(session)

    # ...is read by an app whose current secret is new and OLD_SECRET a fallback.
    new_config = SessionConfig(secret=SECRET, secret_fallbacks=(OLD_SECRET,), clock=clock)
    app.settings["session_config"] = new_config
    browser = Browser(http_client, base_url)
    browser.jar[NAME] = old_cookie
    response = await browser.get("/read")
    assert body(response)["data"] == {"n": 41}
    reissued = session_cookie(response)
    assert reissued is not None and reissued.value != old_cookie
    # The re-issued cookie opens with the new secret alone.
    new_only = SessionConfig(secret=SECRET, clock=clock)
    assert SessionManager(store, new_only).decode_cookie(reissued.value) is not None
    assert SessionManager(store, new_only).decode_cookie(old_cookie) is None


@pytest.mark.gen_test
async def test_removed_secret_is_rejected(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    from tornado_sessions import SessionConfig
    from tornado_sessions.manager import SessionManager

    retired = SessionConfig(
        secret="retired-secret-M0rp3YneWY-h3Tzkp3HbYFyHCDuvca260Ce134EFdVI", clock=clock
    )
    manager = SessionManager(store, retired)
    session = manager.new_session(owner=None)  # type: ignore[arg-type]
    session["n"] = 1
    await manager.run(session, manager.plan(session))
    store.calls.clear()
    response = await browser.get(
        "/read", headers={"Cookie": f"{NAME}={manager.cookie_value(session)}"}
    )
    assert body(response) == {"data": {}, "new": True}
    assert store.calls == []


# -- concurrency ----------------------------------------------------------------------------


class InterleavingStore(RecordingStore):
    """A real MemoryStore with a database's latency, so requests overlap."""

    async def get(self, sid: str) -> Any:
        await asyncio.sleep(0.004)
        record = await super().get(sid)
        await asyncio.sleep(0.001)
        return record

    async def set(self, sid: str, record: Any, *, expected_version: int | None) -> int:
        await asyncio.sleep(0.002)
        return await super().set(sid, record, expected_version=expected_version)


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_requests_changing_different_keys_lose_nothing(
    http_client: Any, base_url: str, app: Any, clock: FakeClock
) -> None:
    from tornado_sessions import MemoryStore

    store = InterleavingStore(MemoryStore(clock=clock))
    app.settings["session_store"] = store
    browser = Browser(http_client, base_url)
    await browser.get("/counter")
    cookie = {"Cookie": f"{NAME}={browser.jar[NAME]}"}

    async def client(i: int) -> None:
        for j in range(10):
            response = await browser.client.fetch(
                f"{base_url}/set?k=k{i}&v={j + 1}", headers=cookie, request_timeout=20
            )
            assert response.code == 200

    await asyncio.gather(*(client(i) for i in range(8)))
    data = body(await browser.get("/read"))["data"]
    assert data == {"n": 1, **{f"k{i}": 10 for i in range(8)}}


def test_secret_never_in_config_repr() -> None:
    from tornado_sessions import SessionConfig

    config = SessionConfig(secret=SECRET, password="db-password")
    assert SECRET not in repr(config)
    assert "db-password" not in repr(config)


@pytest.mark.gen_test
async def test_existing_session_modified_after_the_first_flush_is_saved(
    browser: Browser, caplog: Any
) -> None:
    await browser.get("/counter")
    response = await browser.get("/stream-then-modify")
    assert response.body == b"head;tail"
    assert body(await browser.get("/read"))["data"] == {"n": 1, "after_flush": True}
    # A new session modified after the headers left cannot get a cookie: not
    # saved, and the log says why.
    fresh = Browser(browser.client, browser.base_url)
    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        response = await fresh.get("/stream-then-modify")
    assert response.headers.get_list("Set-Cookie") == []
    assert any("after the response headers were sent" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test
async def test_on_finish_is_a_safety_net(
    browser: Browser, store: RecordingStore, caplog: Any
) -> None:
    await browser.get("/counter")
    store.calls.clear()
    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        response = await browser.get("/bypass")
        for _ in range(50):  # the late save runs after the response
            if "set" in store.calls:
                break
            await asyncio.sleep(0.01)
    assert response.body == b"bypassed"
    assert store.calls == ["get", "set"]
    assert any("still unsaved after the response" in r.getMessage() for r in caplog.records)
    assert body(await browser.get("/read"))["data"] == {"n": 1, "late": True}


@pytest.mark.gen_test
async def test_the_safety_net_saves_what_the_session_holds_when_it_runs(
    browser: Browser, store: RecordingStore, clock: FakeClock, app: Any
) -> None:
    """A set_expiry(60) made after on_finish() planned its save, before the
    save ran, is saved with its own expiry (it was a minute's lifetime with
    a month to run: the save was planned before the call)."""
    await browser.get("/counter")
    response = await browser.get("/bypass-then-expire")
    assert response.body == b"bypassed"
    payload = session_manager(app).decode_cookie(browser.jar[NAME])
    assert payload is not None
    sid = payload["i"]
    for _ in range(50):  # the late save runs after the response
        record = await store.get(sid)
        if record is not None and record.ttl == 60:
            break
        await asyncio.sleep(0.01)
    assert record is not None and "late" in record.data
    assert (record.ttl, record.expires_at) == (60, int(clock()) + 60)


@pytest.mark.gen_test
async def test_concurrent_destroy_wins_over_a_save(browser: Browser, store: RecordingStore) -> None:
    await browser.get("/login?user=alice")
    cookie = {"Cookie": f"{NAME}={browser.jar[NAME]}"}
    slow = asyncio.ensure_future(browser.get("/slow-set?wait=0.2", headers=cookie))
    await asyncio.sleep(0.05)
    logout = await browser.get("/logout", headers=cookie)
    assert logout.code == 200
    response = await slow
    assert response.code == 200
    cleared = session_cookie(response)
    assert cleared is not None and cleared.value == ""  # the session is over: cookie cleared
    assert await store.length() == 0  # and not resurrected


@pytest.mark.session_config(save_uninitialized=True)
@pytest.mark.gen_test
async def test_logout_with_save_uninitialized_clears_the_cookie(
    browser: Browser, store: RecordingStore
) -> None:
    await browser.get("/login?user=alice")
    response = await browser.get("/logout")
    (cleared,) = [m for m in set_cookies(response) if m.key == NAME]
    assert cleared.value == ""  # no new empty session is stored in its place
    assert await store.length() == 0


@pytest.mark.gen_test
async def test_writes_slide_the_expiry_at_most_once_per_touch_interval(
    browser: Browser, store: RecordingStore, clock: FakeClock
) -> None:
    await browser.get("/counter")
    (info,) = await store.all()
    first_expiry = info.expires_at
    clock.advance(1000)
    response = await browser.get("/counter")
    assert body(response) == {"n": 2}
    assert session_cookie(response) is None  # written, but the expiry stays
    (info,) = await store.all()
    assert info.expires_at == first_expiry
    clock.advance(262_800)  # past 10% of the max age
    response = await browser.get("/counter")
    morsel = session_cookie(response)
    assert morsel is not None and morsel["max-age"] == "2628000"
    (info,) = await store.all()
    assert info.expires_at == int(clock()) + 2_628_000
