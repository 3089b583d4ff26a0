"""Idle and absolute timeouts on MySQLStore, with an injected clock."""

from __future__ import annotations

import pytest

from tests.conftest import Browser, FakeClock, body
from tests.mysql.conftest import Settings, query

NAME = "__Host-session"


@pytest.mark.session_config(max_age=3600, absolute_max_age=7200)
@pytest.mark.gen_test(timeout=60)
async def test_idle_and_absolute_timeouts_with_touch_and_regenerate(
    browser: Browser, clock: FakeClock, table: str, mysql_settings: Settings
) -> None:
    await browser.get("/counter")
    created = int(clock())
    # Idle: touched every 20 minutes, the session outlives its first hour...
    for _ in range(2):
        clock.advance(1200)
        assert body(await browser.get("/read"))["data"] == {"n": 1}
    ((expires,),) = query(mysql_settings, f"SELECT expires_at FROM `{table}`")
    assert expires == int(clock()) + 3600  # the touch moved it in the table
    for _ in range(2):
        clock.advance(1200)
        assert body(await browser.get("/read"))["data"] == {"n": 1}
    ((expires,),) = query(mysql_settings, f"SELECT expires_at FROM `{table}`")
    assert expires == created + 7200  # the slide stops at the absolute timeout
    # ...and login (regenerate) keeps the absolute clock: a new row, same creation time.
    await browser.get("/login?user=alice")
    ((row_created,),) = query(mysql_settings, f"SELECT created_at FROM `{table}`")
    assert row_created == created
    clock.advance(1200)  # 6000 s after creation
    assert body(await browser.get("/read"))["data"]["user_id"] == "alice"
    clock.advance(1200)  # 7200 s: the absolute timeout, however active
    assert body(await browser.get("/read")) == {"data": {}, "new": True}


@pytest.mark.session_config(max_age=3600)
@pytest.mark.gen_test(timeout=60)
async def test_idle_timeout_is_enforced_by_the_server(
    browser: Browser, clock: FakeClock, table: str, mysql_settings: Settings
) -> None:
    await browser.get("/counter")
    cookie = {"Cookie": f"{NAME}={browser.jar[NAME]}"}
    # Even if a client held on to an old cookie, the row's own expiry decides.
    query(mysql_settings, f"UPDATE `{table}` SET expires_at = %s", (int(clock()) + 10,))
    clock.advance(11)
    assert body(await browser.get("/read", headers=cookie)) == {"data": {}, "new": True}
