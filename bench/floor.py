"""The layer's floor, paired in one process: MemoryStore's CPU per request
over bare Tornado's, with the noise of two processes taken out.

    .venv/bin/python bench/floor.py                 # a table
    .venv/bin/python bench/floor.py --json          # one JSON object
    .venv/bin/python bench/floor.py --pairs 3 --requests 300   # a smoke run

One server process (``--serve``) holds both apps' handlers: bare Tornado's
``/bare/read`` and ``/bare/write`` and the same bodies with `SessionMixin`
on a `MemoryStore` at ``/read`` and ``/write`` (bench/server.py's
handlers).  The client sends blocks of ``--requests`` requests over
``--connections`` keep-alive connections, each carrying the next of
``--sessions`` cookies, alternating bare and session blocks; the server's
CPU time (``time.process_time`` read by ``/cpu``, nanosecond resolution)
is taken before and after each block.  The floor of one pair is the session
block's CPU per request less the bare block's; the figure is the median
over ``--pairs`` pairs, with the spread of the pairs.

With ``--instructions`` the server runs under valgrind's callgrind (``apt-get
install valgrind``; about 50 times slower) and the figure is instructions
per request, which the machine's load does not move: the same code gives
the same count within about 1 %, so a change to the floor of 1 % of a
request shows.  The µs estimate converts the instructions at bare Tornado's
own rate (the smallest bare block's CPU per request of a native run, from
``--pairs`` quick pairs).

``make bench`` reports the cross-process figure (MemoryStore's CPU over
bare Tornado's in separate servers); this one is the same quantity measured
where a shared machine's noise moves both halves of a pair alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import HERE, BenchError, free_port, log  # noqa: E402
from bench.load import apt_install  # noqa: E402
from bench.report import FLOOR_AIMS as AIMS  # noqa: E402
from bench.report import FLOOR_TARGETS as TARGETS  # noqa: E402

# -- the server ----------------------------------------------------------------


async def serve(port: int, use_uvloop: bool) -> None:
    import logging

    import tornado.httpserver
    import tornado.netutil
    import tornado.web

    from bench.server import BareRead, BareWrite, Seed, SessionRead, SessionWrite
    from tornado_sessions import MemoryStore, SessionConfig

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("tornado_sessions.stores.memory").setLevel(logging.ERROR)

    class Cpu(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(
                {"cpu": time.process_time(), "loop": type(asyncio.get_running_loop()).__name__}
            )

    app = tornado.web.Application(
        [
            (r"/bare/read", BareRead),
            (r"/bare/write", BareWrite),
            (r"/read", SessionRead),
            (r"/write", SessionWrite),
            (r"/seed", Seed),
            (r"/cpu", Cpu),
        ],
        session_store=MemoryStore(),
        session_config=SessionConfig.from_env(),
    )
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(tornado.netutil.bind_sockets(port, "127.0.0.1"))
    print(f"ready {port}", flush=True)
    await asyncio.Event().wait()


# -- the client ----------------------------------------------------------------


class Client:
    """Keep-alive connections to the floor server."""

    def __init__(self, port: int, connections: int) -> None:
        self.port = port
        self.count = connections
        self.conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self) -> None:
        for _ in range(self.count):
            self.conns.append(await asyncio.open_connection("127.0.0.1", self.port))

    async def close(self) -> None:
        for _, writer in self.conns:
            writer.close()

    @staticmethod
    async def _one(
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        reader, writer = conn
        writer.write(raw)
        status = int((await asyncio.wait_for(reader.readline(), 10)).split(b" ")[1])
        headers: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        return status, headers, body

    @staticmethod
    def request(path: str, cookie: str | None = None) -> bytes:
        extra = f"Cookie: __Host-session={cookie}\r\n" if cookie else ""
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()

    async def get(self, path: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
        return await self._one(self.conns[0], self.request(path, cookie))

    async def cpu(self) -> float:
        return float(json.loads((await self.get("/cpu"))[2])["cpu"])

    async def block(self, path: str, cookies: list[str], requests: int) -> float:
        """Server CPU µs per request over ``requests`` requests to ``path``."""
        raws = [self.request(path, c) for c in cookies]
        per = requests // self.count
        bad = 0

        async def worker(k: int) -> None:
            nonlocal bad
            conn = self.conns[k]
            for i in range(per):
                status, _, _ = await self._one(conn, raws[(k + i * self.count) % len(raws)])
                bad += status != 200

        before = await self.cpu()
        await asyncio.gather(*(worker(k) for k in range(self.count)))
        after = await self.cpu()
        if bad:
            raise BenchError(f"{bad} of {per * self.count} requests to {path} were not 200")
        # The two /cpu requests are inside the window; they cost what a bare read does.
        return (after - before) * 1e6 / (per * self.count)


async def seeded(client: Client, count: int) -> list[str]:
    """Start ``count`` sessions; return their cookie values."""
    cookies = []
    for _ in range(count):
        _, headers, _ = await client.get("/seed")
        cookies.append(headers["set-cookie"].split(";", 1)[0].split("=", 1)[1])
    return cookies


async def measure(port: int, args: argparse.Namespace) -> dict[str, Any]:
    client = Client(port, args.connections)
    await client.open()
    try:
        cookies = await seeded(client, args.sessions)
        # Warm-up: every path, every session.
        for path in ("/bare/read", "/read", "/bare/write", "/write"):
            await client.block(path, cookies, max(args.requests // 2, len(cookies)))
        pairs: dict[str, list[float]] = {"read": [], "write": []}
        sides: dict[str, list[tuple[float, float]]] = {"read": [], "write": []}
        for i in range(args.pairs):
            for action in ("read", "write"):
                order = ("bare", "session") if i % 2 == 0 else ("session", "bare")
                got = {}
                for side in order:
                    path = f"/bare/{action}" if side == "bare" else f"/{action}"
                    got[side] = await client.block(path, cookies, args.requests)
                pairs[action].append(got["session"] - got["bare"])
                sides[action].append((got["bare"], got["session"]))
        loop_name = json.loads((await client.get("/cpu"))[2])["loop"]
    finally:
        await client.close()
    out: dict[str, Any] = {"loop": loop_name, "pairs": args.pairs, "requests": args.requests}
    for action, diffs in pairs.items():
        diffs.sort()
        out[action] = {
            "floor_us": round(statistics.median(diffs), 1),
            "min_us": round(diffs[0], 1),
            "max_us": round(diffs[-1], 1),
            "bare_cpu_us": round(statistics.median(b for b, _ in sides[action]), 1),
            "bare_min_cpu_us": round(min(b for b, _ in sides[action]), 1),
            "floor_of_minima_us": round(
                min(s for _, s in sides[action]) - min(b for b, _ in sides[action]), 1
            ),
            "session_cpu_us": round(statistics.median(s for _, s in sides[action]), 1),
            "target_us": TARGETS[action],
            "aim_us": AIMS[action],
        }
    return out


class Callgrind:
    """Instruction counts of a server run under callgrind, block by block."""

    def __init__(self, pid: int, directory: Path) -> None:
        self.pid = pid
        self.directory = directory

    def dump(self) -> int:
        """Dump the counters (which resets them); return the instructions
        counted since the previous dump."""
        before = set(self.directory.glob("callgrind.out.*"))
        subprocess.run(
            ["callgrind_control", "-d", str(self.pid)], check=True, capture_output=True, timeout=120
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for path in sorted(set(self.directory.glob("callgrind.out.*")) - before):
                text = path.read_text(errors="replace")
                for line in text.splitlines():
                    if line.startswith(("summary:", "totals:")):
                        return int(line.split()[1])
            time.sleep(0.1)
        raise BenchError("callgrind did not write its counters within 120 s")


async def count(port: int, grind: Callgrind, args: argparse.Namespace) -> dict[str, Any]:
    """Instructions per request of each path, ``--ipairs`` blocks each."""
    client = Client(port, 2)
    await client.open()
    paths = ("/bare/read", "/read", "/bare/write", "/write")
    got: dict[str, list[float]] = {path: [] for path in paths}
    try:
        cookies = await seeded(client, 50)
        for path in paths:
            await client.block(path, cookies, 200)
        for _ in range(args.ipairs):
            for path in paths:
                await asyncio.to_thread(grind.dump)
                await client.block(path, cookies, args.irequests)
                got[path].append(await asyncio.to_thread(grind.dump) / args.irequests)
    finally:
        await client.close()
    out: dict[str, Any] = {"blocks": args.ipairs, "requests": args.irequests}
    for action in ("read", "write"):
        bare = statistics.median(got[f"/bare/{action}"])
        session = statistics.median(got[f"/{action}"])
        out[action] = {
            "bare_instructions": round(bare),
            "session_instructions": round(session),
            "floor_instructions": round(session - bare),
            "floor_fraction_of_bare": round((session - bare) / bare, 4),
            "spread_instructions": [round(min(got[f"/{action}"])), round(max(got[f"/{action}"]))],
        }
    return out


def start(args: argparse.Namespace, wrapper: list[str]) -> tuple[subprocess.Popen[str], int]:
    """The floor server (under ``wrapper``, e.g. valgrind), once listening."""
    port = free_port()
    env = dict(os.environ)
    env.setdefault("SESSION_SECRET", "bench-floor-" + os.urandom(24).hex())
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    cmd = [*wrapper, sys.executable, str(Path(__file__).resolve()), "--serve", str(port)]
    if args.uvloop:
        cmd.append("--uvloop")
    # valgrind's own report goes to stderr: not ours to show.
    errors = subprocess.DEVNULL if wrapper else None
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server prints "ready <port>" once listening
    if not line.startswith("ready"):
        stop(proc)
        raise BenchError("the floor server did not start")
    return proc, port


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the floor server, measure, stop it (and again under callgrind
    with ``--instructions``)."""
    result: dict[str, Any] = {}
    if args.pairs:
        proc, port = start(args, [])
        try:
            result = asyncio.run(asyncio.wait_for(measure(port, args), args.timeout))
        finally:
            stop(proc)
    if args.instructions:
        if not apt_install("callgrind_control", "valgrind"):
            raise BenchError("--instructions needs valgrind (apt-get install valgrind)")
        with tempfile.TemporaryDirectory(prefix="floor-callgrind-") as tmp:
            out = Path(tmp) / "callgrind.out.%p"
            wrapper = [
                "valgrind",
                "--tool=callgrind",
                "--dump-instr=no",
                "--collect-jumps=no",
                f"--callgrind-out-file={out}",
            ]
            proc, port = start(args, wrapper)
            try:
                grind = Callgrind(proc.pid, Path(tmp))
                counted = asyncio.run(asyncio.wait_for(count(port, grind, args), args.timeout))
            finally:
                stop(proc)
        for action in ("read", "write"):
            # µs at bare Tornado's own rate: its quietest native block.
            if action in result:
                rate = result[action]["bare_min_cpu_us"] / counted[action]["bare_instructions"]
                counted[action]["floor_us_estimate"] = round(
                    counted[action]["floor_instructions"] * rate, 1
                )
        result["instructions"] = counted
    return result


