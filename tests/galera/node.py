"""One member of the private Galera cluster: its ports, files, process and status.

`Node` owns what belongs to a single ``mariadbd``: a directory under the
cluster's temporary folder (``data/``, ``my.cnf``, ``error.log``, the socket),
four free ports on 127.0.0.1 (SQL, group communication, IST, SST), the process
(started in a session of its own, so that a kill also reaches the SST helper
scripts it runs), and the two things read back from it: `NodeStatus` and the
error-log tail that every error carries.  `GaleraCluster` (cluster.py) decides
what to start when.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pymysql

from tests.mysql.server import ServerError

__all__ = ["ClusterError", "JoinFailed", "Node", "NodeStatus", "Reaper", "find_provider"]

PROVIDER_PATHS = (
    "/usr/lib/galera/libgalera_smm.so",
    "/usr/lib/galera-4/libgalera_smm.so",
    "/usr/lib64/galera-4/libgalera_smm.so",
    "/usr/lib64/galera/libgalera_smm.so",
)


class ClusterError(ServerError):
    """The cluster, or one of its nodes, could not be set up, started or reached."""


class JoinFailed(ClusterError):
    """A node gave up joining the cluster (it runs on, but needs a restart)."""


#: What a node's error log says when it gave up a join and waits to be restarted.
#: ("Requesting state transfer failed: ... Will keep retrying" is not one.)
JOIN_FAILURES = re.compile(r"restart required|Failed to JOIN the cluster")


def find_provider() -> str | None:
    """The path of Galera's ``libgalera_smm.so`` (Debian ``galera-4``), if installed."""
    return next((path for path in PROVIDER_PATHS if os.path.exists(path)), None)


@dataclass(frozen=True)
class NodeStatus:
    """What a node says of itself and its cluster (``SHOW STATUS LIKE 'wsrep%'``)."""

    state: str  # wsrep_local_state_comment: Synced, Joining, Donor/Desynced, ...
    cluster_size: int  # wsrep_cluster_size: members of the node's component
    cluster_status: str  # wsrep_cluster_status: Primary, non-Primary, Disconnected
    ready: bool  # wsrep_ready: the node accepts queries
    connected: bool  # wsrep_connected: the node has a group connection
    last_committed: int  # wsrep_last_committed: seqno of its last write set
    state_uuid: str  # wsrep_cluster_state_uuid: the history, the same on all members

    @property
    def synced(self) -> bool:
        """Synced, in a primary component, accepting queries."""
        return self.state == "Synced" and self.cluster_status == "Primary" and self.ready

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Any, Any]]) -> NodeStatus:
        """Build from the rows of ``SHOW GLOBAL STATUS LIKE 'wsrep%'``."""
        values = {str(name).lower(): str(value) for name, value in rows}
        return cls(
            state=values.get("wsrep_local_state_comment", ""),
            cluster_size=int(values.get("wsrep_cluster_size") or 0),
            cluster_status=values.get("wsrep_cluster_status", ""),
            ready=values.get("wsrep_ready") == "ON",
            connected=values.get("wsrep_connected") == "ON",
            last_committed=int(values.get("wsrep_last_committed") or -1),
            state_uuid=values.get("wsrep_cluster_state_uuid", ""),
        )


