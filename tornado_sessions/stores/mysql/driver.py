"""The database driver: aiomysql or asyncmy, behind one adapter.

The store speaks to a `Driver`, never to a driver module: making a pool,
a cursor, the driver's error class, and what a connection says about
itself (open or closed, its character set, its client flags) are the only
places where the two differ.  Everything else (the SQL, the values bound by
the driver's own ``execute`` and ``mogrify``, which give the same bytes on
both, the retry policy, the character set check of every new connection)
is one code path.

* **aiomysql** (on PyMySQL) is the default dependency.
* **asyncmy** (Cython, about half the CPU per statement) is installed with
  the extra ``pip install tornado_sessions[asyncmy]``.

``SESSION_DB_DRIVER`` chooses: ``auto`` (the default) uses asyncmy when it
is installed and aiomysql otherwise; ``aiomysql`` or ``asyncmy`` ask for
one.  A pool passed in as ``pool=`` is used with its own driver, whatever
the setting says.

``bytes``: aiomysql 0.3 cannot bind them (with PyMySQL 1.1 and later), so
the store sends row keys as hex text (``UNHEX(%s)``) on both drivers; no
statement depends on the driver.

.. versionadded:: 0.3
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import sys
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import ConfigError

__all__ = [
    "CHOICES",
    "EXTRA",
    "Driver",
    "background",
    "choose",
    "close_pool",
    "installed",
    "load",
    "of_pool",
]

log = logging.getLogger("tornado_sessions.stores.mysql")

#: Client capability flags (the protocol's, the same on both drivers).
FOUND_ROWS = 2
MULTI_STATEMENTS = 1 << 16
#: The accepted values of ``SESSION_DB_DRIVER``.
CHOICES = ("auto", "aiomysql", "asyncmy")
#: The statements a store's connection keeps prepared on asyncmy: room for
#: the five it prepares (`.connection.Connections.prepare_statements`) and a spare.
PREPARED = 6
#: What installs asyncmy with the package.
EXTRA = "tornado_sessions[asyncmy]"
_VARIABLE = "SESSION_DB_DRIVER"


class Cursor(Protocol):
    """What the store uses of a cursor (the same on both drivers)."""

    rowcount: int

    def execute(self, query: str, args: Sequence[Any] | None = ..., /) -> Awaitable[Any]: ...
    def fetchall(self) -> Awaitable[Sequence[tuple[Any, ...]]]: ...
    def fetchone(self) -> Awaitable[Any]: ...
    def nextset(self) -> Awaitable[bool | None]: ...
    def mogrify(self, query: str, args: Sequence[Any] | None = ..., /) -> str: ...
    def close(self) -> Awaitable[None]: ...


class Pool(Protocol):
    """What the store uses of a pool (the same on both drivers)."""

    @property
    def maxsize(self) -> int: ...
    def acquire(self) -> Awaitable[Any]: ...
    def release(self, conn: Any, /) -> Any: ...
    def close(self) -> None: ...
    def terminate(self) -> None: ...
    def wait_closed(self) -> Awaitable[None]: ...


def installed(name: str) -> bool:
    """Whether the driver module ``name`` can be imported (without importing it)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def choose(name: str, *, source: str = _VARIABLE) -> str:
    """The driver ``name`` asks for: ``auto`` resolved to asyncmy when it
    is installed, else aiomysql.

    :raises ConfigError: naming ``source`` if ``name`` is not one of
        `CHOICES`, or asks for asyncmy and it is not installed (naming the
        extra that installs it).
    """
    value = str(name).strip().lower()
    if value not in CHOICES:
        raise ConfigError(
            f"{source}: {name!r} is not a database driver; accepted values: "
            f"{', '.join(CHOICES)} (auto: asyncmy if installed, else aiomysql)"
        )
    if value == "auto":
        return "asyncmy" if installed("asyncmy") else "aiomysql"
    if value == "asyncmy" and not installed("asyncmy"):
        raise ConfigError(
            f"{source} asks for asyncmy, which is not installed: pip install '{EXTRA}' "
            "(or choose aiomysql, the default dependency, or auto)"
        )
    return value


