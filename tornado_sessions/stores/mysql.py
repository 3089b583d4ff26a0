"""`MySQLStore`: sessions in a MySQL or MariaDB table, through aiomysql.

One row per session, keyed by `.hash_sid` of the id (``BINARY(32)``), with
the data as JSON text, the times as whole seconds, a version for optimistic
concurrency and the user id (indexed, for "log out everywhere").  Every
store call is one statement on the happy path:

=================  ============================================================
call               statement
=================  ============================================================
``get``            ``SELECT ... WHERE id = ? AND expires_at > ?``
``set`` (new)      ``INSERT`` (a duplicate id raises `.SessionExists`)
``set`` (update)   ``UPDATE ... WHERE id = ? AND version = ? AND expires_at > ?``
``touch``          ``UPDATE ... SET expires_at, updated_at WHERE id = ? AND expires_at > ?``
``destroy``        ``DELETE ... WHERE id = ?``
=================  ============================================================

Under load, the loads that concurrent requests start in the same turn of
the event loop share one ``SELECT ... WHERE id IN (...)``, and their saves
one ``START TRANSACTION; UPDATE ...; ...; COMMIT`` round trip (see
``coalesce_reads`` and ``coalesce_writes``); a call alone sends its single
statement.

A session that is gone is never recreated by an update (no upsert), so a
concurrent logout wins.  Expired rows are removed in batches on the
``expires_at`` index by a background task and by `MySQLStore.clear_expired`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiomysql
import pymysql
from pymysql.constants import CLIENT

from ..errors import ConfigError, SessionConflict, SessionExists, SessionGone, StoreError
from .base import SessionInfo, SessionRecord, SessionStore, hash_sid

if TYPE_CHECKING:
    from ..config import SessionConfig

__all__ = ["MySQLStore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{12}$")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
#: The columns the store reads and writes (checked once, at first use).
_COLUMNS = (
    "id",
    "data",
    "created_at",
    "updated_at",
    "expires_at",
    "version",
    "user_id",
    "ip",
    "user_agent",
)

#: Error codes meaning the connection was lost: retried once on a fresh one.
#: 2003 can't connect, 2006 gone away, 2013 lost during query, 4031 idle
#: disconnect (MySQL 8.0.24+), 0 aiomysql's "not connected".
_LOST = frozenset({0, 2003, 2006, 2013, 4031})
_DEADLOCK = 1213
_DUPLICATE = 1062
_DEADLOCK_RETRIES = 2
#: The most session reads (or saves) one coalesced round trip carries, and
#: the most characters of session data one batch of saves sends.
_BATCH = 64
_BATCH_CHARS = 1 << 20
#: What a coalescing waiter gets when its batch holds only itself.
_ALONE: Any = object()

_HINTS: dict[int, str] = {
    0: "the connection was closed; check that the server is up",
    1040: "the server has too many connections: lower SESSION_POOL_SIZE or raise max_connections",
    1044: "the user has no rights on the database: GRANT SELECT, INSERT, UPDATE, DELETE, "
    "CREATE ON <database>.* TO <user>",
    1045: "the server refused the login: check SESSION_USER and SESSION_PASSWORD",
    1049: "the database does not exist: create it, or fix SESSION_DATABASE",
    1142: "the user lacks a privilege on the table: GRANT SELECT, INSERT, UPDATE, DELETE, "
    "CREATE ON <database>.* TO <user>",
    1146: "the table does not exist: create it (MySQLStore.create_table_sql() prints the DDL) "
    "or let the store create it (create_table=True)",
    1205: "a lock wait timed out: another transaction holds the session row for too long",
    1213: "deadlocks kept happening after retries: check for long transactions on the table",
    2002: "the server socket is not reachable: is the server running?",
    2003: "the server is not reachable: is it running and listening on this host and port "
    "(SESSION_HOST, SESSION_PORT)?",
    2006: "the server closed the connection (restart, wait_timeout, max_allowed_packet): "
    "check its log and uptime",
    2013: "the connection was lost during a query (server restart, crash or network): "
    "check the server's log",
    4031: "the server closed an idle connection (wait_timeout): pool_recycle should be below it",
}


class _Duplicate(Exception):
    """An INSERT hit an existing key (internal)."""

    def __init__(self, retried: bool) -> None:
        super().__init__("duplicate key")
        self.retried = retried


@dataclass(slots=True)
class _Result:
    rowcount: int = 0
    rows: Sequence[tuple[Any, ...]] = field(default_factory=tuple)
    #: The statement was sent again after a lost connection: the first
    #: attempt may have been applied.
    retried: bool = False


def _check_table(table: str) -> str:
    if not isinstance(table, str) or not _TABLE_NAME.match(table):
        raise ConfigError(
            f"table name {table!r} is not accepted (SESSION_TABLE): use 1 to 64 letters, "
            "digits and underscores"
        )
    return table


class MySQLStore(SessionStore):
    """Keeps sessions in a MySQL (5.7+, 8) or MariaDB (10.5+) table.

    Give it connection settings and it makes its own aiomysql pool (created
    on `open` or first use, with ``autocommit``, ``utf8mb4``,
    ``pool_recycle`` and timeouts), or give it an existing ``pool`` created
    with ``autocommit=True`` and ``client_flag=pymysql.constants.CLIENT.FOUND_ROWS``
    (see `pool_options`); a pool passed in is never closed by the store.
    The usual way is `from_config`::

        store = MySQLStore.from_config(SessionConfig.from_env())
        await store.open()  # optional: fail at startup if the database is unreachable

    Every wait (a pool slot, a connection, a statement) is bounded by
    ``timeout``; a lost connection is retried once on a fresh one and a
    deadlock twice, and anything else raises `.StoreError`, whose message
    names the host, port, database, user, table and error code, never the
    password or a session id.  Once the database is back, the next call
    works again without a restart.

    :param host: server host name or address.
    :param port: server TCP port.
    :param user: user name.
    :param password: password (never logged).
    :param database: database (schema) holding the table.
    :param table: table name (letters, digits and underscores).
    :param pool: an existing aiomysql pool to use instead of making one.
    :param create_table: create the table if it is missing, at first use
        (either way, an existing table's columns are checked then).
    :param pool_size: the most connections the store's own pool opens.
    :param timeout: seconds to wait for a pool slot, a connection or a
        statement before failing with `.StoreError`.
    :param cleanup_interval: seconds between background deletions of
        expired rows (jittered), or None to leave it to `clear_expired`.
    :param cleanup_batch: rows deleted per statement when cleaning up.
    :param pool_recycle: seconds after which an idle connection is replaced;
        keep it below the server's ``wait_timeout``.
    :param unix_socket: connect through this Unix socket instead of TCP.
    :param clock: returns the current time in seconds; tests inject their own.
    :param coalesce_reads: answer the session reads that concurrent requests
        start in the same turn of the event loop with one
        ``SELECT ... WHERE id IN (...)`` (up to 64 ids) instead of one
        statement each.  A read alone is still one ``SELECT ... WHERE id = ?``,
        and every read sees every save that finished before it started.
    :param coalesce_writes: send the saves of existing sessions that
        concurrent requests start in the same turn as one multi-statement
        transaction (``START TRANSACTION; UPDATE ...; COMMIT``, up to 64
        updates and 1 MiB), each caller getting its own outcome.  Turn it off
        on servers or proxies that refuse multi-statement queries.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int = 3306,
        user: str | None = None,
        password: str = "",
        database: str | None = None,
        table: str = "sessions",
        pool: aiomysql.Pool | None = None,
        create_table: bool = True,
        pool_size: int = 10,
        timeout: float = 5.0,
        cleanup_interval: float | None = 900.0,
        cleanup_batch: int = 1000,
        pool_recycle: int = 3600,
        unix_socket: str | None = None,
        clock: Callable[[], float] = time.time,
        coalesce_reads: bool = True,
        coalesce_writes: bool = True,
    ) -> None:
        super().__init__(clock=clock)
        self.table = _check_table(table)
        if pool is None and (not database or not (host or unix_socket)):
            raise ConfigError(
                "MySQLStore needs a database and a host (SESSION_DATABASE, SESSION_HOST), "
                "or an existing pool"
            )
        if not (timeout > 0):
            raise ConfigError(f"MySQLStore timeout must be a positive number, not {timeout!r}")
        if cleanup_batch < 1 or pool_size < 1:
            raise ConfigError("MySQLStore cleanup_batch and pool_size must be at least 1")
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
        self.cleanup_interval = cleanup_interval
        self.cleanup_batch = cleanup_batch
        self._create_table = create_table
        self._pool: aiomysql.Pool | None = pool
        self._own_pool = pool is None
        self._ready = False
        self._ready_lock: asyncio.Lock | None = None
        self._cleanup_task: asyncio.Task[None] | None = None
        self._closed = False
        self._t = f"`{self.table}`"
        self.coalesce_reads = coalesce_reads
        self.coalesce_writes = coalesce_writes
        self._reads: list[tuple[str, asyncio.Future[Any]]] = []
        self._writes: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        # Saves are coalesced only on connections that accept several
        # statements in one query (aiomysql asks for it on every connection;
        # a given pool is checked at first use).
        self._multi = pool is None
        #: Queries sent to the server so far (a coalesced batch counts once):
        #: for monitoring, and for the benchmark's round trips per request.
        self.round_trips = 0
        self._update_sql = (
            f"UPDATE {self._t} SET data = %s, updated_at = %s, expires_at = %s, version = %s, "
            "user_id = %s, ip = %s, user_agent = %s "
            "WHERE id = UNHEX(%s) AND version = %s AND expires_at > %s"
        )

    @classmethod
    def from_config(cls, config: SessionConfig, **options: Any) -> MySQLStore:
        """Make a store from a `.SessionConfig` (``SESSION_HOST``, ``SESSION_PORT``,
        ``SESSION_USER``, ``SESSION_PASSWORD``, ``SESSION_DATABASE``,
        ``SESSION_TABLE``, ``SESSION_POOL_SIZE``, ``SESSION_DB_TIMEOUT``).

        :param options: other `MySQLStore` arguments (they win over the config).
        :raises ConfigError: if the host, user or database is not set.

        .. versionadded:: 0.1
        """
        missing = [
            name
            for name, value in (
                ("SESSION_HOST", config.host),
                ("SESSION_USER", config.user),
                ("SESSION_DATABASE", config.database),
            )
            if not value
        ]
        if missing and "pool" not in options:
            raise ConfigError(
                f"MySQLStore needs {', '.join(missing)}: set them in the environment or .env "
                "(SESSION_PASSWORD too, if the user has one)"
            )
        values: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "password": config.password,
            "database": config.database,
            "table": config.table,
            "pool_size": config.pool_size,
            "timeout": config.db_timeout,
            "clock": config.clock,
        }
        values.update(options)
        return cls(**values)

    # -- schema ----------------------------------------------------------------

    @staticmethod
    def create_table_sql(table: str = "sessions") -> str:
        """Return the ``CREATE TABLE IF NOT EXISTS`` statement for ``table``.

        The data is JSON *text* (``MEDIUMTEXT``, up to 16 MB, binary
        collation), not a ``JSON`` column, which MySQL would reformat.

        .. versionadded:: 0.1
        """
        name = _check_table(table)
        return (
            f"CREATE TABLE IF NOT EXISTS `{name}` (\n"
            "  `id` BINARY(32) NOT NULL,\n"
            "  `data` MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n"
            "  `created_at` BIGINT NOT NULL,\n"
            "  `updated_at` BIGINT NOT NULL,\n"
            "  `expires_at` BIGINT NOT NULL,\n"
            "  `version` INT UNSIGNED NOT NULL,\n"
            "  `user_id` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,\n"
            "  `ip` VARCHAR(45) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,\n"
            "  `user_agent` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,\n"
            "  PRIMARY KEY (`id`),\n"
            f"  KEY `{name}_expires_at` (`expires_at`),\n"
            f"  KEY `{name}_user_id` (`user_id`)\n"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )

    @staticmethod
    def pool_options() -> dict[str, Any]:
        """Return the connection options a pool passed as ``pool`` must have.

        Use them with ``aiomysql.create_pool(**MySQLStore.pool_options(), ...)``.

        .. versionadded:: 0.1
        """
        return {
            "autocommit": True,
            "charset": "utf8mb4",
            "client_flag": CLIENT.FOUND_ROWS,
            "init_command": "SET SESSION sql_notes=0",
        }

    async def create_table(self) -> None:
        """Create the table if it does not exist (one ``CREATE TABLE``).

        .. versionadded:: 0.1
        """
        await self._execute("creating the table", self.create_table_sql(self.table), prepare=False)

    # -- lifecycle -------------------------------------------------------------

    def _where(self) -> str:
        if self.unix_socket and not self.host:
            target = f"socket {self.unix_socket}"
        else:
            target = f"{self.host}:{self.port}"
        return (
            f"MySQL {target}, database {self.database!r}, user {self.user!r}, table {self.table!r}"
        )

    async def _get_pool(self) -> aiomysql.Pool:
        if self._closed:
            raise StoreError(f"the session store is closed ({self._where()})")
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

    async def _prepare(self) -> None:
        """Make sure the pool exists, the table is there and cleanup runs."""
        if self._ready:
            return
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self._ready:
                return
            pool = await self._get_pool()
            if not self._own_pool:
                await self._check_pool(pool)
            await self._check_table()
            self._ready = True
            self._start_cleanup()

    async def _check_table(self) -> None:
        """Create the table if it is missing (and allowed to), else check
        that it has our columns: a wrong table fails here, with a message
        saying what to do, not later on every statement."""
        result = await self._execute(
            "checking the table",
            "SELECT LOWER(COLUMN_NAME), LOWER(DATA_TYPE) FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (self.table,),
            fetch=True,
            prepare=False,
        )
        columns = {_text(name): _text(kind) for name, kind in result.rows}
        if not columns:
            if not self._create_table:
                raise self._error(
                    "checking the table", 1146, f"table {self.table!r} does not exist"
                )
            await self.create_table()
            log.info("Created the session table (%s)", self._where())
            return
        missing = [name for name in _COLUMNS if name not in columns]
        if missing or columns.get("id") != "binary":
            problem = (
                f"it lacks the columns {', '.join(missing)}"
                if missing
                else "its id column is not BINARY(32)"
            )
            raise StoreError(
                f"Session store failed checking the table ({self._where()}): the table "
                f"exists but {problem}, so it was not made by MySQLStore; name another table "
                "(SESSION_TABLE), or drop this one and let the store create it "
                "(MySQLStore.create_table_sql() prints the statement)"
            )

    async def _check_pool(self, pool: aiomysql.Pool) -> None:
        async with self._connection("checking the pool") as conn:
            if not conn.get_autocommit() or not (conn.client_flag & CLIENT.FOUND_ROWS):
                raise ConfigError(
                    "the aiomysql pool given to MySQLStore must be created with autocommit=True "
                    "and client_flag=pymysql.constants.CLIENT.FOUND_ROWS "
                    "(see MySQLStore.pool_options())"
                )
            self._multi = bool(conn.client_flag & CLIENT.MULTI_STATEMENTS)

    async def open(self) -> None:
        """Connect now and create the table if needed, so that a bad
        configuration fails at startup with a `.StoreError`; also starts
        the periodic cleanup.  Optional: the store does this on first use.

        .. versionadded:: 0.1
        """
        if not self._ready:
            await self._prepare()
        else:
            await self._execute("checking the connection", "SELECT 1", prepare=False)

    async def close(self) -> None:
        """Stop the cleanup task and close the pool (if the store made it).

        .. versionadded:: 0.1
        """
        self._closed = True
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        pool, self._pool = self._pool, None
        if pool is not None and self._own_pool:
            pool.close()
            try:
                async with asyncio.timeout(self.timeout):
                    await pool.wait_closed()
            except TimeoutError:
                log.warning("Closing the session store's pool timed out; terminating it")
                pool.terminate()

    # -- cleanup ---------------------------------------------------------------

    def _start_cleanup(self) -> None:
        if self.cleanup_interval is None or self._cleanup_task is not None:
            return
        self._cleanup_task = asyncio.get_running_loop().create_task(self._cleanup_loop())

    async def _cleanup_loop(self) -> None:
        interval = float(self.cleanup_interval or 0)
        # The first run comes at a random point of the first interval, so
        # that several processes started together spread their deletes.
        delay = interval * random.uniform(0.05, 1.0)
        while True:
            await asyncio.sleep(delay)
            delay = interval * random.uniform(0.8, 1.2)
            try:
                deleted = await self.clear_expired()
            except StoreError as exc:
                log.warning("Periodic cleanup of expired sessions failed: %s", exc)
            except Exception:
                log.exception("Periodic cleanup of expired sessions failed")
            else:
                if deleted:
                    log.info("Deleted %d expired sessions", deleted)

    # -- statements ------------------------------------------------------------

    def _error(self, doing: str, code: int | None, detail: str) -> StoreError:
        hint = _HINTS.get(code or -1, "check the server's error log")
        label = f"error {code}" if code is not None else "timeout"
        return StoreError(
            f"Session store failed {doing} ({self._where()}): {label}: {detail}; {hint}"
        )

    def _connection(self, doing: str) -> _Acquire:
        return _Acquire(self, doing)

    async def _on_connection(
        self,
        doing: str,
        run: Callable[[Any], Awaitable[_T]],
        *,
        keep_after_server_error: bool = True,
    ) -> _T:
        """Run ``await run(conn)`` (one round trip) on a pooled connection,
        within one timeout for the wait for the connection and the work."""
        pool = await self._get_pool()
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
                    raise self._error(doing, None, str(exc)) from None
                raise
            # Work that did not end with a server error leaves the connection
            # in an unknown state: never give it back.
            if (
                not keep_after_server_error
                or not isinstance(exc, pymysql.err.MySQLError)
                or _code(exc) in _LOST
            ):
                conn.close()
            if isinstance(exc, TimeoutError):
                raise self._error(
                    doing,
                    None,
                    f"no answer within {self.timeout:g} s (SESSION_DB_TIMEOUT); the server "
                    "is overloaded, a lock is held, or the network is down",
                ) from None
            raise
        finally:
            if conn is not None:
                _release(pool, conn)

    async def _once(self, doing: str, sql: str, args: Sequence[Any], fetch: bool) -> _Result:
        async def run(conn: Any) -> _Result:
            cur = await conn.cursor()
            await cur.execute(sql, tuple(args))
            rows: Sequence[tuple[Any, ...]] = await cur.fetchall() if fetch else ()
            rowcount = cur.rowcount
            await cur.close()
            return _Result(rowcount=rowcount, rows=rows)

        return await self._on_connection(doing, run)

    def _acquire_timeout(self, doing: str, pool: aiomysql.Pool) -> StoreError:
        return self._error(
            doing,
            None,
            f"no database connection within {self.timeout:g} s (SESSION_DB_TIMEOUT): "
            f"all {pool.maxsize} pool connections are busy (SESSION_POOL_SIZE) or the "
            "server does not answer",
        )

    async def _execute(
        self,
        doing: str,
        sql: str,
        args: Sequence[Any] = (),
        *,
        fetch: bool = False,
        prepare: bool = True,
    ) -> _Result:
        """Run one statement with the retry policy; raise `.StoreError`
        (or `_Duplicate` for a duplicate key)."""
        if prepare and not self._ready:
            await self._prepare()
        lost = deadlocks = 0
        while True:
            try:
                result = await self._once(doing, sql, args, fetch)
                result.retried = lost > 0
                return result
            except pymysql.err.MySQLError as exc:
                code = _code(exc)
                if code == _DUPLICATE:
                    raise _Duplicate(retried=lost > 0) from None
                if code in _LOST and lost == 0:
                    lost += 1
                    log.warning(
                        "Session store lost its connection %s (error %s, %s); retrying once",
                        doing,
                        code,
                        self._where(),
                    )
                    continue
                if code == _DEADLOCK and deadlocks < _DEADLOCK_RETRIES:
                    deadlocks += 1
                    await asyncio.sleep(random.uniform(0.005, 0.05) * deadlocks)
                    continue
                raise self._error(doing, code, _message(exc)) from None
            except OSError as exc:
                raise self._error(doing, None, f"{type(exc).__name__}: {exc}") from None

    # -- the store contract ----------------------------------------------------

    _INFO_COLUMNS = "id, created_at, updated_at, expires_at, user_id, ip, user_agent"

    async def get(self, sid: str) -> SessionRecord | None:
        key = _key(sid)
        if self.coalesce_reads:
            text = await self._join(self._reads, key, self._flush_reads)
            if text is not _ALONE:
                return _record(text)
        return _record((await self._select((key,))).get(key))

    async def _join(self, queue: list[Any], item: Any, flush: Callable[[], None]) -> Any:
        """Queue ``item`` for the next turn of the event loop; return what
        its batch answers, or `_ALONE` if the caller is to run it itself."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        queue.append((item, waiter))
        if len(queue) == 1:
            # The first of this turn: the calls that other requests make in
            # the same turn join it, and one round trip answers them all.
            loop.call_soon(flush)
        return await waiter

    def _flush_reads(self) -> None:
        batch = _take(self._reads, _BATCH, lambda key: 0, self._flush_reads)
        if batch:
            _background(self._read_batch(batch))

    async def _read_batch(self, batch: list[tuple[str, asyncio.Future[Any]]]) -> None:
        try:
            found = await self._select(tuple(dict.fromkeys(key for key, _ in batch)))
        except Exception as exc:
            for _, waiter in batch:
                if not waiter.done():
                    # Each waiter raises its own copy: one exception object
                    # raised in several tasks would share its traceback.
                    copy = StoreError(str(exc)) if isinstance(exc, StoreError) else exc
                    waiter.set_exception(copy)
            return
        except BaseException:  # cancelled (the loop is shutting down)
            for _, waiter in batch:
                waiter.cancel()
            raise
        for key, waiter in batch:
            if not waiter.done():
                waiter.set_result(found.get(key))

    async def _select(self, keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: "created expires version data"}`` for the live rows."""
        # One column, not four: PyMySQL parses a result's column descriptions
        # in pure Python, and that was the largest cost of the read path.
        if len(keys) == 1:
            result = await self._execute(
                "loading a session",
                f"SELECT CONCAT(created_at, ' ', expires_at, ' ', version, ' ', data) "
                f"FROM {self._t} WHERE id = UNHEX(%s) AND expires_at > %s",
                (keys[0], self.now()),
                fetch=True,
            )
            return {keys[0]: result.rows[0][0]} if result.rows else {}
        marks = ", ".join(["UNHEX(%s)"] * len(keys))
        result = await self._execute(
            "loading sessions",
            f"SELECT CONCAT(LOWER(HEX(id)), ' ', created_at, ' ', expires_at, ' ', version, "
            f"' ', data) FROM {self._t} WHERE id IN ({marks}) AND expires_at > %s",
            (*keys, self.now()),
            fetch=True,
        )
        return {text[:64]: text[65:] for (text,) in result.rows}

    async def set(self, sid: str, record: SessionRecord, *, expected_version: int | None) -> int:
        key = _key(sid)
        now = self.now()
        if expected_version is None:
            return await self._insert(key, record, now)
        new_version = expected_version + 1
        args = (
            record.data,
            now,
            record.expires_at,
            new_version,
            record.user_id,
            record.ip,
            record.user_agent,
            key,
            expected_version,
            now,
        )
        # In a batch: its row count; None if the batch failed before this
        # update's answer came back (it is then sent alone, and may have
        # been applied already); _ALONE if there was no batch to join.
        rowcount: Any = _ALONE
        if self.coalesce_writes and self._multi and len(record.data) <= _BATCH_CHARS:
            rowcount = await self._join(self._writes, args, self._flush_writes)
        if isinstance(rowcount, int):
            if rowcount:
                return new_version
            return await self._missed_update(key, record, now, new_version, False)
        retried = rowcount is None
        result = await self._execute("saving a session", self._update_sql, args)
        if result.rowcount:
            return new_version
        return await self._missed_update(key, record, now, new_version, retried or result.retried)

    async def _missed_update(
        self, key: str, record: SessionRecord, now: int, new_version: int, retried: bool
    ) -> int:
        """The versioned UPDATE matched no row: say why."""
        current = await self._execute(
            "checking a session",
            f"SELECT version, data FROM {self._t} WHERE id = UNHEX(%s) AND expires_at > %s",
            (key, now),
            fetch=True,
        )
        if not current.rows:
            raise SessionGone("the session no longer exists")
        version, data = current.rows[0]
        if retried and version == new_version and data == record.data:
            return new_version  # our first attempt was applied; its answer was lost
        raise SessionConflict("the session was saved by another request")

    def _flush_writes(self) -> None:
        batch = _take(self._writes, _BATCH, lambda args: len(args[0]), self._flush_writes)
        if batch:
            _background(self._write_batch(batch))

    async def _write_batch(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        """Send the batch's UPDATEs in one round trip and one transaction
        (one commit, in the order of the keys, so that two batches cannot
        deadlock); each waiter gets its statement's row count, None if it is
        to send its UPDATE alone, or the batch's error."""
        counts: list[int] | None = None
        error: Exception | None = None
        try:
            if not self._ready:
                await self._prepare()
            counts = await self._once_many("saving sessions", [args for args, _ in batch])
        except pymysql.err.MySQLError as exc:
            code = _code(exc)
            if code not in _LOST and code != _DEADLOCK:
                error = self._error("saving sessions", code, _message(exc))
            # Otherwise each save is sent alone, with the retry policy.
        except OSError as exc:
            error = self._error("saving sessions", None, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            error = exc
        except BaseException:
            for _, waiter in batch:
                waiter.cancel()
            raise
        for index, (_, waiter) in enumerate(batch):
            if waiter.done():
                continue
            if error is not None:
                waiter.set_exception(
                    StoreError(str(error)) if isinstance(error, StoreError) else error
                )
            else:
                waiter.set_result(counts[index] if counts is not None else None)

    def _update_text(self, conn: Any, row: tuple[Any, ...]) -> str:
        """The versioned UPDATE of ``row`` (the arguments of `_update_sql`)
        as text: strings are escaped by the connection (which knows the
        server's quoting mode), the key is hex and the rest are integers."""
        data, now, expires, version, user_id, ip, agent, key, expected, _ = row
        if not _HEX64.match(key):
            raise ValueError("a session key must be 64 hex digits")
        escape = conn.escape
        return (
            f"UPDATE {self._t} SET data = {escape(data)}, updated_at = {int(now)}, "
            f"expires_at = {int(expires)}, version = {int(version)}, "
            f"user_id = {'NULL' if user_id is None else escape(str(user_id))}, "
            f"ip = {'NULL' if ip is None else escape(str(ip))}, "
            f"user_agent = {'NULL' if agent is None else escape(str(agent))} "
            f"WHERE id = UNHEX('{key}') AND version = {int(expected)} "
            f"AND expires_at > {int(now)}"
        )

    async def _once_many(self, doing: str, rows: list[tuple[Any, ...]]) -> list[int]:
        order = sorted(range(len(rows)), key=lambda index: rows[index][7])  # by key

        async def run(conn: Any) -> list[int]:
            text = ";\n".join(
                ["START TRANSACTION", *(self._update_text(conn, rows[i]) for i in order), "COMMIT"]
            )
            cur = await conn.cursor()
            await cur.execute(text)
            counts: list[int] = []
            while await cur.nextset():
                counts.append(cur.rowcount)
            await cur.close()
            return counts

        # After any error the transaction may be open or results unread:
        # closing the connection rolls back whatever is open.
        counts = await self._on_connection(doing, run, keep_after_server_error=False)
        if len(counts) != len(rows) + 1:  # the UPDATEs and the COMMIT
            raise pymysql.err.OperationalError(0, "a batch of saves got too few answers")
        result = [0] * len(rows)
        for position, index in enumerate(order):
            result[index] = counts[position]
        return result

    async def _insert(self, key: str, record: SessionRecord, now: int) -> int:
        sql = (
            f"INSERT INTO {self._t} (id, data, created_at, updated_at, expires_at, version, "
            "user_id, ip, user_agent) VALUES (UNHEX(%s), %s, %s, %s, %s, 1, %s, %s, %s)"
        )
        args = (
            key,
            record.data,
            record.created_at,
            now,
            record.expires_at,
            record.user_id,
            record.ip,
            record.user_agent,
        )
        try:
            await self._execute("creating a session", sql, args)
            return 1
        except _Duplicate as dup:
            retried = dup.retried
        # The id exists.  Either our own insert went through before its answer
        # was lost (we retried), or the row is an expired leftover, or the id
        # is really taken (256 random bits: never in practice).
        if retried:
            current = await self._execute(
                "checking a session",
                f"SELECT version, data, created_at FROM {self._t} WHERE id = UNHEX(%s)",
                (key,),
                fetch=True,
            )
            if current.rows and tuple(current.rows[0]) == (1, record.data, record.created_at):
                return 1
            raise SessionExists("a session with this id exists")
        stale = await self._execute(
            "replacing an expired session",
            f"DELETE FROM {self._t} WHERE id = UNHEX(%s) AND expires_at <= %s",
            (key, now),
        )
        if not stale.rowcount:
            raise SessionExists("a session with this id exists")
        try:
            await self._execute("creating a session", sql, args)
        except _Duplicate:
            raise SessionExists("a session with this id exists") from None
        return 1

    async def destroy(self, sid: str) -> bool:
        result = await self._execute(
            "destroying a session", f"DELETE FROM {self._t} WHERE id = UNHEX(%s)", (_key(sid),)
        )
        return result.rowcount > 0

    async def touch(self, sid: str, expires_at: int) -> bool:
        now = self.now()
        result = await self._execute(
            "extending a session",
            f"UPDATE {self._t} SET expires_at = %s, updated_at = %s "
            "WHERE id = UNHEX(%s) AND expires_at > %s",
            (expires_at, now, _key(sid), now),
        )
        return result.rowcount > 0

    async def _infos(self, where: str, args: Sequence[Any]) -> list[SessionInfo]:
        result = await self._execute(
            "listing sessions",
            f"SELECT {self._INFO_COLUMNS} FROM {self._t} WHERE {where} "
            "ORDER BY updated_at DESC, created_at DESC",
            args,
            fetch=True,
        )
        return [_info(row) for row in result.rows]

    async def all(self) -> list[SessionInfo]:
        return await self._infos("expires_at > %s", (self.now(),))

    async def length(self) -> int:
        result = await self._execute(
            "counting sessions",
            f"SELECT COUNT(*) FROM {self._t} WHERE expires_at > %s",
            (self.now(),),
            fetch=True,
        )
        return int(result.rows[0][0])

    async def clear(self) -> int:
        result = await self._execute("deleting all sessions", f"DELETE FROM {self._t}")
        return result.rowcount

    async def clear_expired(
        self, batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Delete expired rows in batches; return how many were deleted.

        Each batch is one ``DELETE ... WHERE expires_at <= %s LIMIT %s`` on
        the ``expires_at`` index, so no statement holds locks for long.

        :param batch_size: rows per statement (default: ``cleanup_batch``).
        :param progress: called with the running total after each batch.

        .. versionadded:: 0.1
        """
        batch = batch_size or self.cleanup_batch
        now = self.now()
        total = 0
        while True:
            result = await self._execute(
                "deleting expired sessions",
                f"DELETE FROM {self._t} WHERE expires_at <= %s LIMIT %s",
                (now, batch),
            )
            total += result.rowcount
            if progress is not None:
                progress(total)
            if result.rowcount < batch:
                return total

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return await self._infos("user_id = %s AND expires_at > %s", (user_id, self.now()))

    async def destroy_user_sessions(self, user_id: str, *, except_sid: str | None = None) -> int:
        if except_sid is None:
            sql, args = f"DELETE FROM {self._t} WHERE user_id = %s", (user_id,)
        else:
            sql = f"DELETE FROM {self._t} WHERE user_id = %s AND id <> UNHEX(%s)"
            args = (user_id, _key(except_sid))  # type: ignore[assignment]
        result = await self._execute("ending a user's sessions", sql, args)
        return result.rowcount

    async def destroy_user_session(self, user_id: str, fingerprint: str) -> bool:
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            return False
        result = await self._execute(
            "ending a user's session",
            f"DELETE FROM {self._t} WHERE user_id = %s "
            "AND id BETWEEN UNHEX(%s) AND UNHEX(%s) LIMIT 1",
            (user_id, fingerprint + "00" * 26, fingerprint + "ff" * 26),
        )
        return result.rowcount > 0

    async def stats(self) -> dict[str, int]:
        """Return ``{"live": ..., "expired": ..., "table_bytes": ...}``.

        ``table_bytes`` is the server's estimate of the table's data and
        index size.

        .. versionadded:: 0.1
        """
        now = self.now()
        counts = await self._execute(
            "counting sessions",
            f"SELECT (SELECT COUNT(*) FROM {self._t} WHERE expires_at > %s), "
            f"(SELECT COUNT(*) FROM {self._t} WHERE expires_at <= %s)",
            (now, now),
            fetch=True,
        )
        size = await self._execute(
            "measuring the table",
            "SELECT COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) "
            "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (self.table,),
            fetch=True,
        )
        live, expired = counts.rows[0]
        return {
            "live": int(live or 0),
            "expired": int(expired or 0),
            "table_bytes": int(size.rows[0][0]) if size.rows else 0,
        }


class _Acquire:
    """``async with``: a pooled connection, acquired within the timeout."""

    def __init__(self, store: MySQLStore, doing: str) -> None:
        self._store = store
        self._doing = doing
        self._pool: aiomysql.Pool | None = None
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        store = self._store
        pool = await store._get_pool()
        try:
            async with asyncio.timeout(store.timeout):
                conn = await pool.acquire()
        except TimeoutError:
            raise store._acquire_timeout(self._doing, pool) from None
        except RuntimeError as exc:  # the pool is closing
            raise store._error(self._doing, None, str(exc)) from None
        self._pool = pool
        self._conn = conn
        return conn

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pool is not None and self._conn is not None:
            _release(self._pool, self._conn)


def _release(pool: aiomysql.Pool, conn: Any) -> None:
    pool.release(conn)
    if conn.closed:
        # aiomysql does not wake the tasks waiting for a free connection
        # when a closed one comes back, so they would wait until their
        # timeout although the pool has room for a new connection.
        wakeup = getattr(pool, "_wakeup", None)
        if wakeup is not None:
            _background(wakeup())


_BACKGROUND: set[asyncio.Future[Any]] = set()


def _background(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _take(
    queue: list[Any], most: int, size: Callable[[Any], int], flush: Callable[[], None]
) -> list[Any]:
    """Take the next batch off ``queue`` (at most ``most`` items and
    `_BATCH_CHARS` of data); answer `_ALONE` to a batch of one."""
    count = total = 0
    for item, _ in queue:
        total += size(item)
        if count and (count == most or total > _BATCH_CHARS):
            break
        count += 1
    batch = queue[:count]
    del queue[:count]
    if queue:
        asyncio.get_running_loop().call_soon(flush)
    if len(batch) == 1:
        waiter = batch[0][1]
        if not waiter.done():
            waiter.set_result(_ALONE)
        return []
    return batch


def _text(value: Any) -> str:
    # information_schema answers bytes on some servers and versions.
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _record(text: str | None) -> SessionRecord | None:
    if text is None:
        return None
    # The three integers cannot contain a space, so one split with a limit
    # gives back the JSON text intact.
    created, expires, version, data = text.split(" ", 3)
    return SessionRecord(
        data=data, created_at=int(created), expires_at=int(expires), version=int(version)
    )


def _key(sid: str) -> str:
    # The key is sent as hex and turned back into BINARY(32) by UNHEX() in
    # the statement: aiomysql 0.3 cannot escape bytes parameters with
    # PyMySQL >= 1.1 (its escape_bytes_prefixed import is gone).
    return hash_sid(sid).hex()


def _code(exc: BaseException) -> int:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return 0


def _message(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2:
        return str(args[1])
    return str(exc) or type(exc).__name__


def _info(row: Sequence[Any]) -> SessionInfo:
    key, created, updated, expires, user_id, ip, agent = row
    return SessionInfo(
        fingerprint=bytes(key).hex()[:12],
        created_at=int(created),
        updated_at=int(updated),
        expires_at=int(expires),
        user_id=user_id,
        ip=ip,
        user_agent=agent,
    )
