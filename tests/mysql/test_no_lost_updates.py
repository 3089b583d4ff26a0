"""Concurrency on MySQLStore: no lost updates, destroy wins, log out everywhere
across processes.  A real MariaDB and real HTTP servers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import tornado.httpclient
import tornado.web

from tests.conftest import Browser, body, set_cookies, sid_of, unseal
from tests.mysql.app_server import AppProcess
from tests.mysql.conftest import Settings, query

NAME = "__Host-session"


@pytest.mark.gen_test(timeout=180)
async def test_20_clients_sharing_one_session_lose_no_increment(
    app: tornado.web.Application,
    browser: Browser,
    base_url: str,
    table: str,
    mysql_settings: Settings,
) -> None:
    await browser.get("/counter")  # the session all clients share
    cookie = {"Cookie": f"{NAME}={browser.jar[NAME]}"}
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=25)

    async def worker(i: int) -> None:
        for _ in range(50):
            response = await client.fetch(
                f"{base_url}/incr?k=c{i}", headers=cookie, request_timeout=30
            )
            assert response.code == 200

    try:
        await asyncio.gather(*(worker(i) for i in range(20)))
    finally:
        client.close()
    data = body(await browser.get("/read"))["data"]
    assert sum(v for k, v in data.items() if k.startswith("c")) == 1000
    assert data == {"n": 1, **{f"c{i}": 50 for i in range(20)}}
    (row,) = query(mysql_settings, f"SELECT data, version FROM `{table}`")
    assert json.loads(unseal(sid_of(app, browser.jar[NAME]), row[0])) == data
    # Concurrent saves of the session combined: fewer versioned writes than
    # increments (tests/mysql/test_combining.py counts them at the server).
    print(f"1000 increments in {row[1] - 1} versioned writes")
    assert 1 < row[1] <= 1 + 1000


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_destroy_and_save_stays_destroyed(
    browser: Browser, table: str, mysql_settings: Settings
) -> None:
    await browser.get("/login?user=alice")
    cookie = {"Cookie": f"{NAME}={browser.jar[NAME]}"}
    slow = asyncio.ensure_future(browser.get("/slow-set?wait=0.3", headers=cookie))
    await asyncio.sleep(0.1)
    assert (await browser.get("/logout", headers=cookie)).code == 200
    response = await slow
    assert response.code == 200
    (cleared,) = [m for m in set_cookies(response) if m.key == NAME]
    assert cleared.value == ""  # the session is over: its cookie is cleared
    assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}`") == [(0,)]


@pytest.mark.gen_test(timeout=120)
async def test_two_processes_merge_concurrent_writes(
    http_client: Any, table: str, mysql_settings: Settings
) -> None:
    with AppProcess(mysql_settings, table) as a, AppProcess(mysql_settings, table) as b:
        first = Browser(http_client, a.url)
        await first.get("/counter")
        cookie = {"Cookie": f"{NAME}={first.jar[NAME]}"}
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=20)

        async def worker(i: int) -> None:
            for j in range(25):
                url = (a if (i + j) % 2 else b).url  # alternate between the processes
                response = await client.fetch(
                    f"{url}/incr?k=p{i}", headers=cookie, request_timeout=30
                )
                assert response.code == 200

        try:
            await asyncio.gather(*(worker(i) for i in range(10)))
        finally:
            client.close()
        data = body(await first.get("/read"))["data"]
        assert data == {"n": 1, **{f"p{i}": 25 for i in range(10)}}


@pytest.mark.gen_test(timeout=120)
async def test_log_out_everywhere_across_processes(
    http_client: Any, table: str, mysql_settings: Settings
) -> None:
    with AppProcess(mysql_settings, table) as a, AppProcess(mysql_settings, table) as b:
        devices = []
        for app in (a, b, a, b):  # alice logs in on four devices, through either process
            device = Browser(http_client, app.url)
            await device.get("/u/login?user=alice")
            devices.append(device)
        bob = Browser(http_client, b.url)
        await bob.get("/u/login?user=bob")

        listing = body(await devices[0].get("/u/mine"))
        assert len(listing["sessions"]) == 4
        assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}` WHERE user_id = 'alice'") == [
            (4,)
        ]

        # From process a, alice ends every other session...
        assert body(await devices[0].get("/u/end-others")) == {"ended": 3}
        # ...and at once, through either process, those cookies are fresh sessions.
        for device in devices[1:]:
            ended = {"Cookie": f"{NAME}={device.jar[NAME]}"}
            for app in (a, b):
                device.base_url = app.url
                assert body(await device.get("/u/whoami", headers=ended)) == {"user": None}
        for app in (a, b):
            devices[0].base_url = app.url
            assert body(await devices[0].get("/u/whoami")) == {"user": "alice"}
        assert body(await bob.get("/u/whoami")) == {"user": "bob"}
        assert query(mysql_settings, f"SELECT COUNT(*) FROM `{table}` WHERE user_id = 'alice'") == [
            (1,)
        ]
