"""Flash messages, a limit on sessions per user and lazy handlers on
MySQLStore (see tests/peers.py), statements counted at the private server;
and flash messages and the limit across two application processes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.ioloop

from tests.conftest import Browser, FakeClock, body
from tests.mysql.app_server import AppProcess
from tests.mysql.conftest import Settings, make_store
from tests.peers import (  # noqa: F401 - collected by pytest
    test_a_flash_survives_a_redirect_and_shows_once,
    test_a_lazy_handler_that_forgets_to_load_is_told_how,
    test_a_lazy_handler_that_never_reads_the_session_costs_nothing,
    test_a_limit_of_one_ends_every_other_session_at_login,
    test_flash_categories_and_order_are_kept,
    test_popping_an_empty_queue_writes_nothing,
    test_the_template_helper_shows_flashes_escaped,
    test_three_logins_of_one_user_leave_the_two_most_recent,
    test_without_a_limit_nothing_is_ended,
)
from tornado_sessions.stores.mysql import MySQLStore


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, private_settings: Settings, private_table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    # The private server: its query log holds nobody else's statements.
    yield from make_store(io_loop, private_settings, table=private_table, clock=clock)


def kind(statement: str) -> str:
    verb = statement.split(None, 1)[0].upper()
    if verb == "DELETE":
        return "limit" if "NOT IN (" in statement else "destroy"
    if verb == "UPDATE" and " SET expires_at = " in statement and "data =" not in statement:
        return "touch"
    return {"SELECT": "load", "INSERT": "save", "UPDATE": "save"}.get(verb, verb)


@pytest.fixture
def count(count_statements: Callable[[str], Any], private_table: str) -> Callable[[], Any]:
    """``with count() as seen: ...``, then ``seen()``: the statements the
    server ran on the table, as ``{"load": n, "save": n, "limit": n, ...}``."""

    @contextlib.contextmanager
    def counting() -> Iterator[Callable[[], dict[str, int]]]:
        with count_statements(private_table) as seen:
            yield lambda: dict(collections.Counter(kind(s) for s in seen.statements))

    return counting


@pytest.mark.gen_test(timeout=120)
async def test_a_flash_shows_once_across_processes(
    http_client: Any, private_settings: Settings, private_table: str
) -> None:
    with (
        AppProcess(private_settings, private_table) as a,
        AppProcess(private_settings, private_table) as b,
    ):
        user = Browser(http_client, a.url)
        assert (await user.get("/flash/add?m=Saved.&next=/counter")).code == 302
        user.base_url = b.url  # the redirect lands on the other process
        assert body(await user.get("/flash/show")) == {"flashes": [["message", "Saved."]]}
        user.base_url = a.url
        assert body(await user.get("/flash/show")) == {"flashes": []}


@pytest.mark.gen_test(timeout=120)
async def test_the_limit_holds_across_processes(
    http_client: Any, private_settings: Settings, private_table: str
) -> None:
    env = {"SESSION_MAX_PER_USER": "2"}
    with (
        AppProcess(private_settings, private_table, env=env) as a,
        AppProcess(private_settings, private_table, env=env) as b,
    ):
        devices = [Browser(http_client, app.url) for app in (a, b, a)]
        other = Browser(http_client, b.url)
        await other.get("/u/login?user=frank")
        for device in devices:  # alice logs in three times, through both processes
            await device.get("/u/login?user=alice")
            # Times are whole seconds: one apart, so the order is plain.
            await asyncio.sleep(1.05)
        for app in (a, b):  # the oldest is over, through either process
            devices[0].base_url = app.url
            assert body(await devices[0].get("/u/whoami")) == {"user": None}
            for device in devices[1:]:
                device.base_url = app.url
                assert body(await device.get("/u/whoami")) == {"user": "alice"}
        assert body(await other.get("/u/whoami")) == {"user": "frank"}
