"""A private, throwaway MariaDB server for the tests.

`MariaDBServer` initialises a fresh data directory in a temporary folder
(``mariadb-install-db``), runs ``mariadbd`` on a free port of 127.0.0.1 with
its own socket, and creates a test database and a user with a random
password.  Tests may `stop` and `start` it again (same data directory and
port) to simulate an outage without touching any shared server.

Its files live in memory (``/dev/shm``, see `data_parent`) where the machine
has it, so that a commit costs no disk flush.

It needs the ``mariadbd`` and ``mariadb-install-db`` programs
(``scripts/mariadb-test-env`` installs them).  Usable on its own::

    with MariaDBServer() as server:
        print(server.settings())
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pymysql

__all__ = ["MariaDBServer", "ServerError", "find_program"]

DATABASE = "tornado_sessions_test"
USER = "tornado_test"


class ServerError(RuntimeError):
    """The private server could not be set up or started."""


def find_program(*names: str) -> str | None:
    """Return the path of the first of ``names`` found (PATH, then sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin:/sbin"
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Where throwaway servers keep their files when the machine has it: memory.
SHM = "/dev/shm"


def data_parent() -> str | None:
    """The folder for a throwaway server's files: `SHM` (memory) where it
    exists and is writable, so that commits cost no disk flush (the tests
    and the benchmark then measure the code, not this machine's disk, whose
    flushes took 0.3 to 12 ms here depending on its other load); else the
    default temporary folder.  ``TEST_MARIADB_ON_DISK=1`` keeps them on disk.
    """
    if os.environ.get("TEST_MARIADB_ON_DISK", "") not in ("", "0"):
        return None
    if os.path.isdir(SHM) and os.access(SHM, os.W_OK | os.X_OK):
        return SHM
    return None


class MariaDBServer:
    """A MariaDB server of our own, in a temporary directory.

    :param startup_timeout: seconds to wait for the server to answer.
    """

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.mariadbd = find_program("mariadbd", "mysqld")
        self.install_db = find_program("mariadb-install-db", "mysql_install_db")
        if not self.mariadbd or not self.install_db:
            raise ServerError(
                "mariadbd / mariadb-install-db not found: run scripts/mariadb-test-env "
                "(apt-get install mariadb-server), or point TEST_SESSION_HOST, TEST_SESSION_PORT, "
                "TEST_SESSION_USER, TEST_SESSION_PASSWORD, TEST_SESSION_DATABASE at a server"
            )
        self.root = tempfile.mkdtemp(prefix="tornado-sessions-mariadb-", dir=data_parent())
        self.datadir = os.path.join(self.root, "data")
        # A temporary directory of its own: at startup mariadbd deletes every
        # "#sql*" file in its tmpdir, so servers sharing /tmp (the suite's
        # passes side by side) destroyed each other's internal temporary
        # tables mid-query (error 6, "Error on delete of '/tmp/#sql-temptable-...").
        self.tmpdir = os.path.join(self.root, "tmp")
        self.socket = os.path.join(self.root, "mysqld.sock")
        self.error_log = os.path.join(self.root, "error.log")
        self.host = "127.0.0.1"
        self.port = free_port()
        self.database = DATABASE
        self.user = USER
        self.password = secrets.token_urlsafe(18)
        self._root_password = secrets.token_urlsafe(18)
        self._root_password_set = False
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> MariaDBServer:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def setup(self) -> None:
        """Initialise the data directory, start, create the database and user."""
        os.makedirs(self.datadir)
        os.makedirs(self.tmpdir)
        if self._as_root:
            # mariadbd refuses to run as root: it runs as "mysql", which
            # must be able to reach and own its directory.
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "mysql", "mysql")
            shutil.chown(self.datadir, "mysql", "mysql")
            shutil.chown(self.tmpdir, "mysql", "mysql")
        cmd = [
            self.install_db or "",
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if self._as_root:
            cmd.append("--user=mysql")
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise ServerError("mariadb-install-db did not finish within 120 s") from None
        if out.returncode != 0:
            raise ServerError(
                f"mariadb-install-db failed (exit {out.returncode}): "
                f"{out.stderr.decode(errors='replace')[-2000:]}"
            )
        self.start()
        with self.admin() as conn, conn.cursor() as cur:
            # root has no password right after install-db: give it one, then
            # create the dedicated database and user.
            cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (self._root_password,))
            self._root_password_set = True
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
            for host in ("localhost", "127.0.0.1"):
                cur.execute(
                    f"CREATE USER '{self.user}'@'{host}' IDENTIFIED BY %s", (self.password,)
                )
                cur.execute(
                    f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO '{self.user}'@'{host}'"
                )

    def start(self) -> None:
        """Start mariadbd (again) and wait until it answers."""
        if self.proc is not None and self.proc.poll() is None:
            return
        cmd = [
            self.mariadbd or "",
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={os.path.join(self.root, 'mysqld.pid')}",
            f"--log-error={self.error_log}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--performance-schema=OFF",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--max-connections=300",
            "--log-output=TABLE",
        ]
        if self._as_root:
            cmd.append("--user=mysql")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"mariadbd exited with {self.proc.returncode} at start: {self._log_tail()}"
                )
            # Probe with a plain socket first: PyMySQL leaks the socket of a
            # failed connect (a ResourceWarning, an error in our tests).
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(2)
                    probe.connect(self.socket)
                    greeting = probe.recv(4)
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            if greeting:
                self.admin().close()
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(
            f"mariadbd did not answer within {self.startup_timeout:g} s ({last}): "
            f"{self._log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down cleanly (SIGTERM), killing it if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- access ----------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """Connection settings for the test user (MySQLStore keyword arguments)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }

    def admin(self) -> pymysql.connections.Connection[Any]:
        """A root connection over the private socket (autocommit)."""
        return pymysql.connect(
            unix_socket=self.socket,
            user="root",
            password=self._root_password if self._root_password_set else "",
            autocommit=True,
            connect_timeout=5,
            read_timeout=30,
            write_timeout=30,
            charset="utf8mb4",
            init_command="SET SESSION sql_notes=0",
        )

    def _log_tail(self) -> str:
        try:
            with open(self.error_log, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-2000:]
        except OSError:
            return "(no error log)"


@contextlib.contextmanager
def running_server(purpose: str) -> Iterator[MariaDBServer]:
    """Start a private server (failing the test, never skipping it, if that
    cannot be done) and remove it afterwards."""
    import pytest

    try:
        server = MariaDBServer()
        server.setup()
    except ServerError as exc:
        pytest.fail(f"could not start a private MariaDB {purpose}: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()
