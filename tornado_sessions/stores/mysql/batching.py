"""Coalescing: concurrent store calls share round trips, never their fate.

Batching is adaptive: a read (or a save) goes out alone, at once, while no
round trip of its kind is in flight and none is queued; there is nothing to
share then, and waiting would only add a hand-off.  A call that comes while
one is in flight joins a queue instead, and the queue departs at the next
turn of the event loop: the reads queued in one turn share one ``SELECT ...
WHERE id IN (...)``, the saves of existing sessions one ``START TRANSACTION;
UPDATE ...; COMMIT`` query (the updates in key order, so that two batches
cannot deadlock, and one commit for all), at most half as many as the
callers at the store lately (`Coalescer.limit`, from the driver's floor,
`WRITE_BATCH` on aiomysql, to `BATCH`): a longer queue of saves leaves as
several batches, so that the server has requests to serve while one is at
the database.  A queue of one is sent as its single statement.  While calls
come in bursts (a queue to leave lately was a batch of several) every call
is queued, so that a burst is not split into a lone call and a batch; `CALM`
queues of one in a row end that (one alone would flip a run of bursts
between the two ways, each wave split in two).  The store reports its lone
round trips here (`Coalescer.select`, `Coalescer.update`), so that the count
of round trips in flight covers batches and lone statements alike.

A batch is an optimisation, never a shared fate: whatever goes wrong in one,
each save ends as it would have alone.

* A statement the server refuses fails alone: the others are sent again.
* A deadlock or a cluster's certification conflict (1213) rolls the whole
  transaction back: the batch is sent again without a transaction (each
  update commits on its own), so only the conflicting sessions pay.
* A lost connection or an answer that never came: each save is sent alone
  and checks whether its first attempt was applied.
* A failure of the whole query (COMMIT refused, the table gone): each save
  is sent alone, and gets its own outcome.

The values of a batch are bound by the driver (``cursor.mogrify``, the same
escaping ``execute`` uses, on a connection checked to be utf8mb4).

.. versionadded:: 0.2
.. versionchanged:: 0.3
   Adaptive: a call with no round trip of its kind in flight goes out alone
   at once (no future, no hand-off); only the calls behind one are queued.
   A batch of saves carries at most half as many updates as there were
   callers at the store at once lately, from `WRITE_BATCH` (8; 2 on
   asyncmy, `.driver.Driver.batch_floor`) to `BATCH` (64).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import StoreError
from .connection import Connections, NoAnswer, Result, background
from .hints import DEADLOCK, LOST, code_of
from .statements import KEY_INDEX, Statements

__all__ = ["ALONE", "CALM", "RETRIED", "WRITE_BATCH", "Coalescer"]

#: Queues of one in a row after which calls go alone at once again (see
#: the module): a straggler between two bursts does not end the batching.
CALM = 3
#: The most loads (or saves) one round trip carries, and the most characters
#: of session data one batch of saves sends.
BATCH = 64
BATCH_CHARS = 1 << 20
#: The floor of the limit of saves per batch (`Coalescer.limit`: half the
#: callers at the store at once lately, from 8 to `BATCH`).  A queue longer
#: than the limit leaves as several batches of even size, one turn of the
#: loop apart, each on a connection of its own: while one is at the server
#: (a transaction of updates keeps it far longer than a ``SELECT ... IN``),
#: the requests of the others go on.  One batch holding every save in
#: flight left the application idle until it came back, and kept the
#: requests moving in step: at 16 connections it waited 55 to 72 us per request for the
#: database with batches of up to 64, and 5 to 13 with batches of 8 (four
#: ``make bench`` runs, each with the two side by side).
#:
#: .. versionadded:: 0.3
WRITE_BATCH = 8
#: Seconds over which the store's concurrency is taken (see `Coalescer.limit`).
WINDOW = 1.0
#: A waiter's answer: send your statement alone (it was not applied).
ALONE: Any = object()
#: A waiter's answer: send your statement alone; it may have been applied
#: (the batch's answer was lost).
RETRIED: Any = object()

_Item = tuple[Any, "asyncio.Future[Any]"]


@dataclass(slots=True)
class _Sent:
    """What one batch round trip achieved."""

    #: ok | lost | conflict | statement | whole
    kind: str
    done: list[tuple[_Item, int]] = field(default_factory=list)
    failed: _Item | None = None
    rest: list[_Item] = field(default_factory=list)
    code: int | None = None
    #: The error of ``failed`` when it is settled here (no answer in time).
    error: Exception | None = None


class Coalescer:
    """The read and save queues of one store.

    :param prepare: awaited before a batch (the store's first-use checks).
    :param floor: the fewest saves `limit` may allow a batch: `WRITE_BATCH`,
        or less for a driver whose round trips cost little
        (`.driver.Driver.batch_floor`).
    """

    def __init__(
        self,
        conns: Connections,
        statements: Statements,
        *,
        prepare: Callable[[], Awaitable[None]],
        floor: int = WRITE_BATCH,
    ) -> None:
        self._conns = conns
        self.floor = floor
        self._st = statements
        self._prepare = prepare
        self._reads: list[_Item] = []
        self._writes: list[_Item] = []
        #: Round trips in flight that read sessions (batches and lone
        #: ``SELECT`` statements), and that save them (batches and lone
        #: ``UPDATE`` statements, with their retries).
        self.reading = 0
        self.writing = 0
        #: Reads (saves) come in bursts: each is queued even with nothing in
        #: flight, so that a burst is not split into a lone call and a batch,
        #: for this many more queues of one (`CALM` after each batch).
        self._crowded_reads = 0
        self._crowded_writes = 0
        #: Loads and saves at the store now (queued, in a round trip, or
        #: checking an outcome), and the most there were at once in this
        #: window of `WINDOW` seconds and in the one before.
        self.callers = 0
        self._peak = 0
        self._last_peak = 0
        self._window_end = 0.0

    def enter(self) -> None:
        """A load or save begins at the store (`callers`); `leave` when it
        ends, whatever the outcome.

        .. versionadded:: 0.3
        """
        callers = self.callers = self.callers + 1
        if callers > self._peak:
            self._peak = callers

    def leave(self) -> None:
        """A load or save that `enter` counted has ended.

        .. versionadded:: 0.3
        """
        self.callers -= 1

    def limit(self) -> int:
        """The most saves the next batch carries: half the most callers the
        store had at once lately, from `floor` to `BATCH`.  Lately: in
        windows of about `WINDOW` seconds, moved on when a batch of saves
        leaves, this one and the one before; after a quiet window, the
        callers at the store now.  A burst leaves as about two batches, so
        that one half's requests go on while the other's batch is at the
        server, and pays no more round trips than that (see the benchmarks
        page, "Batches of saves").  The peak, not the queue, decides: once
        the halves are out of step each queue is short, and halving it again
        would end in every save going alone.  The floor is the driver's: at
        4 connections batches of 2 took out the idle time, which paid on
        asyncmy, whose round trips cost little, and cost as much again in
        round trips on aiomysql, which keeps 8.

        .. versionadded:: 0.3
        """
        now = asyncio.get_running_loop().time()
        if now >= self._window_end:
            stale = now >= self._window_end + WINDOW  # a quiet window between
            self._last_peak = self.callers if stale else self._peak
            self._peak = self.callers
            self._window_end = now + WINDOW
        return max(self.floor, min(BATCH, max(self._peak, self._last_peak) // 2))

    def reads_busy(self) -> bool:
        """A read is in flight or queued (or reads come in bursts): a new one
        is to `read` (join the queue) rather than go alone.

        .. versionadded:: 0.3
        """
        return bool(self.reading or self._reads or self._crowded_reads)

    def writes_busy(self) -> bool:
        """A save is in flight or queued (or saves come in bursts): a new one
        is to `write` (join the queue) rather than go alone (`update`).

        .. versionadded:: 0.3
        """
        return bool(self.writing or self._writes or self._crowded_writes)

    # -- reads -----------------------------------------------------------------

    async def read(self, key: str) -> Any:
        """The row text of ``key`` (or None) from a shared SELECT, or `ALONE`."""
        return await self._join(self._reads, key, self._flush_reads)

    async def select(self, keys: Sequence[str]) -> dict[str, str]:
        """``{key: "created expires version ttl data"}`` of the rows found,
        expired ones included: the store compares their expiry (a round trip
        counted in `reading` while it runs)."""
        self.reading += 1
        try:
            if len(keys) == 1:
                result = await self._conns.execute(
                    "loading a session", self._st.select_one, (keys[0],), fetch=True
                )
                return {keys[0]: result.rows[0][0]} if result.rows else {}
            result = await self._conns.execute(
                "loading sessions", self._st.select_many(len(keys)), keys, fetch=True
            )
        finally:
            self.reading -= 1
        # A row text is NULL only in a hand-made table whose columns allow it.
        return {text[:64]: text[65:] for (text,) in result.rows if text is not None}

    def _flush_reads(self) -> None:
        batch = _take(self._reads, BATCH, lambda key: 0, self._flush_reads)
        self._crowded_reads = CALM if batch else max(0, self._crowded_reads - 1)
        if batch:
            background(self._read_batch(batch))

    async def _read_batch(self, batch: list[_Item]) -> None:
        try:
            await self._prepare()
            found = await self.select(tuple(dict.fromkeys(key for key, _ in batch)))
        except Exception as exc:
            _fail(batch, exc)
            return
        except BaseException:  # cancelled (the loop is shutting down)
            for _, waiter in batch:
                waiter.cancel()
            raise
        for key, waiter in batch:
            if not waiter.done():
                waiter.set_result(found.get(key))

    # -- saves -----------------------------------------------------------------

    async def write(self, args: tuple[Any, ...]) -> Any:
        """The row count of ``args``' UPDATE in a shared round trip, or
        `ALONE` / `RETRIED` (send it yourself)."""
        return await self._join(self._writes, args, self._flush_writes)

    async def update(self, args: tuple[Any, ...]) -> Result:
        """Send one save's UPDATE alone (a round trip counted in `writing`
        while it runs, retries included).

        .. versionadded:: 0.3
        """
        self.writing += 1
        try:
            return await self._conns.execute("saving a session", self._st.update, args)
        finally:
            self.writing -= 1

    def _flush_writes(self) -> None:
        batch = _take(self._writes, self.limit(), lambda args: len(args[0]), self._flush_writes)
        self._crowded_writes = CALM if batch else max(0, self._crowded_writes - 1)
        if batch:
            background(self._write_batch(batch))

    async def _write_batch(self, batch: list[_Item]) -> None:
        try:
            await self._prepare()
            await self._settle(batch)
        except Exception as exc:
            _fail(batch, exc)
        except BaseException:
            for _, waiter in batch:
                waiter.cancel()
            raise

    async def _settle(self, batch: list[_Item]) -> None:
        """Send ``batch``, splitting it on failure, until every waiter has
        its outcome (or is told to send its statement alone)."""
        pending, transaction, last_code = batch, True, None
        for _ in range(len(batch) + 1):  # each round settles at least one
            if len(pending) < 2:
                break
            sent = await self._send(pending, transaction)
            for (_, waiter), count in sent.done:
                if not waiter.done():
                    waiter.set_result(count)
            if sent.kind == "ok":
                return
            if sent.kind == "lost":
                if sent.failed is not None and sent.error is not None:
                    _fail([sent.failed], sent.error)
                _answer(sent.rest, RETRIED)
                return
            repeated = sent.kind == "statement" and sent.code == last_code != DEADLOCK
            if sent.kind == "whole" or repeated:
                # The query failed as a whole, or rounds fail the same way
                # (the table is gone, say): every save alone.
                pending = sent.rest + ([sent.failed] if sent.failed else [])
                break
            if sent.kind == "conflict":
                transaction = False  # each update commits (and certifies) alone
            if sent.failed is not None:
                _answer([sent.failed], ALONE)
            last_code = sent.code if sent.kind == "statement" else None
            pending = sent.rest
        _answer(pending, ALONE)

    async def _send(self, items: list[_Item], transaction: bool) -> _Sent:
        """One round trip with the UPDATEs of ``items`` (in key order)."""
        order = sorted(items, key=lambda item: str(item[0][KEY_INDEX]))
        answers: list[int] = []

        async def run(conn: Any) -> None:
            cur = await self._conns.driver.cursor(conn)
            parts = [cur.mogrify(self._st.update, args) for args, _ in order]
            if transaction:
                parts = ["START TRANSACTION", *parts, "COMMIT"]
            await cur.execute(";\n".join(parts))
            answers.append(cur.rowcount)
            while await cur.nextset():
                answers.append(cur.rowcount)
            await cur.close()

        offset = 1 if transaction else 0  # START TRANSACTION answers first
        n = len(order)
        try:
            # After any error the transaction may be open or results unread:
            # closing the connection rolls back whatever is open.
            self.writing += 1
            try:
                await self._conns.on_connection(
                    "saving sessions", run, keep_after_server_error=False
                )
            finally:
                self.writing -= 1
        except self._conns.driver.Error as exc:
            code = code_of(exc)
            position = len(answers) - offset  # the statement that failed
            done = [] if transaction else list(zip(order, answers, strict=False))
            if code in LOST:
                return _Sent("lost", done, rest=order[len(done) :])
            if code == DEADLOCK and transaction:
                return _Sent("conflict", rest=order, code=code)
            if 0 <= position < n:
                failed = order[position]
                rest = [item for item in order[len(done) :] if item is not failed]
                return _Sent("statement", done, failed, rest, code)
            return _Sent("whole", done, rest=order[len(done) :], code=code)
        except NoAnswer as exc:
            # The statement without an answer waited its whole timeout (for a
            # lock held elsewhere, say): that is its outcome, as alone.  The
            # others may or may not be applied by the server later: each is
            # sent alone and checks.
            done = [] if transaction else list(zip(order, answers, strict=False))
            position = len(answers) - offset
            blocked = order[position] if 0 <= position < n else None
            rest = [item for item in order[len(done) :] if item is not blocked]
            return _Sent("lost", done, blocked, rest, error=exc)
        except OSError:
            done = [] if transaction else list(zip(order, answers, strict=False))
            return _Sent("lost", done, rest=order[len(done) :])
        if len(answers) != n + 2 * offset:
            return _Sent("lost", rest=order)  # too few answers: unknown
        return _Sent("ok", list(zip(order, answers[offset : offset + n], strict=True)))

    # -- queues ------------------------------------------------------------------

    async def _join(self, queue: list[_Item], item: Any, flush: Callable[[], None]) -> Any:
        """Queue ``item`` for the next turn of the event loop (the caller
        found a round trip of its kind in flight, or a queue); return what
        its batch answers, or `ALONE` if the caller is to run it itself."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        queue.append((item, waiter))
        if len(queue) == 1:
            # The first of this turn: the calls that other requests make in
            # the same turn join it, and one round trip answers them all
            # (it leaves beside the one in flight, on another connection).
            loop.call_soon(flush)
        return await waiter


