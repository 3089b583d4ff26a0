"""The per-user half of `.SessionManager`: which user a session belongs to,
the user's sessions, "log out everywhere" and the per-user cap.

`PerUserRules` is a base of `.SessionManager`, as `.cookies.CookieRules` is:
it acts on the manager's store and configuration, reports what it ends as
`.events` (`~.EventKind.USER_ENDED`, `~.EventKind.LIMITED`), and has the
manager's `.revocation` check this process's open WebSockets at once.

.. versionadded:: 0.3
   (Moved out of ``manager.py``, unchanged but for the events.)
"""

from __future__ import annotations

import logging

from .config import SessionConfig
from .events import EventKind, SessionEvents
from .revocation import Revocation
from .session import Session
from .stores.base import SessionInfo, SessionStore
from .values import user_text

__all__ = ["PerUserRules"]

log = logging.getLogger("tornado_sessions")


class PerUserRules:
    """The per-user half of `.SessionManager` (see the module)."""

    store: SessionStore
    config: SessionConfig
    events: SessionEvents
    revocation: Revocation

    def user_of(self, session: Session) -> str | None:
        """Return the user ``session`` is bound to (its ``user_key`` value, as text)."""
        try:
            return user_text(session._data.get(self.config.user_key))
        except (TypeError, ValueError):  # data stored by 0.1, or a nested edit
            return None

    async def user_sessions(self, user_id: str) -> list[SessionInfo]:
        """Return the live sessions of ``user_id``, most recently used first."""
        return await self.store.sessions_for_user(user_id)

    async def end_user_sessions(
        self, user_id: str, *, except_session: Session | None = None
    ) -> int:
        """End every session of ``user_id`` ("log out everywhere"), but
        ``except_session`` if given; return how many were ended."""
        keep = None
        if except_session is not None and not except_session._is_new:
            keep = except_session._id
        count = await self.store.destroy_user_sessions(user_id, except_sid=keep)
        log.info("Ended %d session(s) of a user", count)
        if count:
            self.revocation.check_soon()  # their open WebSockets here close now
            self.events.emit(
                EventKind.USER_ENDED,
                None if keep is None or except_session is None else except_session._fingerprint,
                user_text(user_id),
                "log out everywhere" if keep is None else "log out everywhere else",
                count=count,
            )
        return count

    async def end_user_session(self, user_id: str, fingerprint: str) -> bool:
        """End the one session of ``user_id`` with this fingerprint (from a
        "my sessions" page); return whether one was ended.

        .. versionadded:: 0.3
        """
        ended = await self.store.destroy_user_session(user_id, fingerprint)
        if ended:
            self.revocation.check_soon()  # its open WebSockets here close now
            self.events.emit(
                EventKind.USER_ENDED,
                fingerprint.lower(),
                user_text(user_id),
                "ended from the user's list of sessions",
            )
        return ended

    async def _limit_user_sessions(self, session: Session) -> None:
        """The session was just bound to a user (a login): end that user's
        least recently used other sessions past ``SESSION_MAX_PER_USER``, in
        one statement.  Only a save that sets the user key pays for it."""
        session._user_bound = False
        limit = self.config.max_sessions_per_user
        user = self.user_of(session)
        if limit is None or user is None:
            return
        ended = await self.store.limit_user_sessions(user, limit, current_sid=session._id)
        if ended:
            log.info(
                "A login ended %d least recently used session(s) of its user, over the "
                "limit of %d (SESSION_MAX_PER_USER)",
                ended,
                limit,
            )
            self.revocation.check_soon()  # their open WebSockets here close now
            self.events.emit(
                EventKind.LIMITED,
                session._fingerprint,
                user,
                f"over the limit of {limit} sessions per user (SESSION_MAX_PER_USER)",
                count=ended,
            )
