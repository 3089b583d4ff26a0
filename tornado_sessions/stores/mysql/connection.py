"""Connections to the server: the pool, one round trip, the retry policy and
the error messages.

`Connections` makes the store's own pool on the chosen `.driver` (or checks
one the application passes in), runs each round trip on a pooled connection within
one timeout, retries what is safe to retry, and turns every failure into a
`.StoreError` whose message names the host, port, database, user, table and
error code with a hint of what to check, never the password or a session id.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...errors import ConfigError, StoreError
from . import charset
from .deadlines import Deadlines
from .driver import (
    FOUND_ROWS,
    MULTI_STATEMENTS,
    Driver,
    Pool,
    background,
    close_pool,
    load,
    of_pool,
)
from .hints import DEADLOCK, DUPLICATE, LOST, code_of, hint, message_of

__all__ = [
    "LOST",
    "Connections",
    "NoAnswer",
    "Result",
    "background",
    "check_variables",
    "code_of",
    "message_of",
]

log = logging.getLogger("tornado_sessions.stores.mysql")

_T = TypeVar("_T")

_DEADLOCK_RETRIES = 2
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_WORD = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_INTEGER = re.compile(r"-?[0-9]{1,18}\Z")


def check_variables(variables: Mapping[str, Any] | None) -> dict[str, str]:
    """Return session variables as ``{name: SQL value}``, or raise
    `.ConfigError` (names are identifiers; values integers or plain words,
    so that nothing but a name and a value reaches the ``SET`` statement)."""
    checked: dict[str, str] = {}
    for name, value in (variables or {}).items():
        text = str(int(value)) if isinstance(value, bool) else str(value).strip()
        if not isinstance(name, str) or not _VARIABLE.match(name):
            raise ConfigError(
                f"session variable name {name!r} is not accepted (SESSION_DB_VARIABLES): "
                "use a server variable's name, such as wsrep_sync_wait"
            )
        refused = charset.refused_variable(name)
        if refused is not None:
            raise refused
        if _INTEGER.match(text):
            checked[name.lower()] = text
        elif _WORD.match(text):
            checked[name.lower()] = f"'{text}'"
        else:
            raise ConfigError(
                f"session variable {name}={value!r} is not accepted (SESSION_DB_VARIABLES): "
                "values are whole numbers or plain words (letters, digits, _ . -)"
            )
    return checked


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


class Connections:
    """The pool and every round trip of one `.MySQLStore`.

    :param pool: an application's aiomysql or asyncmy pool (never closed
        here), or None to make one from the other arguments on first use.
    :param label: the table, for messages.
    :param driver: the driver of the store's own pool (`.driver.choose`).
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
        pool: Pool | None,
        pool_size: int,
        timeout: float,
        pool_recycle: int,
        label: str,
        variables: Mapping[str, Any] | None = None,
        driver: str = "auto",
    ) -> None:
        #: The driver of the pool: the one a pool passed in was made with.
        self.driver: Driver = (
            load(driver, source="MySQLStore driver") if pool is None else of_pool(pool)
        )
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
        #: Session variables set on each connection of the store's own pool
        #: (``{name: SQL value}``), after the store's own.
        self.variables = check_variables(variables)
        #: The kind of cluster the server is part of ("galera"), or None.
        self.cluster: str | None = None
        self._pool: Pool | None = pool
        self.own_pool = pool is None
        self.closed = False
        #: Several statements may be sent in one query (the store asks for it
        #: on its connections; a pool passed in is checked at first use).
        self.multi = pool is None
        #: Queries sent to the server so far (a coalesced batch counts once).
        self.round_trips = 0
        #: The deadlines of the round trips under way (``timeout`` each).
        self._deadlines = Deadlines()
        #: The connections whose character set was checked (`.charset.check`).
        self._checked: weakref.WeakSet[Any] = weakref.WeakSet()
        #: The statements sent as server-side prepared statements
        #: (`prepare_statements`).
        self._prepared: frozenset[str] = frozenset()

    def prepare_statements(self, statements: Iterable[str]) -> None:
        """Send ``statements`` as server-side prepared statements where the
        store's own pool has them (asyncmy; `.driver.Driver.prepared` per
        connection), and every other statement as text.

        A prepared statement is parsed once per connection, not at each
        execution, and its values travel in binary, unescaped: on asyncmy
        the store's hot statements (a read, a save, a new session, a touch,
        a destroy) cost the client and the server less.  The rest (the
        batches, whose shapes vary, and the administrative queries) stay
        text, so that the server keeps only a handful of statements per
        connection (``max_prepared_stmt_count`` is server-wide).
        """
        if self.own_pool and self.driver.prepared:
            self._prepared = frozenset(statements)

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
        label = f"error {code}" if code is not None else "timeout"
        advice = hint(code, cluster=self.cluster is not None)
        return StoreError(
            f"Session store failed {doing} ({self.where()}): {label}: {detail}; {advice}",
            code,
        )

    # -- the pool --------------------------------------------------------------

    async def pool(self) -> Pool:
        if self.closed:
            raise StoreError(f"the session store is closed ({self.where()})")
        if self._pool is None:
            # minsize=0: creating the pool opens no connection, so it cannot
            # fail; connections are made (and re-made after an outage) on use.
            from .pools import connect_options

            self._pool = await self.driver.create_pool(
                connect_options(
                    host=self.host,
                    port=self.port,
                    user=self.user,
                    password=self._password,
                    database=self.database,
                    pool_size=self.pool_size,
                    timeout=self.timeout,
                    variables=self.variables,
                    pool_recycle=self.pool_recycle,
                    unix_socket=self.unix_socket,
                )
                | self.driver.connect_options()
            )
        return self._pool

    def init_command(self) -> str:
        """The ``SET SESSION`` each connection of the store's own pool runs
        (`.pools.required_options`); it ends with ``NAMES utf8mb4``, which
        undoes a server's ``init_connect`` of another character set."""
        from .pools import checked_options

        command: str = checked_options(self.variables, timeout=self.timeout)["init_command"]
        return command

    async def set_variables(self, variables: Mapping[str, Any]) -> None:
        """Add session variables to the store's own pool: its connections
        are replaced by new ones that set them."""
        self.variables.update(check_variables(variables))
        pool, self._pool = self._pool, None
        if pool is not None and self.own_pool:
            await close_pool(pool, self.timeout)

    async def check_given_pool(self) -> None:
        """Check a pool the application passed in: autocommit and found rows
        (its character set is checked on each new connection, as for the
        store's own)."""

        async def check(conn: Any) -> None:
            flags = self.driver.client_flag(conn)
            if not conn.get_autocommit() or not (flags & FOUND_ROWS):
                raise ConfigError(
                    f"the {self.driver.name} pool given to MySQLStore must be created with "
                    "autocommit=True and client_flag=CLIENT.FOUND_ROWS "
                    "(see MySQLStore.pool_options())"
                )
            self.multi = bool(flags & MULTI_STATEMENTS)

        await self.on_connection("checking the pool", check)

    async def close(self) -> None:
        self.closed = True
        self._deadlines.close()
        pool, self._pool = self._pool, None
        if pool is not None and self.own_pool:
            await close_pool(pool, self.timeout)

    # -- round trips -----------------------------------------------------------

    def _acquire_timeout(self, doing: str, pool: Pool) -> StoreError:
        """No connection in time: every connection busy, or none could be
        made (the server, or the address, does not answer): told apart by
        the pool's connections in use."""
        busy = len(getattr(pool, "_used", ()))
        if busy >= pool.maxsize:
            return self.error(
                doing,
                None,
                f"no database connection within {self.timeout:g} s (SESSION_DB_TIMEOUT): "
                f"all {pool.maxsize} pool connections are busy (SESSION_POOL_SIZE): "
                "requests hold them longer than that, or the pool is too small for the load",
            )
        return StoreError(
            f"Session store failed {doing} ({self.where()}): timeout: could not connect "
            f"within {self.timeout:g} s (SESSION_DB_TIMEOUT; {busy} of {pool.maxsize} pool "
            "connections in use): nothing answered at that address (an unroutable or "
            "firewalled host, a wrong SESSION_HOST or SESSION_PORT, or a server too busy to "
            f"accept connections); {hint(2003)}"
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
        deadline = self._deadlines.start(self.timeout)
        try:
            conn = self.driver.take(pool) or await pool.acquire()
            if conn not in self._checked:  # a new connection: before anything else
                await charset.check(conn, self.driver, own_pool=self.own_pool)
                self._checked.add(conn)
            self.round_trips += 1
            return await run(conn)
        except BaseException as caught:
            # The deadline's own cancellation is a timeout (as with asyncio.timeout).
            exc = TimeoutError() if deadline.expired(caught) else caught
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
                or not isinstance(exc, self.driver.Error)
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
            self._deadlines.end(deadline)
            if conn is not None:
                self.driver.release(pool, conn)

    async def once(self, doing: str, sql: str, args: Sequence[Any], fetch: bool) -> Result:
        async def run(conn: Any) -> Result:
            cur = await self.driver.cursor(conn)
            if not self.driver.prepared or sql in self._prepared:
                await cur.execute(sql, tuple(args))
            else:  # a text statement on a connection that prepares the rest
                await cur.execute(cur.mogrify(sql, tuple(args)))
            rows: Sequence[tuple[Any, ...]] = await cur.fetchall() if fetch else ()
            rowcount = cur.rowcount
            await cur.close()
            return Result(rowcount=rowcount, rows=rows)

        return await self.on_connection(doing, run)

    async def execute(
        self,
        doing: str,
        sql: str,
        args: Sequence[Any] = (),
        *,
        fetch: bool = False,
        deadlock_retries: int = _DEADLOCK_RETRIES,
    ) -> Result:
        """Run one statement with the retry policy (a lost connection once,
        a deadlock ``deadlock_retries`` times); raise `.StoreError` (or
        `Duplicate`)."""
        lost = deadlocks = 0
        while True:
            try:
                result = await self.once(doing, sql, args, fetch)
                result.retried = lost > 0
                return result
            except self.driver.Error as exc:
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
                if code == DEADLOCK and deadlocks < deadlock_retries:
                    deadlocks += 1
                    await asyncio.sleep(random.uniform(0.005, 0.05) * deadlocks)
                    continue
                raise self.error(doing, code, message_of(exc)) from None
            except OSError as exc:
                raise self.error(doing, None, f"{type(exc).__name__}: {exc}") from None


def text_of(value: Any) -> str:
    """``value`` as text: information_schema and system variables answer
    bytes on some servers and versions."""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
