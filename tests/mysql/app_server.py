"""The test application on MySQLStore, run as a separate process by the tests.

Configured only through ``SESSION_*`` environment variables
(`SessionConfig.from_env` and `MySQLStore.from_config`).  It serves the
routes of tests/conftest.py and, under ``/u/``, those of
tests/test_user_sessions.py, and the receive-only WebSocket feed
``/ws/feed`` of tests/ws.py; it listens on a free port of 127.0.0.1, prints
``PORT <n>`` once it serves, and exits cleanly on SIGTERM.  `AppProcess`
starts one from a test.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.web

import tornado_sessions.ui
from tests.conftest import SECRET, driver_env
from tornado_sessions import SessionConfig
from tornado_sessions.stores.mysql import MySQLStore

REPO = Path(__file__).resolve().parents[2]


class AppProcess:
    """``with AppProcess(settings, table) as app:`` runs this module in a
    subprocess on the given server and table; ``app.url`` is its address."""

    def __init__(
        self,
        settings: dict[str, Any],
        table: str,
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.workdir = workdir or REPO / "tests"  # no .env there
        self.extra_env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        # The log goes to a file: a pipe nobody reads fills up (64 KiB) under
        # a flood of 503 log lines and blocks the server in its next write.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in __exit__
            mode="w+", prefix="tornado-sessions-app-", suffix=".log"
        )

    def __enter__(self) -> AppProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
        env.update(
            PYTHONPATH=str(REPO),
            SESSION_SECRET=SECRET,
            SESSION_HOST=str(self.settings["host"]),
            SESSION_PORT=str(self.settings["port"]),
            SESSION_USER=str(self.settings["user"]),
            SESSION_PASSWORD=str(self.settings["password"]),
            SESSION_DATABASE=str(self.settings["database"]),
            SESSION_TABLE=self.table,
            SESSION_DB_TIMEOUT="5",
            **driver_env(),
        )
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.mysql.app_server"],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.proc.kill()
            self.proc.communicate(timeout=10)
            raise RuntimeError(f"the app process did not start: {line!r} {self.log_tail()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the process (SIGTERM) and check that it exited cleanly."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=10)
        tail = self.log_tail()
        self.log.close()
        assert self.proc.returncode == 0, (self.proc.returncode, tail)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the process's log (standard error)."""
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-chars:]


async def main() -> None:
    from tests.conftest import ROUTES
    from tests.test_user_sessions import EndOne, EndOthers, Login, Mine, WhoAmI
    from tests.ws import FEED_ROUTES

    config = SessionConfig.from_env()
    store = MySQLStore.from_config(config, cleanup_interval=None)
    await store.open()
    routes = ROUTES + [
        (r"/u/login", Login),
        (r"/u/mine", Mine),
        (r"/u/end-others", EndOthers),
        (r"/u/end-one", EndOne),
        (r"/u/whoami", WhoAmI),
        *FEED_ROUTES,
    ]
    app = tornado.web.Application(
        routes, session_store=store, session_config=config, ui_methods=tornado_sessions.ui
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
