"""Live revocation and session events in the checker's world (issue 20).

* `Socket`: a WebSocket of a browser's session as the library sees one: a
  `.SessionMixin` handler whose handshake loaded the session from the
  browser's cookie (``_session``), was watched by its process's
  `.Revocation` (as `.SessionMixin.finish` does on status 101), and is
  closed with ``close(code, reason)``.  Like the world's requests, it is the
  handler as far as the library sees it, not an HTTP connection: its
  handshake's store calls go through the `.world.GatedStore`, and so do the
  revocation checks (one `.SessionStore.live` call each).

The events each process's manager delivers to its ``on_event`` hook are
kept in order in `.world.Process.events`.
"""

from __future__ import annotations

from tornado_sessions.session import Session

from .world import TOKEN, Browser, Process, Request, World


class Socket(Request):
    """One open WebSocket: the session its handshake loaded, watched by the
    revocation of the process that serves it."""

    def __init__(self, name: str, world: World, process: Process, browser: Browser) -> None:
        super().__init__(name, process, browser)
        self.world = world
        #: The stored session id it held when the library closed it.
        self.closed_sid: str | None = None
        #: (code, reason) once the library closed it.
        self.closed: tuple[int | None, str | None] | None = None
        #: The model's step when it was closed.
        self.closed_at = -1
        #: The lineage token its session held at the end of the last round
        #: (`.audit.Audit.round_done` checks it keeps it while it lives).
        self.token: str | None = None
        #: The ids its session object held after each of its own calls.
        self.held: set[str] = set()
        #: How many reload() calls of its own ended (each drops unsaved changes).
        self.reloads = 0

    @property
    def _session(self) -> Session | None:
        return self.session

    @property
    def sid(self) -> str | None:
        """The stored session id it holds (None: a fresh session, nothing to
        revoke); once closed, the one it held then."""
        if self.closed is not None:
            return self.closed_sid
        session = self.session
        return None if session is None or session._is_new else session._id

    async def handshake(self) -> None:
        """Load the session from the cookie, then be watched (status 101)."""
        session = await self.load()
        self.token = session._data.get(TOKEN)
        self.held.add(session._id)
        self.process.revocation.watch(self)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """What `tornado.websocket.WebSocketHandler.close` is to the library."""
        if self.closed is None:
            self.closed_sid = self.sid
            self.closed = (code, reason)
            self.closed_at = self.world.model.steps
