"""One request's change of a session, applied again to a newer stored state.

A request's change is the top-level keys it set or deleted against what it
loaded (its snapshot), and its flash messages as "these were shown, these
are new".  The combined saves (`.saves`) apply it to the latest state before
a versioned write; `hand_over` applies it before `.Session.regenerate` moves
the data to a new id, so that a login never drops a change that a concurrent
request saved on the old id meanwhile.

.. versionadded:: 0.3
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import StoreError
from .session import FLASH_KEY, Session
from .stores.base import SessionRecord, SessionStore

__all__ = ["Change", "change_of", "hand_over"]

#: How many times `hand_over` re-reads a session that keeps being saved.
MAX_HAND_OVER_ATTEMPTS = 16


@dataclass(slots=True)
class Change:
    """What one request did to a session's data."""

    #: ``{key: new value}`` of the keys set (the flash queue left out).
    changed: dict[str, Any]
    deleted: set[str]
    #: ``(shown, added)`` flash messages, or None if the queue was not touched.
    flashes: tuple[list[Any], list[Any]] | None

    def apply(self, data: dict[str, Any]) -> None:
        """Apply the change to ``data`` (a newer state), in place: its keys,
        and its flash messages, so that concurrent requests neither show a
        message twice nor lose one."""
        data.update(self.changed)
        for key in self.deleted:
            data.pop(key, None)
        if self.flashes is not None:
            shown, added = self.flashes
            queue = list(data.get(FLASH_KEY) or [])
            for message in shown:
                if message in queue:
                    queue.remove(message)
            queue.extend(added)
            if queue:
                data[FLASH_KEY] = queue
            else:
                data.pop(FLASH_KEY, None)


def change_of(session: Session) -> Change:
    """Return ``session``'s change against its snapshot."""
    changed, deleted = session.changed_keys()
    data = session._data
    flashes: tuple[list[Any], list[Any]] | None = None
    if FLASH_KEY in changed or FLASH_KEY in deleted:
        before = json.loads(session._snapshot).get(FLASH_KEY) or []
        after = data.get(FLASH_KEY) or []
        if after[: len(before)] == before:
            flashes = ([], after[len(before) :])  # only added some
        else:
            flashes = (before, after)  # showed the queue (then maybe added)
        changed.discard(FLASH_KEY)
        deleted.discard(FLASH_KEY)
    return Change({key: data[key] for key in changed}, deleted, flashes)


def rebase(session: Session, record: SessionRecord) -> None:
    """Put ``session``'s change on top of ``record`` (a newer stored state)."""
    change = change_of(session)
    data: dict[str, Any] = json.loads(record.data)
    change.apply(data)
    ttl, changed_ttl, bound = session._ttl, session._ttl_changed, session._user_bound
    session._load(record, data)
    session._maybe_changed = True
    session._user_bound = bound  # a login's per-user limit still applies
    if changed_ttl:  # this request's set_expiry() still applies
        session._ttl, session._ttl_changed = ttl, True


async def hand_over(store: SessionStore, session: Session, *, keep_data: bool) -> str | None:
    """Delete ``session``'s record for `.Session.regenerate`, carrying over
    what concurrent requests saved on it if ``keep_data``; return the id
    whose record was deleted, or None if the session had ended.

    The record is deleted only at the version the session's data is based
    on (``destroy(..., expected_version=...)``).  If another request saved
    meanwhile, the record is read again, this request's change is applied
    to it, and the delete is retried: the data that moves to the new id is
    then the newest, with this request's change on top.  The id deleted is
    the session's id at that moment: a concurrent `.Session.regenerate` of
    the same session object (two messages of one WebSocket) may have moved
    it meanwhile, and the caller names the id that really ended.

    :raises StoreError: the record kept changing for
        ``MAX_HAND_OVER_ATTEMPTS`` reads in a row, or the store failed.
    """
    if not keep_data:  # nothing moves: any version goes
        sid = session._id
        return sid if await store.destroy(sid) else None
    for _ in range(MAX_HAND_OVER_ATTEMPTS):
        # A session whose last save merged other requests' changes holds
        # only its own view: it is rebased before anything moves.
        sid = session._id
        if session._base_exact and await store.destroy(sid, expected_version=session.version):
            return sid
        record = await store.get(session._id)
        if record is None:
            return None
        rebase(session, record)
    raise StoreError(
        f"session {session._fingerprint} could not be regenerated: it was saved by other "
        f"requests {MAX_HAND_OVER_ATTEMPTS} times in a row while this one moved it"
    )
