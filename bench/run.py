"""Benchmark: what the session layer costs per request, over the bare framework.

Run from the repository root::

    make bench                                # about 4 minutes
    python bench/run.py --quick               # a smoke run, seconds
    python bench/run.py --cases write-one --rounds 5 --json /tmp/results.json

Eight cases (bench/measure.py): ``read-many`` and ``write-many`` (each request
carries one of ``--sessions`` cookies, over ``--connections`` connections),
``read-1``, ``write-1``, ``read-4`` and ``write-4`` (the same over 1 and 4
connections), ``read-one`` and ``write-one`` (``--concurrency`` connections
on one cookie; in ``write-one`` each connection increments a key of its own,
and the writes acknowledged are checked against the session afterwards).

Servers, each one process on 127.0.0.1: bare Tornado, the same handlers with
``SessionMixin`` on ``MemoryStore`` and on ``MySQLStore`` (bench/server.py),
and where Node.js is present bare express and express-session +
express-mysql-session (bench/node/app.js, packages installed with npm);
with ``--baseline DIR`` the same two session servers again on the library of
another checkout (``memory-base``, ``mysql-base``), for a before/after in
one run (``--driver`` picks the MySQL driver of ours: aiomysql or asyncmy);
with ``--unbatched`` the MySQL server again with coalescing off
(``mysql-unbatched``: each read and save its own statement), to see what
batching gains or costs at each load.  Then (bench/sealcost.py) what
sealing costs: the MySQL server again sealed and unsealed, in alternating
short runs (``--sealing-pairs``), per read and per write.  Each
measured run is paired with a bare run just before it; the tables show
medians over ``--rounds``, and the summary the ratio of our cost to express's
per case.  This module is the command line and the order of a run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import HERE, REPO, BenchError, log, sealcost  # noqa: E402
from bench import floor as floor_probe  # noqa: E402
from bench.db import Counters, database, drop_tables  # noqa: E402
from bench.load import Load, find_wrk  # noqa: E402
from bench.measure import (  # noqa: E402
    CASES,
    Shape,
    Variant,
    measure_pairs,
    probe_statements,
    warm_up,
)
from bench.report import floors, print_tables, ratios, result, summarize  # noqa: E402
from bench.servers import (  # noqa: E402
    Server,
    check,
    node_setup,
    node_versions,
    seed,
    start_node,
    start_python,
)
from tornado_sessions.errors import ConfigError  # noqa: E402
from tornado_sessions.stores.mysql.driver import choose as choose_driver  # noqa: E402

TABLE = "bench_sessions"
NODE_TABLE = "bench_express_sessions"
#: --quick's values for the options not given.
QUICK = {
    "rounds": 1,
    "duration": 1.0,
    "warmup": 0.0,
    "sessions": 50,
    "sealing_pairs": 2,
    "floor_pairs": 1,
}
DEFAULTS = {
    "rounds": 3,
    "duration": 3.0,
    "warmup": 1.0,
    "sessions": 500,
    "sealing_pairs": 10,
    "floor_pairs": 8,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--duration", type=float, help="seconds per run (3; wrk rounds to whole seconds)")
    add("--warmup", type=float, help="warm-up seconds per server and case (1)")
    add("--rounds", type=int, help="repetitions; medians are reported (3)")
    add("--sessions", type=int, help="cookies cycled through in the many cases (500)")
    add("--connections", type=int, default=16, help="connections in the many cases (16)")
    add("--concurrency", type=int, default=6, help="connections on one cookie in the one cases (6)")
    add("--cases", default=",".join(CASES), help="comma-separated cases to run (all eight)")
    add(
        "--db",
        default="auto",
        choices=["auto", "env", "local", "private"],
        help="database (auto: see the docs)",
    )
    add(
        "--load",
        default="auto",
        choices=["auto", "wrk", "python"],
        help="load generator (auto: wrk if available)",
    )
    add(
        "--node",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run express-session + express-mysql-session side by side (yes, if Node is present)",
    )
    add("--no-memory", action="store_true", help="skip the MemoryStore variant")
    add(
        "--uvloop",
        action="store_true",
        help="run the Python servers on uvloop (pip install uvloop; not a dependency)",
    )
    add(
        "--driver",
        default="auto",
        choices=["auto", "aiomysql", "asyncmy"],
        help="the MySQLStore's driver, SESSION_DB_DRIVER (auto: asyncmy if installed, "
        "else aiomysql; asyncmy: pip install 'tornado_sessions[asyncmy]')",
    )
    add(
        "--baseline",
        metavar="DIR",
        help="also run the session servers on the tornado_sessions of another checkout "
        "(a git worktree of main, say), as memory-base and mysql-base",
    )
    add(
        "--unbatched",
        action="store_true",
        help="also run the MySQL server with coalescing off, as mysql-unbatched",
    )
    add(
        "--sealing-pairs",
        type=int,
        help="pairs of runs of the sealing A/B, sealed and unsealed, per case (10; 0: skip it)",
    )
    add(
        "--sealing-seconds",
        type=float,
        help="seconds per run of the sealing A/B (1; with --quick: --duration)",
    )
    add(
        "--floor-pairs",
        type=int,
        help="pairs of the in-process floor probe, bench/floor.py (8; 0: skip it)",
    )
    add("--quick", action="store_true", help="a smoke run: 1 round of 1 s, 50 sessions, no warm-up")
    add(
        "--json",
        default=str(HERE / "results.json"),
        help="where to write the results (bench/results.json)",
    )
    args = parser.parse_args(argv)
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, QUICK[name] if args.quick else default)
    if args.sealing_seconds is None:
        args.sealing_seconds = args.duration if args.quick else 1.0
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown or not args.cases:
        parser.error(f"--cases takes some of {', '.join(CASES)} (not {', '.join(unknown)})")
    if args.baseline is not None:
        args.baseline = str(Path(args.baseline).resolve())
        if not (Path(args.baseline) / "tornado_sessions" / "__init__.py").is_file():
            parser.error(f"--baseline: no tornado_sessions package in {args.baseline}")
    try:
        args.driver = choose_driver(args.driver, source="--driver")
    except ConfigError as exc:
        parser.error(str(exc))
    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            parser.error("--uvloop: uvloop is not installed (pip install uvloop)")
    if args.sessions < max(args.connections, 4):
        parser.error(
            "--sessions must be at least --connections and 4 (concurrent requests would share)"
        )
    if min(args.connections, args.concurrency, args.rounds) < 1 or args.duration <= 0:
        parser.error("--connections, --concurrency and --rounds must be >= 1, --duration > 0")
    if args.sealing_pairs < 0 or args.sealing_seconds <= 0:
        parser.error("--sealing-pairs must be >= 0, --sealing-seconds > 0")
    if args.floor_pairs < 0:
        parser.error("--floor-pairs must be >= 0")
    if "PYTHONDEVMODE" in os.environ or sys.flags.dev_mode:
        parser.error("do not benchmark in Python dev mode (-X dev)")
    return args


def server_env(settings: dict[str, Any]) -> dict[str, str]:
    """The servers' environment: a fresh secret and the database, nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    env.pop("PYTHONDEVMODE", None)
    env.update(
        SESSION_SECRET=secrets.token_urlsafe(48),
        SESSION_HOST=str(settings["host"]),
        SESSION_PORT=str(settings["port"]),
        SESSION_USER=str(settings["user"]),
        SESSION_PASSWORD=str(settings["password"]),
        SESSION_DATABASE=str(settings["database"]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    return env


def variant(name: str, server: Server, bare: Server, bare_name: str, sessions: int) -> Variant:
    cookies = seed(server, sessions + 1)
    check(server, cookies[0])
    return Variant(
        name=name,
        server=server,
        bare=bare,
        bare_name=bare_name,
        many=tuple(cookies[:-1]),
        one=cookies[-1],
        counted=name.startswith("mysql") or name == "express-mysql",
        trips=name.startswith("mysql"),
    )


def run(args: argparse.Namespace, servers: list[Server], started: float) -> None:
    use_wrk = find_wrk(args.load)
    shape = Shape(args.sessions, args.connections, args.concurrency)
    with database(args.db) as (db_label, settings), tempfile.TemporaryDirectory() as tmp:
        log(f"database: {db_label}, database {settings['database']!r}")
        drop_tables(settings, TABLE, NODE_TABLE, sealcost.SEALED_TABLE, sealcost.UNSEALED_TABLE)
        env = {**server_env(settings), "SESSION_DB_DRIVER": args.driver}

        def started_server(server: Server) -> Server:
            servers.append(server)
            return server

        loop = {"uvloop": args.uvloop}
        bare = started_server(start_python("bare", env, TABLE, **loop))
        variants = []
        kinds = ([] if args.no_memory else ["memory"]) + ["mysql"]
        for kind in kinds:
            server = started_server(start_python(kind, env, TABLE, **loop))
            variants.append(variant(kind, server, bare, "tornado", args.sessions))
        if args.baseline:
            for kind in kinds:
                server = started_server(
                    start_python(kind, env, TABLE, repo=args.baseline, name=f"{kind}-base", **loop)
                )
                variants.append(variant(f"{kind}-base", server, bare, "tornado", args.sessions))
        if args.unbatched:
            server = started_server(
                start_python("mysql", env, TABLE, name="mysql-unbatched", unbatched=True, **loop)
            )
            variants.append(variant("mysql-unbatched", server, bare, "tornado", args.sessions))
        versions: dict[str, str] = {}
        node = node_setup() if args.node else None
        if node:
            node_bare = started_server(start_node(node, "bare", env, NODE_TABLE))
            node_sess = started_server(start_node(node, "session", env, NODE_TABLE))
            variants.append(
                variant("express-mysql", node_sess, node_bare, "express", args.sessions)
            )
            versions = node_versions(node)

        load = Load(Path(tmp), use_wrk)
        counters = Counters(settings)
        try:
            probes = {v.name: probe_statements(v, counters) for v in variants if v.counted}
            warm_up(args.cases, variants, shape, load, args.warmup)
            log(
                f"measuring: {args.rounds} rounds x {len(args.cases)} cases x {len(variants)} "
                f"variants, {args.duration:g} s per run ({load.name})"
            )
            samples = measure_pairs(
                rounds=args.rounds,
                cases=args.cases,
                variants=variants,
                shape=shape,
                load=load,
                seconds=args.duration,
                counters=counters,
            )
        finally:
            counters.close()
        sealing_runs, sealing_tables, sealing_timed, express_extra = sealcost.run_ab(
            args, env, settings, started_server, variants, shape, load
        )

    rows = summarize(samples)
    ratio = ratios(rows)
    cpu_ratio = ratios(rows, "cpu_cost_us")
    floor = floors(rows)
    base_ratio = ratios(rows, ours_name="mysql-base") if args.baseline else None
    unbatched_ratio = ratios(rows, ours_name="mysql-unbatched") if args.unbatched else None
    print()
    sealing = None
    if sealing_runs is not None and sealing_tables is not None and sealing_timed is not None:
        express: dict[str, float | None] = {}
        if node:
            for case in sealcost.CASES:
                peer = rows.get(case, {}).get("express-mysql")
                express[case] = peer["cpu_cost_us"] if peer else express_extra.get(case)
        sealing = sealcost.summarize(sealing_runs, express, sealing_tables, sealing_timed)
    print_tables(
        rows,
        probes,
        ratio,
        cpu_ratio,
        f"session layer cost over the bare framework, median of {args.rounds} paired runs "
        f"({load.name}, {args.duration:g} s per run; many: {args.sessions} sessions over "
        f"{args.connections} connections; one: {args.concurrency} connections on one "
        f"session; {db_label}; {args.driver}{'; uvloop' if args.uvloop else ''})",
        floor,
        base_ratio,
        unbatched_ratio,
    )
    if sealing is not None:
        print(sealcost.line(sealing))
    settings_out = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "command": shlex.join(["python", "bench/run.py", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_generator": (
            "wrk (-t1 in the many cases, one thread per connection in the one cases)"
            if use_wrk
            else "python keep-alive client"
        ),
        "database": db_label,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "sessions": args.sessions,
        "connections": args.connections,
        "concurrency": args.concurrency,
        "node_versions": versions,
        "uvloop": args.uvloop,
        "driver": args.driver,
        "baseline": args.baseline,
        "unbatched": args.unbatched,
        "sealing_pairs": args.sealing_pairs,
        "sealing_seconds": args.sealing_seconds,
    }
    out = result(
        rows=rows,
        probes=probes,
        ratio=ratio,
        cpu_ratio=cpu_ratio,
        shape=shape,
        settings=settings_out,
        floor=floor,
        base_ratio=base_ratio,
        unbatched_ratio=unbatched_ratio,
    )
    out["sealing"] = sealing
    if args.floor_pairs and not args.no_memory:
        # The floor again, paired in one process: the noise of two processes out.
        floor_args = floor_probe.parse(
            ["--pairs", str(args.floor_pairs), "--requests", "200" if args.quick else "2000"]
            + (["--uvloop"] if args.uvloop else [])
        )
        log(f"floor probe: {args.floor_pairs} pairs (bench/floor.py)")
        out["floor_paired"] = floor_probe.run(floor_args)
        print()
        print(floor_probe.line(out["floor_paired"]))
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    log(f"results written to {args.json} ({out['seconds']:g} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    servers: list[Server] = []
    started = time.time()

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    # A SIGTERM (a test's timeout, a CI stop) still stops the servers below.
    signal.signal(signal.SIGTERM, terminated)
    try:
        run(args, servers, started)
    except BenchError as exc:
        log(f"bench: error: {exc}")
        return 1
    finally:
        for server in reversed(servers):
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
