"""The operations command line: ``python -m tornado_sessions`` (or ``tornado-sessions``).

Subcommands::

    tornado-sessions secret                  # print a new SESSION_SECRET
    tornado-sessions create-table            # print the DDL of the sessions table
    tornado-sessions create-table --apply    # ... and run it against the database
    tornado-sessions clear-expired           # delete expired sessions, in batches
    tornado-sessions stats                   # live, expired and unsealed sessions, size

The database commands read the same settings as the library, through
`.DatabaseConfig.from_env` (environment variables, then ``.env`` in the
current directory): ``SESSION_HOST``, ``SESSION_PORT``, ``SESSION_USER``,
``SESSION_PASSWORD``, ``SESSION_DATABASE``, ``SESSION_TABLE`` and
``SESSION_DB_TIMEOUT``.  They read no other variable: they need no
``SESSION_SECRET``, and the cookie settings do not concern them.

Errors are reported as one line on standard error, with exit status 1 (the
database failed) or 2 (the configuration or the command line is wrong).

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .config import ENV_NAMES, DatabaseConfig, generate_secret
from .env import looked_in as _looked_in
from .errors import ConfigError, SessionError, StoreError
from .progress import ProgressBar

if TYPE_CHECKING:
    from .stores.mysql import MySQLStore

__all__ = ["main"]

PROG = "tornado-sessions"

#: Exit statuses.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_DB_VARIABLES = "SESSION_HOST, SESSION_PORT, SESSION_USER, SESSION_PASSWORD and SESSION_DATABASE"


class CLIError(Exception):
    """An error reported as one line, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


# -- configuration -------------------------------------------------------------


def _db_config(table: str | None) -> DatabaseConfig:
    """Read the database settings (and only those) from the environment."""
    overrides: dict[str, Any] = {} if table is None else {"table": table}
    try:
        return DatabaseConfig.from_env(**overrides)
    except ConfigError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None


def _require_database(config: DatabaseConfig) -> None:
    for field in ("host", "database", "user"):
        if getattr(config, field) is None:
            var = ENV_NAMES[field]
            raise CLIError(
                f"{var} is not set ({_looked_in(var)}): set {_DB_VARIABLES} (in the "
                "environment or in .env) to reach the MySQL/MariaDB server that holds the "
                "sessions table",
                EXIT_USAGE,
            )


def _where(config: DatabaseConfig) -> str:
    return f"table {config.table!r} in database {config.database!r} on {config.host}:{config.port}"


def _make_store(config: DatabaseConfig, create_table: bool = False) -> MySQLStore:
    from .stores.mysql import MySQLStore

    # Only create-table creates the table: other commands never do it as a
    # side effect.  Either way, opening the store checks an existing table.
    return MySQLStore.from_config(
        config, create_table=create_table, pool_size=1, cleanup_interval=None
    )


# -- commands --------------------------------------------------------------------


def _cmd_secret(args: argparse.Namespace) -> int:
    print(generate_secret())
    return EXIT_OK


def _cmd_create_table(args: argparse.Namespace) -> int:
    config = _db_config(args.table)
    from .stores.mysql import MySQLStore

    ddl = MySQLStore.create_table_sql(config.table)
    if not args.apply:
        print(ddl.rstrip().rstrip(";") + ";")
        return EXIT_OK
    _require_database(config)

    async def apply(store: MySQLStore) -> tuple[str | None, int]:
        # Opening the store created the table, upgraded it or checked it.
        return store.table_state, await store.count_unsealed()

    state, unsealed = _run(config, apply, create_table=True)
    where = _where(config)
    if state == "created":
        print(f"created {where}")
    elif state == "upgraded":
        print(f"upgraded {where}: gave it the columns this version needs, rows intact")
    else:
        print(f"{where} already exists with every column the store needs: nothing to do")
    if unsealed:
        print(f"{unsealed:,} live sessions hold unsealed data (from 0.2): sealed at next write")
    return EXIT_OK


def _cmd_stats(args: argparse.Namespace) -> int:
    config = _db_config(args.table)
    _require_database(config)

    async def stats(store: MySQLStore) -> dict[str, Any]:
        return {**await store.stats(), "unsealed": await store.count_unsealed()}

    result = _run(config, stats)
    if args.json:
        document = {"table": config.table, "database": config.database, **result}
        print(json.dumps({**document, "estimated": ["table_bytes"]}))
        return EXIT_OK
    size = int(result.get("table_bytes", 0))
    print(f"{_where(config)}")
    print(f"live sessions:  {int(result.get('live', 0)):,}")
    print(f"expired rows:   {int(result.get('expired', 0)):,}")
    print(f"unsealed:       {int(result['unsealed']):,} (live, from 0.2: sealed at next write)")
    print(f"table size:     ~{_human_bytes(size)} ({size:,} bytes)")
    print(
        "(the counts are exact; the size is the server's estimate, which it refreshes "
        f"only now and then: ANALYZE TABLE `{config.table}` refreshes it)"
    )
    return EXIT_OK


def _cmd_clear_expired(args: argparse.Namespace) -> int:
    config = _db_config(args.table)
    _require_database(config)
    show = args.progress if args.progress is not None else sys.stderr.isatty()

    async def clear(store: MySQLStore) -> int:
        bar: ProgressBar | None = None
        if show:
            expired = int((await store.stats()).get("expired", 0))
            if expired:
                bar = ProgressBar(expired, sys.stderr, "expired sessions deleted")
                bar.update(0, force=True)
        done = 0

        def progress(deleted: int) -> None:
            nonlocal done
            done = deleted
            if bar is not None:
                bar.update(deleted)

        try:
            deleted = await store.clear_expired(batch_size=args.batch_size, progress=progress)
        finally:
            if bar is not None:
                bar.close(done)
        return int(deleted)

    deleted = _run(config, clear)
    print(f"deleted {deleted:,} expired session{'s' if deleted != 1 else ''} from {_where(config)}")
    return EXIT_OK


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# -- running ---------------------------------------------------------------------


