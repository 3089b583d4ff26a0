"""The operations command line, run as a real subprocess against a real MariaDB.

Every test runs ``python -m tornado_sessions ...`` in a fresh process with a
clean environment (only the ``SESSION_*`` variables the test sets) and an
empty working directory (so no ``.env`` is read), and checks the exit
status, the output and the rows in the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.conftest import driver_env
from tests.mysql.conftest import connect, query
from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.mysql import MySQLStore

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 60  # seconds; no CLI call may hang

# -- the database --------------------------------------------------------------
#
# ``mysql_settings`` and ``table`` come from tests/mysql/conftest.py: the
# server SESSION_HOST... point at, else a private MariaDB; a table of the
# test's own, dropped afterwards.


@pytest.fixture
def server(mysql_settings: dict[str, Any]) -> dict[str, Any]:
    return mysql_settings


def _connect(server: dict[str, Any]) -> pymysql.connections.Connection[Any]:
    return connect(server)


def _table_exists(server: dict[str, Any], table: str) -> bool:
    conn = _connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                (server["database"], table),
            )
            row = cur.fetchone()
            assert row is not None
            return bool(row[0])
    finally:
        conn.close()


def _count(server: dict[str, Any], table: str, where: str = "1") -> int:
    conn = _connect(server)
    try:
        with conn.cursor() as cur:
            args = (int(time.time()),) if "%s" in where else None
            cur.execute(f"SELECT COUNT(*) FROM `{table}` WHERE {where}", args)
            row = cur.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        conn.close()


def _fill(server: dict[str, Any], table: str, *, live: int, expired: int) -> None:
    """Create ``table`` and store sessions through the real store API."""

    async def go() -> None:
        store = MySQLStore(
            host=server["host"],
            port=server["port"],
            user=server["user"],
            password=server["password"],
            database=server["database"],
            table=table,
            create_table=True,
            pool_size=2,
            timeout=10,
            cleanup_interval=None,
        )
        try:
            await store.open()
            now = int(time.time())
            for i in range(live + expired):
                expires = now + 3600 if i < live else now - 3600 - i
                record = SessionRecord(
                    data=json.dumps({"n": i}), created_at=now - 7200, expires_at=expires
                )
                await store.set(secrets.token_urlsafe(32), record, expected_version=None)
        finally:
            await store.close()

    # Not asyncio.run(): it would unset (and so leak) the loop other fixtures set.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(go(), 60))
    finally:
        loop.close()


# -- running the command line ------------------------------------------------


def _env(server: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    env.pop("TORNADO_SESSIONS_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if server is not None:
        env.update(
            SESSION_HOST=server["host"],
            SESSION_PORT=str(server["port"]),
            SESSION_USER=server["user"],
            SESSION_PASSWORD=server["password"],
            SESSION_DATABASE=server["database"],
            SESSION_DB_TIMEOUT="5",
            **driver_env(),
        )
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tornado_sessions", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tornado-sessions: error: ")
    for needle in needles:
        assert needle in lines[0]


# -- secret ---------------------------------------------------------------------


def test_secret_prints_a_new_strong_secret_each_time(tmp_path: Path) -> None:
    first = cli("secret", env=_env(), cwd=tmp_path)
    second = cli("secret", env=_env(), cwd=tmp_path)
    for result in (first, second):
        assert result.returncode == 0
        assert result.stderr == ""
        assert re.fullmatch(r"[A-Za-z0-9_-]{64}\n", result.stdout)
    assert first.stdout != second.stdout


# -- create-table ------------------------------------------------------------


def test_create_table_prints_the_ddl_without_a_database(tmp_path: Path) -> None:
    # No SESSION_HOST and no SESSION_SECRET: printing the DDL needs neither.
    result = cli("create-table", env=_env(SESSION_TABLE="app_sessions"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CREATE TABLE IF NOT EXISTS `app_sessions`")
    assert "PRIMARY KEY" in result.stdout and "expires_at" in result.stdout
    assert result.stdout.rstrip().endswith(";")

    by_option = cli("create-table", "--table", "other_t", env=_env(), cwd=tmp_path)
    assert by_option.returncode == 0
    assert "`other_t`" in by_option.stdout and "app_sessions" not in by_option.stdout


def test_create_table_apply_creates_the_table(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    assert not _table_exists(server, table)
    result = cli("create-table", "--apply", env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"created table {table!r} in database {server['database']!r} on " + (
        f"{server['host']}:{server['port']}\n"
    )
    assert _table_exists(server, table)
    # Running it again is harmless, says so, and the table works with the store.
    again = cli("create-table", "--apply", env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert "already exists with every column the store needs: nothing to do" in again.stdout
    assert "created" not in again.stdout
    _fill(server, table, live=1, expired=0)
    assert _count(server, table) == 1


def test_create_table_apply_says_it_upgraded_a_table_of_0_1(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    from tests.mysql.test_schema_upgrade import OLD_DDL

    conn = connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(OLD_DDL.format(t=table))
    finally:
        conn.close()
    result = cli("create-table", "--apply", env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"upgraded table {table!r}")
    assert "rows intact" in result.stdout
    again = cli("create-table", "--apply", env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
    assert "already exists" in again.stdout


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("secret", "Print a new random secret"),
        ("create-table", "upgrade a table made by an earlier version"),
        ("clear-expired", "Delete the expired sessions"),
        ("stats", "exact counts"),
    ],
)
def test_each_subcommand_help_describes_it(tmp_path: Path, command: str, says: str) -> None:
    result = cli(command, "--help", env=_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    usage, description = result.stdout.split("\n\n")[:2]
    assert usage.startswith(f"usage: tornado-sessions {command}")
    assert says in " ".join(description.split())


# -- stats and clear-expired ---------------------------------------------------


def test_stats_counts_live_and_expired_sessions(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    _fill(server, table, live=3, expired=5)
    env = _env(server, SESSION_TABLE=table)

    text = cli("stats", env=env, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert re.search(r"^live sessions:\s+3$", text.stdout, re.M)
    assert re.search(r"^expired rows:\s+5$", text.stdout, re.M)
    assert re.search(r"^table size:\s+~\S+ \S+ \([\d,]+ bytes\)$", text.stdout, re.M)
    # Which figures are exact and which the server's estimate.
    assert "the counts are exact; the size is the server's estimate" in text.stdout
    assert re.search(r"^unsealed:\s+0 ", text.stdout, re.M)
    assert f"ANALYZE TABLE `{table}`" in text.stdout

    as_json = cli("stats", "--json", env=env, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert (data["table"], data["live"], data["expired"]) == (table, 3, 5)
    assert data["table_bytes"] > 0
    assert data["estimated"] == ["table_bytes"]


def test_verbose_stats_says_which_server_what_the_check_found_and_the_cost(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    _fill(server, table, live=2, expired=1)
    env = _env(server, SESSION_TABLE=table)
    quiet = cli("stats", env=env, cwd=tmp_path)
    verbose = cli("-v", "stats", env=env, cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == quiet.stdout and quiet.stderr == ""  # -v adds to stderr only
    version = query(server, "SELECT VERSION()")[0][0]
    lines = verbose.stderr.splitlines()
    assert lines[0] == (
        f"INFO tornado_sessions.cli: connecting to table {table!r} in database "
        f"{server['database']!r} on {server['host']}:{server['port']}"
    )
    assert re.fullmatch(
        rf"INFO tornado_sessions.cli: server {re.escape(version)} \(not a Galera node\); "
        rf"table {re.escape(repr(table))} exists with every column the store needs; "
        r"[\d.]+ ms",
        lines[1],
    ), lines[1]
    assert re.fullmatch(
        r"INFO tornado_sessions.cli: done: \d+ round trips to the server in [\d.]+ ms", lines[-1]
    ), lines[-1]


def test_clear_expired_deletes_only_expired_rows_in_batches(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    _fill(server, table, live=3, expired=7)
    env = _env(server, SESSION_TABLE=table)

    result = cli("clear-expired", "--batch-size", "2", "--progress", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.match(r"deleted 7 expired sessions from table ", result.stdout)
    # The bar was drawn on stderr and reached the total.
    assert "7/7" in result.stderr and "100%" in result.stderr
    assert _count(server, table) == 3
    assert _count(server, table, "expires_at > %s") == 3

    stats = json.loads(cli("stats", "--json", env=env, cwd=tmp_path).stdout)
    assert (stats["live"], stats["expired"]) == (3, 0)

    nothing = cli("clear-expired", env=env, cwd=tmp_path)
    assert nothing.returncode == 0
    assert nothing.stdout.startswith("deleted 0 expired sessions")
    assert nothing.stderr == ""  # not a terminal: no bar unless asked
    assert _count(server, table) == 3


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_clear_expired_rejects_a_bad_batch_size(
    server: dict[str, Any], table: str, tmp_path: Path, value: str
) -> None:
    result = cli("clear-expired", f"--batch-size={value}", env=_env(server), cwd=tmp_path)
    assert result.returncode == 2
    assert "--batch-size" in result.stderr
    assert "Traceback" not in result.stderr


# -- errors: one line, non-zero, no traceback ----------------------------------


@pytest.mark.parametrize("command", ["stats", "clear-expired", "create-table --apply"])
def test_missing_host_names_the_variable(tmp_path: Path, command: str) -> None:
    result = cli(*command.split(), env=_env(), cwd=tmp_path)
    assert_one_line_error(result, "SESSION_HOST is not set")
    assert result.returncode == 2
    # Where it was looked for: the .env a new user may have put elsewhere.
    assert f"in the environment and in {tmp_path / '.env'}, which does not exist" in result.stderr


def test_bad_port_names_the_variable(server: dict[str, Any], tmp_path: Path) -> None:
    result = cli("stats", env=_env(server, SESSION_PORT="abc"), cwd=tmp_path)
    assert_one_line_error(result, "SESSION_PORT", "abc")
    assert result.returncode == 2


def test_unreachable_server_is_one_line(
    secret_password_settings: dict[str, Any], tmp_path: Path
) -> None:
    server = secret_password_settings  # a random password: its absence means something
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("stats", env=_env(server, SESSION_PORT=str(port)), cwd=tmp_path)
    assert_one_line_error(result, f"127.0.0.1:{port}", "2003")
    assert result.returncode == 1
    assert server["password"] not in result.stderr


def test_wrong_password_is_one_line_and_not_echoed(server: dict[str, Any], tmp_path: Path) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    result = cli("clear-expired", env=_env(server, SESSION_PASSWORD=wrong), cwd=tmp_path)
    assert_one_line_error(result, "1045", "SESSION_PASSWORD")
    assert wrong not in result.stderr


def test_create_table_apply_refuses_a_table_of_another_layout(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    conn = connect(server)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{table}` (session_id VARCHAR(128) PRIMARY KEY, data TEXT)")
    finally:
        conn.close()
    result = cli("create-table", "--apply", env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
    assert_one_line_error(result, "lacks the columns", "SESSION_TABLE")
    for name in ("stats", "clear-expired"):
        other = cli(name, env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
        assert_one_line_error(other, "lacks the columns")


def test_missing_table_suggests_create_table(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    result = cli("stats", env=_env(server, SESSION_TABLE=table), cwd=tmp_path)
    assert_one_line_error(result, "1146", "create-table --apply")
    assert not _table_exists(server, table)  # the command did not create it
    # The advice is given once, in the command's own words.
    assert result.stderr.count("does not exist") == 1
    assert result.stderr.count("create it") == 1, result.stderr
    assert "create_table" not in result.stderr  # the library's advice, not the command's
    assert result.stderr.rstrip().endswith(
        f"error 1146: table {table!r} does not exist; create it with: tornado-sessions "
        "create-table --apply"
    )


def test_bad_table_name_is_a_config_error(tmp_path: Path) -> None:
    result = cli("create-table", "--table", "x;drop", env=_env(), cwd=tmp_path)
    assert_one_line_error(result, "SESSION_TABLE")
    assert result.returncode == 2


def test_database_commands_do_not_need_the_secret(
    server: dict[str, Any], table: str, tmp_path: Path
) -> None:
    # A secret that the library would refuse does not stop an operations command.
    env = _env(server, SESSION_TABLE=table, SESSION_SECRET="short")
    result = cli("create-table", "--apply", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _table_exists(server, table)
