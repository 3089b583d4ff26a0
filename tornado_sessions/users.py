"""The current user's sessions, from a handler: list them, end one, end all.

`UserSessionsMixin` is a base of `.SessionMixin`: its methods act on the user
of the current session unless given another, and reach the store through the
application's `.SessionManager`.

.. versionadded:: 0.2
   (The methods are those of 0.1's ``SessionMixin``, moved here unchanged.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tornado.web

from .errors import StoreError
from .stores.base import SessionInfo

if TYPE_CHECKING:
    from .manager import SessionManager
    from .session import Session

    _HandlerBase = tornado.web.RequestHandler
else:
    _HandlerBase = object

__all__ = ["UserSessionsMixin"]


class UserSessionsMixin(_HandlerBase):
    """ "My sessions" and "log out everywhere" for `.SessionMixin` handlers."""

    if TYPE_CHECKING:

        @property
        def session(self) -> Session: ...

        def get_session_manager(self) -> SessionManager: ...

        def _session_store_failed(self, doing: str, exc: Exception) -> tornado.web.HTTPError: ...

    async def get_user_sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        """List the live sessions of a user (by default the current one's).

        Each `.SessionInfo` carries a fingerprint, never a session id, so a
        "my sessions" page can show them and offer to end one with
        `end_user_session`.  Returns ``[]`` when no user is logged in.
        """
        manager = self.get_session_manager()
        user = user_id if user_id is not None else manager.user_of(self.session)
        if user is None:
            return []
        try:
            return await manager.user_sessions(user)
        except StoreError as exc:
            raise self._session_store_failed("listing a user's sessions", exc) from None

    async def end_user_sessions(
        self, user_id: str | None = None, *, keep_current: bool = True
    ) -> int:
        """End every session of a user: "log out everywhere".

        :param user_id: whose sessions; by default the current session's user.
        :param keep_current: keep this request's session (the default), as
            after a password change; False ends it too (its cookie is then
            cleared).
        :returns: how many sessions were ended.  Their cookies get a fresh,
            empty session on their next request, in every process.
        """
        manager = self.get_session_manager()
        session = self.session
        user = user_id if user_id is not None else manager.user_of(session)
        if user is None:
            return 0
        current_is_users = manager.user_of(session) == user
        try:
            count = await manager.end_user_sessions(
                user, except_session=session if keep_current else None
            )
        except StoreError as exc:
            raise self._session_store_failed("ending a user's sessions", exc) from None
        if not keep_current and current_is_users:
            await session.destroy()  # in its turn (see Session.destroy)
        return count

    async def end_user_session(self, fingerprint: str, user_id: str | None = None) -> bool:
        """End one session of a user, named by its fingerprint (from
        `get_user_sessions`); return whether one was ended."""
        manager = self.get_session_manager()
        user = user_id if user_id is not None else manager.user_of(self.session)
        if user is None:
            return False
        if fingerprint == self.session.fingerprint:
            await self.session.destroy()
            return True
        try:
            ended = await manager.end_user_session(user, fingerprint)
        except StoreError as exc:
            raise self._session_store_failed("ending a session", exc) from None
        return ended
