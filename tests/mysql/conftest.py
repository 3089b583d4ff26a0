"""Fixtures for the MySQL store tests: a real MariaDB, never mocked.

Which server:

* ``mysql_settings`` (used by most tests): the server the
  ``TEST_SESSION_HOST``, ``TEST_SESSION_PORT``, ``TEST_SESSION_USER``,
  ``TEST_SESSION_PASSWORD`` and ``TEST_SESSION_DATABASE`` variables point at,
  if ``TEST_SESSION_HOST`` is set and the server answers; otherwise a private
  MariaDB started for the test run.  They are read from the environment
  only: the application's own ``SESSION_*`` settings (the environment and
  ``.env``) are never used by the suite (tests/conftest.py removes them).
* ``private_server``: always the private server (statement counting needs a
  server no one else talks to).  The outage tests start one of their own.
* ``secret_password_settings``: a user of its own with a long random
  password, on the ``mysql_settings`` server (or the private one if that
  user cannot be created there), for the tests that check a password never
  appears in a message: a password that can occur by chance (``tornado``
  in ``tornado_sessions``; an empty one in anything) proves nothing.

If no server can be reached or started the tests fail with a message that
says what to do; they are never skipped.

Each test gets a table of its own (``table`` fixture), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pymysql
import pytest
import tornado.ioloop

from tests.conftest import SECRET, TEST_DRIVER, FakeClock
from tests.mysql.server import MariaDBServer, running_server
from tornado_sessions import SessionConfig
from tornado_sessions.stores.mysql import MySQLStore, driver
from tornado_sessions.stores.mysql.batching import WRITE_BATCH

Settings = dict[str, Any]


def connect(settings: Settings, **extra: Any) -> pymysql.connections.Connection[Any]:
    """A plain (sync) PyMySQL connection for checks made by the tests."""
    return pymysql.connect(
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"],
        database=settings["database"],
        autocommit=True,
        charset="utf8mb4",
        connect_timeout=5,
        read_timeout=30,
        write_timeout=30,
        init_command="SET SESSION sql_notes=0",
        **extra,
    )


def lock_all_rows(settings: Settings, table: str) -> pymysql.connections.Connection[Any]:
    """Another client holding every row of ``table`` (a long transaction):
    ``rollback()`` and ``close()`` it to let go."""
    blocker = connect(settings)
    with blocker.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"SELECT id FROM `{table}` FOR UPDATE")
    return blocker


def session_config(settings: Settings, **fields: Any) -> SessionConfig:
    """A `SessionConfig` on the test server ``settings`` name (``fields``
    added), as an application would build from its ``SESSION_*`` variables."""
    return SessionConfig(
        secret=SECRET,
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"],
        database=settings["database"],
        **fields,
    )


def query(settings: Settings, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on a fresh connection and return its rows."""
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _env_settings() -> Settings | None:
    host = os.environ.get("TEST_SESSION_HOST", "")
    if not host:
        return None
    return {
        "host": host,
        "port": int(os.environ.get("TEST_SESSION_PORT") or "3306"),
        "user": os.environ.get("TEST_SESSION_USER", ""),
        "password": os.environ.get("TEST_SESSION_PASSWORD", ""),
        "database": os.environ.get("TEST_SESSION_DATABASE", ""),
    }


@pytest.fixture(scope="session")
def private_server() -> Iterator[MariaDBServer]:
    """A MariaDB of our own (fresh data directory, free port), for the run."""
    with running_server("for the tests") as server:
        yield server


@pytest.fixture(scope="session")
def mysql_settings(request: pytest.FixtureRequest) -> Settings:
    """Connection settings: TEST_SESSION_* if that server answers, else the private one."""
    settings = _env_settings()
    if settings is not None:
        try:
            connect(settings).close()
        except pymysql.err.MySQLError as exc:
            print(
                f"TEST_SESSION_HOST={settings['host']}:{settings['port']} does not answer "
                f"({exc}); "
                "using a private MariaDB"
            )
        else:
            return settings
    server: MariaDBServer = request.getfixturevalue("private_server")
    return server.settings()


@pytest.fixture(scope="session")
def private_settings(private_server: MariaDBServer) -> Settings:
    return private_server.settings()


