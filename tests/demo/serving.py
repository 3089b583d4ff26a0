"""Servers for the browser tests, run on their own event loop in a
background thread (the Selenium calls of a test block its own thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

#: Seconds for the thread's servers to start, or to stop.
START = 30
#: Seconds for the servers' own shutdown, inside the thread.
SHUTDOWN = 10


class ServedFromThread:
    """Runs `serve` on a new event loop in a daemon thread: `start` returns
    once it has started (or raises with its error), `stop` ends it and
    joins the thread (and raises with an error the thread met meanwhile).

    :param name: what is served, for the thread's name and the errors.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    async def serve(self) -> Callable[[], Awaitable[None]]:
        """Start the servers, on the thread's loop; return what shuts them down."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START):
            raise RuntimeError(f"{self.name} did not start within {START} s")
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed to start") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() or stop()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        shut_down = await self.serve()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            async with asyncio.timeout(SHUTDOWN):
                await shut_down()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop has already finished
                pass
        self._thread.join(START)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.name} did not stop within {START} s")
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed") from self._error
