"""A TCP proxy in front of the test MariaDB that can lose one answer.

``drop_answer_to(b"INSERT INTO")`` arms it: the next query packet that
contains those bytes is passed to the server, which runs it; the server's
answer is then thrown away and the client's connection closed, as a network
failure or a server crash right after a commit would do.  The client sees a
lost connection (error 2013) for a statement that was applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class LosingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.dropped = 0
        self._pattern: bytes | None = None
        self._server: asyncio.Server | None = None
        self._stopped = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every proxied connection."""
        self._stopped = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for _ in range(3):  # let just-accepted connections see the stop
            await asyncio.sleep(0)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            with contextlib.suppress(BaseException):
                await writer.wait_closed()
        self._writers.clear()

    def drop_answer_to(self, pattern: bytes) -> None:
        self._pattern = pattern

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self._stopped:
            return
        this = asyncio.current_task()
        assert this is not None
        self._tasks.add(this)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            await self._pipe(reader, writer, up_reader, up_writer)
        finally:
            self._tasks.discard(this)
            writer.close()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        doomed = asyncio.Event()

        async def to_server() -> None:
            while data := await reader.read(65536):
                if self._pattern is not None and self._pattern in data:
                    self._pattern = None
                    doomed.set()
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if doomed.is_set():
                    # The server has answered, so it ran the statement: lose
                    # the answer and the connection.
                    self.dropped += 1
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            up_writer.close()
            await asyncio.gather(*tasks, return_exceptions=True)