@pytest.fixture(scope="session")
def secret_password_settings(
    mysql_settings: Settings, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings of a user of the run's own, with a random 32-character
    password, on the ``mysql_settings`` server and database; on the private
    server if that server's user may not create users.  Dropped at the end."""
    user = "ts_secret_" + secrets.token_hex(4)
    password = "Pw" + secrets.token_urlsafe(24)  # cannot occur in a message by chance
    created: list[str] = []
    settings = mysql_settings
    try:
        for host in ("localhost", "127.0.0.1", "%"):
            quoted = host.replace("%", "%%")  # a statement with arguments is %-formatted
            query(settings, f"CREATE USER '{user}'@'{quoted}' IDENTIFIED BY %s", (password,))
            created.append(host)
            query(
                settings, f"GRANT ALL PRIVILEGES ON `{settings['database']}`.* TO '{user}'@'{host}'"
            )
    except BaseException as exc:
        for host in created:
            query(settings, f"DROP USER IF EXISTS '{user}'@'{host}'")
        if not isinstance(exc, pymysql.err.MySQLError):
            raise
        print(f"cannot create a user on {settings['host']} ({exc}); using the private MariaDB")
        server: MariaDBServer = request.getfixturevalue("private_server")
        yield server.settings()  # its user's password is random too
        return
    try:
        yield {**settings, "user": user, "password": password}
    finally:
        for host in created:
            query(settings, f"DROP USER IF EXISTS '{user}'@'{host}'")


def new_table_name() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def private_table(private_settings: Settings) -> Iterator[str]:
    """A table name of the test's own on the private server, dropped at the end."""
    name = new_table_name()
    yield name
    query(private_settings, f"DROP TABLE IF EXISTS `{name}`")


async def create_pool(settings: Settings, maxsize: int, **options: Any) -> Any:
    """An application's own pool on ``settings`` (for ``pool=``), made by
    the run's driver (``TEST_SESSION_DB_DRIVER``) with its own ``create_pool``."""
    module: Any = __import__(TEST_DRIVER)
    return await module.create_pool(
        minsize=0,
        maxsize=maxsize,
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"],
        db=settings["database"],
        **options,
    )


async def pool_serves(pool: Any) -> bool:
    """Whether ``pool`` still hands out a working connection (a closed pool
    refuses with RuntimeError, on both drivers)."""
    try:
        async with asyncio.timeout(10):
            conn = await pool.acquire()
    except RuntimeError:
        return False
    try:
        cur = conn.cursor()
        cur = await cur if asyncio.iscoroutine(cur) else cur
        await cur.execute("SELECT 1")
        return bool(await cur.fetchone() == (1,))
    finally:
        pool.release(conn)


def driver_error() -> type[Exception]:
    """The base error class of the run's driver."""
    return driver.load(TEST_DRIVER).Error


def _running(admin: pymysql.connections.Connection[Any], like: str) -> list[int]:
    """The ids of the other connections running a statement that matches
    the SQL ``LIKE`` pattern."""
    with admin.cursor() as cur:
        cur.execute(
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
            (like,),
        )
        return [int(row[0]) for row in cur.fetchall()]


async def running_statement(admin: pymysql.connections.Connection[Any], like: str) -> int:
    """Wait (up to 20 s) until a statement matching the SQL ``LIKE`` pattern
    runs on another connection; return that connection's id."""
    async with asyncio.timeout(20):
        while not (found := _running(admin, like)):
            await asyncio.sleep(0.02)
    return found[0]


async def no_statement_running(settings: Settings, like: str) -> None:
    """Wait (up to 20 s) until no statement matching the SQL ``LIKE``
    pattern runs on the server (one the store gave up on may still run)."""
    admin = connect(settings)
    try:
        async with asyncio.timeout(20):
            while _running(admin, like):
                await asyncio.sleep(0.02)
    finally:
        admin.close()


@pytest.fixture
def table(mysql_settings: Settings) -> Iterator[str]:
    """A table name of the test's own, dropped at the end."""
    name = new_table_name()
    yield name
    query(mysql_settings, f"DROP TABLE IF EXISTS `{name}`")


def make_store(
    io_loop: tornado.ioloop.IOLoop, settings: Settings, **options: Any
) -> Iterator[MySQLStore]:
    """Build, open and finally close a store on the test's loop."""
    options.setdefault("cleanup_interval", None)
    store = MySQLStore(**settings, **options)
    io_loop.run_sync(store.open, timeout=30)
    try:
        yield store
    finally:
        io_loop.run_sync(store.close, timeout=30)


def batches_as_on_aiomysql(store: MySQLStore) -> None:
    """Give ``store`` aiomysql's floor of saves per batch (8) on either
    driver, for a test whose bursts are shaped for it: asyncmy's floor of 2
    splits a small burst in two (tests/mysql/test_coalescing.py checks
    each driver's floor)."""
    store._batches.floor = WRITE_BATCH


@pytest.fixture
def store(
    io_loop: tornado.ioloop.IOLoop, mysql_settings: Settings, table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    """An opened MySQLStore on an empty table of its own (overrides the
    conftest's store, so the conftest's ``app`` and ``browser`` use MySQL)."""
    yield from make_store(io_loop, mysql_settings, table=table, clock=clock)


# -- counting statements at the server ------------------------------------------


class Statements:
    """The statements the server received on one table during a block."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        #: ``(command, text)`` of each: ``"Query"``, ``"Execute"`` (a
        #: prepared statement run) or ``"Prepare"`` (not in `statements`).
        self.commands: list[tuple[str, str]] = []

    @property
    def counts(self) -> dict[str, int]:
        """``{"SELECT": n, "UPDATE": n, ...}`` (verbs with no statement are absent)."""
        return dict(collections.Counter(s.split(None, 1)[0].upper() for s in self.statements))

    def __repr__(self) -> str:
        return f"Statements({self.statements!r})"


class StatementCounter:
    """Counts statements at the server through its general query log
    (queries, and executions of prepared statements, with their values, as
    the log shows them; a statement's preparation is not counted).

    Works on a server no one else uses (the private one): the log is
    switched on for the block, and the statements naming the table are
    collected afterwards, excluding the counter's own connection::

        with counter.count("sessions") as seen:
            await http_client.fetch(...)
        assert seen.counts == {"SELECT": 1}
    """

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server

    @contextlib.contextmanager
    def count(self, table: str) -> Iterator[Statements]:
        seen = Statements()
        conn = self.server.admin()
        try:
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL general_log = 0")
                cur.execute("TRUNCATE TABLE mysql.general_log")
                cur.execute("SET GLOBAL general_log = 1")
            yield seen
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL general_log = 0")
                cur.execute(
                    "SELECT command_type, argument FROM mysql.general_log "
                    "WHERE command_type IN ('Query', 'Execute', 'Prepare') "
                    "AND thread_id <> CONNECTION_ID() ORDER BY event_time"
                )
                needle = re.compile(rf"`{re.escape(table)}`")
                for command, argument in cur.fetchall():
                    text = (
                        argument.decode("utf-8", "replace")
                        if isinstance(argument, bytes)
                        else str(argument)
                    )
                    if needle.search(text):
                        seen.commands.append((str(command), text))
                        if command != "Prepare":
                            seen.statements.append(text)
        finally:
            conn.close()


@pytest.fixture
def count_statements(private_server: MariaDBServer) -> Callable[[str], Any]:
    """``with count_statements(table) as seen: ...`` then ``seen.counts``
    (the private server only)."""
    return StatementCounter(private_server).count


async def new_sessions(store: MySQLStore, clock: FakeClock, count: int) -> list[str]:
    """``count`` new sessions in ``store``, session ``k`` holding ``{"k": k}``."""
    from tests.contract import record
    from tornado_sessions.manager import new_sid

    sids = [new_sid() for _ in range(count)]
    for k, sid in enumerate(sids):
        assert await store.set(sid, record(clock, f'{{"k":{k}}}'), expected_version=None) == 1
    return sids


def versions(settings: Settings, table: str, sids: Iterable[str]) -> dict[str, tuple[str, int]]:
    """``{hex key: (data, version)}`` of every row, the data of the sessions
    ``sids`` opened (each must be sealed: see `tests.conftest.unseal`)."""
    from tests.conftest import unseal
    from tornado_sessions.stores.base import hash_sid

    by_key = {hash_sid(sid).hex(): sid for sid in sids}
    found = query(settings, f"SELECT LOWER(HEX(id)), data, version FROM `{table}`")
    return {
        key: (unseal(by_key[key], data) if key in by_key else data, version)
        for key, data, version in found
    }
