"""A receive-only WebSocket feed on the sessions, and a client for it, shared
by the revocation tests (memory, MySQL, Galera) and the measurement.

``/ws/feed`` (`Feed`) sends ``{"user": ..., "fp": ...}`` when it opens and
then only pushes: it never needs a message from the client, as a live feed
or a notification channel.  The one message it answers, ``"ping"``, lets a
test prove that a socket is still open and still on its session.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import tornado.httpclient
import tornado.web
import tornado.websocket

from tornado_sessions import SessionMixin
from tornado_sessions.revocation import Revocation, revocation_of

WAIT = 10.0  # seconds, for any one message or connection


class Feed(SessionMixin, tornado.websocket.WebSocketHandler):
    """``/ws/feed``: a receive-only feed of the session's user."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.session.get("user_id") is None:
            raise tornado.web.HTTPError(403)
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        self.write_message(self._hello())

    def _hello(self) -> dict[str, Any]:
        return {"user": self.session.get("user_id"), "fp": self.session.fingerprint}

    async def on_message(self, message: str | bytes) -> None:
        if message == "ping":
            await self.write_message(self._hello())


FEED_ROUTES: list[Any] = [(r"/ws/feed", Feed)]


class FeedClient:
    """One client socket on ``/ws/feed``, opened with a browser's cookies."""

    def __init__(self, socket: tornado.websocket.WebSocketClientConnection, hello: Any) -> None:
        self.socket = socket
        self.hello = hello
        #: When the server's close reached us (time.monotonic()), or None.
        self.closed_at: float | None = None
        self.replies: list[Any] = []
        self._closed = asyncio.ensure_future(self._watch())

    @classmethod
    async def open(cls, base_url: str, cookies: dict[str, str]) -> FeedClient:
        url = base_url.replace("http://", "ws://") + "/ws/feed"
        request = tornado.httpclient.HTTPRequest(
            url,
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
            connect_timeout=WAIT,
            request_timeout=WAIT,
        )
        socket = await asyncio.wait_for(tornado.websocket.websocket_connect(request), WAIT)
        hello = await asyncio.wait_for(socket.read_message(), WAIT)
        assert hello is not None, "the feed closed before its first message"
        return cls(socket, json.loads(hello))

    async def _watch(self) -> None:
        # Receive-only: the client reads nothing but answers to pings, and
        # learns of the close as a None message.
        while True:
            message = await self.socket.read_message()
            if message is None:
                self.closed_at = time.monotonic()
                self.socket.close()  # the client's side too (no ResourceWarning)
                return
            self.replies.append(json.loads(message))

    @property
    def close_code(self) -> int | None:
        return self.socket.close_code

    @property
    def close_reason(self) -> str | None:
        return self.socket.close_reason

    async def closed(self, timeout: float = WAIT) -> bool:
        """Wait up to ``timeout`` seconds for the server to close the
        socket; return whether it did."""
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        except TimeoutError:
            return False
        return True

    async def ping(self) -> Any:
        """Ask the server for the socket's session; fails if it is closed."""
        assert self.closed_at is None, (self.close_code, self.close_reason)
        before = len(self.replies)
        await self.socket.write_message("ping")
        async with asyncio.timeout(WAIT):
            while len(self.replies) == before:
                assert self.closed_at is None, (self.close_code, self.close_reason)
                await asyncio.sleep(0.01)
        return self.replies[-1]

    async def close(self) -> None:
        self.socket.close()
        await self.closed()


def revocation(app: tornado.web.Application) -> Revocation:
    """The `.Revocation` of an application that has served a request."""
    return revocation_of(app.__dict__["_tornado_sessions_manager"])
