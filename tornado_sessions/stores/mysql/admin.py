"""What administration and housekeeping need: listings, counts, the per-user
queries, the cleanup of expired rows and the table's statistics.

`AdminQueries` is the part of `.MySQLStore` that no request's load or save
goes through; it runs on the store's connections and statements.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import StoreError
from ...values import user_arg
from ..base import SessionInfo
from . import statements
from .connection import Connections, NoAnswer, Result
from .hints import DEADLOCK, LOCK_WAIT

__all__ = ["AdminQueries"]

log = logging.getLogger("tornado_sessions.stores.mysql")

_FINGERPRINT = re.compile(r"[0-9a-fA-F]{12}\Z")
#: Slices of the key space a cleanup run takes in random order.
SLICES = 16
#: The most rows one cleanup batch deletes on a cluster.
CLUSTER_BATCH = 200


def _slice(index: int) -> tuple[str, str]:
    """The first and last key (hex) of slice ``index``."""
    digit = f"{index:x}"
    return digit + "0" * 63, digit + "f" * 63


class AdminQueries:
    """The store's listings, per-user queries, cleanup and statistics."""

    # Provided by MySQLStore.
    cleanup_interval: float | None
    cleanup_batch: int
    table: str
    _cleanup_task: asyncio.Task[None] | None
    _sql: statements.Statements
    _conns: Connections

    if TYPE_CHECKING:

        def now(self) -> int: ...

        async def _execute(
            self,
            doing: str,
            sql: str,
            args: tuple[Any, ...] = (),
            *,
            fetch: bool = False,
            deadlock_retries: int = 2,
        ) -> Result: ...

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

    # -- listings and per-user queries ----------------------------------------

    async def _infos(self, where: str, args: tuple[Any, ...]) -> list[SessionInfo]:
        result = await self._execute("listing sessions", self._sql.infos(where), args, fetch=True)
        return [statements.info(row) for row in result.rows]

    async def all(self) -> list[SessionInfo]:
        return await self._infos("expires_at > %s", (self.now(),))

    async def length(self) -> int:
        result = await self._execute(
            "counting sessions", self._sql.length, (self.now(),), fetch=True
        )
        return int(result.rows[0][0])

    async def clear(self) -> int:
        result = await self._execute("deleting all sessions", self._sql.clear)
        return result.rowcount

    async def clear_expired(
        self, batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Delete expired rows in batches; return how many were deleted.

        Several processes (on several nodes of a cluster) may run it at once.
        The key space is cut into `SLICES` slices, taken in a random order
        by each run, so that cleaners started together delete different
        rows.  Each batch is a non-locking read of the expired keys of a slice
        (on the ``expires_at`` index), then one ``DELETE`` of those keys by
        primary key (still only if expired), so no statement locks a row it
        does not delete.  On a Galera cluster a batch is at most
        `CLUSTER_BATCH` rows, so that foreground saves interleave with the
        cleanup's write sets.  A conflict with another cleaner (a deadlock or
        certification conflict, a lock wait timeout) ends the run quietly;
        the next run picks up.

        :param batch_size: rows per batch (default: ``cleanup_batch``).
        :param progress: called with the running total after each batch.

        .. versionadded:: 0.1
        .. versionchanged:: 0.2
           Safe to run in several processes at once; slices in random order.
        """
        batch = batch_size or self.cleanup_batch
        if self._conns.cluster is not None and batch_size is None:
            batch = min(batch, CLUSTER_BATCH)
        now = self.now()
        total = 0
        first = random.randrange(SLICES)
        for step in range(SLICES):
            low, high = _slice((first + step) % SLICES)
            while True:
                found = await self._execute(
                    "finding expired sessions",
                    self._sql.expired_keys,
                    (now, low, high, batch),
                    fetch=True,
                )
                keys = tuple(str(key) for (key,) in found.rows)
                if not keys:
                    break
                try:
                    result = await self._execute(
                        "deleting expired sessions",
                        self._sql.delete_expired(len(keys)),
                        (*keys, now),
                        deadlock_retries=0,
                    )
                except StoreError as exc:
                    if exc.code not in (DEADLOCK, LOCK_WAIT) and not isinstance(exc, NoAnswer):
                        raise
                    log.info(
                        "A cleanup run met another cleaner or a locked row (%s) and ended "
                        "after deleting %d expired sessions; the next run picks up",
                        f"error {exc.code}" if exc.code else "no answer in time",
                        total,
                    )
                    return total
                total += result.rowcount
                if progress is not None:
                    progress(total)
                if len(keys) < batch:
                    break
                await asyncio.sleep(0)  # let foreground work go first
        return total

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return await self._infos(
            "user_id = %s AND expires_at > %s", (user_arg(user_id), self.now())
        )

    async def destroy_user_sessions(self, user_id: str, *, except_sid: str | None = None) -> int:
        user = user_arg(user_id)
        if except_sid is None:
            result = await self._execute(
                "ending a user's sessions", self._sql.destroy_user, (user,)
            )
        else:
            result = await self._execute(
                "ending a user's sessions",
                self._sql.destroy_user_except,
                (user, statements.key(except_sid)),
            )
        return result.rowcount

    async def destroy_user_session(self, user_id: str, fingerprint: str) -> bool:
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            return False
        low = fingerprint.lower()
        result = await self._execute(
            "ending a user's session",
            self._sql.destroy_user_one,
            (user_arg(user_id), low + "00" * 26, low + "ff" * 26),
        )
        return result.rowcount > 0

    async def stats(self) -> dict[str, int]:
        """Return ``{"live": ..., "expired": ..., "table_bytes": ...}``.

        ``live`` and ``expired`` are exact counts at this moment, both from
        one statement that reads only the ``expires_at`` index (a range of
        it for each), so its time grows with the index, never with the
        session data.  ``table_bytes``, the data and index size, is the
        server's *estimate* (``information_schema.TABLES``), which InnoDB
        refreshes only now and then, and MySQL 8 also caches for a day
        (``information_schema_stats_expiry``): a table just filled can show
        a fraction of its size until ``ANALYZE TABLE`` refreshes it.

        .. versionadded:: 0.1
        .. versionchanged:: 0.2
           The counts come from the expiry index alone.
        """
        now = self.now()
        counts = await self._execute("counting sessions", self._sql.counts, (now, now), fetch=True)
        size = await self._execute("measuring the table", self._sql.size, (self.table,), fetch=True)
        live, expired = counts.rows[0]
        return {
            "live": int(live or 0),
            "expired": int(expired or 0),
            "table_bytes": int(size.rows[0][0]) if size.rows else 0,
        }
