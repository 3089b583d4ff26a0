"""Two application processes sharing one MySQL table: a client alternating
between them sees every write of the other (no stale read, no lost update)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import tornado.httpclient

from tests.conftest import Browser
from tests.mysql.app_server import AppProcess
from tests.mysql.conftest import Settings


@pytest.fixture
def two_apps(mysql_settings: Settings, table: str) -> Iterator[list[str]]:
    with AppProcess(mysql_settings, table) as a, AppProcess(mysql_settings, table) as b:
        yield [a.url, b.url]


@pytest.mark.gen_test(timeout=180)
async def test_two_processes_alternating_never_read_stale_data(two_apps: list[str]) -> None:
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        first, second = (Browser(client, url) for url in two_apps)
        second.jar = first.jar  # one browser, two servers behind a balancer
        for i in range(200):
            browser = first if i % 2 == 0 else second
            response = await browser.get("/counter")
            assert response.code == 200, response.body
            assert json.loads(response.body) == {"n": i + 1}
    finally:
        client.close()
