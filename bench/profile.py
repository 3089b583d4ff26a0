"""Where a request's CPU goes, by layer: the profile table of issue 18, measured again.

Run from the repository root, with py-spy installed (``pip install py-spy``;
the ``test`` extra has it)::

    python bench/profile.py                   # five columns, 32 connections, about 3 minutes
    python bench/profile.py --quick           # a smoke run, about 20 seconds
    python bench/profile.py --driver asyncmy --db private --json /tmp/profile.json

Columns (`COLUMNS`): bare Tornado, MemoryStore and MySQLStore (bench/server.py,
started as bench/run.py starts them), read and written with the traffic of
``read-many`` / ``write-many``: each request carries the next of
``--sessions`` cookies, over ``--connections`` connections (the Python load
client of bench/load.py).  For each column, ``--rounds`` runs *without* the
profiler give the server's CPU µs per request (from /proc) and its wall µs
per request at that concurrency (1e6 / requests per second); then one run of
``--profile-duration`` under ``py-spy record --nonblocking`` gives each
category's share of the server's (non-idle) samples (bench/pyspy.py says
which frame decides a sample's category).  Share × CPU per request = µs per
category; "waiting" is wall − CPU, the time the server sat idle per request.
The library's leaf-most functions are listed for the write columns: where
the floor goes.  Exit status 2 when py-spy is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import BenchError, log  # noqa: E402
from bench.db import database, drop_tables  # noqa: E402
from bench.load import Load, Workload, find_wrk  # noqa: E402
from bench.pyspy import CATEGORIES, INSTALL, Profile, Recording, find_py_spy  # noqa: E402
from bench.run import TABLE, server_env  # noqa: E402
from bench.servers import Server, check, seed, start_python  # noqa: E402
from tornado_sessions.errors import ConfigError  # noqa: E402
from tornado_sessions.stores.mysql.driver import choose as choose_driver  # noqa: E402

#: column -> (server variant, path), in the issue's order.
COLUMNS = {
    "bare": ("bare", "/read"),
    "memory-read": ("memory", "/read"),
    "mysql-read": ("mysql", "/read"),
    "memory-write": ("memory", "/write"),
    "mysql-write": ("mysql", "/write"),
}
#: The columns whose library functions are listed.
TOP_COLUMNS = ("memory-write", "mysql-write")
LABELS = {
    "tornado": "Tornado HTTP (Python)",
    "asyncio": "asyncio: loop, task/future hand-offs",
    "library": "library: cookie, bookkeeping, JSON, store",
    "driver": "aiomysql/PyMySQL + DB socket calls",
    "other": "other (no known component on the stack)",
}
#: The split of asyncio's own code (`Profile.asyncio_us`), printed under the table.
ASYNCIO_ROWS = {
    "asyncio": "the loop itself (the asyncio row)",
    "tornado": "called by Tornado (in its row)",
    "library": "called by the library (in its row)",
    "driver": "called by the driver (in its row)",
}
QUICK = {"rounds": 1, "duration": 0.5, "warmup": 0.0, "profile_duration": 1.0, "sessions": 50}
DEFAULTS = {"rounds": 3, "duration": 5.0, "warmup": 1.0, "profile_duration": 10.0, "sessions": 500}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--connections", type=int, default=32, help="connections of the load (32)")
    add("--sessions", type=int, help="cookies cycled through (500)")
    add("--duration", type=float, help="seconds per run without the profiler (5)")
    add("--rounds", type=int, help="runs without the profiler per column; medians (3)")
    add("--warmup", type=float, help="warm-up seconds per column (1)")
    add("--profile-duration", type=float, help="seconds of the run under py-spy (10)")
    add("--rate", type=int, default=500, help="py-spy samples per second (500)")
    add("--columns", default=",".join(COLUMNS), help="comma-separated columns (all five)")
    add("--db", default="auto", choices=["auto", "env", "local", "private"], help="as bench/run.py")
    add("--driver", default="auto", choices=["auto", "aiomysql", "asyncmy"], help="as bench/run.py")
    add(
        "--load",
        default="python",
        choices=["python", "wrk", "auto"],
        help="load generator (python: the keep-alive client of bench/load.py; see the docs)",
    )
    add("--py-spy", metavar="PATH", help="the py-spy binary (default: on PATH or beside python)")
    add("--json", metavar="PATH", help="also write the results as JSON there")
    add(
        "--quick",
        action="store_true",
        help="a smoke run: 1 round of 0.5 s, 1 s profiled, 50 sessions",
    )
    args = parser.parse_args(argv)
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else default)
    args.columns = [c for c in args.columns.split(",") if c]
    unknown = [c for c in args.columns if c not in COLUMNS]
    if unknown or not args.columns:
        parser.error(f"--columns takes some of {', '.join(COLUMNS)} (not {', '.join(unknown)})")
    args.columns = [c for c in COLUMNS if c in args.columns]
    try:
        args.driver = choose_driver(args.driver, source="--driver")
    except ConfigError as exc:
        parser.error(str(exc))
    if args.sessions < args.connections:
        parser.error("--sessions must be at least --connections (concurrent requests would share)")
    if min(args.connections, args.rounds, args.rate) < 1:
        parser.error("--connections, --rounds and --rate must be >= 1")
    if min(args.duration, args.profile_duration) <= 0:
        parser.error("--duration and --profile-duration must be > 0")
    if "PYTHONDEVMODE" in os.environ or sys.flags.dev_mode:
        parser.error("do not profile in Python dev mode (-X dev)")
    return args


def measure(
    args: argparse.Namespace, py_spy: str, load: Load, server: Server, work: Workload
) -> dict[str, Any]:
    """One column: CPU and wall per request without the profiler, then shares with it."""
    if args.warmup > 0:
        load.run(server, work, args.warmup)
    runs = [load.run(server, work, args.duration) for _ in range(args.rounds)]
    cpu_us = statistics.median(r["cpu_us"] for r in runs)
    wall_us = statistics.median(1e6 / r["rps"] for r in runs)
    recording = Recording(py_spy, server.proc.pid, args.rate)
    try:
        profiled = load.run(server, work, args.profile_duration)
    except BaseException:
        recording.abort()
        raise
    profile = Profile()
    profile.add(recording.stop())
    categories = profile.us(cpu_us)
    return {
        "server": server.name,
        "path": work.path,
        "cpu_us": round(cpu_us, 1),
        "cpu_us_runs": [round(r["cpu_us"], 1) for r in runs],
        "wall_us": round(wall_us, 1),
        "waiting_us": round(max(0.0, wall_us - cpu_us), 1),
        "rps": round(statistics.median(r["rps"] for r in runs), 1),
        "requests": sum(r["requests"] for r in runs),
        "profiled": {
            "rps": round(profiled["rps"], 1),
            "cpu_us": round(profiled["cpu_us"], 1),
            "samples": profile.samples,
            "empty_samples": profile.empty,
        },
        "shares": {c: round(profile.categories[c] / profile.samples, 4) for c in CATEGORIES},
        "categories_us": {c: round(v, 1) for c, v in categories.items()},
        "asyncio_code_us": {c: round(v, 1) for c, v in profile.asyncio_us(cpu_us).items()},
        "library_top": [
            {"function": f, "us": round(us, 2)} for f, us in profile.library_top(cpu_us)
        ],
    }


def run(args: argparse.Namespace, py_spy: str, servers: list[Server]) -> dict[str, Any]:
    kinds = {COLUMNS[c][0] for c in args.columns}
    placeholder = {"host": "127.0.0.1", "port": 3306, "user": "", "password": "", "database": ""}
    db: Any = (
        database(args.db) if "mysql" in kinds else contextlib.nullcontext(("none", placeholder))
    )
    with db as (db_label, settings), tempfile.TemporaryDirectory() as tmp:
        if "mysql" in kinds:
            log(f"database: {db_label}, database {settings['database']!r}")
            drop_tables(settings, TABLE)
        env = {**server_env(settings), "SESSION_DB_DRIVER": args.driver}
        started: dict[str, Server] = {}
        cookies: dict[str, tuple[str, ...]] = {}
        for kind in ("memory", "mysql", "bare"):
            if kind not in kinds:
                continue
            server = start_python(kind, env, TABLE)
            servers.append(server)
            started[kind] = server
            if kind != "bare":
                cookies[kind] = tuple(seed(server, args.sessions))
                check(server, cookies[kind][0])
        # The bare server ignores cookies; it gets real ones, of the same size.
        bare_cookies = next(iter(cookies.values()), None) or tuple(
            secrets.token_urlsafe(96) for _ in range(args.sessions)
        )
        load = Load(Path(tmp), use_wrk=find_wrk(args.load))
        columns = {}
        for column in args.columns:
            kind, path = COLUMNS[column]
            server = started[kind]
            work = Workload(
                path, server.cookie_name, cookies.get(kind, bare_cookies), args.connections
            )
            log(
                f"{column}: {args.rounds} x {args.duration:g} s, "
                f"then {args.profile_duration:g} s under py-spy"
            )
            columns[column] = measure(args, py_spy, load, server, work)
            c = columns[column]
            log(
                f"  {c['cpu_us']:.0f} us CPU, {c['wall_us']:.0f} us wall per request, "
                f"{c['profiled']['samples']} samples"
            )
    version = subprocess.run([py_spy, "--version"], capture_output=True, text=True, timeout=30)
    return {
        "command": shlex.join(["python", "bench/profile.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "py_spy": version.stdout.strip(),
        "connections": args.connections,
        "sessions": args.sessions,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "profile_duration_s": args.profile_duration,
        "rate_hz": args.rate,
        "database": db_label if "mysql" in kinds else None,
        "driver": args.driver if "mysql" in kinds else None,
        "load_generator": load.name,
        "rows": {c: LABELS[c] for c in CATEGORIES},
        "columns": columns,
    }


def cell(value: float, present: bool = True) -> str:
    return f"{value:,.0f}" if present else "–"


def print_table(result: dict[str, Any]) -> None:
    columns = result["columns"]
    labels = dict(result["rows"])
    if result["driver"] == "asyncmy":
        labels["driver"] = "asyncmy + DB socket calls"
    where = f"; {result['database']}, {result['driver']}" if result["database"] else ""
    print(
        f"CPU µs per request by layer, {result['connections']} connections, "
        f"{result['sessions']} sessions (py-spy shares x CPU measured without the profiler; "
        f"median of {result['rounds']} runs of {result['duration_s']:g} s, "
        f"{result['load_generator']}{where})\n"
    )
    print("| | " + " | ".join(c.replace("-", " ") for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for category in CATEGORIES:
        cells = [
            cell(c["categories_us"][category], c["shares"][category] > 0) for c in columns.values()
        ]
        print(f"| {labels[category]} | " + " | ".join(cells) + " |")
    print("| CPU total | " + " | ".join(cell(c["cpu_us"]) for c in columns.values()) + " |")
    print(
        "| waiting (wall − CPU) | "
        + " | ".join(cell(c["waiting_us"]) for c in columns.values())
        + " |"
    )
    print()
    print(
        "asyncio's own code (leaf-most component frame), µs per request, by who it is charged to:"
    )
    print("| | " + " | ".join(c.replace("-", " ") for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for charged, label in ASYNCIO_ROWS.items():
        cells = [cell(c["asyncio_code_us"][charged]) for c in columns.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print(
        "samples under py-spy: "
        + ", ".join(f"{n} {c['profiled']['samples']}" for n, c in columns.items())
    )
    print(
        "requests/s without the profiler: "
        + ", ".join(f"{n} {c['rps']:,.0f}" for n, c in columns.items())
    )
    for name in TOP_COLUMNS:
        if name not in columns:
            continue
        print(f"\nlibrary, leaf-most functions, µs per request ({name.replace('-', ' ')}):")
        for entry in columns[name]["library_top"]:
            print(f"  {entry['us']:6.1f}  {entry['function']}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    py_spy = find_py_spy(args.py_spy)
    if py_spy is None:
        log(f"bench/profile.py: {INSTALL}")
        return 2
    servers: list[Server] = []

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    # A SIGTERM (a test's timeout, a CI stop) still stops the servers below.
    signal.signal(signal.SIGTERM, terminated)
    try:
        result = run(args, py_spy, servers)
    except BenchError as exc:
        log(f"profile: error: {exc}")
        return 1
    finally:
        for server in reversed(servers):
            server.stop()
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        log(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
