"""Connections to the server: the pool, one round trip, the retry policy and
the error messages.

`Connections` makes the store's own aiomysql pool (or checks one the
application passes in), runs each round trip on a pooled connection within
one timeout, retries what is safe to retry, and turns every failure into a
`.StoreError` whose message names the host, port, database, user, table and
error code with a hint of what to check, never the password or a session id.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiomysql
import pymysql
from pymysql.constants import CLIENT

from ...errors import ConfigError, StoreError

__all__ = ["LOST", "Connections", "NoAnswer", "Result", "code_of", "message_of"]

log = logging.getLogger("tornado_sessions.stores.mysql")

_T = TypeVar("_T")

#: Error codes meaning the connection was lost: retried once on a fresh one.
#: 2003 can't connect, 2006 gone away, 2013 lost during query, 4031 idle
#: disconnect (MySQL 8.0.24+), 0 aiomysql's "not connected".
LOST = frozenset({0, 2003, 2006, 2013, 4031})
DEADLOCK = 1213
DUPLICATE = 1062
_DEADLOCK_RETRIES = 2
#: Connection character sets whose encoding keeps every value intact and
#: cannot swallow a quoting backslash (unlike GBK, SJIS, BIG5...).
SAFE_CHARSETS = frozenset({"utf8mb4", "utf8", "utf8mb3"})

HINTS: dict[int, str] = {
    0: "the connection was closed; check that the server is up",
    1040: "the server has too many connections: lower SESSION_POOL_SIZE or raise max_connections",
    1044: "the user has no rights on the database: GRANT SELECT, INSERT, UPDATE, DELETE, "
    "CREATE, ALTER ON <database>.* TO <user>",
    1045: "the server refused the login: check SESSION_USER and SESSION_PASSWORD",
    1049: "the database does not exist: create it, or fix SESSION_DATABASE",
    1142: "the user lacks a privilege on the table: GRANT SELECT, INSERT, UPDATE, DELETE, "
    "CREATE, ALTER ON <database>.* TO <user>",
    1146: "the table does not exist: create it (python -m tornado_sessions create-table --apply; "
    "MySQLStore.create_table_sql() prints the DDL) or let the store create it (create_table=True)",
    1205: "a lock wait timed out: another transaction holds the session row for too long",
    1213: "deadlocks kept happening after retries: check for long transactions on the table",
    1366: "the server refused a value: is the connection's character set utf8mb4?",
    2002: "the server socket is not reachable: is the server running?",
    2003: "the server is not reachable: is it running and listening on this host and port "
    "(SESSION_HOST, SESSION_PORT)?",
    2006: "the server closed the connection (restart, wait_timeout, max_allowed_packet): "
    "check its log and uptime",
    2013: "the connection was lost during a query (server restart, crash or network): "
    "check the server's log",
    4031: "the server closed an idle connection (wait_timeout): pool_recycle should be below it",
}


class NoAnswer(StoreError):
    """A round trip got no answer within the timeout (the server may still
    have applied it)."""


class Duplicate(Exception):
    """An INSERT hit an existing key (internal)."""

    def __init__(self, retried: bool) -> None:
        super().__init__("duplicate key")
        self.retried = retried


@dataclass(slots=True)
class Result:
    rowcount: int = 0
    rows: Sequence[tuple[Any, ...]] = field(default_factory=tuple)
    #: The statement was sent again after a lost connection: the first
    #: attempt may have been applied.
    retried: bool = False


def code_of(exc: BaseException) -> int:
    """The server's (or the driver's) error code of ``exc`` (0 if none)."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return 0


