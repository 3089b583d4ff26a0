"""`MySQLStore`: the store contract on a MySQL or MariaDB table.

It ties the package's parts together: `.connection` (the pool and round
trips), `.schema` (the table, checked once), `.statements` (the SQL),
`.batching` (shared round trips) and `.admin` (listings, per-user queries,
cleanup), and adds what the contract asks for beyond a single statement:
the check of a versioned update that matched no row, and an insert whose id
is taken.

.. versionadded:: 0.1
.. versionchanged:: 0.2
   A module of the ``stores.mysql`` package (it was ``stores/mysql.py``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, SessionConflict, SessionExists, SessionGone, StoreError
from ..base import SessionRecord, SessionStore, check_record, hash_sid
from ..records import new_record
from . import cluster, pools, schema, statements
from .admin import AdminQueries
from .batching import ALONE, BATCH_CHARS, RETRIED, Coalescer
from .connection import Connections, Duplicate, Result
from .driver import Pool

if TYPE_CHECKING:
    from ...config import DatabaseConfig

__all__ = ["MySQLStore"]

log = logging.getLogger("tornado_sessions.stores.mysql")

_FINGERPRINT = re.compile(r"[0-9a-fA-F]{12}\Z")


class MySQLStore(AdminQueries, SessionStore):
    """Keeps sessions in a MySQL (5.7+, 8) or MariaDB (10.5+) table.

    .. example: mysqlstore-from-config given imports mysql module

    It makes its own pool (aiomysql, or asyncmy: ``driver``) from the connection
    settings, or uses a ``pool`` made with `pool_options` (checked at first use,
    never closed by the store).  The usual way is `from_config`::

        store = MySQLStore.from_config(SessionConfig.from_env())
        await store.open()  # optional: fail at startup if the database is unreachable

    Every wait is bounded by ``timeout``; a lost connection is retried once
    and a deadlock twice; anything else is a `.StoreError` naming the host,
    port, database, user, table and error code (never the password or a
    session id).  Once the database is back, the next call works again.

    :param host: server host name or address.
    :param port: server TCP port.
    :param user: user name.
    :param password: password (never logged).
    :param database: database (schema) holding the table.
    :param table: table name (letters, digits and underscores).
    :param pool: an existing aiomysql or asyncmy pool to use instead of
        making one.
    :param create_table: create the table if it is missing, and upgrade a
        table made by an earlier version, at first use (either way, an
        existing table's columns are checked then).
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
    :param coalesce_reads: let the reads that concurrent requests start in
        one turn of the event loop, behind a read in flight, share one
        ``SELECT ... IN`` (a read with none in flight goes alone at once;
        see the docs' coalescing section).
    :param coalesce_writes: let their saves share one multi-statement
        transaction, each keeping its own outcome; turn it off where
        multi-statement queries are refused.
    :param session_variables: ``SET SESSION`` variables of the store's own
        connections, e.g. ``{"max_statement_time": 5}`` (on a Galera node
        the store sets ``wsrep_sync_wait=1`` itself unless given here).
    :param driver: ``"auto"``, ``"aiomysql"`` or ``"asyncmy"`` (``SESSION_DB_DRIVER``).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``session_variables``; Galera nodes are recognized at first use.

    .. versionchanged:: 0.3
       ``driver``: asyncmy as well as aiomysql.  Batching is adaptive: only
       the reads and saves that start behind one of their kind in flight
       are batched.
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
        pool: Pool | None = None,
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
        session_variables: Mapping[str, Any] | None = None,
        driver: str = "auto",
    ) -> None:
        super().__init__(clock=clock)
        self.table = schema.check_table_name(table)
        if pool is None and (not database or not (host or unix_socket)):
            raise ConfigError(
                "MySQLStore needs a database and a host (SESSION_DATABASE, SESSION_HOST), "
                "or an existing pool"
            )
        if not (timeout > 0):
            raise ConfigError(f"MySQLStore timeout must be a positive number, not {timeout!r}")
        if cleanup_batch < 1 or pool_size < 1:
            raise ConfigError("MySQLStore cleanup_batch and pool_size must be at least 1")
        self._conns = Connections(
            host=host,
            port=port,
            user=user,
            password=password,
            database=database,
            unix_socket=unix_socket,
            pool=pool,
            pool_size=pool_size,
            timeout=timeout,
            pool_recycle=pool_recycle,
            label=self.table,
            variables=session_variables,
            driver=driver,
        )
        #: ``"aiomysql"`` or ``"asyncmy"``: the driver of the store's pool.
        self.driver = self._conns.driver.name
        self.host = self._conns.host
        self.port = self._conns.port
        self.user = self._conns.user
        self.database = self._conns.database
        self.unix_socket = self._conns.unix_socket
        self.timeout = self._conns.timeout
        self.pool_size = pool_size
        self.pool_recycle = pool_recycle
        self.cleanup_interval = cleanup_interval
        self.cleanup_batch = cleanup_batch
        self.coalesce_reads = coalesce_reads
        self.coalesce_writes = coalesce_writes
        self._create_table = create_table
        self._ready = False
        self._ready_lock: asyncio.Lock | None = None
        self._cleanup_task: asyncio.Task[None] | None = None
        self._sql = statements.Statements(self.table)
        sql = self._sql
        self._conns.prepare_statements(
            (sql.select_one, sql.update, sql.insert, sql.touch, sql.destroy)
        )
        self._batches = Coalescer(
            self._conns, self._sql, prepare=self._prepare, floor=self._conns.driver.batch_floor
        )
        #: What the first-use table check found: ``"created"``, ``"exists"``
        #: or ``"upgraded"`` (None before it ran).
        self.table_state: schema.Outcome | None = None
        #: What the first use learned of the server (None before it).
        self.server: cluster.Server | None = None

    @property
    def round_trips(self) -> int:
        """Queries sent to the server so far (a coalesced batch counts once):
        for monitoring, and for the benchmark's round trips per request."""
        return self._conns.round_trips

    @classmethod
    def from_config(cls, config: DatabaseConfig, **options: Any) -> MySQLStore:
        """Make a store from a `.SessionConfig` or `.DatabaseConfig`
        (``SESSION_HOST``, ``SESSION_PORT``, ``SESSION_USER``,
        ``SESSION_PASSWORD``, ``SESSION_DATABASE``, ``SESSION_TABLE``,
        ``SESSION_POOL_SIZE``, ``SESSION_DB_TIMEOUT``, ``SESSION_DB_VARIABLES``).

        .. versionchanged:: 0.2
           Takes a `.DatabaseConfig` (a `.SessionConfig` is one).

        :param options: other `MySQLStore` arguments (they win over the config).
        :raises ConfigError: if the host, user or database is not set.

        .. versionadded:: 0.1
        """
        return cls(**pools.store_arguments(config, options))

    # -- schema ----------------------------------------------------------------

    @staticmethod
    def create_table_sql(table: str = "sessions") -> str:
        """Return the ``CREATE TABLE IF NOT EXISTS`` statement for ``table``.

        The data is JSON *text* (``MEDIUMTEXT``, up to 16 MB, binary
        collation), not a ``JSON`` column, which MySQL would reformat.

        .. versionadded:: 0.1
        """
        return schema.create_table_sql(table)

    @staticmethod
    def pool_options(session_variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return the connection options a pool passed as ``pool`` must have.

        Use them with ``aiomysql.create_pool(**MySQLStore.pool_options(), ...)``
        (or asyncmy's),
        or let `.pools.create_pool` build the whole pool from the config.

        :param session_variables: server variables each connection sets, e.g.
            ``{"wsrep_sync_wait": 1}``, which a pool on a Galera node must have.

        .. versionadded:: 0.1
        .. versionchanged:: 0.2
           ``session_variables``.
        """
        return pools.required_options(session_variables)

    async def create_table(self) -> schema.Outcome:
        """Create the table if it does not exist, or upgrade one made by an
        earlier version; return ``"created"``, ``"exists"`` or ``"upgraded"``.

        .. versionadded:: 0.1
        .. versionchanged:: 0.2
           Upgrades an older table, and says what it did.
        """
        await self._conns.pool()
        self.table_state = await schema.ensure_table(self._conns, self.table, create=True)
        return self.table_state

    # -- lifecycle -------------------------------------------------------------

    async def _prepare(self) -> None:
        """Make sure the pool exists, the table is there and cleanup runs."""
        if self._ready:
            return
        if self._ready_lock is None:
            self._ready_lock = asyncio.Lock()
        async with self._ready_lock:
            if self._ready:
                return
            await self._conns.pool()
            if not self._conns.own_pool:
                await self._conns.check_given_pool()
            self.server = await cluster.inspect(self._conns)
            await cluster.make_reads_causal(self._conns, self.server)
            self.table_state = await schema.ensure_table(
                self._conns, self.table, create=self._create_table
            )
            self._ready = True
            self._start_cleanup()

    async def open(self) -> None:
        """Connect now and create (or upgrade) the table if needed, so that a
        bad configuration fails at startup with a `.StoreError`; also starts
        the periodic cleanup.  Optional: the store does this on first use.

        .. versionadded:: 0.1
        """
        if not self._ready:
            await self._prepare()
        else:
            await self._conns.execute("checking the connection", "SELECT 1")

    async def close(self) -> None:
        """Stop the cleanup task and close the pool (if the store made it).

        .. versionadded:: 0.1
        """
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._conns.close()

    def _error(self, doing: str, code: int | None, detail: str) -> StoreError:
        return self._conns.error(doing, code, detail)

    async def _execute(
        self,
        doing: str,
        sql: str,
        args: tuple[Any, ...] = (),
        *,
        fetch: bool = False,
        deadlock_retries: int = 2,
    ) -> Result:
        if not self._ready:
            await self._prepare()
        return await self._conns.execute(
            doing, sql, args, fetch=fetch, deadlock_retries=deadlock_retries
        )

    # -- the store contract ----------------------------------------------------

    async def get(self, sid: str) -> SessionRecord | None:
        row = hash_sid(sid)
        key = row.hex()
        now = self.now()
        batches = self._batches
        batches.enter()
        try:
            # Alone at once unless a read is in flight or queued (.batching).
            if self.coalesce_reads and batches.reads_busy():
                text = await batches.read(key)
                if text is not ALONE:
                    return self._opened(sid, text, row, now)
            if not self._ready:
                await self._prepare()
            text = (await batches.select((key,))).get(key)
        finally:
            batches.leave()
        return self._opened(sid, text, row, now)

    def _opened(self, sid: str, text: str | None, row: bytes, now: int) -> SessionRecord | None:
        """The record of a row's text, its data opened (see .sealing), if
        the row is live at ``now``: the statements read by key alone, which
        costs the server less than a condition on ``expires_at``, and an
        expired row is left to the cleanup."""
        if text is None:
            return None
        created, expires, version, ttl, stored = statements.fields(text)
        if expires <= now:
            return None
        data = self.open_data(sid, stored, row)
        if data is None:
            return None
        return new_record(data, created, expires, version, ttl=ttl)

    async def set(self, sid: str, record: SessionRecord, *, expected_version: int | None) -> int:
        row = hash_sid(sid)
        key = row.hex()
        record = check_record(record)
        data = self.seal_data(sid, record.data, row)  # see .sealing
        now = self.now()
        batches = self._batches
        batches.enter()
        try:
            if expected_version is None:
                return await self._insert(key, record, data, now)
            new_version = expected_version + 1
            args = statements.update_args(
                record, data, key, new_version, expected_version, now, self.stamp()
            )
            # Alone at once unless a save is in flight or queued (.batching).
            # In a batch: its row count; ALONE if the batch told it to go
            # alone; RETRIED if the batch's answer was lost (it may have been
            # applied).
            rowcount: Any = ALONE
            if (
                self.coalesce_writes
                and batches.writes_busy()
                and self._conns.multi
                and len(data) <= BATCH_CHARS
            ):
                rowcount = await batches.write(args)
            if isinstance(rowcount, int):
                if rowcount:
                    return new_version
                return await self._missed_update(key, data, now, new_version, False)
            if not self._ready:
                await self._prepare()
            result = await batches.update(args)
            if result.rowcount:
                return new_version
            retried = rowcount is RETRIED or result.retried
            return await self._missed_update(key, data, now, new_version, retried)
        finally:
            batches.leave()

    async def _missed_update(
        self, key: str, stored: str, now: int, new_version: int, retried: bool
    ) -> int:
        """The versioned UPDATE matched no row: say why."""
        current = await self._execute(
            "checking a session", self._sql.current, (key, now), fetch=True
        )
        if not current.rows:
            raise SessionGone("the session no longer exists")
        version, data = current.rows[0]
        if retried and version == new_version and data == stored:
            return new_version  # our first attempt was applied; its answer was lost
        raise SessionConflict("the session was saved by another request")

    async def _insert(self, key: str, record: SessionRecord, stored: str, now: int) -> int:
        args = statements.insert_args(record, stored, key, now, self.stamp())
        try:
            await self._execute("creating a session", self._sql.insert, args)
            return 1
        except Duplicate as dup:
            retried = dup.retried
        # The id exists.  Either our own insert went through before its answer
        # was lost (we retried), or the row is an expired leftover, or the id
        # is really taken (256 random bits: never in practice).
        if retried:
            current = await self._execute(
                "checking a session", self._sql.inserted, (key,), fetch=True
            )
            if current.rows and tuple(current.rows[0]) == (1, stored, record.created_at):
                return 1
            raise SessionExists("a session with this id exists")
        stale = await self._execute(
            "replacing an expired session", self._sql.delete_stale, (key, now)
        )
        if not stale.rowcount:
            raise SessionExists("a session with this id exists")
        try:
            await self._execute("creating a session", self._sql.insert, args)
        except Duplicate:
            raise SessionExists("a session with this id exists") from None
        return 1

    async def destroy(self, sid: str, *, expected_version: int | None = None) -> bool:
        result = await self._execute(
            "destroying a session",
            self._sql.destroy,
            (statements.key(sid), self.now(), expected_version, expected_version),
        )
        return result.rowcount > 0

    async def touch(self, sid: str, expires_at: int, *, ttl: int | None) -> bool:
        now = self.now()
        result = await self._execute(
            "extending a session",
            self._sql.touch,
            (expires_at, now, self.stamp(), statements.key(sid), now, ttl),
        )
        return result.rowcount > 0
