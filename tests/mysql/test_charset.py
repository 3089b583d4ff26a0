"""SQL injection through the connection's character set (issue 17, finding 3).

A server whose ``init_connect`` is ``SET NAMES gbk`` reads every statement
of a non-SUPER user in GBK.  The driver escapes a quote as ``\\'`` and sends
utf8mb4, so a value holding U+7E17 (utf8 ``e7 b8 97``) followed by a quote
reads as ``e7b8`` ``975c`` ``'``: the escaping backslash is swallowed by a
GBK character, the quote ends the string, and the rest of the value is SQL.

The first test shows that the server of these tests does that to a pool
made as 0.2 made its own (``charset="utf8mb4"``, no ``SET NAMES``); the others
that the store forces utf8mb4 on its own connections, checks every new
connection of every pool, and refuses settings that would undo it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiomysql
import pymysql
import pytest
from pymysql.constants import CLIENT

from tests.conftest import FakeClock, unseal
from tests.contract import record
from tests.mysql.conftest import Settings, create_pool, query
from tests.mysql.server import MariaDBServer
from tornado_sessions import ConfigError, SessionConfig, StoreError
from tornado_sessions.config import generate_secret
from tornado_sessions.manager import new_sid
from tornado_sessions.sealing import is_sealed
from tornado_sessions.stores.base import hash_sid
from tornado_sessions.stores.mysql import MySQLStore
from tornado_sessions.stores.mysql.charset import CharsetError

ADMIN = '{"role":"admin"}'
USER = '{"role":"user"}'


def crafted_value(victim: str) -> str:
    """A value that, read in GBK, sets the victim's data to `ADMIN` (hex
    literals: the injected SQL needs no quote of its own)."""
    return (
        f"\u7e17', data=0x{ADMIN.encode().hex()}, version=version "
        f"WHERE user_id=0x{victim.encode().hex()} -- "
    )


def crafted(victim: str) -> str:
    """Session data holding `crafted_value`.  The store seals data (0.3), so
    what reaches the SQL of the data column is base64; the tests also send
    the value as the user id, a column the server reads in clear."""
    return json.dumps({"bio": crafted_value(victim)}, ensure_ascii=False)


@pytest.fixture
def gbk_server(private_server: MariaDBServer) -> Iterator[Settings]:
    """The private server with ``init_connect='SET NAMES gbk'`` (it applies
    to the tests' user, who has no SUPER privilege), reset afterwards."""
    admin = private_server.admin()
    try:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL init_connect = 'SET NAMES gbk'")
        yield private_server.settings()
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL init_connect = ''")
        admin.close()


def data_of(settings: Settings, table: str, sid: str) -> str:
    """The session's stored data, opened if it is sealed."""
    ((data,),) = query(
        settings, f"SELECT data FROM `{table}` WHERE id = UNHEX(%s)", (hash_sid(sid).hex(),)
    )
    return unseal(sid, data) if is_sealed(data) else str(data)


async def two_users(store: MySQLStore, clock: FakeClock) -> tuple[str, str]:
    """A victim's session holding `USER` and an attacker's session."""
    victim, attacker = new_sid(), new_sid()
    await store.set(victim, record(clock, USER, user="victim"), expected_version=None)
    await store.set(attacker, record(clock, "{}", user="mallory"), expected_version=None)
    return victim, attacker


@pytest.mark.gen_test(timeout=60)
async def test_without_the_fix_the_crafted_value_rewrites_another_row_or_breaks_the_sql(
    gbk_server: Settings, private_table: str, clock: FakeClock
) -> None:
    """The control: a pool made as 0.2 made the store's own, on this server."""
    setup = MySQLStore(**gbk_server, table=private_table, clock=clock, cleanup_interval=None)
    try:
        victim, attacker = await two_users(setup, clock)
    finally:
        await setup.close()
    pool = await create_pool(
        gbk_server,
        1,
        autocommit=True,
        charset="utf8mb4",
        client_flag=CLIENT.FOUND_ROWS,
        init_command="SET SESSION sql_notes=0",
    )
    try:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT @@character_set_client")
            assert (await cur.fetchone())[0] == "gbk"
            try:
                await cur.execute(
                    f"UPDATE `{private_table}` SET data = %s, version = version + 1 "
                    "WHERE id = UNHEX(%s)",
                    (crafted("victim"), hash_sid(attacker).hex()),
                )
            except pymysql.err.ProgrammingError as exc:
                outcome: Any = exc.args[0]
            else:
                outcome = data_of(gbk_server, private_table, victim)
    finally:
        pool.close()
        await pool.wait_closed()
    assert outcome in (1064, ADMIN), outcome


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("coalesce_writes", [False, True], ids=["single", "batched"])
async def test_the_stores_own_pool_is_utf8mb4_whatever_init_connect_says(
    gbk_server: Settings, private_table: str, clock: FakeClock, coalesce_writes: bool
) -> None:
    store = MySQLStore(
        **gbk_server,
        table=private_table,
        clock=clock,
        cleanup_interval=None,
        coalesce_writes=coalesce_writes,
    )
    try:
        victim, attacker = await two_users(store, clock)
        others = [new_sid() for _ in range(3)]
        for sid in others:
            await store.set(sid, record(clock, "{}", user="mallory"), expected_version=None)
        text, value = crafted("victim"), crafted_value("victim")
        # Concurrent saves: with coalesce_writes they share one batch.
        saved = await asyncio.gather(
            *(
                store.set(sid, record(clock, text, user=value), expected_version=1)
                for sid in [attacker, *others]
            )
        )
        assert data_of(gbk_server, private_table, victim) == USER
        assert saved == [2, 2, 2, 2]
        got = await store.get(attacker)
        assert got is not None and got.data == text
        assert data_of(gbk_server, private_table, attacker) == text
        assert [info.user_id for info in await store.sessions_for_user("victim")] == ["victim"]
        assert len(await store.sessions_for_user(value)) == 4  # the value, stored as it is
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_made_with_pool_options_is_forced_to_utf8mb4_too(
    gbk_server: Settings, private_table: str, clock: FakeClock
) -> None:
    pool = await create_pool(gbk_server, 2, **MySQLStore.pool_options())
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    try:
        victim, attacker = await two_users(store, clock)
        text, value = crafted("victim"), crafted_value("victim")
        assert await store.set(attacker, record(clock, text, user=value), expected_version=1) == 2
        assert data_of(gbk_server, private_table, victim) == USER
        assert data_of(gbk_server, private_table, attacker) == text
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()


@pytest.mark.gen_test(timeout=60)
async def test_every_new_connection_of_a_pool_passed_in_is_checked_not_only_the_first(
    private_server: MariaDBServer, private_table: str, clock: FakeClock
) -> None:
    """The pool is fine when the store starts; then the server's
    ``init_connect`` changes, and the pool opens a new connection."""
    settings = private_server.settings()
    pool = await create_pool(settings, 2, autocommit=True, client_flag=CLIENT.FOUND_ROWS)
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    admin = private_server.admin()
    held: aiomysql.Connection | None = None
    try:
        victim, attacker = await two_users(store, clock)
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL init_connect = 'SET NAMES gbk'")
        held = await pool.acquire()  # the store's next statement needs a new connection
        with pytest.raises(CharsetError) as caught:
            await store.set(
                attacker,
                record(clock, crafted("victim"), user=crafted_value("victim")),
                expected_version=1,
            )
        message = str(caught.value)
        assert "character_set_client='gbk'" in message and "init_connect" in message
        assert isinstance(caught.value, StoreError) and isinstance(caught.value, ConfigError)
        assert pool.size == 1  # the refused connection was closed, not pooled
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL init_connect = ''")
        admin.close()
        if held is not None:
            pool.release(held)
        await store.close()
        pool.close()
        await pool.wait_closed()
    assert data_of(settings, private_table, victim) == USER
    assert data_of(settings, private_table, attacker) == "{}"


@pytest.mark.gen_test(timeout=60)
async def test_a_pool_that_reads_results_in_another_set_is_refused_naming_the_variable(
    private_settings: Settings, private_table: str, clock: FakeClock
) -> None:
    pool = await create_pool(
        private_settings,
        1,
        autocommit=True,
        client_flag=CLIENT.FOUND_ROWS,
        init_command="SET character_set_results = latin1",
    )
    store = MySQLStore(pool=pool, table=private_table, clock=clock, cleanup_interval=None)
    try:
        with pytest.raises(CharsetError, match="character_set_results='latin1'"):
            await store.get(new_sid())
    finally:
        await store.close()
        pool.close()
        await pool.wait_closed()


@pytest.mark.parametrize(
    "name", ["character_set_client", "CHARACTER_SET_RESULTS", "collation_connection"]
)
def test_session_variables_that_change_the_character_set_are_refused_by_name(
    mysql_settings: Settings, name: str
) -> None:
    with pytest.raises(ConfigError, match=f"session variable {name} is not accepted"):
        MySQLStore(**mysql_settings, session_variables={name: "gbk"})
    with pytest.raises(ConfigError, match=f"{name} is not accepted"):
        MySQLStore.pool_options({name: "gbk"})
    with pytest.raises(ConfigError, match=f"{name} is not accepted.*SESSION_DB_VARIABLES"):
        SessionConfig(secret=generate_secret(), db_variables={name: "gbk"})


def test_the_stores_own_connections_end_their_set_with_names_utf8mb4() -> None:
    store = MySQLStore(host="h", database="d", session_variables={"max_statement_time": 5})
    command = store._conns.init_command()
    assert command.startswith("SET SESSION sql_notes=0, ")
    assert command.endswith("max_statement_time=5, NAMES utf8mb4")
    assert MySQLStore.pool_options()["init_command"].endswith(", NAMES utf8mb4")
