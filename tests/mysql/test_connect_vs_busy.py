"""No connection in time: a server (or an address) that does not answer is
reported as a failure to connect, not as "all pool connections are busy";
a pool whose connections are all in use is reported as busy.

The silent server is a real TCP listener on loopback that accepts and never
sends the MySQL greeting (what an unroutable or firewalled address looks
like to the client: nothing comes back); the busy pool is on the real test
server.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.mysql.conftest import Settings, new_table_name, query
from tornado_sessions import StoreError
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.mysql import MySQLStore


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()


@pytest.mark.gen_test(timeout=60)
async def test_a_server_that_does_not_answer_is_a_connect_failure() -> None:
    async with SilentServer() as silent:
        store = MySQLStore(
            host="127.0.0.1",
            port=silent.port,
            user="app",
            password="unused",
            database="appdb",
            timeout=1.0,
            cleanup_interval=None,
        )
        try:
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                await store.get(new_sid())
            elapsed = time.monotonic() - started
        finally:
            await store.close()
    message = str(caught.value)
    assert silent.accepted >= 1  # it did try that address
    assert f"127.0.0.1:{silent.port}" in message
    assert "could not connect within 1 s (SESSION_DB_TIMEOUT; 0 of 10 pool connections in use)" in (
        message
    )
    assert "nothing answered at that address" in message and "SESSION_HOST" in message
    assert "busy" not in message.replace("too busy to accept", "")
    assert elapsed < 5, elapsed


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_whose_connections_are_all_in_use_is_busy(mysql_settings: Settings) -> None:
    table = new_table_name()
    store = MySQLStore(
        **mysql_settings, table=table, pool_size=1, timeout=1.0, cleanup_interval=None
    )
    try:
        await store.open()  # one connection made, and back in the pool
        pool = await store._conns.pool()
        held = await pool.acquire()  # the application holds the only one
        try:
            with pytest.raises(StoreError) as caught:
                await store.get(new_sid())
        finally:
            pool.release(held)
        message = str(caught.value)
        assert "all 1 pool connections are busy (SESSION_POOL_SIZE)" in message
        assert "could not connect" not in message
        assert await store.get(new_sid()) is None  # free again: it works
    finally:
        await store.close()
        query(mysql_settings, f"DROP TABLE IF EXISTS `{table}`")
