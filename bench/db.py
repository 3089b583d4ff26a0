"""The benchmark's database: which server, a connection to it, its statement counters.

`database` picks the server (``--db``): the one the ``SESSION_*`` variables
point at, the local MariaDB through its Unix socket as root (a database and a
user with a fresh random password are made for the run), or a throwaway
MariaDB of its own (tests/mysql/server.py), where statement counts are exact.
`Counters` reads the server-wide ``Com_*`` statement counters.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pymysql

from bench import BenchError

SOCKET = "/run/mysqld/mysqld.sock"
BENCH_DB = "tornado_sessions_bench"
BENCH_USER = "ts_bench"
#: The statement counters read, and the names they are reported under.
COM = {
    "Com_select": "select",
    "Com_insert": "insert",
    "Com_update": "update",
    "Com_delete": "delete",
}


@contextlib.contextmanager
def database(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (description, settings) of the database to use (``--db``)."""
    if kind == "auto":
        if os.environ.get("SESSION_HOST"):
            kind = "env"
        elif os.path.exists(SOCKET) and os.geteuid() == 0:
            kind = "local"
        else:
            kind = "private"
    if kind == "env":
        yield "SESSION_* server", _env_settings()
    elif kind == "local":
        yield "local shared MariaDB (127.0.0.1:3306)", _local_settings()
    elif kind == "private":
        from tests.mysql.server import SHM

        with private_server() as server:
            where = "files in memory" if server.root.startswith(SHM) else "files on disk"
            yield f"private MariaDB (127.0.0.1:{server.port}, {where})", server.settings()
    else:
        raise BenchError(f"unknown --db {kind!r}")


@contextlib.contextmanager
def private_server() -> Iterator[Any]:
    """A throwaway MariaDB (``tests/mysql/server.py``), removed at the end."""
    from tests.mysql.server import MariaDBServer, ServerError

    try:
        server = MariaDBServer()
        server.setup()
    except ServerError as exc:
        raise BenchError(f"could not start a private MariaDB: {exc}") from None
    try:
        yield server
    finally:
        server.cleanup()


def _env_settings() -> dict[str, Any]:
    from tornado_sessions.config import config as env

    host = env("SESSION_HOST", default="")
    if not host:
        raise BenchError("--db env needs SESSION_HOST (and SESSION_PORT, SESSION_USER, ...)")
    return {
        "host": host,
        "port": int(env("SESSION_PORT", default="3306")),
        "user": env("SESSION_USER", default=""),
        "password": env("SESSION_PASSWORD", default=""),
        "database": env("SESSION_DATABASE", default=""),
    }


def _local_settings() -> dict[str, Any]:
    password = secrets.token_urlsafe(18)
    try:
        root = pymysql.connect(unix_socket=SOCKET, user="root", connect_timeout=5)
    except pymysql.err.MySQLError as exc:
        raise BenchError(
            f"cannot log in to the local MariaDB as root through {SOCKET} ({exc}); set "
            "SESSION_HOST, SESSION_PORT, SESSION_USER, SESSION_PASSWORD and SESSION_DATABASE, "
            "or use --db private"
        ) from None
    with root, root.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{BENCH_DB}` CHARACTER SET utf8mb4")
        for host in ("127.0.0.1", "localhost"):
            cur.execute(
                f"CREATE USER IF NOT EXISTS '{BENCH_USER}'@'{host}' IDENTIFIED BY %s",
                (password,),
            )
            cur.execute(f"ALTER USER '{BENCH_USER}'@'{host}' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{BENCH_DB}`.* TO '{BENCH_USER}'@'{host}'")
    return {
        "host": "127.0.0.1",
        "port": 3306,
        "user": BENCH_USER,
        "password": password,
        "database": BENCH_DB,
    }


def connect(settings: dict[str, Any]) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"],
        database=settings["database"],
        autocommit=True,
        connect_timeout=5,
        read_timeout=30,
        init_command="SET SESSION sql_notes=0",
    )


def drop_tables(settings: dict[str, Any], *tables: str) -> None:
    """Start from empty tables (the servers create them again)."""
    with contextlib.closing(connect(settings)) as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS `{table}`")


class Counters:
    """Server-wide statement counters (``SHOW GLOBAL STATUS``), by verb."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.conn = connect(settings)

    def read(self) -> dict[str, int]:
        with self.conn.cursor() as cur:
            names = ", ".join(f"'{n}'" for n in COM)
            cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
            return {COM[name]: int(value) for name, value in cur.fetchall()}

    def close(self) -> None:
        self.conn.close()


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {verb: after[verb] - before[verb] for verb in COM.values()}
