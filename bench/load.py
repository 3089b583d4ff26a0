"""The load generators: wrk with a Lua script, or a keep-alive Python client.

A `Workload` says what to send: a path, the cookies, how many connections,
and whether it is the many-sessions shape (each request carries the next of
N cookies, so concurrent requests rarely share a session) or the one-session
shape (every connection sends the same cookie; with ``keyed`` each connection
writes a key of its own, ``/write?k=<connection>``, so that no write of
another connection can legitimately replace it).  `Load.run` runs it against
a server for some seconds and returns requests/s, latencies, errors and the
server's CPU time per request.

wrk runs with one thread in the many mode and one thread per connection in
the one mode (a thread's Lua state is how a connection gets its own key).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import BenchError, log
from bench.servers import Server


@dataclass(frozen=True)
class Workload:
    path: str
    cookie_name: str
    cookies: tuple[str, ...]
    connections: int
    one: bool = False
    keyed: bool = False

    def request_path(self, connection: int) -> str:
        return f"{self.path}?k={connection}" if self.keyed else self.path

    @property
    def threads(self) -> int:
        return self.connections if self.one else 1


def lua_script(directory: Path, work: Workload) -> Path:
    """The wrk script of a workload."""
    script = directory / f"{secrets.token_hex(4)}.lua"
    if work.one:
        # One thread per connection: setup() numbers the threads, and each
        # thread's request is built once (a static request, wrk's fastest).
        cookie = json.dumps(f"{work.cookie_name}={work.cookies[0]}")
        key = ' .. "?k=" .. id' if work.keyed else ""
        script.write_text(
            f"""local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
init = function(args)
  wrk.path = "{work.path}"{key}
  wrk.headers["Cookie"] = {cookie}
end
"""
        )
        return script
    items = ",\n".join(json.dumps(f"{work.cookie_name}={c}") for c in work.cookies)
    script.write_text(
        f"""local cookies = {{
{items}
}}
local reqs = {{}}
local i = 0
init = function(args)
  for k, c in ipairs(cookies) do
    reqs[k] = wrk.format("GET", "{work.path}", {{["Cookie"] = c}})
  end
end
request = function()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
"""
    )
    return script


def run_wrk(url: str, script: Path, seconds: float, work: Workload) -> dict[str, Any]:
    cmd = [
        "wrk",
        f"-t{work.threads}",
        f"-c{work.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {seconds + 60:g} s") from None
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


async def _py_load(port: int, work: Workload, seconds: float) -> dict[str, Any]:
    """A keep-alive HTTP/1.1 client: the fallback when wrk is missing.

    Each connection waits for its last answer before it stops, so nothing
    is in flight when the run ends.
    """
    count = 0
    bad = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    def request(path: str, cookie: str) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {work.cookie_name}={cookie}\r\n\r\n"
        ).encode()

    async def worker(connection: int) -> None:
        nonlocal count, bad
        if work.one:
            requests = [request(work.request_path(connection), work.cookies[0])]
        else:
            requests = [request(work.path, c) for c in work.cookies]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = connection
        try:
            while time.monotonic() < deadline:
                i += work.connections
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
    try:
        await asyncio.gather(*(worker(k) for k in range(work.connections)))
    except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError) as exc:
        raise BenchError(f"the Python load client failed: {exc!r}") from None
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
    """Runs workloads with wrk (``use_wrk``) or the Python client."""

    def __init__(self, tmp: Path, use_wrk: bool) -> None:
        self.tmp = tmp
        self.use_wrk = use_wrk
        self._scripts: dict[Workload, Path] = {}

    @property
    def name(self) -> str:
        return "wrk" if self.use_wrk else "python client"

    def run(self, server: Server, work: Workload, seconds: float) -> dict[str, Any]:
        cpu = server.cpu_seconds()
        if self.use_wrk:
            if work not in self._scripts:
                self._scripts[work] = lua_script(self.tmp, work)
            result = run_wrk(server.url("/"), self._scripts[work], seconds, work)
        else:
            result = asyncio.run(_py_load(server.port, work, seconds))
        if result["requests"] == 0:
            raise BenchError(f"{server.name}: no request was answered in {seconds:g} s")
        # CPU time per request: much less sensitive than throughput to other
        # processes competing for the cores.
        result["cpu_us"] = (server.cpu_seconds() - cpu) * 1e6 / result["requests"]
        # The server's idle time per request: its wall time per request (at
        # this concurrency) less its CPU time, i.e. how long it sat waiting
        # (for the database, for a batch to come back, for the client).
        result["idle_us"] = max(0.0, 1e6 / result["rps"] - result["cpu_us"])
        return result


def apt_install(command: str, package: str) -> bool:
    """Whether ``command`` is on PATH, after installing ``package`` with
    apt-get if it was missing and the run is as root."""
    if shutil.which(command):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"{command} is missing: installing {package} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", package]
        try:
            if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode:
                # A fresh machine may not have the package lists yet.
                subprocess.run(
                    ["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300
                )
                subprocess.run(install, env=env, capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            log("apt-get did not finish within 300 s")
    return shutil.which(command) is not None


def find_wrk(choice: str) -> bool:
    """Whether to use wrk (``--load``: ``auto``, ``wrk`` or ``python``).

    A missing wrk is installed with apt-get when the run is as root; then
    ``auto`` falls back to the Python client, ``wrk`` fails.
    """
    if choice == "python":
        return False
    if apt_install("wrk", "wrk"):
        return True
    if choice == "wrk":
        raise BenchError("--load wrk: wrk is not installed (apt-get install wrk)")
    log("wrk is not available: using the Python keep-alive client (slower, noisier)")
    return False
