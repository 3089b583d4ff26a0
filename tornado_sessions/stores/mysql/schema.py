"""The sessions table: its DDL, the check of an existing table at first use,
and the upgrade of a table made by an earlier version.

A store checks its table once, with one query on ``information_schema``:
a missing table is created (when allowed), a table of an earlier layout is
upgraded in place without losing a row (when allowed; otherwise the error
says what to run), and a table of another layout (say express-mysql-session's)
is refused with a message naming the missing columns.

.. versionadded:: 0.2
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Literal

from ...errors import ConfigError, StoreError
from .connection import Connections, text_of

__all__ = ["COLUMNS", "check_table_name", "create_table_sql", "ensure_table"]

log = logging.getLogger("tornado_sessions.stores.mysql")

_TABLE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}\Z")
#: The columns the store reads and writes.
COLUMNS = (
    "id",
    "data",
    "created_at",
    "updated_at",
    "expires_at",
    "version",
    "ttl",
    "user_id",
    "ip",
    "user_agent",
    "updated_us",
    "created_seq",
)
#: Columns added since 0.1, with their definitions: an older table gains
#: them at first use (``ALTER TABLE ... ADD COLUMN``), rows intact.
ADDED = {
    "ttl": "`ttl` INT UNSIGNED NULL AFTER `version`",
    # 0.3: last use and creation to the microsecond (`.stamps`), for the
    # per-user cap's order; NULL on older rows (their seconds stand in).
    "updated_us": "`updated_us` BIGINT NULL AFTER `ttl`",
    "created_seq": "`created_seq` BIGINT NULL AFTER `updated_us`",
}
#: Columns whose type changed since an earlier version: the type they must
#: have (``information_schema``'s ``DATA_TYPE``) and their definition, which
#: ``ALTER TABLE ... MODIFY COLUMN`` gives an older table, rows intact.
#: ``user_id`` was ``VARCHAR ... utf8mb4_bin``, whose PAD SPACE comparison
#: made ``"alice "`` alice (0.3: the utf-8 bytes, compared byte for byte).
CHANGED = {"user_id": ("varbinary", "`user_id` VARBINARY(1020) NULL")}

Outcome = Literal["created", "exists", "upgraded"]


def check_table_name(table: str) -> str:
    """Return ``table`` if it is an accepted table name, else raise `.ConfigError`."""
    if not isinstance(table, str) or not _TABLE_NAME.match(table):
        raise ConfigError(
            f"table name {table!r} is not accepted (SESSION_TABLE): use 1 to 64 letters, "
            "digits and underscores"
        )
    return table


def create_table_sql(table: str = "sessions") -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` statement for ``table``."""
    name = check_table_name(table)
    return (
        f"CREATE TABLE IF NOT EXISTS `{name}` (\n"
        "  `id` BINARY(32) NOT NULL,\n"
        "  `data` MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n"
        "  `created_at` BIGINT NOT NULL,\n"
        "  `updated_at` BIGINT NOT NULL,\n"
        "  `expires_at` BIGINT NOT NULL,\n"
        "  `version` INT UNSIGNED NOT NULL,\n"
        "  `ttl` INT UNSIGNED NULL,\n"
        "  `updated_us` BIGINT NULL,\n"
        "  `created_seq` BIGINT NULL,\n"
        "  `user_id` VARBINARY(1020) NULL,\n"
        "  `ip` VARCHAR(45) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,\n"
        "  `user_agent` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,\n"
        "  PRIMARY KEY (`id`),\n"
        f"  KEY `{name}_expires_at` (`expires_at`),\n"
        f"  KEY `{name}_user_id` (`user_id`)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def upgrade_sql(table: str, missing: Sequence[str], changed: Sequence[str] = ()) -> str:
    """The ``ALTER TABLE`` that adds ``missing`` columns (from `ADDED`) and
    gives ``changed`` ones their current type (from `CHANGED`)."""
    name = check_table_name(table)
    parts = [f"ADD COLUMN {ADDED[c]}" for c in missing]
    parts += [f"MODIFY COLUMN {CHANGED[c][1]}" for c in changed]
    return f"ALTER TABLE `{name}` " + ", ".join(parts)


def _outdated(columns: dict[str, str]) -> list[str]:
    """The columns of `CHANGED` that ``columns`` (name: type) has with an older type."""
    return [c for c, (kind, _) in CHANGED.items() if c in columns and columns[c] != kind]


def _needs(missing: list[str], changed: list[str]) -> str:
    """What an older table lacks, in words."""
    parts = []
    if missing:
        parts.append(f"lacks the column(s) {', '.join(missing)}")
    if changed:
        parts.append(f"has an older type for {', '.join(changed)}")
    return " and ".join(parts)


async def _columns(conns: Connections, table: str) -> dict[str, str]:
    result = await conns.execute(
        "checking the table",
        "SELECT LOWER(COLUMN_NAME), LOWER(DATA_TYPE) FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (table,),
        fetch=True,
    )
    return {text_of(name): text_of(kind) for name, kind in result.rows}


async def ensure_table(conns: Connections, table: str, *, create: bool) -> Outcome:
    """Make sure ``table`` exists with every column the store needs.

    :param create: create a missing table and upgrade an older one; when
        False, either is a `.StoreError` saying what to run.
    :returns: what happened: ``"created"``, ``"exists"`` or ``"upgraded"``.
    """
    columns = await _columns(conns, table)
    if not columns:
        if not create:
            raise conns.error("checking the table", 1146, f"table {table!r} does not exist")
        await conns.execute("creating the table", create_table_sql(table))
        log.info("Created the session table (%s)", conns.where())
        return "created"
    missing = [name for name in COLUMNS if name not in columns]
    foreign = [name for name in missing if name not in ADDED]
    if foreign or columns.get("id") != "binary":
        problem = (
            f"it lacks the columns {', '.join(foreign)}"
            if foreign
            else "its id column is not BINARY(32)"
        )
        raise StoreError(
            f"Session store failed checking the table ({conns.where()}): the table "
            f"exists but {problem}, so it was not made by MySQLStore; name another table "
            "(SESSION_TABLE), or drop this one and let the store create it "
            "(MySQLStore.create_table_sql() prints the statement)"
        )
    changed = _outdated(columns)
    if not missing and not changed:
        return "exists"
    statement = upgrade_sql(table, missing, changed)
    needs = _needs(missing, changed)
    if not create:
        raise StoreError(
            f"Session store failed checking the table ({conns.where()}): the table was made "
            f"by an earlier version and {needs}; upgrade it with: python -m tornado_sessions "
            f"create-table --apply (or run: {statement})"
        )
    try:
        await conns.execute("upgrading the table", statement)
    except StoreError:
        # Another process may have upgraded it at the same moment.
        now_there = await _columns(conns, table)
        if any(name not in now_there for name in missing) or _outdated(now_there):
            raise
        return "exists"
    log.info("Upgraded the session table: it %s, rows intact (%s)", needs, conns.where())
    return "upgraded"
