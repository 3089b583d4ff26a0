"""Session data sealed at rest, on a real MariaDB: what ``SELECT data`` and
mysqldump of a live table show (nothing the application stored), a row
copied onto another session's id (a fresh session, no error), and a plain
row left by 0.2 (read, then sealed at its next write; counted by ``stats``
and ``create-table`` until then)."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tornado.escape
import tornado.httpclient
import tornado.web

from tests.conftest import Browser, MarkedSealing, body, sid_of, unseal
from tests.mysql.conftest import Settings, query
from tests.mysql.test_cli import _env, cli
from tornado_sessions.stores.base import SessionRecord, fingerprint, hash_sid
from tornado_sessions.stores.mysql import MySQLStore

NAME = "__Host-session"

#: What three users' sessions hold: key names, values, nested JSON, emoji.
STORED = [
    {"cart_items": ["rare-book-4711", "vinyl-0042"], "coupon_code": "SPRING-7731"},
    {"api_token": "tok-93f2c1d8e7", "roles": ["admin", "auditor"], "nick": "Zoë 🍪"},
    {"address": {"street": "Hauptstraße 12", "city": "Bremen"}, "phone": "+49-421-555-0199"},
]


def needles(data: dict[str, Any]) -> list[str]:
    """Every key name, every scalar value and the JSON text of ``data``."""
    found: list[str] = [json.dumps(data, separators=(",", ":"), ensure_ascii=False)]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                found.append(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            found.append(str(value))

    walk(data)
    return found


async def put(browser: Browser, data: dict[str, Any]) -> None:
    for key, value in data.items():
        v = json.dumps(value)
        response = await browser.get(f"/set?k={key}&v={tornado.escape.url_escape(v)}")
        assert response.code == 200


def mysqldump(settings: Settings, table: str) -> str:
    tool = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    assert tool, "mariadb-dump (or mysqldump) is needed: apt-get install mariadb-client"
    args = [
        tool,
        f"--host={settings['host']}",
        f"--port={settings['port']}",
        f"--user={settings['user']}",
        "--skip-extended-insert",
        "--hex-blob",  # the binary id column
        "--default-character-set=utf8mb4",
        settings["database"],
        table,
    ]
    if settings["password"]:
        args.insert(4, f"--password={settings['password']}")
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.gen_test(timeout=60)
async def test_a_dump_of_a_live_table_reveals_no_stored_value(
    app: tornado.web.Application,
    http_client: tornado.httpclient.AsyncHTTPClient,
    base_url: str,
    mysql_settings: Settings,
    table: str,
) -> None:
    browsers = [Browser(http_client, base_url) for _ in STORED]
    for browser, data in zip(browsers, STORED, strict=True):
        await put(browser, data)

    rows = query(mysql_settings, f"SELECT data FROM `{table}`")
    dump = mysqldump(mysql_settings, table)
    assert len(rows) == 3 and dump.count(f"INSERT INTO `{table}`") == 3
    everything = [n for data in STORED for n in needles(data)]
    for (stored,) in rows:
        assert stored.startswith("s1:")
        # Nor is it an encoding of the JSON: its bytes hold none of it either.
        raw = base64.b64decode(stored[3:])
        for needle in everything:
            assert needle not in stored and needle.encode() not in raw
        assert '{"' not in stored and '":' not in stored
    for needle in everything:
        assert needle not in dump, needle
    print(f"SELECT data and mysqldump of a live table: 0 of {len(everything)} stored values found")

    # The sessions are whole for their owners.
    for browser, data in zip(browsers, STORED, strict=True):
        assert body(await browser.get("/read")) == {"data": data, "new": False}
        sid = sid_of(app, browser.jar[NAME])
        ((mine,),) = query(
            mysql_settings,
            f"SELECT data FROM `{table}` WHERE id = UNHEX(%s)",
            (hash_sid(sid).hex(),),
        )
        assert json.loads(unseal(sid, mine)) == data


@pytest.mark.gen_test(timeout=60)
async def test_a_row_copied_onto_another_id_does_not_open(
    app: tornado.web.Application,
    http_client: tornado.httpclient.AsyncHTTPClient,
    base_url: str,
    mysql_settings: Settings,
    table: str,
    caplog: Any,
) -> None:
    victim, attacker = Browser(http_client, base_url), Browser(http_client, base_url)
    await put(victim, STORED[1])
    await put(attacker, {"mine": 1})
    victim_key = hash_sid(sid_of(app, victim.jar[NAME])).hex()
    attacker_sid = sid_of(app, attacker.jar[NAME])
    # Someone who may write the table copies the victim's data onto their row.
    query(
        mysql_settings,
        f"UPDATE `{table}` AS a JOIN `{table}` AS v ON v.id = UNHEX(%s) "
        "SET a.data = v.data WHERE a.id = UNHEX(%s)",
        (victim_key, hash_sid(attacker_sid).hex()),
    )

    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        response = await attacker.get("/read")
    assert response.code == 200
    assert body(response) == {"data": {}, "new": True}  # a fresh session, none of the victim's
    (line,) = [r.getMessage() for r in caplog.records if "does not open" in r.getMessage()]
    assert fingerprint(attacker_sid) in line and attacker_sid not in line
    assert body(await victim.get("/read")) == {"data": STORED[1], "new": False}


@pytest.mark.gen_test(timeout=90)
async def test_a_plain_row_of_0_2_is_read_then_sealed_at_its_next_write(
    app: tornado.web.Application,
    browser: Browser,
    store: MySQLStore,
    mysql_settings: Settings,
    table: str,
    tmp_path: Path,
) -> None:
    await put(browser, {"n": 1})
    sid = sid_of(app, browser.jar[NAME])
    key = (hash_sid(sid).hex(),)
    # The row as 0.2 wrote it: plain JSON in the data column.
    query(
        mysql_settings,
        f"UPDATE `{table}` SET data = %s WHERE id = UNHEX(%s)",
        ('{"legacy":"from 0.2","n":1}', key),
    )
    assert await store.count_unsealed() == 1
    env = _env(mysql_settings, SESSION_TABLE=table)
    stats = cli("stats", "--json", env=env, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["unsealed"] == 1
    created = cli("create-table", "--apply", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "1 live sessions hold unsealed data (from 0.2): sealed at next write" in created.stdout

    # Read: the old data, and no write (a read-only request stays one SELECT).
    assert body(await browser.get("/read")) == {
        "data": {"legacy": "from 0.2", "n": 1},
        "new": False,
    }
    assert await store.count_unsealed() == 1
    # The next write seals it.
    await put(browser, {"n": 2})
    ((stored,),) = query(mysql_settings, f"SELECT data FROM `{table}` WHERE id = UNHEX(%s)", (key,))
    assert "legacy" not in stored
    assert json.loads(unseal(sid, stored)) == {"legacy": "from 0.2", "n": 2}
    assert await store.count_unsealed() == 0
    stats = cli("stats", env=env, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "unsealed:       0 " in stats.stdout


@pytest.mark.gen_test(timeout=60)
async def test_the_documented_delete_ends_only_unsealed_sessions(
    app: tornado.web.Application,
    http_client: tornado.httpclient.AsyncHTTPClient,
    base_url: str,
    store: MySQLStore,
    mysql_settings: Settings,
    table: str,
) -> None:
    """The statement docs/security.rst gives, run as it is written there."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "security.rst").read_text()
    (statement,) = re.findall(r"^    (DELETE FROM sessions WHERE .*)$", page, re.M)
    sealed, plain = Browser(http_client, base_url), Browser(http_client, base_url)
    await put(sealed, {"kept": 1})
    await put(plain, {"old": 1})
    plain_key = hash_sid(sid_of(app, plain.jar[NAME])).hex()
    query(
        mysql_settings,
        f"UPDATE `{table}` SET data = %s WHERE id = UNHEX(%s)",
        ('{"old":1}', plain_key),
    )
    await store.clear_expired()  # leaves no lease row behind; insert one as a run holds it
    query(
        mysql_settings,
        f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, version) "
        "VALUES (UNHEX(%s), 'tok', 0, 0, 0, 1)",
        ("00" * 32,),
    )
    assert await store.count_unsealed() == 1

    query(mysql_settings, statement.replace("FROM sessions", f"FROM `{table}`"))
    assert await store.count_unsealed() == 0
    assert body(await sealed.get("/read")) == {"data": {"kept": 1}, "new": False}
    assert body(await plain.get("/read")) == {"data": {}, "new": True}
    assert query(mysql_settings, f"SELECT data FROM `{table}` WHERE expires_at = 0") == [("tok",)]


