"""Micro-benchmark: the client CPU of one lone read and one lone save at
`MySQLStore`, with nothing else in flight (a quiet site's case).

    .venv/bin/python bench/lone.py --database ts_NAME               # this checkout
    .venv/bin/python bench/lone.py --database ts_NAME --repo /work/main   # another one
    .venv/bin/python bench/lone.py --database ts_NAME --unbatched   # coalescing off

It makes ``--sessions`` sessions in a table of its own, then times
``--number`` sequential ``get`` calls and ``--number`` sequential ``set``
calls (each a version-checked save of an existing session), with
`time.process_time` (the process's CPU: the store, the driver and asyncio;
not the server's) and prints µs per call, and the wall time per call.  Run
two checkouts alternately a few times to compare them: the machine's noise
is larger than the difference between two runs of one.  The server is
``--host`` (127.0.0.1), user ``--user`` (root), no password.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="root")
    parser.add_argument("--database", required=True)
    parser.add_argument("--driver", default="auto")
    parser.add_argument("--number", type=int, default=5000, help="calls of each kind")
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--unbatched", action="store_true", help="coalescing off")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.repo)
    result = asyncio.run(measure(args))
    import tornado_sessions

    result["repo"] = str(Path(tornado_sessions.__file__).parent.parent)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['repo']} ({result['driver']}{', unbatched' if args.unbatched else ''}): "
            f"read {result['read_cpu_us']:.1f} us CPU ({result['read_wall_us']:.1f} wall), "
            f"save {result['save_cpu_us']:.1f} us CPU ({result['save_wall_us']:.1f} wall), "
            f"round trips {result['round_trips']}"
        )
    return 0


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from tornado_sessions.stores.base import SessionRecord
    from tornado_sessions.stores.mysql import MySQLStore

    table = f"bench_lone_{secrets.token_hex(4)}"
    options: dict[str, Any] = {"driver": args.driver}
    if args.unbatched:
        options.update(coalesce_reads=False, coalesce_writes=False)
    store = MySQLStore(
        host=args.host,
        user=args.user,
        database=args.database,
        table=table,
        cleanup_interval=None,
        **options,
    )
    try:
        await store.open()
        now = int(time.time())
        sids = [secrets.token_urlsafe(32) for _ in range(args.sessions)]
        versions = {}
        for k, sid in enumerate(sids):
            rec = SessionRecord(data=f'{{"k":{k}}}', created_at=now, expires_at=now + 3600)
            versions[sid] = await store.set(sid, rec, expected_version=None)
        trips = store.round_trips
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(args.number):
            assert await store.get(sids[n % len(sids)]) is not None
        read_cpu, read_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(args.number):
            sid = sids[n % len(sids)]
            rec = SessionRecord(data=f'{{"n":{n}}}', created_at=now, expires_at=now + 3600)
            versions[sid] = await store.set(sid, rec, expected_version=versions[sid])
        save_cpu, save_wall = time.process_time() - cpu, time.perf_counter() - wall
        return {
            "driver": store.driver,
            "read_cpu_us": read_cpu / args.number * 1e6,
            "read_wall_us": read_wall / args.number * 1e6,
            "save_cpu_us": save_cpu / args.number * 1e6,
            "save_wall_us": save_wall / args.number * 1e6,
            "round_trips": store.round_trips - trips,
        }
    finally:
        try:
            await store._conns.execute("dropping the table", f"DROP TABLE IF EXISTS `{table}`")
        finally:
            await store.close()


if __name__ == "__main__":
    sys.exit(main())