def message_of(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2:
        return str(args[1])
    return str(exc) or type(exc).__name__


class Connections:
    """The pool and every round trip of one `.MySQLStore`.

    :param pool: an application's aiomysql pool (never closed here), or
        None to make one from the other arguments on first use.
    :param label: the table, for messages.
    """

    def __init__(
        self,
        *,
        host: str | None,
        port: int,
        user: str | None,
        password: str,
        database: str | None,
        unix_socket: str | None,
        pool: aiomysql.Pool | None,
        pool_size: int,
        timeout: float,
        pool_recycle: int,
        label: str,
    ) -> None:
        if pool is not None:
            kwargs: dict[str, Any] = getattr(pool, "_conn_kwargs", {}) or {}
            host = host or kwargs.get("host")
            port = kwargs.get("port", port)
            user = user or kwargs.get("user")
            database = database or kwargs.get("db")
            unix_socket = unix_socket or kwargs.get("unix_socket")
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.unix_socket = unix_socket
        self._password = password
        self.timeout = float(timeout)
        self.pool_size = pool_size
        self.pool_recycle = pool_recycle
        self.label = label
        self._pool: aiomysql.Pool | None = pool
        self.own_pool = pool is None
        self.closed = False
        #: Several statements may be sent in one query (aiomysql asks for it
        #: on its connections; a pool passed in is checked at first use).
        self.multi = pool is None
        #: Queries sent to the server so far (a coalesced batch counts once).
        self.round_trips = 0

    # -- messages --------------------------------------------------------------

    def where(self) -> str:
        if self.unix_socket and not self.host:
            target = f"socket {self.unix_socket}"
        else:
            target = f"{self.host}:{self.port}"
        return (
            f"MySQL {target}, database {self.database!r}, user {self.user!r}, table {self.label!r}"
        )

    def error(self, doing: str, code: int | None, detail: str) -> StoreError:
        hint = HINTS.get(code or -1, "check the server's error log")
        label = f"error {code}" if code is not None else "timeout"
        return StoreError(
            f"Session store failed {doing} ({self.where()}): {label}: {detail}; {hint}"
        )

    # -- the pool --------------------------------------------------------------

    async def pool(self) -> aiomysql.Pool:
        if self.closed:
            raise StoreError(f"the session store is closed ({self.where()})")
        if self._pool is None:
            # minsize=0: creating the pool opens no connection, so it cannot
            # fail; connections are made (and re-made after an outage) on use.
            self._pool = await aiomysql.create_pool(
                minsize=0,
                maxsize=self.pool_size,
                pool_recycle=self.pool_recycle,
                host=self.host or "localhost",
                port=self.port,
                user=self.user,
                password=self._password,
                db=self.database,
                unix_socket=self.unix_socket,
                autocommit=True,
                charset="utf8mb4",
                connect_timeout=self.timeout,
                client_flag=CLIENT.FOUND_ROWS,
                init_command=(
                    "SET SESSION sql_notes=0, innodb_lock_wait_timeout="
                    f"{max(1, math.ceil(self.timeout))}"
                ),
            )
        return self._pool

    async def check_given_pool(self) -> None:
        """Check a pool the application passed in: autocommit, found rows,
        and a character set that keeps values intact."""

        async def check(conn: Any) -> tuple[str, ...]:
            cur = await conn.cursor()
            await cur.execute("SELECT @@character_set_client, @@character_set_connection")
            row = await cur.fetchone()
            await cur.close()
            return tuple(text_of(value).lower() for value in row)

        async with _Acquire(self, "checking the pool") as conn:
            if not conn.get_autocommit() or not (conn.client_flag & CLIENT.FOUND_ROWS):
                raise ConfigError(
                    "the aiomysql pool given to MySQLStore must be created with autocommit=True "
                    "and client_flag=pymysql.constants.CLIENT.FOUND_ROWS "
                    "(see MySQLStore.pool_options())"
                )
            client_side = str(getattr(conn, "charset", "") or "").lower()
            if client_side not in SAFE_CHARSETS:
                raise _charset_error(client_side)
            self.multi = bool(conn.client_flag & CLIENT.MULTI_STATEMENTS)
        server_side = await self.on_connection("checking the pool", check)
        for charset in server_side:
            if charset not in SAFE_CHARSETS:
                raise _charset_error(charset)

    async def close(self) -> None:
        self.closed = True
        pool, self._pool = self._pool, None
        if pool is not None and self.own_pool:
            pool.close()
            try:
                async with asyncio.timeout(self.timeout):
                    await pool.wait_closed()
            except TimeoutError:
                log.warning("Closing the session store's pool timed out; terminating it")
                pool.terminate()

    # -- round trips -----------------------------------------------------------

    def _acquire_timeout(self, doing: str, pool: aiomysql.Pool) -> StoreError:
        return self.error(
            doing,
            None,
            f"no database connection within {self.timeout:g} s (SESSION_DB_TIMEOUT): "
            f"all {pool.maxsize} pool connections are busy (SESSION_POOL_SIZE) or the "
            "server does not answer",
        )

    async def on_connection(
        self,
        doing: str,
        run: Callable[[Any], Awaitable[_T]],
        *,
        keep_after_server_error: bool = True,
    ) -> _T:
        """Run ``await run(conn)`` (one round trip) on a pooled connection,
        within one timeout for the wait for the connection and the work.

        :raises NoAnswer: the work got no answer in time.
        :raises StoreError: no connection in time, or the pool is closing.
        """
        pool = await self.pool()
        conn: Any = None
        try:
            async with asyncio.timeout(self.timeout):
                conn = await pool.acquire()
                self.round_trips += 1
                return await run(conn)
        except BaseException as exc:
            if conn is None:
                if isinstance(exc, TimeoutError):
                    raise self._acquire_timeout(doing, pool) from None
                if isinstance(exc, RuntimeError):  # the pool is closing
                    raise self.error(doing, None, str(exc)) from None
                raise
            # Work that did not end with a server error leaves the connection
            # in an unknown state: never give it back.
            if (
                not keep_after_server_error
                or not isinstance(exc, pymysql.err.MySQLError)
                or code_of(exc) in LOST
            ):
                conn.close()
            if isinstance(exc, TimeoutError):
                message = str(
                    self.error(
                        doing,
                        None,
                        f"no answer within {self.timeout:g} s (SESSION_DB_TIMEOUT); the server "
                        "is overloaded, a lock is held, or the network is down",
                    )
                )
                raise NoAnswer(message) from None
            raise
        finally:
            if conn is not None:
                release(pool, conn)

    async def once(self, doing: str, sql: str, args: Sequence[Any], fetch: bool) -> Result:
        async def run(conn: Any) -> Result:
            cur = await conn.cursor()
            await cur.execute(sql, tuple(args))
            rows: Sequence[tuple[Any, ...]] = await cur.fetchall() if fetch else ()
            rowcount = cur.rowcount
            await cur.close()
            return Result(rowcount=rowcount, rows=rows)

        return await self.on_connection(doing, run)

    async def execute(
        self, doing: str, sql: str, args: Sequence[Any] = (), *, fetch: bool = False
    ) -> Result:
        """Run one statement with the retry policy (a lost connection once,
        a deadlock twice); raise `.StoreError` (or `Duplicate`)."""
        lost = deadlocks = 0
        while True:
            try:
                result = await self.once(doing, sql, args, fetch)
                result.retried = lost > 0
                return result
            except pymysql.err.MySQLError as exc:
                code = code_of(exc)
                if code == DUPLICATE:
                    raise Duplicate(retried=lost > 0) from None
                if code in LOST and lost == 0:
                    lost += 1
                    log.warning(
                        "Session store lost its connection %s (error %s, %s); retrying once",
                        doing,
                        code,
                        self.where(),
                    )
                    continue
                if code == DEADLOCK and deadlocks < _DEADLOCK_RETRIES:
                    deadlocks += 1
                    await asyncio.sleep(random.uniform(0.005, 0.05) * deadlocks)
                    continue
                raise self.error(doing, code, message_of(exc)) from None
            except OSError as exc:
                raise self.error(doing, None, f"{type(exc).__name__}: {exc}") from None


def _charset_error(charset: str) -> ConfigError:
    return ConfigError(
        f"the aiomysql pool given to MySQLStore uses the character set {charset or 'unknown'!r}; "
        "session data needs utf8mb4 (utf8/utf8mb3 are accepted): create the pool with "
        'charset="utf8mb4" and no SET NAMES of another set (see MySQLStore.pool_options())'
    )


class _Acquire:
    """``async with``: a pooled connection, acquired within the timeout."""

    def __init__(self, connections: Connections, doing: str) -> None:
        self._connections = connections
        self._doing = doing
        self._pool: aiomysql.Pool | None = None
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        owner = self._connections
        pool = await owner.pool()
        try:
            async with asyncio.timeout(owner.timeout):
                conn = await pool.acquire()
        except TimeoutError:
            raise owner._acquire_timeout(self._doing, pool) from None
        except RuntimeError as exc:  # the pool is closing
            raise owner.error(self._doing, None, str(exc)) from None
        self._pool = pool
        self._conn = conn
        return conn

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pool is not None and self._conn is not None:
            release(self._pool, self._conn)


def release(pool: aiomysql.Pool, conn: Any) -> None:
    pool.release(conn)
    if conn.closed:
        # aiomysql does not wake the tasks waiting for a free connection
        # when a closed one comes back, so they would wait until their
        # timeout although the pool has room for a new connection.
        wakeup = getattr(pool, "_wakeup", None)
        if wakeup is not None:
            background(wakeup())


_BACKGROUND: set[asyncio.Future[Any]] = set()


def background(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` as a task that is kept alive until it ends."""
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def text_of(value: Any) -> str:
    """``value`` as text: information_schema and system variables answer
    bytes on some servers and versions."""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
