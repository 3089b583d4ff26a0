"""``python -m demo`` with ``SESSION_HOST`` set: MySQLStore on a real MariaDB.

The server is the one the tests of the MySQL store use (``SESSION_*`` if it
answers, else a private MariaDB started for the run); never mocked, never
skipped.
"""

from __future__ import annotations

import re
import signal
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.mysql.conftest import (  # noqa: F401  (fixtures, used by name)
    Settings,
    mysql_settings,
    new_table_name,
    private_server,
    query,
)

from .conftest import SECRET


@pytest.fixture
def demo_table(mysql_settings: Settings) -> Iterator[str]:  # noqa: F811
    name = new_table_name()
    yield name
    query(mysql_settings, f"DROP TABLE IF EXISTS `{name}`")


def fetch(url: str, cookie: str | None) -> tuple[str, str | None]:
    """GET ``url``; return the page and the session cookie it set (if any)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
        found = [
            c.split(";", 1)[0]
            for c in response.headers.get_all("Set-Cookie") or []
            if c.startswith("__Host-session=")
        ]
    return page, found[0] if found else None


def test_python_m_demo_uses_mysql_and_creates_its_table(
    run_demo: Any,
    mysql_settings: Settings,  # noqa: F811
    demo_table: str,
) -> None:
    proc, banner = run_demo(
        "--port",
        "0",
        "--no-reload",
        SESSION_SECRET=SECRET,
        SESSION_HOST=str(mysql_settings["host"]),
        SESSION_PORT=str(mysql_settings["port"]),
        SESSION_USER=str(mysql_settings["user"]),
        SESSION_PASSWORD=str(mysql_settings["password"]),
        SESSION_DATABASE=str(mysql_settings["database"]),
        SESSION_TABLE=demo_table,
    )
    text = "\n".join(banner)
    assert "MySQLStore" in text and demo_table in text
    assert "MemoryStore" not in text and "throwaway" not in text
    if mysql_settings["password"]:
        assert str(mysql_settings["password"]) not in text
    url = re.search(r"open: +(http://localhost:\d+/)", text)
    assert url, text

    # The table was created at startup, before any request.
    tables = query(
        mysql_settings,
        "SELECT TABLE_NAME FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (demo_table,),
    )
    assert tables == [(demo_table,)]

    page, cookie = fetch(url.group(1), None)
    assert 'id="visits">1<' in page
    assert cookie
    # The home page says which store it runs on, and where.
    assert "Sessions are kept in <strong>MySQLStore</strong>" in page
    assert f"table {demo_table}" in page and "lost at every restart" not in page
    page, _ = fetch(url.group(1), cookie)
    assert 'id="visits">2<' in page
    assert query(mysql_settings, f"SELECT COUNT(*) FROM `{demo_table}`") == [(1,)]

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
