"""How a response with a session finishes: the save before the response is
sent, the cookie before the first flush, the safety net after it.

`SessionFinishing` is a base of `.SessionMixin` holding Tornado's
``flush()``, ``finish()`` and ``on_finish()`` overrides.  ``finish()`` (and so
``redirect()``, ``render()`` and Tornado's auto-finish) waits for the store
write, so a client that follows a redirect always sees its own write;
``flush()`` decides (and if need be saves) the session before the headers
go out; ``on_finish()`` saves, with a warning, a session that somehow
bypassed ``finish()``.  A failed save replaces the response with a 503
(store failure) or 500 (a bug), and no cookie is sent for data that was not
stored.

.. versionadded:: 0.2
   (Moved out of ``mixin.py``; the behaviour is 0.1's, with 0.2's WebSocket
   handshake rule.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import tornado.iostream
import tornado.web

from . import _eager, response
from .errors import StoreError
from .manager import CookieAction, SessionManager, _Plan
from .session import Session

if TYPE_CHECKING:
    _HandlerBase = tornado.web.RequestHandler
else:
    _HandlerBase = object

__all__ = ["SessionFinishing"]

log = logging.getLogger("tornado_sessions")


class SessionFinishing(_HandlerBase):
    """The finishing half of `.SessionMixin` (see the module)."""

    _session: Session | None = None
    _session_done = False
    _session_pending: asyncio.Future[None] | None = None

    if TYPE_CHECKING:

        def get_session_manager(self) -> SessionManager: ...

    # -- response plumbing -----------------------------------------------------

    def _session_apply(self, action: CookieAction) -> None:
        """Put the cookie decision and the caching headers on the response."""
        response.apply(self, self.get_session_manager(), self._session, action)

    def _session_fail(self, status: int) -> None:
        """Replace the response with an error page and no session cookie."""
        if self._headers_written:
            log.error("The session could not be saved after the response headers were sent")
            if not self._finished:
                try:
                    super().finish()
                except Exception:  # pragma: no cover - the connection is already broken
                    log.debug("Could not finish the response", exc_info=True)
            return
        self.clear()
        if hasattr(self, "_new_cookie"):
            del self._new_cookie
        self.send_error(status)

    def _session_chain(self, step: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Future[None]:
        """Run ``step`` after any deferred flush still in flight."""
        previous = self._session_pending
        if previous is None:
            # Started at once: a step that never waits (a save to
            # MemoryStore) costs no task and no loop turn.  Nothing it runs
            # comes back here (our flush and finish pass straight through
            # once _session_done is set or the footers are written).
            first = _eager.start(step())
            self._session_pending = first
            return first

        async def run() -> None:
            if previous is not None:
                try:
                    await previous
                except Exception:
                    pass
            await step()

        task: asyncio.Future[None] = asyncio.ensure_future(run())
        self._session_pending = task
        return task

    async def _session_commit(self, plan: _Plan | None, final: bool) -> bool:
        """Plan (unless given) and carry out the commit; on failure answer
        the error and return False.

        ``final``: the commit of `finish`, which keeps the handler marked
        finished while the store works (so that Tornado's auto-finish, or a
        second ``finish()``, cannot send the response early) and unmarks it
        once the store has answered, before the response is completed."""
        session = self._session
        assert session is not None
        manager = self.get_session_manager()
        # It takes its turn with the session's own calls (a save() the
        # handler started beside an unawaited flush()), and plans again if
        # one ran first.
        turn = session._turn()
        if turn.locked():
            plan = None
        try:
            # acquire() and release() rather than "async with", whose two
            # extra coroutines cost a third of the lock's part of a write.
            await turn.acquire()
            try:
                if plan is None:
                    plan = manager.plan(
                        session, status=self.get_status(), headers_sent=self._headers_written
                    )
                action = await manager.run(session, plan)
            finally:
                turn.release()
        except StoreError as exc:
            log.error("Session store failed while saving the session: %s", exc)
            self._session_done = True
            if final:
                self._finished = False
            self._session_fail(503)
            return False
        except Exception:
            log.error("Session %s could not be saved", session._fingerprint, exc_info=True)
            self._session_done = True
            if final:
                self._finished = False
            self._session_fail(500)
            return False
        if final:
            self._finished = False
        self._session_apply(action)
        return True

    def flush(self, include_footers: bool = False) -> asyncio.Future[None]:
        """Flush the output, deciding (and if need be saving) the session
        first so its cookie goes out with the headers."""
        session = self._session
        # include_footers: called by RequestHandler.finish(), which goes on
        # synchronously; only our own finish() may defer the response.
        if session is None or self._headers_written or self._session_done or include_footers:
            return super().flush(include_footers)
        # The rest of a streamed response may read the session after the
        # headers are gone: it gets Vary: Cookie and Cache-Control now.
        session.accessed = True
        if self._session_pending is None:
            manager = self.get_session_manager()
            plan = manager.plan(session, status=self.get_status(), headers_sent=False)
            if plan.write == "none":
                self._session_apply(plan.cookie)
                return super().flush(include_footers)
        else:
            plan = None

        async def step() -> None:
            if not self._headers_written and not self._session_done:
                if not await self._session_commit(plan, final=False):
                    return
            if not self._finished:
                await super(SessionFinishing, self).flush(include_footers)

        return self._session_chain(step)

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Finish the response once the session is saved.

        Returns a future that resolves when the response has been sent, as
        `tornado.web.RequestHandler.finish` does.

        A WebSocket handshake (status 101) finishes at once and saves
        nothing: the connection passes to the socket as soon as this
        returns, and the socket saves with ``await self.session.save()``.
        From then on the socket is closed when its session ends (see
        `.revocation`).

        .. versionchanged:: 0.2
           A WebSocket handshake does not wait for a save.
        .. versionchanged:: 0.3
           A WebSocket is watched from its handshake, and closed when its
           session ends.
        """
        if self.get_status() == 101:
            self.get_session_manager().revocation.watch(self)
        session = self._session
        if session is None or self._session_done:
            return super().finish(chunk)
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        self._session_done = True
        if self.get_status() == 101:
            return self._session_handshake(session)
        if self._session_pending is None:
            manager = self.get_session_manager()
            try:
                plan = manager.plan(
                    session, status=self.get_status(), headers_sent=self._headers_written
                )
            except Exception:
                log.error("Session %s could not be saved", session._fingerprint, exc_info=True)
                self._session_fail(500)
                return _done()
            if plan.write == "none":
                self._session_apply(plan.cookie)
                return super().finish()
        else:
            plan = None

        # Until the save is done the handler counts as finished, so that
        # write() after finish() fails as usual and Tornado's auto-finish (or
        # a second finish() from redirect-then-return code) does not send the
        # response early.
        self._finished = True

        async def step() -> None:
            if await self._session_commit(plan, final=True) and not self._finished:
                try:
                    await super(SessionFinishing, self).finish()
                except tornado.iostream.StreamClosedError:
                    log.debug("Client went away before the response was sent")

        return self._session_chain(step)

    def _session_handshake(self, session: Session) -> asyncio.Future[None]:
        """Finish a WebSocket handshake (status 101) at once.

        The connection passes to the socket the moment ``finish()`` returns,
        so nothing may wait here: the cookie decision is applied if it needs
        no write, and a write (a change, a due touch) is left to the
        socket's own ``await self.session.save()``.
        """
        manager = self.get_session_manager()
        plan = manager.plan(session, status=101, headers_sent=False)
        if plan.write == "none":
            self._session_apply(plan.cookie)
        elif plan.write != "touch":
            log.warning(
                "Session %s was changed before a WebSocket handshake, which saves nothing: "
                "call 'await self.session.save()' before the handshake or in the socket",
                session._fingerprint,
            )
        return super().finish()

    def on_finish(self) -> None:
        """Safety net: save a session still unsaved after the response left.

        This only happens when `finish` was bypassed; the save then races the
        client's next request, so a warning is logged.
        """
        session = self._session
        if session is not None and not self._session_done and self.get_status() < 500:
            self._session_done = True
            manager = self.get_session_manager()
            try:
                plan = manager.plan(session, status=self.get_status(), headers_sent=True)
            except Exception:
                log.error("Session %s could not be saved", session._fingerprint, exc_info=True)
                plan = None
            if plan is not None and plan.write != "none":
                log.warning(
                    "Session %s was still unsaved after the response was sent (was finish() "
                    "bypassed?); saving it now, after the response",
                    session._fingerprint,
                )
                # Planned again when it runs (the handler's own tasks may
                # change the session before the save starts), as any save
                # after the response is (status < 500 here).
                task = asyncio.ensure_future(manager.after_response._session_save(session))
                _BACKGROUND.add(task)
                task.add_done_callback(_late_save_done)
        super().on_finish()


_BACKGROUND: set[asyncio.Future[Any]] = set()


def _late_save_done(task: asyncio.Future[Any]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("Late session save failed: %s", task.exception())


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
