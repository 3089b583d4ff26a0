"""The server's own time per statement: the store's beside
express-mysql-session's, on a private MariaDB.

    .venv/bin/python bench/statements.py [--count 3000] [--json FILE]

The server's slow log, at ``long_query_time=0``, records every statement
with the time the server spent on it, to the microsecond: no client, driver
or network time is in it.  Each round runs every statement below once, in a
new random order, on the next of 500 sessions of each table (the same
sealed-size data in both), so that the machine's noise falls on all of them
alike; the figure is the median over ``--count`` rounds, with the quartiles.

* ours: a load (`.Statements.select_one`), a batched load of 4 sessions
  (`.Statements.select_many`), a save (`.Statements.update`, the values of
  `.statements.update_args`), a touch (`.Statements.touch`);
* express-mysql-session 3's: its ``get`` (a ``SELECT``), ``set`` (an
  ``INSERT ... ON DUPLICATE KEY UPDATE``) and ``touch`` (an ``UPDATE``) on
  its own table (``schema.sql``);
* ``DO 1``: a statement that reads no table, the server's floor.

A request of express-session costs a load and a touch (a read) or a load
and a set (a write); ours a load, or a load and a save.  The server's
CPU is shared with the application on one machine, and at one connection
the client waits for it: so these differences are part of the ratios of
``make bench``.  It needs a private server (the slow log is a global
setting): apt-get installs MariaDB if missing, as for the tests.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import BenchError  # noqa: E402
from bench.db import connect, private_server  # noqa: E402
from tornado_sessions.stores.base import SessionRecord  # noqa: E402
from tornado_sessions.stores.mysql.schema import create_table_sql  # noqa: E402
from tornado_sessions.stores.mysql.statements import (  # noqa: E402
    Statements,
    insert_args,
    key,
    update_args,
)

SESSIONS = 500
OURS = "bench_statements"
EXPRESS = "bench_statements_express"
#: express-mysql-session 3.0's schema.sql and statements (its index.js).
EXPRESS_TABLE = (
    f"CREATE TABLE `{EXPRESS}` (`session_id` varchar(128) COLLATE utf8mb4_bin NOT NULL, "
    "`expires` int(11) unsigned NOT NULL, `data` mediumtext COLLATE utf8mb4_bin, "
    "PRIMARY KEY (`session_id`)) ENGINE=InnoDB"
)
EXPRESS_GET = (
    f"SELECT `data` AS data, `expires` as expires FROM `{EXPRESS}` WHERE `session_id` = %s"
)
EXPRESS_SET = (
    f"INSERT INTO `{EXPRESS}` (`session_id`, `expires`, `data`) VALUES (%s, %s, %s) "
    "ON DUPLICATE KEY UPDATE `expires` = VALUES(`expires`), `data` = VALUES(`data`)"
)
EXPRESS_TOUCH = f"UPDATE `{EXPRESS}` SET `expires` = %s WHERE `session_id` = %s"
#: name -> (side, what it is)
NAMES = {
    "ours-load": ("ours", "load (SELECT by key)"),
    "ours-load-4": ("ours", "batched load of 4 (SELECT ... IN)"),
    "ours-save": ("ours", "save (version-checked UPDATE)"),
    "ours-touch": ("ours", "touch (UPDATE of the expiry)"),
    "express-get": ("express", "get (SELECT)"),
    "express-set": ("express", "set (INSERT ... ON DUPLICATE KEY UPDATE)"),
    "express-touch": ("express", "touch (UPDATE)"),
    "floor": ("server", "DO 1 (no table)"),
}
_TAG = re.compile(r"/\*(\S+)\*/")


def tagged(name: str, sql: str) -> str:
    """``sql`` with a comment naming it after its first word (kept in the log)."""
    verb, rest = sql.split(" ", 1)
    return f"{verb} /*{name}*/ {rest}"


class Bench:
    def __init__(self, cur: Any) -> None:
        self.cur = cur
        self.st = Statements(OURS)
        self.now = int(time.time())
        self.sids = [secrets.token_urlsafe(32) for _ in range(SESSIONS)]
        self.keys = [key(sid) for sid in self.sids]
        self.versions = [1] * SESSIONS
        self.count = 0
        self.sql = {
            "ours-load": tagged("ours-load", self.st.select_one),
            "ours-load-4": tagged("ours-load-4", self.st.select_many(4)),
            "ours-save": tagged("ours-save", self.st.update),
            "ours-touch": tagged("ours-touch", self.st.touch),
            "express-get": tagged("express-get", EXPRESS_GET),
            "express-set": tagged("express-set", EXPRESS_SET),
            "express-touch": tagged("express-touch", EXPRESS_TOUCH),
            "floor": "DO /*floor*/ 1",
        }

    def data(self) -> str:
        """A sealed session's size (about 200 characters), new each time, so
        that no save writes what the row already holds."""
        self.count += 1
        return f"s1:{secrets.token_urlsafe(144)}{self.count:08d}"

    def record(self) -> SessionRecord:
        return SessionRecord(
            data="{}", created_at=self.now, expires_at=self.now + 86400 + self.count
        )

    def fill(self) -> None:
        cur = self.cur
        cur.execute(f"DROP TABLE IF EXISTS `{OURS}`")
        cur.execute(f"DROP TABLE IF EXISTS `{EXPRESS}`")
        cur.execute(create_table_sql(OURS))
        cur.execute(EXPRESS_TABLE)
        for i, hex_key in enumerate(self.keys):
            args = insert_args(self.record(), self.data(), hex_key, self.now, self.now * 10**6)
            cur.execute(self.st.insert, args)
            cur.execute(EXPRESS_SET, (self.sids[i], self.now + 86400, self.data()))

    def run(self, name: str, i: int) -> None:
        cur, sql, now = self.cur, self.sql[name], int(time.time())
        k = self.keys[i]
        if name == "ours-load":
            cur.execute(sql, (k,))
            assert len(cur.fetchall()) == 1
        elif name == "ours-load-4":
            picked = [self.keys[(i + 97 * n) % SESSIONS] for n in range(4)]
            cur.execute(sql, picked)
            assert len(cur.fetchall()) == 4
        elif name == "ours-save":
            version = self.versions[i]
            args = update_args(
                self.record(), self.data(), k, version + 1, version, now, now * 10**6
            )
            cur.execute(sql, args)
            assert cur.rowcount == 1, "the save matched no row"
            self.versions[i] = version + 1
        elif name == "ours-touch":
            cur.execute(sql, (None, now + 90000 + self.count, now, now * 10**6, k, now))
        elif name == "express-get":
            cur.execute(sql, (self.sids[i],))
            assert len(cur.fetchall()) == 1
        elif name == "express-set":
            cur.execute(sql, (self.sids[i], now + 86400 + self.count, self.data()))
        elif name == "express-touch":
            cur.execute(sql, (now + 90000 + self.count, self.sids[i]))
        else:
            cur.execute(sql)


def measure(count: int) -> dict[str, Any]:
    with private_server() as server:
        admin = server.admin()
        with admin.cursor() as acur:
            for setting in (
                "log_output='TABLE'",
                "long_query_time=0",
                "log_slow_filter=''",
                "log_slow_verbosity=''",
                "slow_query_log=1",
            ):
                acur.execute(f"SET GLOBAL {setting}")
            # A connection made after the settings: they are read at login.
            conn = connect(server.settings())
            bench = Bench(conn.cursor())
            bench.fill()
            acur.execute("TRUNCATE mysql.slow_log")
            names = list(NAMES)
            for r in range(count):
                random.shuffle(names)
                for name in names:
                    bench.run(name, r % SESSIONS)
            acur.execute("SET GLOBAL slow_query_log=0")
            acur.execute("SELECT sql_text, query_time FROM mysql.slow_log")
            times: dict[str, list[float]] = defaultdict(list)
            for text, spent in acur.fetchall():
                found = _TAG.search(text if isinstance(text, str) else text.decode())
                if found and found.group(1) in NAMES:
                    times[found.group(1)].append(spent.total_seconds() * 1e6)
            conn.close()
        admin.close()
    out: dict[str, Any] = {"count": count, "sessions": SESSIONS, "statements": {}}
    for name, (side, what) in NAMES.items():
        spent = sorted(times[name])
        if len(spent) != count:
            raise BenchError(f"the slow log holds {len(spent)} of {count} {name} statements")
        q1, median, q3 = statistics.quantiles(spent, n=4)
        out["statements"][name] = {
            "side": side,
            "what": what,
            "n": len(spent),
            "median_us": round(median, 1),
            "q1_us": round(q1, 1),
            "q3_us": round(q3, 1),
        }
    m = {name: entry["median_us"] for name, entry in out["statements"].items()}
    out["read_us"] = {
        "ours": m["ours-load"],
        "express": round(m["express-get"] + m["express-touch"], 1),
    }
    out["write_us"] = {
        "ours": round(m["ours-load"] + m["ours-save"], 1),
        "express": round(m["express-get"] + m["express-set"], 1),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=3000, help="rounds (3000)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.count < 4:
        parser.error("--count must be at least 4")
    try:
        result = measure(args.count)
    except BenchError as exc:
        print(f"bench/statements.py: {exc}", file=sys.stderr)
        return 1
    print(f"server time per statement, µs (slow log; median [quartiles] of {args.count})")
    for entry in result["statements"].values():
        spread = f"{entry['median_us']:7.1f} [{entry['q1_us']:.0f}-{entry['q3_us']:.0f}]"
        print(f"  {entry['side']:8} {entry['what']:42} {spread}")
    for kind in ("read", "write"):
        ours, theirs = result[f"{kind}_us"]["ours"], result[f"{kind}_us"]["express"]
        print(f"  a {kind} request: ours {ours:.1f}, express-session's {theirs:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
