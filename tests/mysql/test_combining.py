"""Saves of one session combine (0.2): concurrent requests on one cookie are
written by few version-checked UPDATEs, none of them conflicting within the
process, and a destroyed session stays destroyed.  A real HTTP server on a
real MariaDB; statements counted in the server's query log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.ioloop
import tornado.web

from tests.conftest import ROUTES, Browser, FakeClock, body, set_cookies, sid_of, unseal
from tests.mysql.conftest import Settings, make_store, query
from tornado_sessions import SessionConfig
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.testing import session_manager

NAME = "__Host-session"
Count = Callable[[str], Any]


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock)


@pytest.fixture
def app(store: MySQLStore, config: SessionConfig) -> tornado.web.Application:
    return tornado.web.Application(ROUTES, session_store=store, session_config=config)


async def fan_out(
    base_url: str, cookie: str, paths: list[list[str]]
) -> list[tornado.httpclient.HTTPResponse]:
    """Each list of paths is one client sending its requests in turn; the
    clients run at once, all on ``cookie``."""
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=len(paths) + 1)
    responses: list[tornado.httpclient.HTTPResponse] = []

    async def run(mine: list[str]) -> None:
        for path in mine:
            responses.append(
                await client.fetch(
                    base_url + path,
                    headers={"Cookie": f"{NAME}={cookie}"},
                    request_timeout=30,
                    raise_error=False,
                )
            )

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(run(mine) for mine in paths))
    finally:
        client.close()
    return responses


@pytest.mark.gen_test(timeout=180)
async def test_concurrent_writers_of_one_session_combine_into_few_updates(
    browser: Browser,
    base_url: str,
    app: tornado.web.Application,
    count_statements: Count,
    private_table: str,
    private_settings: Settings,
) -> None:
    await browser.get("/counter")
    writers, rounds = 12, 10
    n = writers * rounds
    combiner = session_manager(app).saves
    writes, conflicts = combiner.writes, combiner.conflicts
    with count_statements(private_table) as seen:
        responses = await fan_out(
            base_url, browser.jar[NAME], [[f"/incr?k=w{i}"] * rounds for i in range(writers)]
        )
    assert [r.code for r in responses] == [200] * n
    data = body(await browser.get("/read"))["data"]
    assert data == {"n": 1, **{f"w{i}": rounds for i in range(writers)}}  # every change kept
    updates = seen.counts.get("UPDATE", 0)
    print(f"{n} concurrent writes of one session: {updates} UPDATEs at the server")
    # Well below one per request.  How far below depends on how long a write
    # is in flight (changes combine meanwhile): 32-48 of 120 in 0.2, 43-58
    # since a lone save leaves without a hand-off (0.3), on a loaded machine.
    assert 1 <= updates <= n * 2 // 3, seen.counts
    assert combiner.writes - writes == updates
    # Within one process saves never conflict: no re-read, no backoff.
    assert combiner.conflicts == conflicts
    assert not [s for s in seen.statements if s.startswith("SELECT version, data")]
    ((stored, version),) = query(private_settings, f"SELECT data, version FROM `{private_table}`")
    sid = sid_of(app, browser.jar[NAME])
    assert json.loads(unseal(sid, stored)) == data and version == 1 + updates


@pytest.mark.gen_test(timeout=60)
async def test_same_key_the_last_request_to_finish_wins(
    browser: Browser, base_url: str, private_table: str, private_settings: Settings
) -> None:
    await browser.get("/set?k=colour&v=%22red%22")
    cookie = browser.jar[NAME]
    # Both requests load the session first; the slow one finishes last.
    slow = asyncio.ensure_future(fan_out(base_url, cookie, [["/slow-set?wait=0.4"]]))
    await asyncio.sleep(0.1)
    (fast,) = await fan_out(base_url, cookie, [["/set?k=slow&v=%22fast%22"]])
    ((late,),) = [await slow]
    assert fast.code == late.code == 200
    data = body(await browser.get("/read"))["data"]
    # /slow-set sets "slow": true after /set stored "fast": the last wins.
    assert data == {"colour": "red", "slow": True}


@pytest.mark.gen_test(timeout=60)
async def test_a_session_destroyed_during_combined_saves_stays_destroyed(
    browser: Browser, base_url: str, private_table: str, private_settings: Settings
) -> None:
    await browser.get("/login?user=alice")
    cookie = browser.jar[NAME]
    saves = asyncio.ensure_future(fan_out(base_url, cookie, [["/slow-set?wait=0.3"]] * 6))
    await asyncio.sleep(0.1)
    (logout,) = await fan_out(base_url, cookie, [["/logout"]])
    assert logout.code == 200
    responses = await saves
    assert [r.code for r in responses] == [200] * 6
    for response in responses:
        (cleared,) = [m for m in set_cookies(response) if m.key == NAME]
        assert cleared.value == ""  # told the session is over
    assert query(private_settings, f"SELECT COUNT(*) FROM `{private_table}`") == [(0,)]
