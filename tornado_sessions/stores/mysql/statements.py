"""The statements the store sends, and how their rows become records.

Every statement has ``%s`` placeholders for its values, which reach the
server only through the driver's parameter binding (``cursor.execute`` or,
for a batch, ``cursor.mogrify`` with the connection's own escaping); the only
thing formatted into the text is the table name, checked at construction.

=================  ============================================================
store call         statement
=================  ============================================================
``get``            ``SELECT ... WHERE id = ?`` (the store checks the row's expiry)
``set`` (new)      ``INSERT`` (a duplicate id raises `.SessionExists`)
``set`` (update)   ``UPDATE ... WHERE id = ? AND version = ? AND expires_at > ?``
``touch``          ``UPDATE ... WHERE id = ? AND expires_at > ? AND ttl <=> ?``
``destroy``        ``DELETE ... WHERE id = ? AND expires_at > ? [AND version = ?]``
``live``           ``SELECT id ... WHERE id IN (?, ...) AND expires_at > ?``
=================  ============================================================

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..base import SessionInfo, SessionRecord, hash_sid
from .schema import check_table_name

__all__ = [
    "KEY_INDEX",
    "Statements",
    "fields",
    "info",
    "insert_args",
    "key",
    "update_args",
]

#: The position of the hex key in `update_args` (batches sort on it).
KEY_INDEX = 11
#: Most recently used first: the last write or touch to the microsecond (a
#: row of 0.2 has only its seconds), then the most recently created (see
#: `.stamps`), then the key (only stamps of two processes can tie).
RECENT_FIRST = (
    "COALESCE(updated_us, updated_at * 1000000) DESC, "
    "COALESCE(created_seq, created_at * 1000000) DESC, id DESC"
)


class Statements:
    """The SQL text of every statement on one table."""

    def __init__(self, table: str) -> None:
        t = f"`{check_table_name(table)}`"
        self.table = t
        # One column, not five: PyMySQL parses a result's column descriptions
        # in pure Python, and that was the largest cost of the read path.
        # The key alone: the store drops an expired row (`MySQLStore.get`),
        # which costs the server less than a condition on expires_at (about 9 us
        # per lone SELECT, 20-30 per batch, measured in MariaDB's slow log).
        self.select_one = (
            f"SELECT CONCAT(created_at, ' ', expires_at, ' ', version, ' ', COALESCE(ttl, 0), "
            f"' ', data) FROM {t} WHERE id = UNHEX(%s)"
        )
        self.insert = (
            f"INSERT INTO {t} (id, data, created_at, updated_at, expires_at, version, ttl, "
            "user_id, ip, user_agent, updated_us, created_seq) "
            "VALUES (UNHEX(%s), %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s)"
        )
        # The expiry never moves earlier unless the lifetime changes (so a
        # concurrent touch is not undone): expires_at is assigned before ttl,
        # and so compares the stored ttl.
        self.update = (
            f"UPDATE {t} SET data = %s, updated_at = %s, updated_us = %s, "
            "expires_at = IF(ttl <=> %s, GREATEST(expires_at, %s), %s), version = %s, "
            "ttl = %s, user_id = %s, ip = %s, user_agent = %s "
            "WHERE id = UNHEX(%s) AND version = %s AND expires_at > %s"
        )
        self.current = f"SELECT version, data FROM {t} WHERE id = UNHEX(%s) AND expires_at > %s"
        self.inserted = f"SELECT version, data, created_at FROM {t} WHERE id = UNHEX(%s)"
        self.delete_stale = f"DELETE FROM {t} WHERE id = UNHEX(%s) AND expires_at <= %s"
        # Only a live row: the row count then says whether the session was
        # still live (an expired row is left to the cleanup); with a version
        # (regenerate), only that version.
        self.destroy = (
            f"DELETE FROM {t} WHERE id = UNHEX(%s) AND expires_at > %s "
            "AND (%s IS NULL OR version = %s)"
        )
        # Only if the stored lifetime is the one the request loaded (so a
        # stale request cannot undo a set_expiry): the row count (found rows,
        # CLIENT.FOUND_ROWS) is 1 exactly when the touch applied.
        self.touch = (
            f"UPDATE {t} SET expires_at = %s, updated_at = %s, updated_us = %s "
            "WHERE id = UNHEX(%s) AND expires_at > %s AND ttl <=> %s"
        )
        self.length = f"SELECT COUNT(*) FROM {t} WHERE expires_at > %s"
        # stats(): exact counts of live and expired rows, each read from the
        # expires_at index alone (a range of it, never the rows), then the
        # server's estimate of the table's size.
        self.counts = (
            f"SELECT (SELECT COUNT(*) FROM {t} WHERE expires_at > %s), "
            f"(SELECT COUNT(*) FROM {t} WHERE expires_at <= %s AND id <> UNHEX(%s))"
        )
        self.size = (
            "SELECT COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) "
            "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
        )
        # Live rows whose data is still plain JSON (written before sealing):
        # a scan of the live rows' data prefixes.
        self.unsealed = f"SELECT COUNT(*) FROM {t} WHERE expires_at > %s AND LEFT(data, 3) <> 's1:'"
        self.clear = f"DELETE FROM {t}"
        # The cleanup: the oldest expired keys (a non-locking read on the
        # expires_at index, the lease row left out), then a delete of those
        # keys, still if expired.  The lease: a reserved row (admin.py).
        self.expired_keys = (
            f"SELECT LOWER(HEX(id)) FROM {t} WHERE expires_at <= %s AND id <> UNHEX(%s) "
            "ORDER BY expires_at LIMIT %s"
        )
        self.take_lease = (
            f"UPDATE {t} SET data = %s, updated_at = %s WHERE id = UNHEX(%s) AND updated_at <= %s"
        )
        self.insert_lease = (
            f"INSERT INTO {t} (id, data, created_at, updated_at, expires_at, version) "
            "VALUES (UNHEX(%s), %s, %s, %s, 0, 1)"
        )
        self.renew_lease = f"UPDATE {t} SET updated_at = %s WHERE id = UNHEX(%s) AND data = %s"
        self.release_lease = f"DELETE FROM {t} WHERE id = UNHEX(%s) AND data = %s"
        self.destroy_user = f"DELETE FROM {t} WHERE user_id = %s"
        self.destroy_user_except = f"DELETE FROM {t} WHERE user_id = %s AND id <> UNHEX(%s)"
        # The user's other sessions but the most recently used: the derived
        # table (materialized, LIMIT) keeps this one statement legal.
        self.limit_user = (
            f"DELETE FROM {t} WHERE user_id = %s AND id <> UNHEX(%s) AND expires_at > %s "
            "AND id NOT IN ("
            f"SELECT id FROM (SELECT id FROM {t} WHERE user_id = %s AND id <> UNHEX(%s) "
            f"AND expires_at > %s ORDER BY {RECENT_FIRST} LIMIT %s) AS kept)"
        )
        # A fingerprint is the first 6 bytes of the key: the one row in range.
        self.destroy_user_one = (
            f"DELETE FROM {t} WHERE user_id = %s AND id BETWEEN UNHEX(%s) AND UNHEX(%s) LIMIT 1"
        )

    def select_many(self, count: int) -> str:
        """One ``SELECT ... WHERE id IN (...)`` for ``count`` keys (expired
        rows included: see `select_one`)."""
        marks = ", ".join(["UNHEX(%s)"] * count)
        return (
            f"SELECT CONCAT(LOWER(HEX(id)), ' ', created_at, ' ', expires_at, ' ', version, "
            f"' ', COALESCE(ttl, 0), ' ', data) FROM {self.table} WHERE id IN ({marks})"
        )

    def live_many(self, count: int) -> str:
        """The live ones among ``count`` keys (`.SessionStore.live`): the
        primary key alone, no row is read."""
        marks = ", ".join(["UNHEX(%s)"] * count)
        return f"SELECT LOWER(HEX(id)) FROM {self.table} WHERE id IN ({marks}) AND expires_at > %s"

    def delete_expired(self, count: int) -> str:
        """Delete ``count`` keys, each only if it is (still) expired."""
        marks = ", ".join(["UNHEX(%s)"] * count)
        return f"DELETE FROM {self.table} WHERE id IN ({marks}) AND expires_at <= %s"

    def infos(self, where: str) -> str:
        """The listing of sessions matching ``where`` (a fixed condition)."""
        return (
            "SELECT id, created_at, updated_at, expires_at, user_id, ip, user_agent "
            f"FROM {self.table} WHERE {where} ORDER BY {RECENT_FIRST}"
        )


def key(sid: str) -> str:
    """The row key of ``sid`` as 64 hex digits (``UNHEX(%s)`` in the SQL:
    aiomysql 0.3 cannot bind bytes with PyMySQL >= 1.1)."""
    return hash_sid(sid).hex()


def update_args(
    record: SessionRecord,
    data: str,
    hex_key: str,
    new_version: int,
    expected: int,
    now: int,
    used: int,
) -> tuple[Any, ...]:
    """The values of `Statements.update`, in order (the key at `KEY_INDEX`):
    ``record`` with ``data`` as stored (sealed); ``used`` is the write's
    stamp (`.SessionStore.stamp`)."""
    return (
        data,
        now,
        used,
        record.ttl,
        record.expires_at,
        record.expires_at,
        new_version,
        record.ttl,
        record.user_id,
        record.ip,
        record.user_agent,
        hex_key,
        expected,
        now,
    )


def insert_args(
    record: SessionRecord, data: str, hex_key: str, now: int, used: int
) -> tuple[Any, ...]:
    """The values of `Statements.insert`, in order: ``record`` with ``data``
    as stored (sealed); ``used`` is the creation's stamp
    (`.SessionStore.stamp`), its last use and its place in the creation
    order."""
    return (
        hex_key,
        data,
        record.created_at,
        now,
        record.expires_at,
        record.ttl,
        record.user_id,
        record.ip,
        record.user_agent,
        used,
        used,
    )


def fields(text: str) -> tuple[int, int, int, int | None, str]:
    """The created, expires, version, ttl and data of a ``"created expires
    version ttl data"`` row text (the data as stored)."""
    # The four integers cannot contain a space, so one split with a limit
    # gives back the stored text intact.
    created, expires, version, ttl, data = text.split(" ", 4)
    return int(created), int(expires), int(version), int(ttl) or None, data


def user_text(value: Any) -> str | None:
    """A stored user id as text: the column holds its utf-8 bytes
    (``VARBINARY``, compared byte for byte), or text in a table not yet
    upgraded."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return None if value is None else str(value)


def info(row: Sequence[Any]) -> SessionInfo:
    """The `.SessionInfo` of a row of `Statements.infos`."""
    hex_id, created, updated, expires, user_id, ip, agent = row
    return SessionInfo(
        fingerprint=bytes(hex_id).hex()[:12],
        created_at=int(created),
        updated_at=int(updated),
        expires_at=int(expires),
        user_id=user_text(user_id),
        ip=ip,
        user_agent=agent,
    )
