"""The servers under test as processes, and the bench's own requests to them.

`Server` runs one server (bench/server.py for Tornado, bench/node/app.js for
express) on a free port of 127.0.0.1, waits until it listens and stops it.
The helpers make the requests the bench itself sends, outside the load: `seed`
starts sessions and returns their cookies, `check` verifies a returning
visitor's read, `tally` reads back what a session holds and how many writes
the server acknowledged, `get` makes one request (the statement probes).
`node_setup` installs the Node peer's locked packages with npm.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from bench import HERE, REPO, BenchError, free_port, log

NODE_DIR = HERE / "node"
NODE_PACKAGES = ("express", "express-session", "express-mysql-session", "mysql2")


class Server:
    """One server process; ``cookie_name`` is the session cookie it sets."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, cookie_name: str = ""
    ) -> None:
        self.name = name
        self.port = port
        self.cookie_name = cookie_name
        # Its output goes to a file: a pipe nobody reads would block a server
        # that logs a lot.
        self.output = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=REPO,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{name} server exited at start: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BenchError(f"{name} server did not listen on port {port} within 30 s")

    def tail(self, chars: int = 800) -> str:
        """The end of what the server printed."""
        self.output.seek(0)
        return self.output.read().strip()[-chars:]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_ns(self) -> int:
        """CPU time the server's live threads have used so far, in ns (the
        scheduler's own count, ``/proc/<pid>/task/*/schedstat``): finer than
        `cpu_seconds`' clock ticks (10 ms), which a run of a second cannot
        resolve to a few µs per request.  Threads that have exited are not
        counted: compare it only over a run in which none exits."""
        total = 0
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{task}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that exited meanwhile
        return total

    def round_trips(self) -> int:
        """The MySQLStore's count of queries sent so far (``/round-trips``)."""
        return int(get(self, "/round-trips")[2]["round_trips"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.output.close()


def start_python(
    variant: str,
    env: dict[str, str],
    table: str,
    *,
    repo: str | None = None,
    name: str | None = None,
    uvloop: bool = False,
    unbatched: bool = False,
    unsealed: bool = False,
    time_sealing: bool = False,
) -> Server:
    """bench/server.py as ``bare``, ``memory`` or ``mysql``; on the
    tornado_sessions of the checkout ``repo`` if given (else this one's),
    on uvloop if asked, with coalescing off if ``unbatched``, keeping data
    as plain JSON if ``unsealed``, timing its seal and open hooks if
    ``time_sealing`` (bench only: see bench/server.py)."""
    port = free_port()
    cmd = [
        sys.executable,
        str(HERE / "server.py"),
        *("--variant", variant, "--port", str(port), "--table", table),
        *(["--uvloop"] if uvloop else []),
        *(["--unbatched"] if unbatched else []),
        *(["--unsealed"] if unsealed else []),
        *(["--time-sealing"] if time_sealing else []),
    ]
    if repo is not None:
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
        env = {**env, "PYTHONPATH": os.pathsep.join([repo, *paths])}
    return Server(name or variant, cmd, env, port, "__Host-session")


def start_node(node: str, mode: str, env: dict[str, str], table: str) -> Server:
    """bench/node/app.js as ``bare`` (plain express) or ``session``."""
    port = free_port()
    cmd = [node, str(NODE_DIR / "app.js"), mode, str(port)]
    name = "express" if mode == "bare" else "express-mysql"
    return Server(name, cmd, {**env, "BENCH_TABLE": table}, port, "connect.sid")


def get(
    server: Server, path: str, cookie: str | None = None, timeout: float = 15
) -> tuple[int, list[str], Any]:
    """One request: (status, Set-Cookie headers, decoded JSON body)."""
    headers = {"Cookie": f"{server.cookie_name}={cookie}"} if cookie is not None else {}
    req = urllib.request.Request(server.url(path), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get_all("Set-Cookie") or [], json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{server.name}: GET {path} answered {exc.code}") from None


def cookie_of(server: Server, set_cookies: list[str]) -> str | None:
    for line in set_cookies:
        name, _, rest = line.partition("=")
        if name.strip() == server.cookie_name:
            return rest.split(";", 1)[0]
    return None


def seed(server: Server, count: int) -> list[str]:
    """Start ``count`` sessions (``/seed``); return their cookie values."""
    cookies = []
    for _ in range(count):
        cookie = cookie_of(server, get(server, "/seed")[1])
        if cookie is None:
            raise BenchError(f"{server.name}: /seed did not set the {server.cookie_name} cookie")
        cookies.append(cookie)
    return cookies


def check(server: Server, cookie: str) -> None:
    """A read with the cookie must find the session and send no Set-Cookie.

    A read of a session that is not in the store answers as a read of a new
    one, so ``/tally`` says whether it holds what ``/seed`` stored: a seed
    whose save failed after its answer went out (express-session reports a
    failed save only to its error handler) stops the run here, instead of
    showing up as a read that sends no touch in the statement probes.
    """
    status, set_cookies, body = get(server, "/read", cookie)
    if set_cookies:
        raise BenchError(f"{server.name}: a read-only request re-sent the cookie")
    if status != 200 or "n" not in body:
        raise BenchError(f"{server.name}: unexpected /read answer {status} {body!r}")
    if get(server, "/tally", cookie)[2].get("seeded") is not True:
        raise BenchError(
            f"{server.name}: the session /seed started is not in the store: {server.tail()}"
        )


def tally(server: Server, cookie: str) -> dict[str, dict[str, int]]:
    """What the session holds and what the server acknowledged, per key.

    ``/tally`` first waits until no ``/write?k=`` request is in flight, then
    answers ``{"held": {key: value in the session}, "acked": {key: 200
    responses sent}, "seeded": ...}`` (``seeded``: see `check`).
    """
    body = get(server, "/tally", cookie)[2]
    return {"held": dict(body["held"]), "acked": dict(body["acked"])}


def node_setup() -> str | None:
    """Return the node binary if the Node peer can run, installing its packages
    (``npm ci``: the versions of bench/node/package-lock.json)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        log("Node.js/npm not found: skipping the express-session comparison")
        return None
    if not all((NODE_DIR / "node_modules" / p).is_dir() for p in NODE_PACKAGES):
        log("installing the Node peer's packages (npm ci in bench/node)")
        try:
            out = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            log("npm ci did not finish within 600 s: skipping the Node peer")
            return None
        if out.returncode != 0:
            log(f"npm ci failed, skipping the Node peer: {out.stderr.strip()[-500:]}")
            return None
    return node


def node_versions(node: str) -> dict[str, str]:
    """The versions of node and of the peer's packages, for the results."""
    script = (
        f"for (const p of {json.dumps(list(NODE_PACKAGES))}) "
        "console.log(p + ' ' + require(p + '/package.json').version)"
    )
    out = subprocess.run(
        [node, "-e", script], cwd=NODE_DIR, capture_output=True, text=True, timeout=30
    ).stdout
    versions = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    versions["node"] = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    return versions
