"""Benchmark: what the session layer costs per request, next to bare Tornado.

Run from the repository root::

    python bench/run.py                       # about 2 minutes
    python bench/run.py --rounds 5 --duration 5 --node --json bench/results.json

Three servers, each a single-process subprocess on 127.0.0.1 (bench/server.py):
bare Tornado, the same handlers with `SessionMixin` on `MemoryStore`, and on
`MySQLStore`.  Two cases: ``read`` (a returning visitor whose request reads a
key: one ``SELECT``, no write) and ``write`` (the request increments a
counter: ``SELECT`` + ``UPDATE``).  Sessions are created beforehand (``/seed``)
and the load generator cycles through one cookie per concurrent request, as
real users each with their own session would.

The load generator is ``wrk`` (installed with apt-get when missing and running
as root), else a small keep-alive Python client.  Each measured run is paired
with a bare run just before it, and the session layer's cost per request is
``1e6/rps(variant) - 1e6/rps(bare)`` of the pair; the table shows medians
over ``--rounds`` rounds.  Statements per request are counted at the server
(``Com_select``/``Com_insert``/``Com_update``/``Com_delete`` deltas); on a
shared server the traffic seen during the paired bare run (which sends no
SQL) is subtracted as background.  Round trips per request (queries sent,
where one coalesced batch of statements counts once) are counted by the
store itself (``MySQLStore.round_trips``).

The database: the ``SESSION_*`` variables if ``SESSION_HOST`` is set; else
the local MariaDB through its Unix socket as root (a database
``tornado_sessions_bench`` and a user with a fresh random password are
created); ``--db private`` starts a throwaway MariaDB of its own
(tests/mysql/server.py), where the statement counts are exact.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

COOKIE = "__Host-session"
TABLE = "bench_sessions"
NODE_TABLE = "bench_express_sessions"
BENCH_DB = "tornado_sessions_bench"
BENCH_USER = "ts_bench"
SOCKET = "/run/mysqld/mysqld.sock"
#: Targets (µs over the bare framework) and the Node peer's measured cost.
TARGETS = {"read": 80.0, "write": 120.0}
NODE_PEER = {"read": 117.0, "write": 142.0}
COM = ("Com_select", "Com_insert", "Com_update", "Com_delete")


class BenchError(Exception):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the database ----------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (description, settings) of the database to use."""
    if kind == "auto":
        if os.environ.get("SESSION_HOST"):
            kind = "env"
        elif os.path.exists(SOCKET) and os.geteuid() == 0:
            kind = "local"
        else:
            kind = "private"
    if kind == "env":
        from tornado_sessions.config import config as env

        yield (
            "SESSION_* server",
            {
                "host": env("SESSION_HOST"),
                "port": int(env("SESSION_PORT", default="3306")),
                "user": env("SESSION_USER", default=""),
                "password": env("SESSION_PASSWORD", default=""),
                "database": env("SESSION_DATABASE", default=""),
            },
        )
    elif kind == "local":
        password = secrets.token_urlsafe(18)
        try:
            root = pymysql.connect(unix_socket=SOCKET, user="root", connect_timeout=5)
        except pymysql.err.MySQLError as exc:
            raise BenchError(
                f"cannot log in to the local MariaDB as root through {SOCKET} ({exc}); set "
                "SESSION_HOST, SESSION_PORT, SESSION_USER, SESSION_PASSWORD and SESSION_DATABASE, "
                "or use --db private"
            ) from None
        with root, root.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{BENCH_DB}` CHARACTER SET utf8mb4")
            for host in ("127.0.0.1", "localhost"):
                cur.execute(
                    f"CREATE USER IF NOT EXISTS '{BENCH_USER}'@'{host}' IDENTIFIED BY %s",
                    (password,),
                )
                cur.execute(f"ALTER USER '{BENCH_USER}'@'{host}' IDENTIFIED BY %s", (password,))
                cur.execute(f"GRANT ALL PRIVILEGES ON `{BENCH_DB}`.* TO '{BENCH_USER}'@'{host}'")
        yield (
            "local shared MariaDB (127.0.0.1:3306)",
            {
                "host": "127.0.0.1",
                "port": 3306,
                "user": BENCH_USER,
                "password": password,
                "database": BENCH_DB,
            },
        )
    elif kind == "private":
        from tests.mysql.server import MariaDBServer, ServerError

        try:
            server = MariaDBServer()
            server.setup()
        except ServerError as exc:
            raise BenchError(f"could not start a private MariaDB: {exc}") from None
        try:
            yield (f"private MariaDB (127.0.0.1:{server.port})", server.settings())
        finally:
            server.cleanup()
    else:
        raise BenchError(f"unknown --db {kind!r}")


def connect(settings: dict[str, Any]) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"],
        database=settings["database"],
        autocommit=True,
        connect_timeout=5,
        read_timeout=30,
        init_command="SET SESSION sql_notes=0",
    )


class Counters:
    """Server-wide statement counters (SHOW GLOBAL STATUS)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.conn = connect(settings)

    def read(self) -> dict[str, int]:
        with self.conn.cursor() as cur:
            names = ", ".join(f"'{n}'" for n in COM)
            cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
            return {name: int(value) for name, value in cur.fetchall()}

    def close(self) -> None:
        self.conn.close()


# -- servers -----------------------------------------------------------------------


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.name = name
        self.port = port
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise BenchError(f"{name} server exited at start: {out.strip()[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BenchError(f"{name} server did not listen on {port} within 30 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def round_trips(self) -> int:
        """The MySQLStore's count of queries sent so far (``/round-trips``)."""
        with urllib.request.urlopen(self.url("/round-trips"), timeout=10) as resp:
            return int(json.loads(resp.read())["round_trips"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def seed(server: Server, count: int, cookie_name: str) -> list[str]:
    """Create ``count`` sessions; return their cookie values."""
    cookies = []
    for _ in range(count):
        with urllib.request.urlopen(server.url("/seed"), timeout=10) as resp:
            for line in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = line.partition("=")
                if name.strip() == cookie_name:
                    cookies.append(rest.split(";", 1)[0])
    if len(cookies) != count:
        raise BenchError(f"{server.name}: /seed did not set the {cookie_name} cookie")
    return cookies


def check(server: Server, cookie_name: str, cookie: str) -> None:
    """A read with the cookie must find the session and send no Set-Cookie."""
    req = urllib.request.Request(server.url("/read"), headers={"Cookie": f"{cookie_name}={cookie}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = json.loads(resp.read())
        if resp.headers.get_all("Set-Cookie"):
            raise BenchError(f"{server.name}: a read-only request re-sent the cookie")
        if body.get("n") != 0 and "n" not in body:
            raise BenchError(f"{server.name}: unexpected /read answer {body!r}")


# -- load generation -----------------------------------------------------------------


def lua_script(directory: Path, cookie_name: str, cookies: list[str], path: str) -> Path:
    """A wrk script cycling through the cookies (one request object each)."""
    items = ",\n".join(json.dumps(f"{cookie_name}={c}") for c in cookies)
    script = directory / f"{secrets.token_hex(4)}.lua"
    script.write_text(
        f"""local cookies = {{
{items}
}}
local reqs = {{}}
local i = 0
init = function(args)
  for k, c in ipairs(cookies) do
    reqs[k] = wrk.format("GET", "{path}", {{["Cookie"] = c}})
  end
end
request = function()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
"""
    )
    return script


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, Any]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not rps or not total:
        raise BenchError(f"could not read wrk's output: {out[-500:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def pct(p: str) -> float | None:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
    }


async def _py_load(
    port: int, path: str, headers: list[str], seconds: float, connections: int
) -> dict[str, Any]:
    """A keep-alive HTTP/1.1 client: the fallback when wrk is missing."""
    count = 0
    bad = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{h}\r\n".encode() for h in headers]

    async def worker(offset: int) -> None:
        nonlocal count, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while time.monotonic() < deadline:
                i += connections
                start = time.monotonic()
                writer.write(requests[i % len(requests)])
                status = await asyncio.wait_for(reader.readline(), 5)
                length = 0
                while True:
                    line = await asyncio.wait_for(reader.readline(), 5)
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await asyncio.wait_for(reader.readexactly(length), 5)
                latencies.append(time.monotonic() - start)
                count += 1
                if not status.split(b" ")[1].startswith(b"2"):
                    bad += 1
        finally:
            writer.close()

    began = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "rps": count / elapsed,
        "requests": count,
        "non_2xx": bad,
        "socket_errors": 0,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


class Load:
    def __init__(self, tmp: Path, connections: int, use_wrk: bool) -> None:
        self.tmp = tmp
        self.connections = connections
        self.use_wrk = use_wrk
        self._scripts: dict[tuple[str, str], Path] = {}

    def run(
        self, server: Server, path: str, cookie_name: str, cookies: list[str], seconds: float
    ) -> dict[str, Any]:
        cpu = server.cpu_seconds()
        result = self._run(server, path, cookie_name, cookies, seconds)
        # CPU time per request: much less sensitive than throughput to other
        # processes competing for the cores.
        result["cpu_us"] = (server.cpu_seconds() - cpu) * 1e6 / max(1, result["requests"])
        return result

    def _run(
        self, server: Server, path: str, cookie_name: str, cookies: list[str], seconds: float
    ) -> dict[str, Any]:
        if self.use_wrk:
            key = (f"{cookie_name}:{id(cookies)}", path)
            if key not in self._scripts:
                self._scripts[key] = lua_script(self.tmp, cookie_name, cookies, path)
            return run_wrk(server.url(path), self._scripts[key], seconds, self.connections)
        headers = [f"Cookie: {cookie_name}={c}\r\n" for c in cookies]
        return asyncio.run(_py_load(server.port, path, headers, seconds, self.connections))


def find_wrk() -> bool:
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: installing it with apt-get")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            timeout=300,
        )
    if shutil.which("wrk"):
        return True
    log("wrk is not available: using the Python keep-alive client (slower, noisier)")
    return False


# -- the run ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure_pairs(
    *,
    rounds: int,
    cases: list[str],
    variants: dict[str, tuple[Server, str, list[str]]],
    bare: dict[str, tuple[Server, str]],
    load: Load,
    seconds: float,
    counters: Counters | None,
    counted: set[str],
) -> dict[str, Any]:
    """For each round, case and variant: a bare run, then the variant run."""
    samples: dict[str, Any] = {}
    for r in range(rounds):
        for case in cases:
            for name, (server, cookie_name, cookies) in variants.items():
                bare_server, bare_of = bare[name]
                path = f"/{case}"
                before = counters.read() if counters and name in counted else None
                b = load.run(bare_server, path, cookie_name, cookies, seconds)
                middle = counters.read() if before is not None and counters else None
                trips = server.round_trips() if name == "mysql" else None
                v = load.run(server, path, cookie_name, cookies, seconds)
                after = counters.read() if middle is not None and counters else None
                entry = samples.setdefault(
                    f"{case}/{name}",
                    {
                        "bare": [],
                        "variant": [],
                        "cost_us": [],
                        "cpu_cost_us": [],
                        "stmts": [],
                        "trips": [],
                    },
                )
                if trips is not None:
                    entry["trips"].append((server.round_trips() - trips) / v["requests"])
                entry["cpu_cost_us"].append(v["cpu_us"] - b["cpu_us"])
                entry["bare"].append(b)
                entry["variant"].append(v)
                entry["cost_us"].append(1e6 / v["rps"] - 1e6 / b["rps"])
                if before is not None and middle is not None and after is not None:
                    background = {k: middle[k] - before[k] for k in COM}
                    seen = {k: after[k] - middle[k] for k in COM}
                    per = {
                        k.removeprefix("Com_"): max(0, seen[k] - background[k]) / v["requests"]
                        for k in COM
                    }
                    per["background_per_s"] = sum(background.values()) / seconds
                    entry["stmts"].append(per)
                log(
                    f"  round {r + 1}/{rounds} {case:5} {name:14} bare({bare_of}) "
                    f"{b['rps']:8.0f} rps | {v['rps']:8.0f} rps | "
                    f"{1e6 / v['rps'] - 1e6 / b['rps']:7.1f} us/request"
                )
    return samples


def summarize(samples: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, entry in samples.items():
        case, name = key.split("/", 1)
        stmts = None
        if entry["stmts"]:
            stmts = {k: round(median([s[k] for s in entry["stmts"]]), 3) for k in entry["stmts"][0]}
        rows.append(
            {
                "case": case,
                "variant": name,
                "bare_rps": round(median([b["rps"] for b in entry["bare"]]), 1),
                "rps": round(median([v["rps"] for v in entry["variant"]]), 1),
                "cost_us": round(median(entry["cost_us"]), 1),
                "cost_us_all": [round(c, 1) for c in entry["cost_us"]],
                "bare_cpu_us": round(median([b["cpu_us"] for b in entry["bare"]]), 1),
                "cpu_us": round(median([v["cpu_us"] for v in entry["variant"]]), 1),
                "cpu_cost_us": round(median(entry["cpu_cost_us"]), 1),
                "p50_ms": median(
                    [v["p50_ms"] for v in entry["variant"] if v["p50_ms"] is not None]
                ),
                "p99_ms": median(
                    [v["p99_ms"] for v in entry["variant"] if v["p99_ms"] is not None]
                ),
                "non_2xx": sum(v["non_2xx"] for v in entry["variant"]),
                "socket_errors": sum(v["socket_errors"] for v in entry["variant"]),
                "statements_per_request": stmts,
                "round_trips_per_request": (
                    round(median(entry["trips"]), 3) if entry["trips"] else None
                ),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'case':6} {'variant':16} {'bare rps':>9} {'rps':>9} {'cost us/req':>12} "
        f"{'cpu us/req':>10} {'cpu cost':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'SQL/req (sel ins upd del)':>27} {'trips/req':>9} "
        f"{'errors':>6}  target"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        s = row["statements_per_request"]
        sql = (
            f"{sum(s[k] for k in ('select', 'insert', 'update', 'delete')):.2f} "
            f"({s['select']:.2f} {s['insert']:.2f} {s['update']:.2f} {s['delete']:.2f})"
            if s
            else "-"
        )
        target = ""
        if row["variant"] == "mysql":
            limit = TARGETS[row["case"]]
            verdict = "ok" if row["cost_us"] <= limit else "MISSED"
            target = f"<= {limit:.0f} us: {verdict}"
        elif row["variant"] == "express-mysql":
            target = f"(peer note: ~{NODE_PEER[row['case']]:.0f} us)"
        p50 = f"{row['p50_ms']:.2f}" if row["p50_ms"] == row["p50_ms"] else "-"
        p99 = f"{row['p99_ms']:.2f}" if row["p99_ms"] == row["p99_ms"] else "-"
        trips = row["round_trips_per_request"]
        trips_text = f"{trips:.2f}" if trips is not None else "-"
        print(
            f"{row['case']:6} {row['variant']:16} {row['bare_rps']:9.0f} {row['rps']:9.0f} "
            f"{row['cost_us']:12.1f} {row['cpu_us']:10.1f} {row['cpu_cost_us']:9.1f} "
            f"{p50:>7} {p99:>7} {sql:>27} {trips_text:>9} "
            f"{row['non_2xx'] + row['socket_errors']:6d}  {target}"
        )


def node_setup() -> str | None:
    """Return the node binary if the Node peer can run, installing its packages."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        log("Node.js/npm not found: skipping the express-session comparison")
        return None
    node_dir = HERE / "node"
    if not (node_dir / "node_modules" / "express-mysql-session").is_dir():
        log("installing the Node peer's packages (npm install in bench/node)")
        out = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=node_dir,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            log(f"npm install failed, skipping the Node peer: {out.stderr.strip()[-500:]}")
            return None
    return node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run (3)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per server and case (1)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="repetitions; medians are reported (3)"
    )
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    parser.add_argument("--cases", default="read,write", help="read,write")
    parser.add_argument("--db", default="auto", choices=["auto", "env", "local", "private"])
    parser.add_argument(
        "--node", action="store_true", help="also run express-session + express-mysql-session"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the MemoryStore variant")
    parser.add_argument(
        "--json", default=str(HERE / "results.json"), help="where to write the results"
    )
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    if any(c not in ("read", "write") for c in cases):
        parser.error("--cases takes read and/or write")
    if "PYTHONDEVMODE" in os.environ or sys.flags.dev_mode:
        parser.error("do not benchmark in Python dev mode (-X dev)")
    use_wrk = find_wrk()
    servers: list[Server] = []
    started = time.time()
    try:
        with database(args.db) as (db_label, settings), tempfile.TemporaryDirectory() as tmp:
            log(f"database: {db_label}, database {settings['database']!r}")
            with contextlib.closing(connect(settings)) as conn, conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
                cur.execute(f"DROP TABLE IF EXISTS `{NODE_TABLE}`")
            secret = secrets.token_urlsafe(48)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
            env.update(
                SESSION_SECRET=secret,
                SESSION_HOST=str(settings["host"]),
                SESSION_PORT=str(settings["port"]),
                SESSION_USER=str(settings["user"]),
                SESSION_PASSWORD=str(settings["password"]),
                SESSION_DATABASE=str(settings["database"]),
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            )
            env.pop("PYTHONDEVMODE", None)

            def py(variant: str) -> Server:
                port = free_port()
                cmd = [
                    sys.executable,
                    str(HERE / "server.py"),
                    "--variant",
                    variant,
                    "--port",
                    str(port),
                    "--table",
                    TABLE,
                ]
                server = Server(variant, cmd, env, port)
                servers.append(server)
                return server

            bare = py("bare")
            variants: dict[str, tuple[Server, str, list[str]]] = {}
            bare_of: dict[str, tuple[Server, str]] = {}
            n_cookies = args.connections * 4
            names = [] if args.no_memory else ["memory"]
            names.append("mysql")
            for name in names:
                server = py(name)
                cookies = seed(server, n_cookies, COOKIE)
                check(server, COOKIE, cookies[0])
                variants[name] = (server, COOKIE, cookies)
                bare_of[name] = (bare, "tornado")

            node_versions: dict[str, str] = {}
            if args.node:
                node = node_setup()
                if node:
                    node_env = {**env, "BENCH_TABLE": NODE_TABLE}
                    nb_port, ns_port = free_port(), free_port()
                    node_bare = Server(
                        "express",
                        [node, str(HERE / "node" / "app.js"), "bare", str(nb_port)],
                        node_env,
                        nb_port,
                    )
                    servers.append(node_bare)
                    node_sess = Server(
                        "express-mysql",
                        [node, str(HERE / "node" / "app.js"), "session", str(ns_port)],
                        node_env,
                        ns_port,
                    )
                    servers.append(node_sess)
                    cookies = seed(node_sess, n_cookies, "connect.sid")
                    check(node_sess, "connect.sid", cookies[0])
                    variants["express-mysql"] = (node_sess, "connect.sid", cookies)
                    bare_of["express-mysql"] = (node_bare, "express")
                    versions = subprocess.run(
                        [
                            node,
                            "-e",
                            "for (const p of ['express', 'express-session', "
                            "'express-mysql-session', 'mysql2']) "
                            "console.log(p + ' ' + require(p + '/package.json').version)",
                        ],
                        cwd=HERE / "node",
                        capture_output=True,
                        text=True,
                        timeout=30,
                    ).stdout
                    node_versions = dict(
                        line.split(" ", 1) for line in versions.splitlines() if " " in line
                    )
                    node_versions["node"] = subprocess.run(
                        [node, "--version"], capture_output=True, text=True, timeout=30
                    ).stdout.strip()

            load = Load(Path(tmp), args.connections, use_wrk)
            log(f"warm-up ({args.warmup:g} s per server and case)")
            for case in cases:
                for name, (server, cookie_name, cookies) in variants.items():
                    load.run(bare_of[name][0], f"/{case}", cookie_name, cookies, args.warmup)
                    load.run(server, f"/{case}", cookie_name, cookies, args.warmup)
            log(
                f"measuring: {args.rounds} rounds x {len(cases)} cases x {len(variants)} variants, "
                f"{args.duration:g} s per run, {args.connections} connections"
            )
            counters = Counters(settings)
            try:
                samples = measure_pairs(
                    rounds=args.rounds,
                    cases=cases,
                    variants=variants,
                    bare=bare_of,
                    load=load,
                    seconds=args.duration,
                    counters=counters,
                    counted={"mysql", "express-mysql"},
                )
            finally:
                counters.close()
            rows = summarize(samples)
            order = {n: i for i, n in enumerate(["memory", "mysql", "express-mysql"])}
            rows.sort(key=lambda r: (cases.index(r["case"]), order.get(r["variant"], 9)))
            print()
            print(
                f"session layer cost over the bare framework, median of {args.rounds} paired runs "
                f"({'wrk' if use_wrk else 'python client'}, {args.connections} connections, "
                f"{args.duration:g} s per run; {db_label})"
            )
            print_table(rows)
            comparison = {}
            for case in cases:
                ours = next(
                    (r for r in rows if r["case"] == case and r["variant"] == "mysql"), None
                )
                peer = next(
                    (r for r in rows if r["case"] == case and r["variant"] == "express-mysql"), None
                )
                if ours and peer and peer["cost_us"] > 0:
                    comparison[case] = round(ours["cost_us"] / peer["cost_us"], 2)
                    print(
                        f"{case}: tornado_sessions+MySQL costs {ours['cost_us']:.0f} us over "
                        f"bare Tornado; express-session+express-mysql-session "
                        f"{peer['cost_us']:.0f} us over bare Express "
                        f"(ratio {comparison[case]:.2f}); server CPU per request over bare: "
                        f"{ours['cpu_cost_us']:.0f} us vs {peer['cpu_cost_us']:.0f} us"
                    )
            result = {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "seconds": round(time.time() - started, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "loadavg_at_start": os.getloadavg(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "load_generator": "wrk -t1" if use_wrk else "python keep-alive client",
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "database": db_label,
                "targets_us": TARGETS,
                "node_peer_reference_us": NODE_PEER,
                "node_versions": node_versions,
                "rows": rows,
                "cost_ratio_ours_over_express": comparison,
                "notes": (
                    "cost_us = 1e6/rps(variant) - 1e6/rps(bare) of each paired run, "
                    "median over rounds; "
                    "statements_per_request are Com_* deltas at the server minus the background "
                    "counted during the paired bare run"
                ),
            }
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
            log(f"results written to {args.json}")
    except BenchError as exc:
        log(f"bench: error: {exc}")
        return 1
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