_log = logging.getLogger("tornado_sessions.cli")
_TABLE_STATES = {
    "created": "created",
    "exists": "exists with every column the store needs",
    "upgraded": "upgraded",
}


def _run(config: DatabaseConfig, work: Any, *, create_table: bool = False) -> Any:
    """Open a store on ``config``, run ``await work(store)``, close the store."""

    async def go() -> Any:
        store = _make_store(config, create_table)
        started = time.monotonic()
        try:
            # What -v shows (INFO): the server, the table, the round trips.
            _log.info("connecting to %s", _where(config))
            await store.open()
            server = store.server
            _log.info(
                "server %s (%s); table %r %s; %.1f ms",
                server.version if server else "?",
                "Galera" if server and server.galera else "not a Galera node",
                config.table,
                _TABLE_STATES.get(store.table_state or "", "checked"),
                (time.monotonic() - started) * 1000,
            )
            result = await work(store)
            _log.info(
                "done: %d round trips to the server in %.1f ms",
                store.round_trips,
                (time.monotonic() - started) * 1000,
            )
            return result
        finally:
            try:
                await store.close()
            except Exception:  # the original error matters more
                logging.getLogger(__name__).debug("closing the store failed", exc_info=True)

    try:
        return asyncio.run(go())
    except (ConfigError, ValueError) as exc:
        raise CLIError(_one_line(exc), EXIT_USAGE) from None
    except SessionError as exc:  # StoreError: its message names the server and table
        message = _one_line(exc)
        if "error 1146" in message:  # the command's own advice, once, not the store's
            message = message.split("; create it with", 1)[0]
            message += f"; create it with: {PROG} create-table --apply"
        raise CLIError(message) from None
    except (TimeoutError, OSError) as exc:
        raise CLIError(
            f"cannot reach the database server at {config.host}:{config.port}: "
            f"{_one_line(exc) or type(exc).__name__} (check {_DB_VARIABLES})"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operations for tornado_sessions: secrets and the MySQL/MariaDB session table. "
        f"Database commands read {_DB_VARIABLES}, SESSION_TABLE and SESSION_DB_TIMEOUT "
        "from the environment or from .env in the current directory.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also say, on standard error, which server and version answered, what the check "
        "of the table found, and how many round trips and milliseconds the command took",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "secret",
        help="print a new random secret for SESSION_SECRET",
        description="Print a new random secret (64 url-safe characters, 384 bits) to put in "
        "SESSION_SECRET, in the environment or in .env. Every process of the application "
        "needs the same one. Needs no database and no configuration.",
    )
    p.set_defaults(func=_cmd_secret)

    def table_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--table", help="the sessions table (default: SESSION_TABLE, else 'sessions')"
        )

    p = sub.add_parser(
        "create-table",
        help="print the CREATE TABLE statement (--apply: run it)",
        description="Print the CREATE TABLE statement of the sessions table (no database "
        "needed), to run it yourself or put it in your migrations. With --apply, connect "
        f"({_DB_VARIABLES}) and create the table if it is missing, upgrade a table made by "
        "an earlier version (rows intact), or check the columns of an existing one; it "
        "says which it did.",
    )
    p.add_argument(
        "--apply", action="store_true", help="create the table in the configured database"
    )
    table_option(p)
    p.set_defaults(func=_cmd_create_table)

    p = sub.add_parser(
        "clear-expired",
        help="delete expired sessions in batches",
        description="Delete the expired sessions of the table, a batch of rows per "
        "statement (so that no statement holds many locks), and print how many went. "
        "Safe to run while the application serves, and from several machines at once "
        "(a cron job, say); MySQLStore also does it by itself, every 15 minutes by default.",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rows deleted per statement (default: the store's)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on standard error (default: when it is a terminal)",
    )
    table_option(p)
    p.set_defaults(func=_cmd_clear_expired)

    p = sub.add_parser(
        "stats",
        help="show live sessions, expired rows, unsealed rows and the table size",
        description="Show the number of live sessions and of expired rows not yet deleted "
        "(exact counts, read from the expiry index), and the table's size on disk (the "
        "server's estimate, which it refreshes only now and then).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    table_option(p)
    p.set_defaults(func=_cmd_stats)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status.

    :param argv: the arguments (without the program name); by default
        ``sys.argv[1:]``.

    .. versionadded:: 0.1
    """
    parser = _parser()
    args = parser.parse_args(argv)  # exits with status 2 and a usage line on bad arguments
    root = logging.getLogger()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif not root.handlers:
        # Without a handler, logging's last resort would print store warnings
        # next to our one-line error; the error line says what matters.
        root.addHandler(logging.NullHandler())
    with warnings.catch_warnings():
        # The server's Notes (e.g. "table already exists") arrive as warnings.
        warnings.simplefilter("ignore")
        try:
            return int(args.func(args))
        except CLIError as exc:
            _error(str(exc))
            return exc.status
        except StoreError as exc:  # pragma: no cover - _run converts these
            _error(_one_line(exc))
            return EXIT_FAILURE
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
        except Exception as exc:  # one line, never a traceback
            if os.environ.get("TORNADO_SESSIONS_DEBUG"):
                raise
            _error(f"{type(exc).__name__}: {_one_line(exc)}")
            return EXIT_FAILURE


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
