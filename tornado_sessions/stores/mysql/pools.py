"""Pools for sessions: the options a pool must have, and a pool
built from a `.SessionConfig` (or `.DatabaseConfig`), for an application
that wants to share one pool between its own queries and `.MySQLStore`::

    from tornado_sessions.stores.mysql import create_pool

    pool = await create_pool(config)  # on the application's event loop
    store = MySQLStore.from_config(config, pool=pool)

`create_pool` makes the pool on the driver ``SESSION_DB_DRIVER`` chooses
(aiomysql or asyncmy, `.driver`) and maps the config as the store itself
does (``database`` is the drivers' ``db``, ``pool_size`` their ``maxsize``,
``db_timeout`` their ``connect_timeout``) and adds what the store requires (``autocommit``,
``utf8mb4``, the ``FOUND_ROWS`` client flag, and a ``SET SESSION`` with
``SESSION_DB_VARIABLES`` that ends with ``NAMES utf8mb4``).  The store's own
pool is made by the same code.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from . import charset
from .connection import check_variables
from .driver import FOUND_ROWS, Pool, load

if TYPE_CHECKING:
    from ...config import DatabaseConfig

__all__ = ["create_pool", "init_command", "pool_options", "required_options", "store_arguments"]

#: Seconds after which a pooled connection is replaced (below the server's
#: ``wait_timeout``).
POOL_RECYCLE = 3600


def init_command(settings: Mapping[str, str]) -> str:
    """``SET SESSION`` of ``settings`` (``{name: SQL value}``), then
    `.charset.FORCE`."""
    return "SET SESSION " + ", ".join(
        [*(f"{name}={value}" for name, value in settings.items()), charset.FORCE]
    )


def required_options(
    session_variables: Mapping[str, Any] | None = None, *, timeout: float | None = None
) -> dict[str, Any]:
    """The options every pool the store uses must have (what
    `.MySQLStore.pool_options` returns).

    :param session_variables: server variables each connection sets.
    :param timeout: the store's timeout; if given, ``innodb_lock_wait_timeout``
        is set a second under it (a row held too long is then a clean error
        1205 from the server rather than a statement without an answer).
    """
    return checked_options(check_variables(session_variables), timeout=timeout)


def checked_options(variables: Mapping[str, str], *, timeout: float | None) -> dict[str, Any]:
    """`required_options` of variables already checked (``{name: SQL value}``,
    as `.connection.check_variables` returns them)."""
    settings = {"sql_notes": "0"}
    if timeout is not None:
        settings["innodb_lock_wait_timeout"] = str(max(1, math.ceil(timeout) - 1))
    settings.update(variables)
    return {
        "autocommit": True,
        "charset": "utf8mb4",
        "client_flag": FOUND_ROWS,
        "init_command": init_command(settings),
    }


def pool_options(config: DatabaseConfig, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of ``aiomysql.create_pool`` (or asyncmy's, the
    same) for a pool on the server ``config`` names, with what the store
    requires.

    ``host``, ``port``, ``user``, ``password`` and ``db`` come from the
    config (``SESSION_HOST``... ``SESSION_DATABASE``), ``maxsize`` from
    ``SESSION_POOL_SIZE`` (``minsize`` 0: no connection is opened before
    one is needed), ``connect_timeout`` from ``SESSION_DB_TIMEOUT``, the
    session variables from ``SESSION_DB_VARIABLES``; ``pool_recycle`` is
    3600 s.

    :param overrides: driver arguments that win over these (``maxsize=20``,
        ``unix_socket=...``); ``autocommit``, ``charset`` and ``client_flag``
        cannot be changed (the store needs them).
    :raises ConfigError: if the host, user or database is not set, or an
        override changes a required option.

    .. versionadded:: 0.3
    """
    _require_server(config, "a session pool", host=config.host or overrides.get("unix_socket"))
    options = connect_options(
        host=config.host,
        port=config.port,
        user=config.user,
        password=config.password,
        database=config.database,
        pool_size=config.pool_size,
        timeout=config.db_timeout,
        variables=check_variables(dict(config.db_variables)),
    )
    for name in ("autocommit", "charset", "client_flag"):
        if name in overrides and overrides[name] != options[name]:
            raise ConfigError(
                f"pool_options(): {name}={overrides[name]!r} cannot be used: the session "
                f"store needs {name}={options[name]!r}"
            )
    options.update(overrides)
    return options


def connect_options(
    *,
    host: str | None,
    port: int,
    user: str | None,
    password: str,
    database: str | None,
    pool_size: int,
    timeout: float,
    variables: Mapping[str, str],
    pool_recycle: int = POOL_RECYCLE,
    unix_socket: str | None = None,
) -> dict[str, Any]:
    """The pool arguments (either driver's) for a server, with what the
    store requires (`checked_options` of ``variables``, already checked):
    what `pool_options` and the store's own pool are both made with."""
    return {
        "minsize": 0,
        "maxsize": pool_size,
        "pool_recycle": pool_recycle,
        "host": host or "localhost",
        "port": port,
        "user": user,
        "password": password,
        "db": database,
        **({} if unix_socket is None else {"unix_socket": unix_socket}),
        "connect_timeout": timeout,
        **checked_options(variables, timeout=timeout),
    }


async def create_pool(config: DatabaseConfig, **overrides: Any) -> Pool:
    """Return a new pool on the server ``config`` names, made with
    `pool_options` (``overrides`` win), on the running event loop, by the
    driver ``SESSION_DB_DRIVER`` chooses (aiomysql or asyncmy).

    Pass it to `.MySQLStore` as ``pool=`` (``MySQLStore.from_config(config,
    pool=pool)``) and use it for the application's own queries too.  The
    store never closes a pool it did not make: close it at shutdown with
    ``pool.close(); await pool.wait_closed()``.  No connection is opened
    here (``minsize`` 0), so this does not fail when the server is down.

    .. versionadded:: 0.3
    .. versionchanged:: 0.3
       An asyncmy pool when ``SESSION_DB_DRIVER`` chooses asyncmy.
    """
    options = pool_options(config, **overrides)
    return await load(config.db_driver).create_pool(options)


def store_arguments(config: DatabaseConfig, options: Mapping[str, Any]) -> dict[str, Any]:
    """The `.MySQLStore` arguments of `.MySQLStore.from_config`: the config's
    (``SESSION_HOST``... ``SESSION_DB_VARIABLES``), then ``options``.

    :raises ConfigError: if the host, user or database is not set (and no
        ``pool`` is given).
    """
    if "pool" not in options:
        _require_server(config, "MySQLStore", host=config.host)
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
        "session_variables": dict(config.db_variables),
        "driver": config.db_driver,
    }
    values.update(options)
    return values


def _require_server(config: DatabaseConfig, who: str, *, host: Any) -> None:
    """Raise a `.ConfigError` naming what ``who`` lacks of host, user and database."""
    missing = [
        name
        for name, value in (
            ("SESSION_HOST", host),
            ("SESSION_USER", config.user),
            ("SESSION_DATABASE", config.database),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"{who} needs {', '.join(missing)}: set them in the environment or .env "
            "(SESSION_PASSWORD too, if the user has one)"
        )
