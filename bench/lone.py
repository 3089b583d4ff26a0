"""Micro-benchmark: the client CPU of one lone read and one lone save at
`MySQLStore`, with nothing else in flight (a quiet site's case), or of
``--concurrency`` callers at once.

    .venv/bin/python bench/lone.py --database ts_NAME               # this checkout
    .venv/bin/python bench/lone.py --database ts_NAME --repo /work/main   # another one
    .venv/bin/python bench/lone.py --database ts_NAME --unbatched   # coalescing off
    .venv/bin/python bench/lone.py --database ts_NAME --concurrency 4
    .venv/bin/python bench/lone.py --database ts_NAME --concurrency 4 --mixed
    .venv/bin/python bench/lone.py --database ts_NAME --uvloop      # on uvloop

It makes ``--sessions`` sessions in a table of its own, then times
``--number`` sequential ``get`` calls and ``--number`` sequential ``set``
calls (each a version-checked save of an existing session; with
``--concurrency C``, C tasks share them, each on sessions of its own;
with ``--mixed``, each task reads then saves, as a request does), with
`time.process_time` (the process's CPU: the store, the driver and asyncio;
not the server's) and prints µs per call, and the wall time per call.  Run
two checkouts alternately a few times to compare them: the machine's noise
is larger than the difference between two runs of one.  For a figure
that load does not move, count instructions (user space) with callgrind,
once with ``--number 0`` and once with ``--number 2000 --only read`` (or
``save``), and divide the difference by 2,000::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/lone.py --database ts_NAME --number 2000 --only read

The server is ``--host`` (127.0.0.1), user ``--user`` (root), no password;
``--repo`` may be any checkout or export of the package, e.g.
``git archive OLD tornado_sessions | tar -x -C /tmp/old``.
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
    parser.add_argument("--concurrency", type=int, default=1, help="callers at once")
    parser.add_argument("--only", choices=("read", "save"), help="time one kind of call")
    parser.add_argument(
        "--mixed", action="store_true", help="each caller reads then saves (a request's shape)"
    )
    parser.add_argument("--unbatched", action="store_true", help="coalescing off")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--uvloop", action="store_true", help="on uvloop's event loop (pip install uvloop)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, args.repo)
    if args.uvloop:
        import uvloop

        result = uvloop.run(measure(args))
    else:
        result = asyncio.run(measure(args))
    import tornado_sessions

    result["repo"] = str(Path(tornado_sessions.__file__).parent.parent)
    if args.json:
        print(json.dumps(result))
    elif args.mixed:
        print(
            f"{result['repo']} ({result['driver']}{', unbatched' if args.unbatched else ''}, "
            f"{result['concurrency']} at once): per read and save, "
            f"{result['pair_cpu_us']:.1f} us CPU ({result['pair_wall_us']:.1f} wall, "
            f"{result['pair_trips']:.2f} round trips)"
        )
    else:
        print(
            f"{result['repo']} ({result['driver']}{', unbatched' if args.unbatched else ''}"
            f"{', uvloop' if args.uvloop else ''}, {result['concurrency']} at once): per call, "
            f"read {result['read_cpu_us']:.1f} us CPU ({result['read_wall_us']:.1f} wall, "
            f"{result['read_trips']:.2f} round trips), "
            f"save {result['save_cpu_us']:.1f} us CPU ({result['save_wall_us']:.1f} wall, "
            f"{result['save_trips']:.2f} round trips)"
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
        callers = max(1, args.concurrency)
        each = args.number // callers
        # Caller c uses the sessions c, c + callers, c + 2 * callers, ...
        mine = [sids[c::callers] or [sids[c % len(sids)]] for c in range(callers)]

        async def reads(own: list[str]) -> None:
            for n in range(each):
                assert await store.get(own[n % len(own)]) is not None

        async def saves(own: list[str]) -> None:
            for n in range(each):
                sid = own[n % len(own)]
                rec = SessionRecord(data=f'{{"n":{n}}}', created_at=now, expires_at=now + 3600)
                versions[sid] = await store.set(sid, rec, expected_version=versions[sid])

        async def requests(own: list[str]) -> None:
            for n in range(each):
                sid = own[n % len(own)]
                assert await store.get(sid) is not None
                rec = SessionRecord(data=f'{{"n":{n}}}', created_at=now, expires_at=now + 3600)
                versions[sid] = await store.set(sid, rec, expected_version=versions[sid])

        if args.mixed:
            trips = store.round_trips
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(requests(own) for own in mine))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            pairs = max(1, each * callers)
            return {
                "driver": store.driver,
                "concurrency": callers,
                "pair_cpu_us": cpu / pairs * 1e6,
                "pair_wall_us": wall / pairs * 1e6,
                "pair_trips": (store.round_trips - trips) / pairs,
            }
        trips = store.round_trips
        cpu, wall = time.process_time(), time.perf_counter()
        if args.only != "save":
            await asyncio.gather(*(reads(own) for own in mine))
        read_cpu, read_wall = time.process_time() - cpu, time.perf_counter() - wall
        read_trips = store.round_trips - trips
        cpu, wall = time.process_time(), time.perf_counter()
        if args.only != "read":
            await asyncio.gather(*(saves(own) for own in mine))
        save_cpu, save_wall = time.process_time() - cpu, time.perf_counter() - wall
        calls = max(1, each * callers)
        return {
            "driver": store.driver,
            "concurrency": callers,
            "read_cpu_us": read_cpu / calls * 1e6,
            "read_wall_us": read_wall / calls * 1e6,
            "read_trips": read_trips / calls,
            "save_cpu_us": save_cpu / calls * 1e6,
            "save_wall_us": save_wall / calls * 1e6,
            "save_trips": (store.round_trips - trips - read_trips) / calls,
        }
    finally:
        try:
            await store._conns.execute("dropping the table", f"DROP TABLE IF EXISTS `{table}`")
        finally:
            await store.close()


if __name__ == "__main__":
    sys.exit(main())
