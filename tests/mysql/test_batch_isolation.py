"""A batch is an optimisation, never a shared fate (0.2): whatever goes wrong
in a coalesced batch of saves, each save ends as it would have alone; bad
input fails alone before any SQL; a pool whose character set could corrupt
the escaping is refused.  A real MariaDB: the value the server refuses is
refused by a real trigger, the lock is held by a real transaction."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.web
from pymysql.constants import CLIENT

from tests.conftest import FakeClock, sid_of, unseal
from tests.contract import record
from tests.mysql.conftest import (
    Settings,
    batches_as_on_aiomysql,
    connect,
    create_pool,
    make_store,
    new_sessions,
    query,
    versions,
)
from tornado_sessions import ConfigError, SessionConfig, SessionMixin, StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore

NAME = "__Host-session"
Count = Callable[[str], Any]
LONE = json.loads('"\\udcbf"')


def refuse_poison(settings: Settings, table: str) -> None:
    """A trigger that makes the server refuse any save of the user "poison" (the
    data is sealed: the server cannot read it, but the user id it can)."""
    query(
        settings,
        f"CREATE TRIGGER `{table}_poison` BEFORE UPDATE ON `{table}` FOR EACH ROW "
        "IF NEW.user_id = 'poison' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned value refused'; END IF",
    )


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock, timeout=2.0)


@pytest.mark.gen_test(timeout=60)
async def test_a_value_the_server_refuses_fails_only_its_own_save(
    store: MySQLStore,
    clock: FakeClock,
    count_statements: Count,
    private_settings: Settings,
    private_table: str,
) -> None:
    batches_as_on_aiomysql(store)
    sids = await new_sessions(store, clock, 6)
    refuse_poison(private_settings, private_table)
    poisoned = sids[2]

    async def save(sid: str) -> Any:
        user = "poison" if sid == poisoned else None
        try:
            return await store.set(
                sid, record(clock, '{"x":"fine"}', user=user), expected_version=1
            )
        except StoreError as exc:
            return exc

    with count_statements(private_table) as seen:
        outcomes = await asyncio.gather(*(save(sid) for sid in sids))
    for sid, outcome in zip(sids, outcomes, strict=True):
        if sid == poisoned:
            assert isinstance(outcome, StoreError), outcome
            assert "error 1644" in str(outcome) and "poisoned value refused" in str(outcome)
        else:
            assert outcome == 2, outcome
    rows = versions(private_settings, private_table, sids)
    assert rows[hash_sid(poisoned).hex()] == ('{"k":2}', 1)  # unchanged
    assert all(rows[hash_sid(sid).hex()] == ('{"x":"fine"}', 2) for sid in sids if sid != poisoned)
    # The first save alone (nothing in flight yet); the five that started
    # behind it in one batch, the four good ones again in one batch, the
    # bad one alone.
    batches = [s for s in seen.statements if s.startswith("START TRANSACTION")]
    assert [b.count("UPDATE ") for b in batches] == [5, 4], seen
    assert seen.counts == {"UPDATE": 2, "START": 2}, seen


@pytest.mark.gen_test(timeout=60)
async def test_a_row_locked_elsewhere_fails_only_its_own_save(
    store: MySQLStore, clock: FakeClock, private_settings: Settings, private_table: str
) -> None:
    sids = await new_sessions(store, clock, 5)
    locked = sorted(sids, key=lambda s: hash_sid(s).hex())[1]  # held up mid-batch
    blocker = connect(private_settings)
    try:
        with blocker.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(
                f"SELECT id FROM `{private_table}` WHERE id = UNHEX(%s) FOR UPDATE",
                (hash_sid(locked).hex(),),
            )
        outcomes = await asyncio.gather(
            *(store.set(sid, record(clock, '{"x":1}'), expected_version=1) for sid in sids),
            return_exceptions=True,
        )
    finally:
        blocker.rollback()
        blocker.close()
    for sid, outcome in zip(sids, outcomes, strict=True):
        if sid == locked:
            # The server's lock wait (a second under the 2 s timeout) ended
            # it: error 1205, as it would have alone.
            assert isinstance(outcome, StoreError) and outcome.code == 1205, outcome
            assert "a lock wait timed out" in str(outcome)
        else:
            assert outcome == 2, outcome
    rows = versions(private_settings, private_table, sids)
    assert rows[hash_sid(locked).hex()][1] == 1
    assert sum(version == 2 for _, version in rows.values()) == 4


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize(
    "options",
    [
        {"charset": "gbk"},
        {"charset": "sjis"},
        {"charset": "utf8mb4", "init_command": "SET NAMES gbk"},
    ],
)
async def test_a_pool_with_a_charset_other_than_utf8mb4_is_refused(
    private_settings: Settings, private_table: str, clock: FakeClock, options: dict[str, Any]
) -> None:
    pool = await create_pool(
        private_settings, 2, autocommit=True, client_flag=CLIENT.FOUND_ROWS, **options
    )
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    try:
        with pytest.raises(ConfigError) as caught:
            await store.set(new_sid(), record(clock, '{"a":"\\u00e9"}'), expected_version=None)
        message = str(caught.value)
        assert "'gbk'" in message or "'sjis'" in message
        assert 'charset="utf8mb4"' in message
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()
    # Nothing written: not even the table.
    assert query(
        private_settings,
        "SELECT COUNT(*) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (private_table,),
    ) == [(0,)]


@pytest.mark.gen_test(timeout=60)
async def test_a_utf8_pool_passed_in_is_accepted(
    private_settings: Settings, private_table: str, clock: FakeClock
) -> None:
    pool = await create_pool(
        private_settings, 2, autocommit=True, client_flag=CLIENT.FOUND_ROWS, charset="utf8"
    )
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    try:
        sid = new_sid()
        await store.set(sid, record(clock, '{"a":"é"}'), expected_version=None)
        got = await store.get(sid)
        assert got is not None and got.data == '{"a":"é"}'
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()


# -- through HTTP: attackers among users -----------------------------------------


class Put(SessionMixin, tornado.web.RequestHandler):
    """Stores the client's JSON body in the session, as many apps do; an
    address given by a trusted proxy header (as ``xheaders=True`` would)."""

    def check_xsrf_cookie(self) -> None:
        pass

    async def prepare(self) -> None:
        forwarded = self.request.headers.get("X-Test-Ip")
        if forwarded:
            self.request.remote_ip = forwarded
        await super().prepare()

    async def post(self) -> None:
        try:
            self.session.update(json.loads(self.request.body))
        except (TypeError, ValueError) as exc:
            self.set_status(400)
            self.write({"error": str(exc)})
            return
        self.write({"ok": True})


@pytest.fixture
def app(store: MySQLStore, config: SessionConfig) -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/put", Put)],
        session_store=store,
        session_config=config.replace(track_client=True),
    )


@pytest.mark.gen_test(timeout=180)
async def test_hostile_clients_never_fail_an_innocent_save(
    app: tornado.web.Application,
    http_server: Any,
    base_url: str,
    private_settings: Settings,
    private_table: str,
) -> None:
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=20)

    async def put(cookie: str | None, payload: str, ip: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if cookie:
            headers["Cookie"] = f"{NAME}={cookie}"
        if ip:
            headers["X-Test-Ip"] = ip
        return await client.fetch(
            base_url + "/put",
            method="POST",
            body=payload,
            headers=headers,
            raise_error=False,
            request_timeout=30,
        )

    async def start(payload: str) -> str:
        response = await put(None, payload)
        assert response.code == 200, response.body
        (line,) = response.headers.get_list("Set-Cookie")
        return line.split(";", 1)[0].split("=", 1)[1]

    innocent_codes: list[int] = []
    hostile_codes: dict[str, list[int]] = {}
    hostile = {
        "surrogate": '{"bio": "\\udcbf"}',
        "long user id": json.dumps({"user_id": "u" * 300}),
        "refused value": '{"user_id": "poison"}',
        "zone id": '{"ok": 1}',
    }
    innocents = [await start(f'{{"user_id": "user{i}", "n": 0}}') for i in range(10)]
    attackers = [await start('{"n": 0}') for _ in range(2)]
    refuse_poison(private_settings, private_table)

    async def innocent(i: int, cookie: str) -> None:
        for n in range(1, 21):
            response = await put(cookie, json.dumps({"n": n, f"seen{n % 3}": True}))
            innocent_codes.append(response.code)

    async def attacker(cookie: str) -> None:
        rng = random.Random(cookie)
        for _ in range(40):
            kind = rng.choice(sorted(hostile))
            ip = "fe80::1%" + "x" * 200 if kind == "zone id" else None
            response = await put(cookie, hostile[kind], ip)
            hostile_codes.setdefault(kind, []).append(response.code)

    try:
        async with asyncio.timeout(150):
            await asyncio.gather(
                *(innocent(i, c) for i, c in enumerate(innocents)),
                *(attacker(c) for c in attackers),
            )
    finally:
        client.close()
    assert len(innocent_codes) == 200
    assert innocent_codes.count(200) == 200, sorted(set(innocent_codes))  # 0 innocent 503s
    assert set(hostile_codes["surrogate"]) == {400}
    assert set(hostile_codes["long user id"]) == {400}
    assert set(hostile_codes["refused value"]) == {503}
    assert set(hostile_codes["zone id"]) == {200}  # the address is cut to fit
    rows = query(
        private_settings,
        f"SELECT CONVERT(user_id USING utf8mb4), data, ip FROM `{private_table}` "
        "WHERE user_id IS NOT NULL",
    )
    assert sorted(user for user, _, _ in rows) == sorted(f"user{i}" for i in range(10))
    sids = {f"user{i}": sid_of(app, cookie) for i, cookie in enumerate(innocents)}
    assert all(json.loads(unseal(sids[user], data))["n"] == 20 for user, data, _ in rows)
    ips = query(private_settings, f"SELECT DISTINCT ip FROM `{private_table}`")
    assert ("fe80::1",) in ips and all(len(ip or "") <= 45 for (ip,) in ips)