class Marked(MarkedSealing, MySQLStore):
    """A store whose own sealing marks the text."""


@pytest.mark.gen_test(timeout=60)
async def test_the_store_keeps_what_its_seal_hook_gives_and_reads_through_its_open_hook(
    mysql_settings: Settings, table: str
) -> None:
    store = Marked(**mysql_settings, table=table, cleanup_interval=None)
    await store.open()
    try:
        sid = secrets.token_urlsafe(32)
        now = store.now()
        text = json.dumps(STORED[0])
        record = SessionRecord(data=text, created_at=now, expires_at=now + 60, user_id="bob")
        assert await store.set(sid, record, expected_version=None) == 1
        assert await store.set(sid, record, expected_version=1) == 2
        key = (hash_sid(sid).hex(),)
        ((stored, user),) = query(
            mysql_settings, f"SELECT data, user_id FROM `{table}` WHERE id = UNHEX(%s)", key
        )
        assert stored == "marked:" + text and user == b"bob"
        got = await store.get(sid)
        assert got is not None and (got.data, got.version, got.created_at) == (text, 2, now)
        # A text the open hook refuses is a missing session.
        query(mysql_settings, f"UPDATE `{table}` SET data = %s WHERE id = UNHEX(%s)", (text, key))
        assert await store.get(sid) is None
    finally:
        await store.close()
