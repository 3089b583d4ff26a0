"""Live revocation: open WebSockets close when their session ends.

A `.SessionMixin` ``WebSocketHandler`` is watched from its handshake until
its connection closes.  When its session ends, by any route, the socket is
closed with code `CLOSE_CODE` (4001) and reason `CLOSE_REASON`
(``"session ended"``):

* ended by this process (`.Session.destroy`, a logout;
  `.Session.regenerate`, a login, which ends the old id; or the same
  `.SessionManager` methods called directly): its sockets in this process
  close at once, with no statement;
* ended in this process by "log out everywhere"
  (`.SessionManager.end_user_sessions`, `.SessionManager.end_user_session`,
  and the `.SessionMixin` methods that call them) or by the per-user limit
  at a login: a check runs at once (one statement);
* ended anywhere else (another process or node, expiry, the cleanup, an
  administrator): the periodic check, every ``SESSION_REVOCATION_INTERVAL``
  seconds (`.SessionConfig.revocation_interval`, 5 by default), finds it.

A check is **one** `.SessionStore.live` call for every open socket of the
application in this process, whatever their number (on `.MySQLStore`, one
``SELECT ... WHERE id IN (...)`` on the id hashes, which also leaves out the
expired rows); the check runs only while a socket is open, started by the
first and stopped with the last.  A socket is closed only when the store
says that the very session id it holds is not live, and only if the socket
still holds that id when the answer comes: a socket whose session is
touched, saved or regenerated meanwhile by its own code or by another
request is never closed while its session lives.  A socket with no stored
session (an anonymous visitor whose session was never saved) has nothing
to revoke and is not checked.  A store failure during a check closes
nothing (it is logged, and the next check tries again).

Clients see the close code and reason (``CloseEvent.code`` in a browser,
``close_code`` on a Tornado client):

.. skip-example: JavaScript, for the browser
.. code-block:: javascript

    socket.onclose = (event) => {
      if (event.code === 4001) location.assign("/login");  // session ended
    };

.. versionadded:: 0.3
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from .errors import StoreError

if TYPE_CHECKING:
    from .manager import SessionManager

__all__ = ["CLOSE_CODE", "CLOSE_REASON", "Revocation", "revocation_of"]

log = logging.getLogger("tornado_sessions")

#: The WebSocket close code of a socket whose session ended (in the range
#: 4000-4999 that RFC 6455 leaves to applications).
CLOSE_CODE = 4001
#: The close reason sent with `CLOSE_CODE`.
CLOSE_REASON = "session ended"


def revocation_of(manager: SessionManager) -> Revocation:
    """Return the `Revocation` of ``manager``'s application
    (``manager.revocation``)."""
    return manager.revocation


class Revocation:
    """The open WebSockets of one application in this process, and the
    check that closes those whose session ended (see the module).

    :param manager: the application's `.SessionManager` (its store, and its
        config's ``revocation_interval``).

    .. versionadded:: 0.3
    """

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.interval = float(manager.config.revocation_interval)
        self._sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        # Between checks only a timer is pending (no task), so that a loop
        # that stops with sockets still open leaves nothing half-run.
        self._timer: asyncio.TimerHandle | None = None
        self._checking: asyncio.Future[None] | None = None
        self._again = False
        #: Checks run so far (each is one `.SessionStore.live` call).
        self.checks = 0

    @property
    def sockets(self) -> int:
        """How many sockets are watched now."""
        return len(self._sockets)

    @property
    def running(self) -> bool:
        """Whether the periodic check runs (it does while a socket is open)."""
        return self._timer is not None or self._busy

    # -- sockets ---------------------------------------------------------------

    @property
    def _busy(self) -> bool:
        return self._checking is not None and not self._checking.done()

    def watch(self, handler: Any) -> None:
        """Watch ``handler``, a `.SessionMixin` WebSocket that just
        completed its handshake; start the periodic check if it is the first."""
        self._sockets.add(handler)
        if not self.running:
            self._arm()

    def forget(self, handler: Any) -> None:
        """Stop watching ``handler`` (its connection closed); the periodic
        check stops with the last socket."""
        self._sockets.discard(handler)
        if not self._sockets and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self, handler: Any) -> None:
        self.forget(handler)
        try:
            handler.close(CLOSE_CODE, CLOSE_REASON)
        except Exception:  # pragma: no cover - a connection already broken
            log.debug("Could not close a WebSocket", exc_info=True)

    # -- what this process ended -------------------------------------------------

    def ended(self, sid: str) -> None:
        """The session ``sid`` was destroyed or regenerated by this process:
        close its sockets now (no statement)."""
        doomed = [h for h in self._sockets if _sid_of(h) == sid]
        for handler in doomed:
            self._close(handler)
        if doomed:
            log.info("Closed %d WebSocket(s) of an ended session", len(doomed))

    def check_soon(self) -> None:
        """Sessions may have ended in this process without their ids being
        known here ("log out everywhere", the per-user limit): run a check
        now instead of at the next interval (one statement)."""
        if not self._sockets:
            return
        if self._busy:
            self._again = True  # the running check may have read too early
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._start()

    # -- the check ---------------------------------------------------------------

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.interval, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._sockets:
            self._start()

    def _start(self) -> None:
        self._checking = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self.check()
            except Exception:  # a bug must not end the watch
                log.error("The check of open WebSockets' sessions failed", exc_info=True)
            if not (self._again and self._sockets):
                break
        if self._sockets and self._timer is None:
            self._arm()

    async def check(self) -> int:
        """Check every watched socket's session with one `.SessionStore.live`
        call, close those whose session ended, and return how many closed."""
        config = self.manager.config
        now = self.manager.now()
        held: dict[Any, str] = {}
        closing = []
        for handler in list(self._sockets):
            session = getattr(handler, "_session", None)
            if session is None or session._is_new:
                continue  # nothing stored, nothing to revoke
            absolute = config.absolute_max_age
            if absolute is not None and session._created_at + absolute <= now:
                closing.append(handler)
                continue
            held[handler] = session._id
        if held:
            self.checks += 1
            try:
                live = await self.manager.store.live(set(held.values()))
            except StoreError as exc:
                log.warning(
                    "Could not check the sessions of %d open WebSocket(s); they stay open "
                    "until the next check: %s",
                    len(held),
                    exc,
                )
                live = set(held.values())
            # Every socket that holds an id found ended, including one whose
            # handshake was watched while the store answered.
            ended = set(held.values()) - live
            already = set(closing)
            closing += [h for h in list(self._sockets) if h not in already and _sid_of(h) in ended]
        for handler in closing:
            self._close(handler)
        if closing:
            log.info("Closed %d WebSocket(s) whose session ended", len(closing))
        return len(closing)


def _sid_of(handler: Any) -> str | None:
    """The stored session id ``handler`` holds now, or None."""
    session = getattr(handler, "_session", None)
    if session is None or session._is_new:
        return None
    sid: str = session._id
    return sid
