"""MySQLStore behind a real Tornado app: statements per request, counted at
the server (general query log of the private MariaDB), and what the rows
look like afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.testing
import tornado.web

from tests.conftest import ROUTES, Base, Browser, FakeClock, body, set_cookies, sid_of, unseal
from tests.mysql.conftest import Settings, make_store, query
from tornado_sessions import SessionConfig
from tornado_sessions.manager import SessionManager
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore

NAME = "__Host-session"


class LoggedOutMeanwhile(Base):
    """Loads the session, lets a "concurrent logout" delete its row, then
    modifies it: the save must not bring the row back."""

    async def get(self) -> None:
        self.session.get("n")
        store: MySQLStore = self.settings["session_store"]
        await store.destroy(self.session.id)
        self.session["n"] = 99
        self.write({"ok": True})


class Put(Base):
    """Merges the JSON request body into the session."""

    async def post(self) -> None:
        self.session.update(json.loads(self.request.body))
        self.write({"ok": True})


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop,
    private_settings: Settings,
    private_table: str,
    clock: FakeClock,
) -> Iterator[MySQLStore]:
    # The private server: nobody else's statements in its query log.
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock)


@pytest.fixture
def app(store: MySQLStore, config: SessionConfig) -> tornado.web.Application:
    routes = [*ROUTES, (r"/logged-out-meanwhile", LoggedOutMeanwhile), (r"/put", Put)]
    return tornado.web.Application(routes, session_store=store, session_config=config)


def rows(settings: Settings, table: str) -> list[tuple[Any, ...]]:
    return query(settings, f"SELECT HEX(id), data, version, expires_at FROM `{table}`")


def session_cookie(response: Any) -> Any:
    found = [m for m in set_cookies(response) if m.key == NAME]
    return found[0] if found else None


Count = Callable[[str], Any]


@pytest.mark.gen_test
async def test_new_visitor_untouched_costs_nothing(
    browser: Browser, count_statements: Count, private_table: str
) -> None:
    with count_statements(private_table) as seen:
        for path in ("/nothing", "/read"):
            response = await browser.get(path)
            assert response.code == 200
            assert session_cookie(response) is None
    assert seen.statements == []


@pytest.mark.gen_test
async def test_new_modified_session_is_one_insert(
    app: tornado.web.Application,
    browser: Browser,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    with count_statements(private_table) as seen:
        response = await browser.get("/counter")
    assert response.code == 200 and body(response) == {"n": 1}
    assert session_cookie(response) is not None
    assert seen.counts == {"INSERT": 1}, seen
    ((key, data, version, _),) = rows(private_settings, private_table)
    assert (unseal(sid_of(app, browser.jar[NAME]), data), version) == ('{"n":1}', 1)
    assert len(key) == 64  # the SHA-256 of the id, not the id


@pytest.mark.gen_test
async def test_read_only_is_one_select_and_modify_is_select_plus_update(
    app: tornado.web.Application,
    browser: Browser,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    await browser.get("/counter")
    with count_statements(private_table) as seen:
        response = await browser.get("/read")
    assert body(response) == {"data": {"n": 1}, "new": False}
    assert session_cookie(response) is None
    assert seen.counts == {"SELECT": 1}, seen
    # By key alone: the store drops an expired row itself (test_store.py).
    key = hash_sid(sid_of(app, browser.jar[NAME])).hex()
    assert seen.statements[0].endswith(f"WHERE id = UNHEX('{key}')"), seen.statements

    with count_statements(private_table) as seen:
        response = await browser.get("/counter")
    assert body(response) == {"n": 2}
    assert seen.counts == {"SELECT": 1, "UPDATE": 1}, seen
    assert "version = 1" in seen.statements[1]  # a versioned update, not an upsert
    sid = sid_of(app, browser.jar[NAME])
    assert [(unseal(sid, r[1]), r[2]) for r in rows(private_settings, private_table)] == [
        ('{"n":2}', 2)
    ]


@pytest.mark.gen_test
async def test_bad_tampered_and_expired_cookies_cost_nothing(
    browser: Browser,
    count_statements: Count,
    private_table: str,
    clock: FakeClock,
    config: SessionConfig,
) -> None:
    await browser.get("/counter")
    good = browser.jar[NAME]
    tampered = good[:-6] + ("A" if good[-6] != "A" else "B") + good[-5:]
    for value in ("garbage", tampered):
        with count_statements(private_table) as seen:
            response = await browser.get("/read", headers={"Cookie": f"{NAME}={value}"})
        assert response.code == 200
        assert body(response) == {"data": {}, "new": True}
        assert seen.statements == [], (value, seen)
        cleared = session_cookie(response)
        assert cleared is not None and cleared.value == ""
    clock.advance(config.max_age + 1)
    with count_statements(private_table) as seen:
        response = await browser.get("/read", headers={"Cookie": f"{NAME}={good}"})
    assert body(response) == {"data": {}, "new": True}
    assert seen.statements == []


@pytest.mark.gen_test
async def test_expiry_extension_when_due_is_select_plus_update_and_a_cookie(
    browser: Browser,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
    clock: FakeClock,
    config: SessionConfig,
) -> None:
    await browser.get("/counter")
    (before,) = rows(private_settings, private_table)
    clock.advance(config.max_age // 10 - 10)  # not yet due
    with count_statements(private_table) as seen:
        response = await browser.get("/read")
    assert seen.counts == {"SELECT": 1}, seen
    assert session_cookie(response) is None
    clock.advance(20)  # now past 10% of max_age
    with count_statements(private_table) as seen:
        response = await browser.get("/read")
    assert seen.counts == {"SELECT": 1, "UPDATE": 1}, seen
    assert "SET expires_at" in seen.statements[1]
    morsel = session_cookie(response)
    assert morsel is not None and morsel["max-age"] == str(config.max_age)
    (after,) = rows(private_settings, private_table)
    assert after[3] == int(clock()) + config.max_age > before[3]
    assert (after[1], after[2]) == (before[1], before[2])  # data and version untouched


@pytest.mark.gen_test
async def test_a_session_deleted_meanwhile_is_not_recreated(
    browser: Browser, count_statements: Count, private_table: str, private_settings: Settings
) -> None:
    await browser.get("/counter")
    assert len(rows(private_settings, private_table)) == 1
    with count_statements(private_table) as seen:
        response = await browser.get("/logged-out-meanwhile")
    assert response.code == 200
    assert rows(private_settings, private_table) == []  # the logout won
    assert "INSERT" not in seen.counts, seen
    cleared = session_cookie(response)
    assert cleared is not None and cleared.value == ""


@pytest.mark.gen_test
async def test_persistence_across_an_app_restart(
    browser: Browser, store: MySQLStore, config: SessionConfig, private_settings: Settings
) -> None:
    assert body(await browser.get("/counter")) == {"n": 1}
    assert body(await browser.get("/counter")) == {"n": 2}
    # A new process would have a new store, pool and application.
    fresh = MySQLStore(**private_settings, table=store.table, clock=store.clock)
    app = tornado.web.Application(ROUTES, session_store=fresh, session_config=config)
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        second = Browser(browser.client, f"http://127.0.0.1:{port}")
        second.jar = dict(browser.jar)
        assert body(await second.get("/counter")) == {"n": 3}
    finally:
        server.stop()
        await server.close_all_connections()
        await fresh.close()
    assert body(await browser.get("/read")) == {"data": {"n": 3}, "new": False}


@pytest.mark.gen_test
@pytest.mark.session_config(max_data_size=2000)
async def test_over_limit_save_is_refused_and_stored_data_is_intact(
    app: tornado.web.Application, browser: Browser, private_table: str, private_settings: Settings
) -> None:
    response = await browser.get('/set?k=small&v="ok"')
    assert response.code == 200
    big = json.dumps({"big": "x" * 5000})
    response = await browser.client.fetch(
        browser.base_url + "/put",
        method="POST",
        body=big,
        headers={"Cookie": f"{NAME}={browser.jar[NAME]}"},
        raise_error=False,
        request_timeout=10,
    )
    assert response.code >= 500
    assert b"Traceback" not in response.body
    sid = sid_of(app, browser.jar[NAME])
    assert [(unseal(sid, r[1]), r[2]) for r in rows(private_settings, private_table)] == [
        ('{"small":"ok"}', 1)
    ]
    assert body(await browser.get("/read")) == {"data": {"small": "ok"}, "new": False}


@pytest.mark.gen_test
async def test_large_and_emoji_data_round_trip_over_http(
    app: tornado.web.Application, browser: Browser, private_table: str, private_settings: Settings
) -> None:
    payload = {"emoji": "😀🎉 ñ 中文 𝄞", "big": "é" * 250_000}  # 500 KB of UTF-8
    response = await browser.client.fetch(
        browser.base_url + "/put",
        method="POST",
        body=json.dumps(payload),
        raise_error=False,
        request_timeout=20,
    )
    assert response.code == 200
    morsel = session_cookie(response)
    assert morsel is not None
    browser.jar[NAME] = morsel.coded_value
    assert body(await browser.get("/read")) == {"data": payload, "new": False}
    ((_, data, _, _),) = rows(private_settings, private_table)
    text = unseal(sid_of(app, browser.jar[NAME]), data)  # sealed: base64 text
    assert json.loads(text) == payload
    assert "😀🎉" in text  # serialized as UTF-8 text, not escaped


def test_manager_cookie_names_the_stored_row(
    io_loop: tornado.ioloop.IOLoop,
    store: MySQLStore,
    config: SessionConfig,
    private_settings: Settings,
) -> None:
    """The row key is the SHA-256 of the id the cookie carries."""
    manager = SessionManager(store, config)

    async def run() -> tuple[str, str]:
        session = manager.new_session(owner=None)  # type: ignore[arg-type]
        session["k"] = "v"
        await manager.run(session, manager.plan(session))
        return session.id, manager.cookie_value(session)

    sid, cookie = io_loop.run_sync(run)
    payload = manager.decode_cookie(cookie)
    assert payload is not None and payload["i"] == sid
    key = hash_sid(sid).hex().upper()
    ((stored,),) = query(
        private_settings, f"SELECT data FROM `{store.table}` WHERE HEX(id) = %s", (key,)
    )
    assert unseal(sid, stored) == '{"k":"v"}'  # sealed under the same id
