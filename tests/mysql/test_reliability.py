"""Failure modes against a real MariaDB: the server going away and coming
back (a private server of this module's own, stopped and started), a pool
too small for the load, locks held by someone else, expiry cleanup."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.ioloop
import tornado.web

from tests.conftest import ROUTES, Browser, FakeClock, body
from tests.mysql.conftest import (
    lock_all_rows,
    make_store,
    new_table_name,
    query,
)
from tests.mysql.server import MariaDBServer, running_server
from tornado_sessions import SessionConfig, StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.mysql import MySQLStore


@pytest.fixture(scope="module")
def outage_server() -> Iterator[MariaDBServer]:
    """A server only this module uses, so stopping it disturbs no one."""
    with running_server("for the outage tests") as server:
        yield server


@pytest.fixture
def store(
    request: pytest.FixtureRequest,
    io_loop: tornado.ioloop.IOLoop,
    outage_server: MariaDBServer,
    clock: FakeClock,
) -> Iterator[MySQLStore]:
    """A store on the outage server; ``@pytest.mark.store_options`` is not
    a registered marker, so options come from the test's ``store_options``
    parameter fixture when present."""
    options: dict[str, Any] = {"timeout": 2.0}
    if "store_options" in request.fixturenames:
        options.update(request.getfixturevalue("store_options"))
    if not outage_server.running:
        outage_server.start()
    table = new_table_name()
    yield from make_store(io_loop, outage_server.settings(), table=table, clock=clock, **options)
    if not outage_server.running:
        outage_server.start()
    query(outage_server.settings(), f"DROP TABLE IF EXISTS `{table}`")


@pytest.fixture
def app(store: MySQLStore, config: SessionConfig) -> tornado.web.Application:
    return tornado.web.Application(ROUTES, session_store=store, session_config=config)


@pytest.mark.gen_test(timeout=120)
async def test_outage_gives_fast_503_then_recovers_without_restart(
    browser: Browser,
    outage_server: MariaDBServer,
    store: MySQLStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert body(await browser.get("/counter")) == {"n": 1}  # acknowledged before the outage
    outage_server.stop()
    try:
        with caplog.at_level(logging.WARNING):
            for path in ("/counter", "/read"):
                started = time.monotonic()
                response = await browser.get(path)
                elapsed = time.monotonic() - started
                assert response.code == 503, path
                assert elapsed < 8, elapsed
                assert b"Traceback" not in response.body
            # A request that does not need the store still works.
            response = await browser.get("/nothing", headers={"Cookie": ""})
            assert response.code == 200
        failures = [
            r.getMessage() for r in caplog.records if "Session store failed" in r.getMessage()
        ]
        assert failures, caplog.text
        where = f"127.0.0.1:{outage_server.port}"
        assert all(where in m and outage_server.database in m for m in failures), failures
        assert all(outage_server.password not in m for m in failures)
    finally:
        outage_server.start()
    # The same application, store and pool: working again, data intact.
    response = await browser.get("/counter")
    assert response.code == 200 and body(response) == {"n": 2}
    assert body(await browser.get("/counter")) == {"n": 3}


@pytest.mark.gen_test(timeout=60)
async def test_store_error_names_the_server_and_not_the_password(
    outage_server: MariaDBServer, clock: FakeClock
) -> None:
    settings = outage_server.settings()
    bad = MySQLStore(**{**settings, "password": "wrong-" + settings["password"]}, timeout=2.0)
    try:
        with pytest.raises(StoreError) as info:
            await bad.open()
        message = str(info.value)
        assert "1045" in message and "SESSION_PASSWORD" in message
        assert f"127.0.0.1:{outage_server.port}" in message
        assert settings["password"] not in message
    finally:
        await bad.close()
    # A store whose first use failed is not stuck: the next use works.
    later = MySQLStore(**settings, table=new_table_name(), timeout=2.0, cleanup_interval=None)
    outage_server.stop()
    try:
        with pytest.raises(StoreError):
            await later.get(new_sid())
    finally:
        outage_server.start()
    try:
        assert await later.get(new_sid()) is None
    finally:
        await later.close()
        query(settings, f"DROP TABLE IF EXISTS `{later.table}`")


async def _fan_out(browsers: list[Browser]) -> list[tuple[int, float, Any]]:
    async def one(b: Browser) -> tuple[int, float, Any]:
        started = time.monotonic()
        response = await b.get("/counter", request_timeout=30)
        return response.code, time.monotonic() - started, response.body

    async with asyncio.timeout(60):
        return list(await asyncio.gather(*(one(b) for b in browsers)))


async def _twenty_sessions(browser: Browser) -> list[Browser]:
    """Twenty clients of the test app, each with a stored session (n = 1)."""
    browsers = [Browser(browser.client, browser.base_url) for _ in range(20)]
    for b in browsers:
        assert body(await b.get("/counter")) == {"n": 1}
    return browsers


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("store_options", [{"pool_size": 2, "timeout": 5.0}])
async def test_small_pool_under_load_completes(
    browser: Browser, store: MySQLStore, outage_server: MariaDBServer, store_options: Any
) -> None:
    browsers = await _twenty_sessions(browser)
    blocker = lock_all_rows(outage_server.settings(), store.table)
    try:
        # The updates wait on the locks holding both pool connections; the
        # other requests wait for a connection; all finish once released.
        asyncio.get_running_loop().call_later(1.0, blocker.rollback)
        results = await _fan_out(browsers)
    finally:
        blocker.close()
    assert [code for code, _, _ in results] == [200] * 20, results
    assert sorted(body_ for _, _, body_ in results) == [b'{"n": 2}'] * 20


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("store_options", [{"pool_size": 2, "timeout": 1.0}])
async def test_small_pool_with_rows_locked_too_long_answers_503_in_time(
    browser: Browser, store: MySQLStore, outage_server: MariaDBServer, store_options: Any
) -> None:
    browsers = await _twenty_sessions(browser)
    blocker = lock_all_rows(outage_server.settings(), store.table)
    try:
        results = await _fan_out(browsers)
    finally:
        blocker.rollback()
        blocker.close()
    codes = [code for code, _, _ in results]
    assert set(codes) <= {200, 503}, results
    assert 503 in codes
    # A request waits at most twice for a connection and twice for its
    # statement (1 s each here), whatever the queue: once in a coalesced
    # batch held up by another session's locked row, once more alone (the
    # batch may have been applied after it gave up, so each save checks).
    assert max(elapsed for _, elapsed, _ in results) < 4 * 1.0 + 2.0, results
    assert all(b"Traceback" not in body_ for _, _, body_ in results)
    # Nothing leaked: the pool serves the next requests normally.
    for b in browsers[:3]:
        response = await b.get("/counter")
        assert response.code == 200


@pytest.mark.gen_test(timeout=60)
async def test_clear_expired_works_in_batches_and_reports_progress(
    store: MySQLStore, clock: FakeClock
) -> None:
    now = int(clock())
    live = [new_sid() for _ in range(3)]
    for i in range(25):
        record = SessionRecord(data="{}", created_at=now, expires_at=now + 10 + i % 2)
        await store.set(new_sid(), record, expected_version=None)
    for sid in live:
        await store.set(
            sid,
            SessionRecord(data="{}", created_at=now, expires_at=now + 1000),
            expected_version=None,
        )
    clock.advance(100)
    seen: list[int] = []
    assert await store.clear_expired(batch_size=10, progress=seen.append) == 25
    # The running total after each batch (of at most 10 rows): a batch per
    # slice of the key space that holds expired rows.
    steps = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    assert seen[-1] == 25 and all(0 < step <= 10 for step in steps), seen
    assert await store.length() == 3
    assert await store.stats() == {
        "live": 3,
        "expired": 0,
        "table_bytes": (await store.stats())["table_bytes"],
    }
    assert (await store.stats())["table_bytes"] > 0


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("store_options", [{"cleanup_interval": 0.05, "cleanup_batch": 5}])
async def test_periodic_cleanup_deletes_expired_rows(
    store: MySQLStore, clock: FakeClock, store_options: Any
) -> None:
    now = int(clock())
    keep = new_sid()
    await store.set(
        keep, SessionRecord(data="{}", created_at=now, expires_at=now + 1000), expected_version=None
    )
    for _ in range(12):
        await store.set(
            new_sid(),
            SessionRecord(data="{}", created_at=now, expires_at=now + 5),
            expected_version=None,
        )
    assert (await store.stats())["expired"] == 0
    clock.advance(10)
    # Wait (bounded) for the background task to have run.
    async with asyncio.timeout(20):
        while (await store.stats())["expired"]:
            await asyncio.sleep(0.05)
    assert await store.length() == 1
    assert await store.get(keep) is not None
