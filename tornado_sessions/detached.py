"""The verbs of a session whose handler is gone.

A session reaches its handler weakly (see `.SessionMixin`), so that a
finished request is freed at once.  A coroutine that outlives its handler
can still hold the session: ``asyncio.ensure_future(self.session.save())``
scheduled from a WebSocket's ``on_close()``, say, runs after Tornado has let
the socket's handler go.  `AfterResponse` then carries out the verb against
the store directly, as the handler would, less what only a response can
take: no cookie is set, and a store failure raises `.StoreError` (there is
no response to answer 503).

.. versionadded:: 0.3
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .manager import SessionManager
    from .session import Session

__all__ = ["AfterResponse"]


class AfterResponse:
    """The owner of an application's sessions whose handler is gone (one per
    `.SessionManager`)."""

    __slots__ = ("_manager",)

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    async def _session_save(self, session: Session) -> None:
        manager = self._manager
        # As the safety net of on_finish() saves: the headers are gone.
        await manager.run(session, manager.plan(session, headers_sent=True))

    async def _session_reload(self, session: Session) -> None:
        await self._manager.reload(session)

    async def _session_regenerate(
        self, session: Session, keep_data: bool, restart_lifetime: bool
    ) -> None:
        await self._manager.regenerate(session, keep_data, restart_lifetime)

    async def _session_destroy(self, session: Session) -> None:
        await self._manager.destroy(session)
