"""What administration and housekeeping need: listings, counts, the per-user
queries, the cleanup of expired rows and the table's statistics.

`AdminQueries` is the part of `.MySQLStore` that no request's load or save
goes through; it runs on the store's connections and statements.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ...errors import StoreError
from ...values import user_arg
from ..base import SessionInfo
from . import statements
from .connection import Connections, Duplicate, NoAnswer, Result
from .hints import DEADLOCK, LOCK_WAIT

__all__ = ["AdminQueries"]

log = logging.getLogger("tornado_sessions.stores.mysql")

_FINGERPRINT = re.compile(r"[0-9a-fA-F]{12}\Z")
#: The key of the row that holds the cleanup lease while a run goes on: 32
#: zero bytes, which no SHA-256 of a session id is.  The row never counts as a
#: session (its ``expires_at`` is 0, the cleanup and the counts skip it); its
#: ``data`` and ``updated_at`` hold the holder's token and the lease's end,
#: and the run deletes it when it ends.
LEASE_KEY = "00" * 32
#: How long a cleanup lease lasts unless renewed (each batch renews it).
LEASE_SECONDS = 60
#: The most rows one cleanup batch deletes on a cluster.
CLUSTER_BATCH = 200
#: The longest pause between two batches of a cleanup run (seconds).
MAX_PAUSE = 1.0


def _is_conflict(exc: StoreError) -> bool:
    """A conflict with another writer, which a cleanup run yields to."""
    return exc.code in (DEADLOCK, LOCK_WAIT) or isinstance(exc, NoAnswer)


class AdminQueries:
    """The store's listings, per-user queries, cleanup and statistics."""

    # Provided by MySQLStore.
    cleanup_interval: float | None
    cleanup_batch: int
    table: str
    _cleanup_task: asyncio.Task[None] | None
    _sql: statements.Statements
    _conns: Connections
    #: The last `clear_expired` run skipped: another instance held the lease.
    cleanup_skipped: bool = False

    if TYPE_CHECKING:

        def now(self) -> int: ...

        def report_cleanup(self, count: int) -> None: ...

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

        One instance at a time cleans a table: a run first takes the cleanup
        lease (a reserved row, see `LEASE_KEY`), renews it after each batch
        and gives it back at the end, so that cleaners started at once in
        several processes, or on several nodes of a cluster, do not multiply
        the load: the others skip their run quietly (``cleanup_skipped``).  A
        lease whose holder died lapses after `LEASE_SECONDS`.

        Each batch is a non-locking read of the oldest expired keys (on the
        ``expires_at`` index), then one ``DELETE`` of those keys by primary key
        (still only if expired), so no statement locks a row it does not
        delete; after each batch the run pauses as long as the batch took, so
        foreground saves keep at least half the time.  On a Galera cluster a
        batch is at most `CLUSTER_BATCH` rows (small write sets).  A conflict
        (a deadlock or certification conflict, a lock wait timeout, no answer
        in time) ends the run quietly; the next run picks up.

        :param batch_size: rows per batch (default: ``cleanup_batch``).
        :param progress: called with the running total after each batch.

        .. versionadded:: 0.1
        .. versionchanged:: 0.2
           One instance at a time (the cleanup lease); paced; quiet on conflicts.
        """
        batch = batch_size or self.cleanup_batch
        if self._conns.cluster is not None and batch_size is None:
            batch = min(batch, CLUSTER_BATCH)
        now = self.now()
        token = await self._take_lease(now)
        self.cleanup_skipped = token is None
        if token is None:
            log.info(
                "Cleanup of expired sessions skipped: another instance holds the cleanup "
                "lease (%s)",
                self._conns.where(),
            )
            return 0
        total = 0
        try:
            while True:
                started = time.monotonic()
                found = await self._execute(
                    "finding expired sessions",
                    self._sql.expired_keys,
                    (now, LEASE_KEY, batch),
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
                    if not _is_conflict(exc):
                        raise
                    log.info(
                        "A cleanup run met a conflict (%s) and ended after deleting %d expired "
                        "sessions; the next run picks up",
                        f"error {exc.code}" if exc.code else "no answer in time",
                        total,
                    )
                    break
                total += result.rowcount
                self.report_cleanup(result.rowcount)
                if progress is not None:
                    progress(total)
                if len(keys) < batch or not await self._renew_lease(token, now):
                    break
                await asyncio.sleep(min(MAX_PAUSE, time.monotonic() - started))
        finally:
            await self._release_lease(token, now)
        return total

    async def _take_lease(self, now: int) -> str | None:
        """Take the cleanup lease if it is free or lapsed; return its token."""
        token = secrets.token_hex(8)
        until = now + LEASE_SECONDS
        try:
            try:
                await self._execute(
                    "taking the cleanup lease",
                    self._sql.insert_lease,
                    (LEASE_KEY, token, now, until),
                    deadlock_retries=0,
                )
                return token
            except Duplicate:  # held, or its holder died: take it over if lapsed
                taken = await self._execute(
                    "taking the cleanup lease",
                    self._sql.take_lease,
                    (token, until, LEASE_KEY, now),
                    deadlock_retries=0,
                )
                return token if taken.rowcount else None
        except StoreError as exc:
            if _is_conflict(exc):
                return None  # another cleaner took it at the same moment
            raise

    async def _renew_lease(self, token: str, now: int) -> bool:
        result = await self._execute(
            "renewing the cleanup lease",
            self._sql.renew_lease,
            (max(now, self.now()) + LEASE_SECONDS, LEASE_KEY, token),
            deadlock_retries=0,
        )
        return result.rowcount > 0

    async def _release_lease(self, token: str, now: int) -> None:
        try:
            await self._execute(
                "giving back the cleanup lease",
                self._sql.release_lease,
                (LEASE_KEY, token),
                deadlock_retries=0,
            )
        except StoreError as exc:  # it lapses by itself
            log.info("Could not give back the cleanup lease (it lapses by itself): %s", exc)

    async def live(self, sids: Iterable[str]) -> builtins.set[str]:
        """Return those of ``sids`` that are live, with one ``SELECT ...
        WHERE id IN (...)`` on their hashes, whatever their number.

        .. versionadded:: 0.3
        """
        by_key = {statements.key(sid): sid for sid in sids}
        if not by_key:
            return set()
        keys = tuple(by_key)
        result = await self._execute(
            "checking open WebSockets' sessions",
            self._sql.live_many(len(keys)),
            (*keys, self.now()),
            fetch=True,
        )
        return {by_key[_text(row[0])] for row in result.rows}

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

    async def limit_user_sessions(self, user_id: str, limit: int, *, current_sid: str) -> int:
        """End the user's least recently used sessions past ``limit`` (one
        ``DELETE``; see `.SessionStore.limit_user_sessions`).

        .. versionadded:: 0.2
        """
        if limit < 1:
            raise ValueError(f"a session limit must be at least 1, not {limit!r}")
        user, key, now = user_arg(user_id), statements.key(current_sid), self.now()
        result = await self._execute(
            "limiting a user's sessions",
            self._sql.limit_user,
            (user, key, now, user, key, now, limit - 1),
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

    async def count_unsealed(self) -> int:
        """Return how many live sessions still hold plain JSON data (rows
        written before 0.3); each is sealed at its next write, and the others
        expire.  It reads the first bytes of every live row's data: a scan,
        for administration (``tornado-sessions stats``), not for requests.

        .. versionadded:: 0.3
        """
        result = await self._execute(
            "counting unsealed sessions", self._sql.unsealed, (self.now(),), fetch=True
        )
        return int(result.rows[0][0])

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
        counts = await self._execute(
            "counting sessions", self._sql.counts, (now, now, LEASE_KEY), fetch=True
        )
        size = await self._execute("measuring the table", self._sql.size, (self.table,), fetch=True)
        live, expired = counts.rows[0]
        return {
            "live": int(live or 0),
            "expired": int(expired or 0),
            "table_bytes": int(size.rows[0][0]) if size.rows else 0,
        }


def _text(value: Any) -> str:
    """A text column as str (PyMySQL may give bytes for a binary collation)."""
    return value.decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)
