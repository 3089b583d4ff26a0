"""`MemoryStore`: sessions in a dict, for development and tests."""

from __future__ import annotations

import builtins
import logging
import re
import time
from collections.abc import Callable, Iterable

from ..errors import SessionConflict, SessionExists, SessionGone
from ..sealing import is_sealed
from ..values import user_arg
from .base import SessionInfo, SessionRecord, SessionStore, check_record, hash_sid
from .records import replaced

__all__ = ["MemoryStore"]

log = logging.getLogger(__name__)

_FINGERPRINT = re.compile(r"\A[0-9a-fA-F]{12}\Z")


class MemoryStore(SessionStore):
    """Keeps sessions in this process's memory, as sealed JSON text with an
    expiry (sealed as `.MySQLStore` seals them, so that tests see the real
    thing; see `.sealing`).

    Good for development and tests: it does not survive a restart and is not
    shared between processes, so it logs a warning when an application that
    is not in ``debug`` mode uses it.  Expired entries are hidden at once and
    swept from memory at most every ``sweep_interval`` seconds.

    :param sweep_interval: seconds between sweeps of expired entries.
    :param clock: returns the current time in seconds.
    :param warn: ``False`` in tests: no warning outside debug mode
       (`tornado_sessions.testing.memory_store` passes it).

    .. versionadded:: 0.1

    .. versionchanged:: 0.3
       The ``warn`` argument.
    """

    def __init__(
        self,
        *,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        warn: bool = True,
    ) -> None:
        super().__init__(clock=clock)
        self._records: dict[bytes, SessionRecord] = {}
        self._sweep_interval = sweep_interval
        self._next_sweep = self.clock() + sweep_interval
        self._warned = not warn

    def attach(self, *, debug: bool) -> None:
        if not debug and not self._warned:
            self._warned = True
            log.warning(
                "MemoryStore is in use outside debug mode: sessions are lost on restart and "
                "not shared between processes; use MySQLStore in production"
            )

    def _live(self, key: bytes, now: int) -> SessionRecord | None:
        record = self._records.get(key)
        if record is not None and record.expires_at <= now:
            return None
        return record

    def _maybe_sweep(self, now: int) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            self._sweep(now)

    def _sweep(self, now: int) -> int:
        dead = [k for k, r in self._records.items() if r.expires_at <= now]
        for key in dead:
            del self._records[key]
        self.report_cleanup(len(dead))
        return len(dead)

    async def get(self, sid: str) -> SessionRecord | None:
        key = hash_sid(sid)
        record = self._live(key, self.now())
        if record is None:
            return None
        data = self.open_data(sid, record.data, key)  # see .sealing
        if data is None:
            return None
        return record if data is record.data else replaced(record, data=data)

    async def set(self, sid: str, record: SessionRecord, *, expected_version: int | None) -> int:
        key = hash_sid(sid)
        record = check_record(record)
        sealed = self.seal_data(sid, record.data, key)  # see .sealing
        now = self.now()
        self._maybe_sweep(now)
        current = self._live(key, now)
        if expected_version is None:
            if current is not None:
                raise SessionExists("a session with this id exists")
            used = self.stamp()
            new = replaced(
                record, data=sealed, version=1, updated_at=now, updated_us=used, created_seq=used
            )
        else:
            if current is None:
                raise SessionGone("the session no longer exists")
            if current.version != expected_version:
                raise SessionConflict("the session was saved by another request")
            # The expiry never moves earlier unless the lifetime changes: a
            # concurrent touch is not undone.
            expires = record.expires_at
            if record.ttl == current.ttl:
                expires = max(expires, current.expires_at)
            new = replaced(
                record,
                data=sealed,
                version=current.version + 1,
                updated_at=now,
                created_at=current.created_at,
                expires_at=expires,
                updated_us=self.stamp(),
                created_seq=current.created_seq,
            )
        self._records[key] = new
        return new.version

    async def destroy(self, sid: str, *, expected_version: int | None = None) -> bool:
        key = hash_sid(sid)
        record = self._records.get(key)
        if record is not None and expected_version not in (None, record.version):
            return False
        self._records.pop(key, None)
        return record is not None and record.expires_at > self.now()

    async def live(self, sids: Iterable[str]) -> builtins.set[str]:
        now = self.now()
        return {sid for sid in set(sids) if self._live(hash_sid(sid), now) is not None}

    async def touch(self, sid: str, expires_at: int, *, ttl: int | None) -> bool:
        now = self.now()
        key = hash_sid(sid)
        current = self._live(key, now)
        if current is None or current.ttl != ttl:  # gone, or its lifetime changed
            return False
        self._records[key] = replaced(
            current, updated_at=now, expires_at=expires_at, updated_us=self.stamp()
        )
        return True

    def _infos(self, user: str | None = None) -> list[SessionInfo]:
        """The live sessions (of ``user``), most recently used first."""
        now = self.now()
        live = [
            (_recency(key, record), key, record)
            for key, record in self._records.items()
            if record.expires_at > now and (user is None or record.user_id == user)
        ]
        live.sort(reverse=True)
        return [_info(key, record) for _, key, record in live]

    async def all(self) -> list[SessionInfo]:
        return self._infos()

    async def length(self) -> int:
        now = self.now()
        return sum(1 for r in self._records.values() if r.expires_at > now)

    async def count_unsealed(self) -> int:
        return sum(1 for r in self._records.values() if not is_sealed(r.data))

    async def clear(self) -> int:
        count = len(self._records)
        self._records.clear()
        return count

    async def clear_expired(self) -> int:
        return self._sweep(self.now())

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return self._infos(user_arg(user_id))

    async def destroy_user_sessions(self, user_id: str, *, except_sid: str | None = None) -> int:
        user_id = user_arg(user_id)
        keep = hash_sid(except_sid) if except_sid is not None else None
        dead = [k for k, r in self._records.items() if r.user_id == user_id and k != keep]
        for key in dead:
            del self._records[key]
        return len(dead)

    async def limit_user_sessions(self, user_id: str, limit: int, *, current_sid: str) -> int:
        if limit < 1:
            raise ValueError(f"a session limit must be at least 1, not {limit!r}")
        user = user_arg(user_id)
        now = self.now()
        keep = hash_sid(current_sid)
        # Most recently used first (as MySQLStore orders them): keep the
        # first limit - 1.
        live = sorted(
            (
                (_recency(key, record), key)
                for key, record in self._records.items()
                if record.user_id == user and key != keep and record.expires_at > now
            ),
            reverse=True,
        )
        for _, key in live[limit - 1 :]:
            del self._records[key]
        return max(0, len(live) - (limit - 1))

    async def destroy_user_session(self, user_id: str, fingerprint: str) -> bool:
        user_id = user_arg(user_id)
        # Exactly the 12 hex digits of a fingerprint (either case): a shorter
        # prefix, "" included, must not end whichever session it matches.
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            return False
        wanted = fingerprint.lower()
        for key, record in list(self._records.items()):
            if record.user_id == user_id and key.hex()[:12] == wanted:
                del self._records[key]
                return True
        return False


def _recency(key: bytes, record: SessionRecord) -> tuple[int, int, bytes]:
    """The order of last use: the stamp of the last write or touch, then
    of the creation, then the key (only two processes' stamps can tie)."""
    return (record.updated_us, record.created_seq, key)


def _info(key: bytes, record: SessionRecord) -> SessionInfo:
    return SessionInfo(
        fingerprint=key.hex()[:12],
        created_at=record.created_at,
        updated_at=record.updated_at,
        expires_at=record.expires_at,
        user_id=record.user_id,
        ip=record.ip,
        user_agent=record.user_agent,
    )