def _take(
    queue: list[_Item], most: int, size: Callable[[Any], int], flush: Callable[[], None]
) -> list[_Item]:
    """Take the next batch off ``queue`` (at most ``most`` items and
    `BATCH_CHARS` of data); answer `ALONE` to a batch of one.  A queue
    longer than ``most`` is shared out evenly (19 with ``most`` 8: 7, 6
    and 6, not 8, 8 and 3), so that no batch is a lone remainder."""
    if len(queue) > most:
        parts = -(-len(queue) // most)
        most = -(-len(queue) // parts)
    count = total = 0
    for item, _ in queue:
        total += size(item)
        if count and (count == most or total > BATCH_CHARS):
            break
        count += 1
    batch = queue[:count]
    del queue[:count]
    if queue:
        asyncio.get_running_loop().call_soon(flush)
    if len(batch) == 1:
        _answer(batch, ALONE)
        return []
    return batch


def _answer(items: list[_Item], outcome: Any) -> None:
    for _, waiter in items:
        if not waiter.done():
            waiter.set_result(outcome)


def _fail(items: list[_Item], exc: Exception) -> None:
    for _, waiter in items:
        if not waiter.done():
            # Each waiter raises its own copy: one exception object raised
            # in several tasks would share its traceback.
            waiter.set_exception(exc.copy() if isinstance(exc, StoreError) else exc)