@dataclass(frozen=True, slots=True, eq=False)
class Driver:
    """One driver module seen through the store's needs.

    ``Error`` is the base class of every error the driver raises for the
    server or the connection (``OperationalError``, ``IntegrityError``,
    ``ProgrammingError``... all derive from it and carry the server's code
    and message in ``args``, as `.hints.code_of` reads them).
    """

    name: str
    Error: type[Exception]
    _module: Any
    #: aiomysql's cursor() is a coroutine, asyncmy's a plain call.
    _async_cursor: bool
    #: The pool class whose free list `take` and `release` use directly
    #: (aiomysql's, if it has the attributes they use), or None.
    _lean_pool: type | None = None
    #: The fewest saves a batch may be limited to (`.batching.Coalescer.limit`):
    #: a driver whose round trips cost little pays for more of them with
    #: less waiting (asyncmy: 2); aiomysql's cost about as much as the wait
    #: they save (8, `.batching.WRITE_BATCH`).
    batch_floor: int = 8
    #: Server-side prepared statements kept per connection of the store's
    #: own pool (asyncmy's ``stmt_cache_size``), or 0 where the driver has
    #: none (aiomysql): see `.connection.Connections.prepare_statements`.
    prepared: int = 0

    def connect_options(self) -> dict[str, Any]:
        """The driver's own options for the connections of a store's pool:
        asyncmy's statement cache, sized for the store's hot statements."""
        return {"stmt_cache_size": self.prepared} if self.prepared else {}

    async def create_pool(self, options: Mapping[str, Any]) -> Pool:
        """A new pool with ``options`` (`.pools.pool_options`, the same
        keywords on both: asyncmy takes ``db`` as aiomysql does)."""
        pool: Pool = await self._module.create_pool(**options)
        return pool

    async def cursor(self, conn: Any) -> Cursor:
        cur: Cursor = await conn.cursor() if self._async_cursor else conn.cursor()
        return cur

    def closed(self, conn: Any) -> bool:
        """Whether ``conn`` is closed (aiomysql: ``closed``; asyncmy: not
        ``connected``)."""
        if self._async_cursor:
            return bool(conn.closed)
        return not conn.connected

    def charset(self, conn: Any) -> str:
        """The character set the driver encodes statements in."""
        if self._async_cursor:
            return str(getattr(conn, "charset", "") or "")
        return str(conn.character_set_name() or "")

    def client_flag(self, conn: Any) -> int:
        """The client capability flags ``conn`` logged in with."""
        name = "client_flag" if self._async_cursor else "_client_flag"
        return int(getattr(conn, name, 0) or 0)

    def take(self, pool: Pool) -> Any:
        """A free connection of ``pool`` taken at once, or None: then
        ``await pool.acquire()``.

        aiomysql's ``acquire`` takes a lock and checks every free
        connection on each call; when nobody waits for a connection and the
        next free one is sound (open, its stream not at its end, younger
        than ``pool_recycle``), this takes it as ``acquire`` would, without
        a coroutine.  Anything else is left to ``acquire``.
        """
        if type(pool) is not self._lean_pool:
            return None
        free = pool._free  # type: ignore[attr-defined]
        cond = pool._cond  # type: ignore[attr-defined]
        if not free or pool._closing or cond._waiters or cond.locked():  # type: ignore[attr-defined]
            return None
        conn = free[0]
        reader = conn._reader
        if (
            conn.closed
            or reader.at_eof()
            or reader.exception() is not None
            or getattr(reader, "eof_received", False)
        ):
            return None
        recycle = pool._recycle  # type: ignore[attr-defined]
        if recycle > -1 and pool._loop.time() - conn.last_usage > recycle:  # type: ignore[attr-defined]
            return None
        free.popleft()
        pool._used.add(conn)  # type: ignore[attr-defined]
        return conn

    def release(self, pool: Pool, conn: Any) -> None:
        """Give ``conn`` back to ``pool``.

        aiomysql's ``release`` starts a task on every call to wake a
        waiting ``acquire``; when none waits, this puts the connection back
        as ``release`` would, without the task.
        """
        if (
            type(pool) is self._lean_pool
            and not conn.closed
            and not pool._closing  # type: ignore[attr-defined]
            and not pool._cond._waiters  # type: ignore[attr-defined]
            and not pool._cond.locked()  # type: ignore[attr-defined]
            and conn in pool._used  # type: ignore[attr-defined]
            and not conn.get_transaction_status()
        ):
            pool._used.remove(conn)  # type: ignore[attr-defined]
            pool._free.append(conn)  # type: ignore[attr-defined]
            return
        pool.release(conn)
        if self._async_cursor and conn.closed:
            # aiomysql does not wake the tasks waiting for a free connection
            # when a closed one comes back, so they would wait until their
            # timeout although the pool has room for a new connection
            # (asyncmy does wake them).
            wakeup = getattr(pool, "_wakeup", None)
            if wakeup is not None:
                background(wakeup())