class Node:
    """One ``mariadbd`` of the cluster (numbered from 1), in ``root/n<index>``."""

    def __init__(self, root: str, index: int, ports: Iterable[int]) -> None:
        self.index = index
        self.name = f"n{index}"
        self.dir = os.path.join(root, self.name)
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.error_log = os.path.join(self.dir, "error.log")
        self.cnf = os.path.join(self.dir, "my.cnf")
        self.port, self.gcomm_port, self.ist_port, self.sst_port = ports
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # error-log size when the process was started

    @property
    def running(self) -> bool:
        """Whether its ``mariadbd`` process is alive."""
        return self.proc is not None and self.proc.poll() is None

    # -- files -----------------------------------------------------------------

    def write_config(
        self,
        *,
        provider: str,
        cluster_name: str,
        peers: Iterable[int],
        provider_options: Mapping[str, str],
        as_root: bool,
    ) -> None:
        """Write ``my.cnf``: the server, InnoDB and wsrep settings of this node
        (why each is chosen: cluster.py's docstring)."""
        options = {
            "gmcast.listen_addr": f"tcp://127.0.0.1:{self.gcomm_port}",
            "ist.recv_addr": f"127.0.0.1:{self.ist_port}",
            **provider_options,
        }
        gcomm = ",".join(f"127.0.0.1:{port}" for port in peers)
        lines = [
            "[mariadbd]",
            *(["user=mysql"] if as_root else []),
            f"datadir={self.datadir}",
            f"tmpdir={self.dir}",
            f"socket={self.socket}",
            f"pid-file={os.path.join(self.dir, 'mysqld.pid')}",
            f"log-error={self.error_log}",
            f"port={self.port}",
            "bind-address=127.0.0.1",
            "skip-name-resolve",
            "character-set-server=utf8mb4",
            "collation-server=utf8mb4_general_ci",
            "performance-schema=OFF",
            "max_connections=300",
            "innodb_buffer_pool_size=32M",
            "innodb_log_file_size=16M",
            "innodb_flush_log_at_trx_commit=2",
            "log-bin=binlog",
            "binlog_format=ROW",
            "default_storage_engine=InnoDB",
            "innodb_autoinc_lock_mode=2",
            "wsrep_on=ON",
            f"wsrep_provider={provider}",
            f"wsrep_cluster_name={cluster_name}",
            f"wsrep_cluster_address=gcomm://{gcomm}",
            f"wsrep_node_name={self.name}",
            f"wsrep_node_address=127.0.0.1:{self.gcomm_port}",
            f"wsrep_node_incoming_address=127.0.0.1:{self.port}",
            'wsrep_provider_options="' + ";".join(f"{k}={v}" for k, v in options.items()) + '"',
            "wsrep_sst_method=rsync",
            f"wsrep_sst_receive_address=127.0.0.1:{self.sst_port}",
        ]
        with open(self.cnf, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def install(self, install_db: str, *, as_root: bool) -> None:
        """Create a fresh data directory with ``mariadb-install-db``."""
        cmd = [
            install_db,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *(["--user=mysql"] if as_root else []),
        ]
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            raise ClusterError("mariadb-install-db did not finish within 120 s") from None
        if out.returncode != 0:
            raise ClusterError(
                f"mariadb-install-db failed (exit {out.returncode}): "
                f"{out.stderr.decode(errors='replace')[-2000:]}"
            )

    def clone_from(self, source: Node, *, as_root: bool) -> None:
        """Copy a cleanly stopped node's data directory: the copy has the same
        history and position (in ``grastate.dat`` and in InnoDB), so this node
        joins by IST of the few write sets since, not by SST."""
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.copytree(source.datadir, self.datadir, ignore=shutil.ignore_patterns("gvwstate.dat"))
        state = os.path.join(self.datadir, "grastate.dat")
        with open(state, encoding="utf-8") as fh:
            text = fh.read()
        with open(state, "w", encoding="utf-8") as fh:
            fh.write(re.sub(r"(?m)^safe_to_bootstrap:.*$", "safe_to_bootstrap: 0", text))
        if as_root:
            chown_tree(self.datadir)

    def saved_seqno(self) -> int | None:
        """The seqno in ``grastate.dat`` (-1 after a crash), None if there is none."""
        try:
            with open(os.path.join(self.datadir, "grastate.dat"), encoding="utf-8") as fh:
                found = re.search(r"^seqno:\s*(-?\d+)", fh.read(), re.M)
        except FileNotFoundError:
            return None
        return int(found.group(1)) if found else None

    def save_state(self, position: str) -> None:
        """Write ``grastate.dat`` for ``uuid:seqno`` (not safe to bootstrap)."""
        state_uuid, seqno = position.rsplit(":", 1)
        path = os.path.join(self.datadir, "grastate.dat")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(
                f"# GALERA saved state\nversion: 2.1\nuuid:    {state_uuid}\n"
                f"seqno:   {seqno}\nsafe_to_bootstrap: 0\n"
            )
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            shutil.chown(path, "mysql", "mysql")

    def forget_state(self) -> None:
        """Remove ``grastate.dat``: the next start takes a full SST."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.datadir, "grastate.dat"))

    def join_failed(self) -> bool:
        """Whether the log says, since the last start, that the node gave up
        joining.  Galera 26.4 does so when its IST donor had only just joined
        itself ("IST didn't contain all write sets"), then idles, disconnected."""
        try:
            with open(self.error_log, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._log_start)
                return bool(JOIN_FAILURES.search(fh.read()))
        except OSError:
            return False

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the error log since the node was last started, headed
        with the node's number and the ``[ERROR]`` lines of that run that the
        end does not show."""
        try:
            with open(self.error_log, encoding="utf-8", errors="replace") as fh:
                fh.seek(self._log_start)
                text = fh.read()
        except OSError:
            return f"node {self.index}: (no error log)"
        parts = [f"--- node {self.index} error log ---"]
        if len(text) > chars:
            earlier, text = text[:-chars], text[-chars:]
            parts += [line[:300] for line in earlier.splitlines() if "[ERROR]" in line][:5]
            parts.append("[...]")
        return "\n".join([*parts, text])

    # -- process ---------------------------------------------------------------

    def spawn(self, mariadbd: str, *args: str) -> None:
        """Start ``mariadbd`` with this node's config (and ``args``), not waiting."""
        with contextlib.suppress(OSError):
            self._log_start = os.path.getsize(self.error_log)
        self.proc = subprocess.Popen(
            [mariadbd, f"--defaults-file={self.cnf}", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_answering(self, timeout: float) -> None:
        """Wait until the server greets on its socket; kill it and raise
        `ClusterError` (with the log tail) if it exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while not self.answers():
            if not self.running:
                code = None if self.proc is None else self.proc.returncode
                self.proc = None
                raise ClusterError(f"node {self.index} exited with {code}:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise ClusterError(
                    f"node {self.index} did not answer within {timeout:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def answers(self) -> bool:
        """Whether the server sends its greeting on the socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(2)
                probe.connect(self.socket)
                return bool(probe.recv(4))
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the node's process group (``mariadbd`` and any SST helper)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)

    def stop(self, timeout: float) -> None:
        """SIGTERM (a clean shutdown: the node leaves the cluster and saves
        its position), then SIGKILL whatever is left after ``timeout`` s."""
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self.kill()

    def spawn_rejoining(self, mariadbd: str, *, full_sst: bool, deadline: float) -> None:
        """Start a node that was in the cluster: after a crash with the
        position recovered from InnoDB (so that it catches up by IST), or
        without any state (``full_sst``: it takes a full SST)."""
        args: list[str] = []
        if full_sst:
            self.forget_state()
        else:
            position = self.recover_position(mariadbd, max(1.0, deadline - time.monotonic()))
            if position:
                # Galera reads its saved state, which a crash soon after a
                # join leaves "undefined" (all-zero uuid), over the option.
                self.save_state(position)
                args.append(f"--wsrep-start-position={position}")
        self.spawn(mariadbd, *args)

    def recover_position(self, mariadbd: str, timeout: float = 60.0) -> str | None:
        """After a crash, the last committed position (``uuid:seqno``) read
        from InnoDB by ``mariadbd --wsrep-recover`` (what systemd's
        ``galera_recovery`` does); None after a clean shutdown (``grastate.dat``
        has it then) or if nothing could be recovered."""
        if self.saved_seqno() != -1:
            return None
        log = os.path.join(self.dir, "recover.log")
        with contextlib.suppress(FileNotFoundError):
            os.remove(log)
        cmd = [mariadbd, f"--defaults-file={self.cnf}", "--wsrep-recover", f"--log-error={log}"]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
            with open(log, encoding="utf-8", errors="replace") as fh:
                found = re.findall(r"Recovered position: (\S+:-?\d+)", fh.read())
        except (subprocess.TimeoutExpired, OSError):
            return None
        return found[-1] if found and not found[-1].endswith(":-1") else None

    # -- SQL -------------------------------------------------------------------

    def admin(self, password: str) -> pymysql.connections.Connection[Any]:
        """A root connection over the socket (autocommit).

        The socket is connected here, not by PyMySQL, which leaks the socket
        of a failed connect (a ResourceWarning, an error in the tests).
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5)
            sock.connect(self.socket)
        except OSError:
            sock.close()
            raise
        conn = pymysql.connect(
            unix_socket=self.socket,
            user="root",
            password=password,
            autocommit=True,
            connect_timeout=5,
            read_timeout=30,
            write_timeout=30,
            charset="utf8mb4",
            defer_connect=True,
        )
        conn.connect(sock)  # closes the socket itself if the handshake fails
        return conn

    def rotate_binary_logs(self, password: str) -> None:
        """``FLUSH LOCAL BINARY LOGS``: afterwards a DDL log copied by an SST
        from this node holds no entry of a committed statement."""
        with self.admin(password) as conn, conn.cursor() as cur:
            cur.execute("FLUSH LOCAL BINARY LOGS")

    def status(self, password: str) -> NodeStatus:
        """The node's wsrep status, read as root."""
        with self.admin(password) as conn, conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%'")
            return NodeStatus.from_rows(cur.fetchall())


class Reaper:
    """Kills the nodes' processes and removes the cluster's folder, whatever
    happened (`GaleraCluster.cleanup`, or a finalizer at exit)."""

    def __init__(self, root: str, nodes: list[Node]) -> None:
        self.root = root
        self.nodes = nodes

    def __call__(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def chown_tree(top: str, user: str = "mysql") -> None:
    """Give ``top`` and everything under it to ``user`` (mariadbd refuses to
    run as root, so as root it runs as ``mysql``, which must own its files)."""
    shutil.chown(top, user, user)
    for parent, dirs, files in os.walk(top):
        for name in dirs + files:
            shutil.chown(os.path.join(parent, name), user, user)
