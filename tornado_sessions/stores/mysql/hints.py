"""What a server error means, and what to check: the hints that end the
store's error messages.

.. versionadded:: 0.2
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEADLOCK", "DUPLICATE", "LOST", "LOCK_WAIT", "code_of", "hint", "message_of"]

#: Error codes meaning the connection was lost: retried once on a fresh one.
#: 2003 can't connect, 2006 gone away, 2013 lost during query, 4031 idle
#: disconnect (MySQL 8.0.24+), 0 aiomysql's "not connected".
LOST = frozenset({0, 2003, 2006, 2013, 4031})
#: A deadlock, or on a Galera cluster a certification conflict.
DEADLOCK = 1213
LOCK_WAIT = 1205
DUPLICATE = 1062

_GRANT = "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER ON <database>.* TO <user>"

HINTS: dict[int, str] = {
    0: "the connection was closed; check that the server is up",
    1040: "the server has too many connections: lower SESSION_POOL_SIZE or raise max_connections",
    1044: f"the user has no rights on the database: {_GRANT}",
    1045: "the server refused the login: check SESSION_USER and SESSION_PASSWORD",
    1047: "this Galera node is not ready for queries (it is joining, a donor, or out of the "
    "primary component): check wsrep_local_state_comment (Synced) and wsrep_cluster_status "
    "(Primary) on it, or point SESSION_HOST at a synced node",
    1049: "the database does not exist: create it, or fix SESSION_DATABASE",
    1142: f"the user lacks a privilege on the table: {_GRANT}",
    1146: "create it with python -m tornado_sessions create-table --apply (or run the DDL "
    "MySQLStore.create_table_sql() returns), or let the store create it (create_table=True)",
    1180: "the commit failed: on a Galera cluster this node is not connected to the primary "
    "component (a network split or too few nodes up): check wsrep_cluster_status and "
    "wsrep_cluster_size on the nodes",
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

#: On a cluster some errors mean something else.
_CLUSTER_HINTS: dict[int, str] = {
    1213: "certification conflicts kept happening after retries: writes to the same sessions "
    "through other Galera nodes won each time (many app instances saving one session through "
    "different nodes); send one application's traffic to one node, or raise the retries "
    "(wsrep_retry_autocommit)",
}


def hint(code: int | None, *, cluster: bool = False) -> str:
    """The hint for error ``code`` (None: no answer in time)."""
    if cluster and code in _CLUSTER_HINTS:
        return _CLUSTER_HINTS[code]
    return HINTS.get(code if code is not None else -1, "check the server's error log")


def code_of(exc: BaseException) -> int:
    """The server's (or the driver's) error code of ``exc`` (0 if none)."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return 0


def message_of(exc: BaseException) -> str:
    """The server's message of ``exc``."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2:
        return str(args[1])
    return str(exc) or type(exc).__name__
