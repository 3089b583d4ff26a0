"""What a store keeps and tells: `SessionRecord`, `SessionInfo`, the row key
of a session id (`hash_sid`) and its loggable tag (`fingerprint`).

They are the data half of the store contract (`.stores.base`, which
re-exports every name here).

.. versionadded:: 0.3
   (Moved out of ``stores/base.py``.)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from typing import Any

from ..values import check_text, client_agent, client_ip, user_text

__all__ = [
    "SessionInfo",
    "SessionRecord",
    "check_record",
    "fingerprint",
    "hash_sid",
    "replaced",
]


@functools.lru_cache(maxsize=4096)
def _digest(sid: str) -> bytes:
    return hashlib.sha256(sid.encode("ascii")).digest()


def hash_sid(sid: str) -> bytes:
    """Return the 32-byte SHA-256 digest under which a store keeps ``sid``.

    .. versionchanged:: 0.3
       The digests of the last 4,096 ids are kept: a request computes its
       session's two or three times (load, save, fingerprint).
    """
    return _digest(sid)


def fingerprint(sid: str) -> str:
    """Return a short, non-reversible tag for ``sid``, safe to log and show.

    It is the first 12 hex digits of `hash_sid`, so it also names the
    session's row in a store.
    """
    return hash_sid(sid).hex()[:12]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRecord:
    """One stored session, as a store returns and receives it.

    Times are whole seconds since the epoch.  ``version`` starts at 1 and
    grows by one at each data write; `SessionStore.set` ignores the value it
    is given and returns the new one.
    """

    #: The session data as JSON text (an object).
    data: str
    created_at: int
    expires_at: int
    version: int = 0
    #: The user the session belongs to (mirrored from the data), if any.
    user_id: str | None = None
    #: When the record was last written or touched.
    updated_at: int = 0
    #: Optional client details, kept only when the application asks for them.
    ip: str | None = None
    user_agent: str | None = None
    #: The session's own idle lifetime in seconds, set by
    #: `.Session.set_expiry` (None: the configured ``max_age``).  Kept by the
    #: store, so a replayed older cookie can never lengthen a session.
    #:
    #: .. versionadded:: 0.2
    ttl: int | None = None
    #: The last write or touch in microseconds (`.stamps.stamp`: never tied
    #: within a process), so that uses within one second are ordered; set
    #: by the store (0 when a store does not say).
    #:
    #: .. versionadded:: 0.3
    updated_us: int = 0
    #: The creation's stamp (`.stamps.stamp`): breaks ties of ``updated_us``
    #: by creation order; set by the store (0 when a store does not say).
    #:
    #: .. versionadded:: 0.3
    created_seq: int = 0


def check_record(record: SessionRecord) -> SessionRecord:
    """Return ``record`` in the form every store keeps, or raise.

    The data must be valid Unicode (a lone surrogate is a `TypeError` naming
    the top-level key); the user id becomes text (``42`` is ``"42"``; over
    255 characters is a `ValueError`); the client details are normalized or
    cut to fit (`.values.client_ip`, `.values.client_agent`).  Stores call it
    in `SessionStore.set`, so that bad input fails alone, before any SQL.

    .. versionadded:: 0.2
    """
    if not isinstance(record.data, str):
        raise TypeError(f"session data must be JSON text, not {type(record.data).__name__}")
    check_text(record.data)
    if record.ttl is not None and (
        isinstance(record.ttl, bool) or not isinstance(record.ttl, int) or record.ttl <= 0
    ):
        raise ValueError(f"a session's ttl must be a positive whole number, not {record.ttl!r}")
    user = user_text(record.user_id)
    ip = client_ip(record.ip)
    agent = client_agent(record.user_agent)
    if (user, ip, agent) == (record.user_id, record.ip, record.user_agent):
        return record
    return dataclasses.replace(record, user_id=user, ip=ip, user_agent=agent)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a store tells about a session without revealing its id."""

    #: `fingerprint` of the id (equal to the first 12 hex digits of the key).
    fingerprint: str
    created_at: int
    updated_at: int
    expires_at: int
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


# Slot setters of SessionRecord: `new_record` fills a bare instance through
# them, which costs half of the frozen dataclass's __init__ (that calls
# object.__setattr__ once per field, each a global and an attribute lookup).
def _setter(name: str) -> Callable[[SessionRecord, Any], None]:
    setter: Callable[[SessionRecord, Any], None] = SessionRecord.__dict__[name].__set__
    return setter


_set_data = _setter("data")
_set_created_at = _setter("created_at")
_set_expires_at = _setter("expires_at")
_set_version = _setter("version")
_set_user_id = _setter("user_id")
_set_updated_at = _setter("updated_at")
_set_ip = _setter("ip")
_set_user_agent = _setter("user_agent")
_set_ttl = _setter("ttl")
_set_updated_us = _setter("updated_us")
_set_created_seq = _setter("created_seq")
_new = object.__new__


def new_record(
    data: str,
    created_at: int,
    expires_at: int,
    version: int = 0,
    user_id: str | None = None,
    updated_at: int = 0,
    ip: str | None = None,
    user_agent: str | None = None,
    ttl: int | None = None,
    updated_us: int = 0,
    created_seq: int = 0,
) -> SessionRecord:
    """``SessionRecord(...)`` at half the cost, for the stores' hot paths:
    the same arguments, positional in the fields' order (a test checks that
    the two agree on every field)."""
    record: SessionRecord = _new(SessionRecord)
    _set_data(record, data)
    _set_created_at(record, created_at)
    _set_expires_at(record, expires_at)
    _set_version(record, version)
    _set_user_id(record, user_id)
    _set_updated_at(record, updated_at)
    _set_ip(record, ip)
    _set_user_agent(record, user_agent)
    _set_ttl(record, ttl)
    _set_updated_us(record, updated_us)
    _set_created_seq(record, created_seq)
    return record


def replaced(
    record: SessionRecord,
    *,
    data: str | None = None,
    created_at: int | None = None,
    expires_at: int | None = None,
    version: int | None = None,
    updated_at: int | None = None,
    updated_us: int | None = None,
    created_seq: int | None = None,
) -> SessionRecord:
    """``record`` with the fields given changed (None keeps a field): what
    `dataclasses.replace` does, built field by field with `new_record`,
    which costs several times less (the stores call it on every write)."""
    return new_record(
        record.data if data is None else data,
        record.created_at if created_at is None else created_at,
        record.expires_at if expires_at is None else expires_at,
        record.version if version is None else version,
        record.user_id,
        record.updated_at if updated_at is None else updated_at,
        record.ip,
        record.user_agent,
        record.ttl,
        record.updated_us if updated_us is None else updated_us,
        record.created_seq if created_seq is None else created_seq,
    )