async def close_pool(pool: Pool, timeout: float) -> None:
    """Close ``pool``, waiting at most ``timeout`` seconds, then terminate it."""
    pool.close()
    try:
        async with asyncio.timeout(timeout):
            await pool.wait_closed()
    except TimeoutError:
        log.warning("Closing the session store's pool timed out; terminating it")
        pool.terminate()


_BACKGROUND: set[asyncio.Future[Any]] = set()


def background(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` as a task that is kept alive until it ends."""
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


_LOADED: dict[str, Driver] = {}


def load(name: str = "auto", *, source: str = _VARIABLE) -> Driver:
    """The `Driver` ``name`` asks for (see `choose`), its module imported."""
    chosen = choose(name, source=source)
    driver = _LOADED.get(chosen)
    if driver is None:
        module = importlib.import_module(chosen)
        if chosen == "aiomysql":
            error: type[Exception] = importlib.import_module("pymysql.err").MySQLError
        else:
            error = importlib.import_module("asyncmy.errors").MySQLError
        driver = Driver(
            chosen,
            error,
            module,
            _async_cursor=chosen == "aiomysql",
            _lean_pool=_lean_pool(module) if chosen == "aiomysql" else None,
            batch_floor=8 if chosen == "aiomysql" else 2,
            prepared=0 if chosen == "aiomysql" else PREPARED,
        )
        _LOADED[chosen] = driver
    return driver


#: What `Driver.take` and `Driver.release` read of an aiomysql pool.
_POOL_ATTRIBUTES = ("_free", "_used", "_cond", "_closing", "_recycle", "_loop")


def _lean_pool(module: Any) -> type | None:
    """aiomysql's pool class if a pool of it has every attribute `Driver.take`
    uses (checked on a pool's ``__init__`` code, not on a pool: none exists
    yet), else None: a version that changed them gets the plain path."""
    pool_class = getattr(module, "Pool", None)
    init = getattr(pool_class, "__init__", None)
    names = set(getattr(getattr(init, "__code__", None), "co_names", ()))
    if pool_class is None or not names.issuperset(_POOL_ATTRIBUTES):
        log.debug("aiomysql's pool is not the one Driver.take knows: the plain path is used")
        return None
    connection = getattr(module, "Connection", None)
    if connection is None or not all(
        hasattr(connection, name) for name in ("closed", "last_usage", "get_transaction_status")
    ):
        return None
    lean: type = pool_class
    return lean


def of_pool(pool: object) -> Driver:
    """The `Driver` of a pool an application passes in.

    :raises ConfigError: if it is neither an aiomysql nor an asyncmy pool.
    """
    package = type(pool).__module__.partition(".")[0]
    if package not in ("aiomysql", "asyncmy"):
        raise ConfigError(
            f"MySQLStore's pool must be an aiomysql or asyncmy pool, not {type(pool).__name__} "
            f"(from {package})"
        )
    return load(package, source="the pool given to MySQLStore")
