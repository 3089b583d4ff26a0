"""Figures of live revocation across two processes (not a test)::

    .venv/bin/python -m tests.measure_revocation            # a private MariaDB
    .venv/bin/python -m tests.measure_revocation --galera   # a private 3-node cluster

Two application processes (tests/mysql/app_server.py) share one table:
A (on node 1 with ``--galera``) serves the logins and logouts, B (on node 2)
holds the receive-only WebSockets (``/ws/feed``).  It prints:

* the **delay** from a logout's response through A to the close (code 4001)
  reaching the client of B's socket, over ``--logouts`` logouts (100),
  spread at random over four intervals so that they land anywhere in B's
  cycle: median, 90th percentile and worst;
* with ``--sockets`` (1,000) sockets open in B, each on a session of its
  own, over six intervals: the **statements per interval**, counted by the
  server (the ``Com_select`` status counter of B's server, and the
  statements on the table in its general log), the keys each one carries,
  and B's CPU time (user + system, from /proc) over the window;
* the **CPU time per check**: the same sockets on a third process C on B's
  server, checking every 0.1 s for 20 s (its checks counted by
  ``Com_select``), so that /proc's 10 ms tick does not blur one check.

The servers are private (started and removed by the script): nothing else
runs statements on them, so the server's counters are B's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import tornado.httpclient

from tests.conftest import Browser
from tests.mysql.app_server import AppProcess
from tests.ws import FeedClient

CONCURRENCY = 25
#: The interval of process C, which measures the CPU time of a check: many
#: checks, so that the 10 ms clock tick of /proc does not blur one.
FAST = 0.1
FAST_WINDOW = 20.0


@contextlib.contextmanager
def servers(galera: bool) -> Iterator[tuple[dict[str, Any], dict[str, Any], Any]]:
    """The settings of A's and B's server, and an admin connection to B's."""
    if galera:
        from tests.galera.cluster import GaleraCluster

        cluster = GaleraCluster()
        cluster.setup()
        try:
            yield cluster.settings(1), cluster.settings(2), lambda: cluster.admin(2)
        finally:
            cluster.cleanup()
    else:
        from tests.mysql.server import running_server

        with running_server("for the measurement") as server:
            yield server.settings(), server.settings(), server.admin


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status(admin: Any, name: str) -> int:
    with admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        return int(cur.fetchone()[1])