def line(result: dict[str, Any]) -> str:
    """The summary line ``make bench`` prints."""
    lines = []
    if "read" in result:
        parts = []
        for action in ("read", "write"):
            r = result[action]
            parts.append(
                f"{action} {r['floor_us']:.1f} µs ({r['min_us']:.1f} to {r['max_us']:.1f}; "
                f"target ≤ {r['target_us']:.0f}, aim {r['aim_us']:.0f})"
            )
        lines.append(
            f"floor, paired in one process (MemoryStore CPU over bare Tornado per request, "
            f"median of {result['pairs']} pairs, {result['loop']}): " + "; ".join(parts)
        )
    counted = result.get("instructions")
    if counted:
        parts = []
        for action in ("read", "write"):
            c = counted[action]
            parts.append(
                f"{action} +{c['floor_instructions']:,} "
                f"({c['floor_fraction_of_bare']:.1%} of bare's {c['bare_instructions']:,}; "
                + (
                    f"about {c['floor_us_estimate']:.1f} µs)"
                    if "floor_us_estimate" in c
                    else "per request)"
                )
            )
        lines.append(
            f"floor in instructions per request (callgrind, median of {counted['blocks']} "
            f"blocks of {counted['requests']}): " + "; ".join(parts)
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=int, default=10, help="bare/session block pairs")
    parser.add_argument("--requests", type=int, default=3000, help="requests per block")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections")
    parser.add_argument("--sessions", type=int, default=200, help="cookies to cycle through")
    parser.add_argument("--uvloop", action="store_true", help="the server on uvloop")
    parser.add_argument("--timeout", type=float, default=600, help="give up after seconds")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (needs valgrind)"
    )
    parser.add_argument("--ipairs", type=int, default=2, help="blocks per path under callgrind")
    parser.add_argument("--irequests", type=int, default=300, help="requests per callgrind block")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.serve:
        if args.uvloop:
            import uvloop

            uvloop.run(serve(args.serve, True))
        else:
            asyncio.run(serve(args.serve, False))
        return 0
    if args.connections < 1 or args.requests < args.connections or args.pairs < 0:
        sys.exit("floor: --connections at least 1, --requests at least --connections")
    if not args.pairs and not args.instructions:
        sys.exit("floor: --pairs 0 measures nothing without --instructions")
    log(f"floor: {args.pairs} pairs of {args.requests} requests per block")
    result = run(args)
    print(json.dumps({"floor_paired": result}) if args.json else line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
