"""The docs' examples marked ``mysql``, run against the test server.

Each gets the server through SESSION_* variables, as a reader's application
does, with a table of its own (SESSION_TABLE), and must leave its rows
there: what the client saw is what the server holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient

from tests.conftest import Browser
from tests.docs_examples import clean_env, examples, run_module, run_pytest, running_program
from tests.mysql.conftest import Settings, new_table_name, pool_serves, query
from tests.test_docs_examples import GIVEN, counts_up, serving
from tornado_sessions.config import ENV_NAMES


def mysql_examples(kind: str) -> list[str]:
    return [n for n, b in examples().items() if "mysql" in b.flags and b.kind == kind]


@pytest.fixture
def env(mysql_settings: Settings) -> Iterator[dict[str, str]]:
    """SESSION_* for the test server, with a table of the test's own."""
    table = new_table_name()
    yield clean_env(
        SESSION_HOST=str(mysql_settings["host"]),
        SESSION_PORT=str(mysql_settings["port"]),
        SESSION_USER=str(mysql_settings["user"]),
        SESSION_PASSWORD=str(mysql_settings["password"]),
        SESSION_DATABASE=str(mysql_settings["database"]),
        SESSION_TABLE=table,
    )
    query(mysql_settings, f"DROP TABLE IF EXISTS `{table}`")


def rows(settings: Settings, env: dict[str, str]) -> int:
    count: int = query(settings, f"SELECT COUNT(*) FROM `{env['SESSION_TABLE']}`")[0][0]
    return count


def test_every_mysql_example_is_run_here() -> None:
    marked = {n for n, b in examples().items() if "mysql" in b.flags}
    kinds = ("module", "program", "pytest")
    assert marked == {n for kind in kinds for n in mysql_examples(kind)}
    assert set(mysql_examples("module")) == {
        "express-python",
        "cron-store",
        "mysql-store",
        "mysqlstore-from-config",
        "shared-pool",
    }


@pytest.mark.parametrize("name", mysql_examples("module"))
@pytest.mark.gen_test(timeout=60)
async def test_mysql_module_example(
    name: str,
    env: dict[str, str],
    mysql_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ENV_NAMES.values():
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ns: dict[str, Any] = await run_module(name, GIVEN)
    store = ns["store"]
    try:
        assert store.table == env["SESSION_TABLE"]
        if name == "express-python":
            async with serving(ns["app"]) as browser:
                await counts_up(browser)
            assert rows(mysql_settings, env) == 2  # two browsers, one session each
        elif name in ("mysql-store", "mysqlstore-from-config"):  # opened: the table made
            assert store.table_state == "created"
            assert rows(mysql_settings, env) == 0
        elif name == "shared-pool":  # one pool: the store's table, the app's query
            assert store.table_state == "created" and ns["sessions"] == 0
            assert ns["pool"].maxsize == 10  # SESSION_POOL_SIZE's default
            assert not await pool_serves(ns["pool"])  # closed by the example
        else:  # cron-store: no cleanup task; cron runs clear-expired
            assert store.cleanup_interval is None
    finally:
        await store.close()


@pytest.mark.parametrize("name", mysql_examples("program"))
@pytest.mark.gen_test(timeout=60)
async def test_mysql_program_example(
    name: str, env: dict[str, str], mysql_settings: Settings, tmp_path: Path
) -> None:
    async with running_program(name, tmp_path, GIVEN, env) as url:
        await counts_up(Browser(tornado.httpclient.AsyncHTTPClient(), url))
    assert rows(mysql_settings, env) == 2


def helper_tables(settings: Settings) -> set[str]:
    """The tables tornado_sessions.testing.open_mysql_store made."""
    return {row[0] for row in query(settings, "SHOW TABLES LIKE 'test\\_sessions\\_%'")}


@pytest.mark.parametrize("name", mysql_examples("pytest"))
def test_mysql_pytest_example(
    name: str, env: dict[str, str], mysql_settings: Settings, tmp_path: Path
) -> None:
    before = helper_tables(mysql_settings)
    output = run_pytest(name, tmp_path, GIVEN, env)
    assert "passed" in output
    # Each test had a table of its own, and dropped it.
    assert helper_tables(mysql_settings) == before
