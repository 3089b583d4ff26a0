"""The connection's character set: forced to utf8mb4, checked on every
new connection.

The driver escapes values on the client (a backslash before each quote)
and sends the statement in utf8mb4.  If the server reads it in another
character set, a multibyte one such as GBK, SJIS or BIG5, the last byte of
a crafted character and the escaping backslash can read as one character:
the quote that follows then ends the string, and the rest of the value is
SQL.  A server's ``init_connect='SET NAMES gbk'`` (it runs at login, for
every user without SUPER) or a ``SET NAMES`` in an application's
``init_command`` does exactly that to a connection that asked for utf8mb4.

So the store:

* ends the ``SET SESSION`` of its own connections with ``NAMES utf8mb4``,
  which runs after ``init_connect`` (`FORCE`);
* refuses, by name, session variables that would change the character set
  or collation of a connection (`refused_variable`);
* checks ``character_set_client``, ``character_set_connection`` and
  ``character_set_results`` on every new connection of every pool, its own
  or one passed in, before the connection's first statement (`check`), and
  refuses with `CharsetError` naming the variable.

.. versionadded:: 0.3
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, StoreError

if TYPE_CHECKING:
    from .driver import Driver

__all__ = ["FORCE", "SAFE_CHARSETS", "VARIABLES", "CharsetError", "check", "refused_variable"]

#: Connection character sets whose encoding keeps every value intact and
#: cannot swallow a quoting backslash (unlike GBK, SJIS, BIG5...).
SAFE_CHARSETS = frozenset({"utf8mb4", "utf8", "utf8mb3"})
#: What ends the ``SET SESSION`` of the store's own connections.
FORCE = "NAMES utf8mb4"
#: The server variables that say how the server reads a statement and
#: writes its results, checked on every new connection.
VARIABLES = ("character_set_client", "character_set_connection", "character_set_results")
_QUERY = "SELECT " + ", ".join(f"@@{name}" for name in VARIABLES)
#: Session variables no one may set through the store: they would undo `FORCE`.
_REFUSED = re.compile(r"(character_set_|collation_)", re.IGNORECASE)


class CharsetError(StoreError, ConfigError):
    """A connection does not use utf8mb4 on both sides, so the store will
    not send it a value.

    It is a `.StoreError` (a request that meets it gets a 503, and the
    connection is closed, never reused) and a `.ConfigError` (the fix is in
    the server's or the pool's settings, which the message names).

    .. versionadded:: 0.3
    """


def refused_variable(name: str, source: str = "SESSION_DB_VARIABLES") -> ConfigError | None:
    """The error for a session variable that would change the connection's
    character set or collation (``character_set_*``, ``collation_*``), or
    None if ``name`` is not one."""
    if not _REFUSED.match(name):
        return None
    return ConfigError(
        f"session variable {name} is not accepted ({source}): the store keeps its connections "
        "in utf8mb4 (SET NAMES utf8mb4), and another character set or collation there would "
        "let a crafted value escape its quotes; remove it"
    )


async def check(conn: Any, driver: Driver, *, own_pool: bool) -> None:
    """Check one connection before its first statement: the driver's
    encoding and the server's `VARIABLES` must all be in `SAFE_CHARSETS`.

    :raises CharsetError: naming the first variable that is not (the
        caller closes the connection).
    """
    found = [("the pool's charset", driver.charset(conn).lower())]
    cur = await driver.cursor(conn)
    try:
        await cur.execute(_QUERY)
        row = await cur.fetchone()
    finally:
        await cur.close()
    found += [(name, _text(value).lower()) for name, value in zip(VARIABLES, row, strict=True)]
    for name, charset in found:
        if charset not in SAFE_CHARSETS:
            raise CharsetError(_message(name, charset, own_pool, driver.name))


def _message(name: str, charset: str, own_pool: bool, driver: str) -> str:
    shown = charset or "unknown"
    if own_pool:
        return (
            f"a new connection of the session store has {name}={shown!r} although it set "
            "NAMES utf8mb4: the server changes it (check init_connect and the server's "
            "character_set_* settings); session data needs utf8mb4, so the store sends "
            "nothing on it"
        )
    return (
        f"the {driver} pool given to MySQLStore has {name}={shown!r}; session data needs "
        'utf8mb4 (utf8/utf8mb3 are accepted): create the pool with charset="utf8mb4" and no '
        "SET NAMES of another set, and check the server's init_connect "
        "(see MySQLStore.pool_options())"
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value or "")
