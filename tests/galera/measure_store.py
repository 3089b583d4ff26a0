"""Figures of MySQLStore on the private Galera cluster (not a test)::

    .venv/bin/python -m tests.galera.measure_store [--quick]

On a fresh `GaleraCluster`, with two application processes (app A on node 1,
app B on node 2, tests/mysql/app_server.py), it prints, for the store's
default settings (causal reads) and for ``SESSION_DB_VARIABLES=wsrep_sync_wait=0``
(reads as 0.1 made them):

* stale reads in 600 pairs of (write through one app, read through the other);
* lost increments among 3,000 acknowledged ones (20 clients, 150 each, one
  shared session, distinct keys, alternating between the apps);

and, with 30,000 expired rows, the foreground save latency (p50, p99; saves
through all three nodes) with no cleaner, one ``clear_expired()`` and three
at once (one per node), and what the cleaners did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from tests.conftest import FakeClock
from tests.galera.cluster import GaleraCluster
from tests.galera.http import client, cookie_of, fetch
from tests.mysql.app_server import AppProcess
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.mysql import MySQLStore, statements


async def stale_and_lost(
    cluster: GaleraCluster, table: str, env: dict[str, str], clients: int, each: int
) -> tuple[int, int, int, int]:
    """(stale reads, pairs, lost increments, acknowledged increments)."""
    with (
        AppProcess(cluster.settings(1), table, env=env) as a,
        AppProcess(cluster.settings(2), table, env=env) as b,
    ):
        http = client(25)
        stale = 0

        async def pairs() -> None:
            nonlocal stale
            cookie = cookie_of(await fetch(http, f"{a.url}/counter"))
            for j in range(50):
                writer, reader = (a, b) if j % 2 else (b, a)
                assert (await fetch(http, f"{writer.url}/set?k=v&v={j}", cookie)).code == 200
                read = await fetch(http, f"{reader.url}/read", cookie)

                if json.loads(read.body)["data"].get("v") != j:
                    stale += 1

        acked: dict[str, int] = {}

        async def increments(i: int, cookie: str) -> None:
            for j in range(each):
                app = a if (i + j) % 2 else b
                if (await fetch(http, f"{app.url}/incr?k=c{i}", cookie)).code == 200:
                    acked[f"c{i}"] = acked.get(f"c{i}", 0) + 1

        try:
            await asyncio.gather(*(pairs() for _ in range(12)))
            shared = cookie_of(await fetch(http, f"{a.url}/counter"))
            await asyncio.gather(*(increments(i, shared) for i in range(clients)))

            held = json.loads((await fetch(http, f"{a.url}/read", shared)).body)["data"]
        finally:
            http.close()
    lost = sum(max(0, n - int(held.get(key, 0))) for key, n in acked.items())
    return stale, 600, lost, sum(acked.values())


async def cleanup_latency(cluster: GaleraCluster, table: str, expired: int) -> None:
    clock = FakeClock()
    stores = [
        MySQLStore(**cluster.settings(n), table=table, clock=clock, cleanup_interval=None)
        for n in (1, 2, 3)
    ]
    for store in stores:
        await store.open()
    now = int(clock())
    savers = [new_sid() for _ in range(30)]
    versions: dict[str, int] = {}
    for sid in savers:
        versions[sid] = await stores[0].set(
            sid,
            SessionRecord(data="{}", created_at=now, expires_at=now + 3600),
            expected_version=None,
        )

    def fill() -> None:
        values: list[Any] = []
        for _ in range(expired):
            values += [statements.key(new_sid()), now - 100, now - 100, now - 10]
        for start in range(0, len(values), 4000):
            chunk = values[start : start + 4000]
            with cluster.connect(1) as conn, conn.cursor() as cur:
                cur.execute(
                    f"INSERT INTO `{table}` (id, data, created_at, updated_at, expires_at, "
                    "version) VALUES "
                    + ", ".join(["(UNHEX(%s), '{}', %s, %s, %s, 1)"] * (len(chunk) // 4)),
                    chunk,
                )
                conn.commit()

    async def measure(label: str, cleaners: list[MySQLStore]) -> None:
        await asyncio.to_thread(fill)
        await asyncio.sleep(1)
        latencies: list[float] = []
        stop = asyncio.Event()

        async def saver(k0: int) -> None:
            k = k0
            while not stop.is_set():
                sid = savers[k % len(savers)]
                k += 3
                store = stores[k % 3]
                began = time.monotonic()
                versions[sid] = await store.set(
                    sid,
                    SessionRecord(data=f'{{"k":{k}}}', created_at=now, expires_at=now + 3600),
                    expected_version=versions[sid],
                )
                latencies.append(time.monotonic() - began)

        tasks = [asyncio.ensure_future(saver(k)) for k in range(3)]
        began = time.monotonic()
        if cleaners:
            results = await asyncio.gather(
                *(s.clear_expired() for s in cleaners), return_exceptions=True
            )
        else:
            await asyncio.sleep(3)
            results = []
        took = time.monotonic() - began
        stop.set()
        await asyncio.gather(*tasks)
        rest = await stores[0].clear_expired()
        ordered = sorted(latencies)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
        print(
            f"  {label}: {len(latencies)} saves, p50 {statistics.median(ordered) * 1000:.1f} ms, "
            f"p99 {p99:.1f} ms over {took:.1f} s; cleaners: "
            f"{[r if isinstance(r, int) else type(r).__name__ for r in results]}"
            f"{f', {rest} left for the next run' if cleaners else ''}"
        )

    try:
        print(f"foreground saves through nodes 1-3, {expired} expired rows per case:")
        await measure("no cleaner", [])
        await measure("one cleaner (node 1)", stores[:1])
        await measure("three cleaners at once (nodes 1, 2, 3)", stores)
    finally:
        for store in stores:
            await store.close()


async def run(quick: bool) -> None:
    began = time.monotonic()
    with GaleraCluster() as cluster:
        print(f"cluster started in {time.monotonic() - began:.1f} s")
        each = 30 if quick else 150
        for label, env in (
            ("store defaults (causal reads)", {}),
            (
                "SESSION_DB_VARIABLES=wsrep_sync_wait=0",
                {"SESSION_DB_VARIABLES": "wsrep_sync_wait=0"},
            ),
        ):
            table = "m_" + new_sid()[:8].replace("-", "_").lower()
            stale, pairs, lost, acked = await stale_and_lost(cluster, table, env, 20, each)
            print(
                f"{label}: {stale} stale reads in {pairs} pairs; "
                f"{lost} of {acked} acknowledged increments lost"
            )
        await cleanup_latency(cluster, "m_cleanup", 5000 if quick else 30000)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.galera.measure_store", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke run")
    asyncio.run(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