async def bounded(jobs: list[Any]) -> list[Any]:
    """Run the coroutines ``jobs``, at most `CONCURRENCY` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


async def login(client: tornado.httpclient.AsyncHTTPClient, url: str, user: str) -> Browser:
    browser = Browser(client, url)
    response = await browser.get(f"/u/login?user={user}")
    assert response.code == 200, response.body
    return browser


async def delays(a: str, b: str, count: int, interval: float) -> list[float]:
    """Seconds from each logout's response (through A) to its socket's close (in B)."""
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=CONCURRENCY)
    try:
        browsers = await bounded([login(client, a, f"d{n}") for n in range(count)])
        feeds = await bounded([FeedClient.open(b, br.jar) for br in browsers])
        spread = 4 * interval

        async def logout(browser: Browser, feed: FeedClient) -> float:
            await asyncio.sleep(random.uniform(0, spread))
            response = await browser.get("/logout")
            assert response.code == 200, response.body
            done = time.monotonic()
            assert await feed.closed(interval + 30), "a socket stayed open"
            assert (feed.close_code, feed.close_reason) == (4001, "session ended")
            assert feed.closed_at is not None
            return feed.closed_at - done

        return list(
            await asyncio.gather(*(logout(br, f) for br, f in zip(browsers, feeds, strict=True)))
        )
    finally:
        client.close()


async def load(
    a: str, b: str, sockets: int, interval: float, pid: int, admin: Any, table: str
) -> dict[str, Any]:
    """With ``sockets`` open in B: statements per interval and CPU per check."""
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=CONCURRENCY)
    conn = admin()
    try:
        browsers = await bounded([login(client, a, f"s{n}") for n in range(sockets)])
        feeds = await bounded([FeedClient.open(b, br.jar) for br in browsers])
        await asyncio.sleep(interval)  # the first check with all of them
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL log_output = 'TABLE'")
            cur.execute("SET GLOBAL general_log = 0")
            cur.execute("TRUNCATE TABLE mysql.general_log")
            cur.execute("SET GLOBAL general_log = 1")
        selects, cpu, began = status(conn, "Com_select"), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(6 * interval)
        selects = status(conn, "Com_select") - selects
        cpu, elapsed = cpu_seconds(pid) - cpu, time.monotonic() - began
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL general_log = 0")
            cur.execute(
                "SELECT argument FROM mysql.general_log WHERE command_type = 'Query' "
                "AND thread_id <> CONNECTION_ID()"
            )
            logged = [
                row[0].decode() if isinstance(row[0], bytes) else str(row[0])
                for row in cur.fetchall()
            ]
        on_table = [s for s in logged if f"`{table}`" in s]
        keys = [len(re.findall(r"UNHEX\(", s)) for s in on_table]
        open_now = sum(1 for f in feeds if f.closed_at is None)
        for feed in feeds:
            await feed.close()
        return {
            "browsers": browsers,
            "open": open_now,
            "window": elapsed,
            "com_select": selects,
            "logged": len(on_table),
            "keys": sorted(set(keys)),
            "cpu": cpu,
        }
    finally:
        client.close()
        conn.close()


async def cpu_per_check(
    c: str, cookies: list[dict[str, str]], pid: int, admin: Any
) -> tuple[int, float]:
    """The same sockets on process C, which checks every `FAST` seconds: the
    checks in `FAST_WINDOW` seconds (``Com_select``) and C's CPU time."""
    conn = admin()
    try:
        feeds = await bounded([FeedClient.open(c, jar) for jar in cookies])
        await asyncio.sleep(1)
        selects, cpu = status(conn, "Com_select"), cpu_seconds(pid)
        await asyncio.sleep(FAST_WINDOW)
        selects, cpu = status(conn, "Com_select") - selects, cpu_seconds(pid) - cpu
        assert all(f.closed_at is None for f in feeds)
        for feed in feeds:
            await feed.close()
        return selects, cpu
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.measure_revocation", description=__doc__)
    parser.add_argument("--galera", action="store_true", help="a 3-node cluster, A and B on 1, 2")
    parser.add_argument("--logouts", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    table = "m_" + uuid.uuid4().hex[:12]
    env = {"SESSION_REVOCATION_INTERVAL": str(args.interval)}
    where = "3-node Galera, A on node 1, B on node 2" if args.galera else "one MariaDB"
    print(f"live revocation, {where}, SESSION_REVOCATION_INTERVAL={args.interval:g}")
    with servers(args.galera) as (settings_a, settings_b, admin):
        with (
            AppProcess(settings_a, table, env=env) as a,
            AppProcess(settings_b, table, env=env) as b,
        ):
            assert b.proc is not None
            found = asyncio.run(delays(a.url, b.url, args.logouts, args.interval))
            found.sort()
            p90 = found[int(0.9 * len(found)) - 1]
            median = statistics.median(found)
            print(
                f"delay over {len(found)} logouts (A -> B): median {median:.2f} s, "
                f"p90 {p90:.2f} s, worst {found[-1]:.2f} s, best {found[0]:.2f} s"
            )
            figures = asyncio.run(
                load(a.url, b.url, args.sockets, args.interval, b.proc.pid, admin, table)
            )
            intervals = figures["window"] / args.interval
            checks = figures["logged"] or 1
            print(
                f"{figures['open']} sockets open in B over {figures['window']:.1f} s "
                f"({intervals:.1f} intervals): Com_select +{figures['com_select']} "
                f"({figures['com_select'] / intervals:.2f} per interval); general log: "
                f"{figures['logged']} statements on the table "
                f"({figures['logged'] / intervals:.2f} per interval), keys per statement "
                f"{figures['keys']}"
            )
            print(
                f"B's CPU: {figures['cpu'] * 1000:.0f} ms over the window, "
                f"{figures['cpu'] * 1000 / checks:.1f} ms per check"
            )
        cookies = [browser.jar for browser in figures["browsers"]]
        fast = {"SESSION_REVOCATION_INTERVAL": str(FAST)}
        with AppProcess(settings_b, table, env=fast) as c:
            assert c.proc is not None
            done, cpu = asyncio.run(cpu_per_check(c.url, cookies, c.proc.pid, admin))
            print(
                f"the same {len(cookies)} sockets on C (interval {FAST:g} s, same server as B): "
                f"{done} checks in {FAST_WINDOW:g} s, C's CPU {cpu * 1000:.0f} ms, "
                f"{cpu * 1000 / max(done, 1):.2f} ms per check"
            )


if __name__ == "__main__":
    main()
