"""Client CPU per point SELECT on each database driver: the store's own read
statement, on a pool made by `create_pool` from the config, from many tasks
at once (as requests run), with and without server-side prepared statements
where the driver has them.

    .venv/bin/python bench/drivers.py [--db auto|env|local|private]
        [--tasks 32] [--pool 10] [--queries 20000] [--rounds 3]

Reports, per driver, the median (min-max over rounds) of the process's CPU
time (user + system, ``time.process_time``) divided by the statements run,
and the statements per second of wall time.  asyncmy is measured only when
it is installed (``pip install 'tornado_sessions[asyncmy]'``); its prepared
statements are its connection option ``stmt_cache_size``, which a pool
passes through to each connection.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import BenchError  # noqa: E402
from bench.db import database, drop_tables  # noqa: E402
from tornado_sessions.config import DatabaseConfig  # noqa: E402
from tornado_sessions.stores.base import SessionRecord  # noqa: E402
from tornado_sessions.stores.mysql import MySQLStore, create_pool, driver  # noqa: E402
from tornado_sessions.stores.mysql.statements import Statements, key  # noqa: E402

TABLE = "bench_drivers"
SIDS = [f"{i:043d}" for i in range(64)]


async def _seed(config: DatabaseConfig) -> None:
    store = MySQLStore.from_config(config, cleanup_interval=None, driver="aiomysql")
    try:
        await store.open()
        now = int(time.time())
        for sid in SIDS:
            record = SessionRecord(data='{"n":1}', created_at=now, expires_at=now + 3600)
            await store.set(sid, record, expected_version=None)
    finally:
        await store.close()


async def _round(
    config: DatabaseConfig, tasks: int, queries: int, overrides: dict[str, Any]
) -> tuple[float, float]:
    """(CPU µs per statement, statements per second) of one round."""
    name = config.db_driver
    adapter = driver.load(name)
    pool = await create_pool(config, **overrides)
    sql = Statements(TABLE).select_one
    keys = [key(sid) for sid in SIDS]
    per_task = queries // tasks
    try:
        # Open the pool's connections (and prepare the statement) first.
        async def warm(n: int) -> None:
            for i in range(n):
                async with pool.acquire() as conn:
                    cur = await adapter.cursor(conn)
                    await cur.execute(sql, (keys[i % len(keys)],))
                    assert await cur.fetchall()
                    await cur.close()

        await asyncio.gather(*(warm(20) for _ in range(tasks)))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(warm(per_task) for _ in range(tasks)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        pool.close()
        await pool.wait_closed()
    n = per_task * tasks
    return cpu / n * 1e6, n / wall


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--db", default="auto", choices=["auto", "env", "local", "private"])
    add("--tasks", type=int, default=32, help="concurrent tasks (32)")
    add("--pool", type=int, default=10, help="pool size (10)")
    add("--queries", type=int, default=20000, help="statements per round (20000)")
    add("--rounds", type=int, default=3, help="rounds; the median is reported (3)")
    args = parser.parse_args(argv)
    variants: list[tuple[str, str, dict[str, Any]]] = [("aiomysql", "aiomysql", {})]
    if driver.installed("asyncmy"):
        variants += [
            ("asyncmy", "asyncmy", {}),
            ("asyncmy, prepared (stmt_cache_size=64)", "asyncmy", {"stmt_cache_size": 64}),
        ]
    try:
        with database(args.db) as (label, settings):
            base = DatabaseConfig(
                host=settings["host"],
                port=settings["port"],
                user=settings["user"],
                password=settings["password"],
                database=settings["database"],
                table=TABLE,
                pool_size=args.pool,
            )
            drop_tables(settings, TABLE)
            await _seed(base)
            print(
                f"point SELECT (the store's read), {args.tasks} tasks, pool of {args.pool}, "
                f"{args.queries} statements x {args.rounds} rounds; {label}"
            )
            print(f"{'driver':42} {'CPU us/statement':>22} {'statements/s':>13}")
            for title, name, overrides in variants:
                config = base.replace(db_driver=name)
                results = [
                    await _round(config, args.tasks, args.queries, overrides)
                    for _ in range(args.rounds)
                ]
                cpus = [r[0] for r in results]
                rate = statistics.median(r[1] for r in results)
                spread = f"{statistics.median(cpus):.0f} ({min(cpus):.0f}-{max(cpus):.0f})"
                print(f"{title:42} {spread:>22} {rate:>13,.0f}")
            drop_tables(settings, TABLE)
    except BenchError as exc:
        print(f"bench/drivers.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
