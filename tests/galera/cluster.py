"""A private, throwaway 3-node MariaDB Galera cluster on loopback, for the tests.

`GaleraCluster` runs three ``mariadbd`` (`Node`, node.py) on 127.0.0.1, each
with free ports of its own (SQL, group communication, IST, SST) and its own data
directory under one temporary folder, with a ``my.cnf`` written for it and read
with ``--defaults-file`` (so the SST scripts read it too, never
``/etc/mysql``).  Node 1 bootstraps (``--wsrep-new-cluster``), nodes 2 and 3
join; the cluster is ready when every node is ``Synced`` in a primary component
of 3.  A test database and user (`settings`) and a root password (`admin`) are
made once.  Usable on its own, like `MariaDBServer`::

    with GaleraCluster() as cluster:
        print(cluster.settings(2))     # MySQLStore keyword arguments, node 2
        cluster.kill(3)                # SIGKILL: a crash
        cluster.wait_synced(size=2)    # nodes 1 and 2 carry on, Primary
        cluster.start(3)               # rejoins by IST, Synced

It needs ``mariadbd``, ``mariadb-install-db``, Galera 4 (Debian ``galera-4``)
and ``rsync``: ``scripts/galera-test-env`` installs them.
``python -m tests.galera.measure`` prints the figures quoted below.

Settings chosen deliberately (`PROVIDER_OPTIONS`, and `Node.write_config`):

* ``evs.suspect_timeout=PT1S`` (default PT5S), ``evs.inactive_timeout=PT3S``
  (PT15S), ``evs.keepalive_period=PT0.3S`` (PT1S),
  ``evs.inactive_check_period=PT0.2S`` (PT0.5S): when a node dies silently,
  every write in the cluster waits until the others agree that it is gone.
  With the defaults that took 6.2 s here, more than the store's statement
  timeout (``SESSION_DB_TIMEOUT``, 5 s); with these values 1.0-1.4 s, a stall
  and not a timeout.  A live node sends a keepalive every 0.3 s, and Galera
  skips an inactivity check that comes late ("last inactive check more than
  ... ago, skipping check"), so a node starved of CPU does not evict its peers.
* ``evs.join_retrans_period=PT0.2S`` (PT1S): a joining node is admitted in a
  fraction of a second instead of about one; and with the default the join
  retransmission period is as long as the suspect timeout above, which made
  membership flap (with ``suspect_timeout=PT0.5S`` no cluster formed at all).
* ``evs.install_timeout=PT2S`` (PT7.5S) and ``gmcast.time_wait=PT1S`` (PT5S):
  a failed membership round, and a peer declared dead, are retried sooner.
* Crashed nodes rejoin by IST, not SST.  A SIGKILL leaves ``seqno: -1`` in
  ``grastate.dat`` (an all-zero uuid too, soon after a join), and a plain
  restart copies the whole data directory (rsync SST: 5-6 s here, the donor's
  writes stalling up to 2.6 s meanwhile).  `start` first runs ``mariadbd
  --wsrep-recover`` (as systemd's ``galera_recovery`` does) and writes the
  position into ``grastate.dat`` (Galera prefers that file to the
  ``--wsrep-start-position`` option, also given): the donor sends only the
  write sets the node missed, from its gcache (``gcache.size=32M``, far more
  than a test writes while a node is down); the rejoin takes 3-4.5 s and no
  one's writes stall more than 0.5 s.  ``start(node, full_sst=True)`` takes
  the full SST instead.
* No SST at set-up either: ``mariadb-install-db`` runs once, node 1 bootstraps
  on it, makes the accounts and shuts down cleanly; its data directory is then
  copied to nodes 2 and 3, so that all three share one history and position,
  and the joiners only receive a few write sets by IST.  They join one after
  the other, each once the one before is Synced: a node that joins while
  another still does may take its IST from it, and Galera 26.4 then sometimes
  gives up ("IST didn't contain all write sets"; the node idles until
  restarted, which `start` does once).  A start takes 7-10 s here (15-19 s
  with the CPU saturated).
* ``pc.recovery=true`` (the default, kept): a primary component whose nodes
  all went down at once re-forms by itself when they are all back, as in
  production.
* A binary log (``log-bin``, not synced), rotated on every running node
  (``FLUSH LOCAL BINARY LOGS``) before `start` takes a full SST.  An rsync
  SST copies the donor's live DDL log, and the joiner's crash recovery then
  sometimes undoes a ``CREATE TABLE`` made shortly before: the table is gone
  on the joiner only ("DDL_LOG: Crash recovery executed 1 entries").  That
  happened in about 1 of 10 SSTs here, with or without a binary log, and in
  none of 40 with the rotation first.
* Small and quick: 32M InnoDB buffer pool, 16M redo log,
  ``innodb_flush_log_at_trx_commit=2`` (a committed write survives a ``kill
  -9`` of the process, and the other nodes hold it anyway), performance
  schema off.
* ``wsrep_sync_wait`` keeps the server default, 0: a read through one node may
  miss a write just committed through another (the store must cope).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import pymysql

from tests.galera.node import (
    ClusterError,
    JoinFailed,
    Node,
    NodeStatus,
    Reaper,
    chown_tree,
    find_provider,
)
from tests.mysql.server import DATABASE, USER, data_parent, find_program, free_port

__all__ = ["PROVIDER_OPTIONS", "ClusterError", "GaleraCluster", "JoinFailed", "NodeStatus"]

PROVIDER_OPTIONS: dict[str, str] = {
    "evs.suspect_timeout": "PT1S",
    "evs.inactive_timeout": "PT3S",
    "evs.keepalive_period": "PT0.3S",
    "evs.inactive_check_period": "PT0.2S",
    "evs.join_retrans_period": "PT0.2S",
    "evs.install_timeout": "PT2S",
    "gmcast.time_wait": "PT1S",
    "gcache.size": "32M",
    "pc.recovery": "true",
}

INSTALL_HELP = "run scripts/galera-test-env as root (apt-get install galera-4 rsync mariadb-server)"


class GaleraCluster:
    """A Galera cluster of our own on 127.0.0.1; nodes are numbered 1 to ``size``.

    Every wait is bounded: a node that cannot start, or a cluster that does not
    settle, raises `ClusterError` with the nodes' error-log tails.  `cleanup`
    (also run at interpreter exit, and when `setup` fails) leaves no process
    and no directory behind.

    :param size: number of nodes (3; fewer only for tests of the harness).
    :param startup_timeout: seconds a node may take to start and be Synced.
    :param provider_options: ``wsrep_provider_options`` over `PROVIDER_OPTIONS`.
    """

    def __init__(
        self,
        *,
        size: int = 3,
        startup_timeout: float = 90.0,
        provider_options: Mapping[str, str] | None = None,
    ) -> None:
        self.startup_timeout = startup_timeout
        self.provider_options = {**PROVIDER_OPTIONS, **(provider_options or {})}
        self.mariadbd = find_program("mariadbd", "mysqld") or ""
        self.install_db = find_program("mariadb-install-db", "mysql_install_db") or ""
        self.provider = find_provider() or ""
        needed = {
            "mariadbd": self.mariadbd,
            "mariadb-install-db": self.install_db,
            "libgalera_smm.so (galera-4)": self.provider,
            "rsync": find_program("rsync"),
            "wsrep_sst_rsync (mariadb-server)": find_program("wsrep_sst_rsync"),
        }
        missing = [name for name, path in needed.items() if not path]
        if missing:
            raise ClusterError(f"{', '.join(missing)} not found: {INSTALL_HELP}")
        ports: set[int] = set()
        while len(ports) < 4 * size:
            ports.add(free_port())
        free = sorted(ports)
        self.root = tempfile.mkdtemp(prefix="tornado-sessions-galera-", dir=data_parent())
        self.nodes = [Node(self.root, i + 1, free[4 * i : 4 * i + 4]) for i in range(size)]
        self.cluster_name = "tornado-sessions-" + uuid.uuid4().hex[:8]
        self.database = DATABASE
        self.user = USER
        self.password = secrets.token_urlsafe(18)
        self._root_password = ""
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self._finalizer = weakref.finalize(self, Reaper(self.root, self.nodes))

    def __enter__(self) -> GaleraCluster:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- lifecycle -------------------------------------------------------------

    def setup(self) -> None:
        """Bootstrap node 1, make the accounts, clone it to the other nodes,
        join them one by one, and wait until all are Synced.

        On any failure everything is removed (`cleanup`) before the error is raised.
        """
        try:
            self._init_datadirs()
            first, *others = self.nodes
            self._bootstrap(first)
            self._create_accounts()
            if not others:
                return
            first.stop(timeout=30)
            for node in others:
                node.clone_from(first, as_root=self._as_root)
            self._bootstrap(first)
            deadline = time.monotonic() + self.startup_timeout * len(others)
            for node in others:
                # One at a time: a node that joins while another still does
                # may get its IST from it, and such a transfer can fail.
                self._join(node, full_sst=False, deadline=deadline)
        except BaseException:
            self.cleanup()
            raise

    def start(self, *nodes: int, full_sst: bool = False, timeout: float | None = None) -> None:
        """Start stopped or killed nodes; return once they have rejoined and
        every running node is Synced in the larger cluster.

        A killed node recovers its position first and catches up by IST;
        ``full_sst=True`` makes it forget its state and copy the whole data
        directory from a donor (rsync SST).  Nodes that all went down at once
        are started together: the last primary component re-forms when all of
        its members are back (``pc.recovery``).  Running nodes are left alone.

        A node that gives up joining (Galera 26.4 sometimes does when its
        IST donor had only just joined itself) is started once more.

        :raises ClusterError: if a node exits, or they are not all Synced
            within ``timeout`` seconds per node (default ``startup_timeout``),
            with the log tails.
        """
        members = [member for member in map(self._node, nodes) if not member.running]
        limit = timeout if timeout is not None else self.startup_timeout
        deadline = time.monotonic() + limit * max(1, len(members))
        if members and not any(node.running for node in self.nodes):
            # No one to join: all must come back for the last primary
            # component to re-form (pc.recovery).
            for member in members:
                member.spawn_rejoining(self.mariadbd, full_sst=full_sst, deadline=deadline)
            for member in members:
                member.wait_answering(max(0.0, deadline - time.monotonic()))
            self.wait_synced(timeout=max(0.0, deadline - time.monotonic()))
            return
        if full_sst:
            for node in self.nodes:
                if node.running:
                    node.rotate_binary_logs(self._root_password)
        for member in members:
            self._join(member, full_sst=full_sst, deadline=deadline)

    def stop(self, node: int, timeout: float = 30.0) -> None:
        """Shut a node down cleanly (SIGTERM: it leaves the cluster and saves
        its position); it is killed if that takes over ``timeout`` seconds."""
        self._node(node).stop(timeout)

    def kill(self, node: int) -> None:
        """SIGKILL a node and its helpers: a crash, noticed by the others only
        when it stays silent for ``evs.suspect_timeout``."""
        self._node(node).kill()

    def running(self, node: int) -> bool:
        """Whether the node's ``mariadbd`` process is alive."""
        return self._node(node).running

    def cleanup(self) -> None:
        """Kill every node and delete the cluster's folder (idempotent)."""
        self._finalizer()

    # -- status ----------------------------------------------------------------

    def status(self, node: int) -> NodeStatus:
        """The node's wsrep status.

        :raises ClusterError: if the node does not run or does not answer.
        """
        member = self._node(node)
        if not member.running:
            raise ClusterError(f"node {node} is not running")
        try:
            return member.status(self._root_password)
        except (OSError, pymysql.err.MySQLError) as exc:
            raise ClusterError(f"node {node} does not answer ({exc})") from None

    def wait_synced(
        self,
        nodes: Iterable[int] | None = None,
        *,
        size: int | None = None,
        timeout: float | None = None,
    ) -> dict[int, NodeStatus]:
        """Wait until each of ``nodes`` (default: every running node) is Synced
        in a primary component of ``size`` (default: how many nodes run).

        :returns: the last status of each node, by number.
        :raises ClusterError: if a node's process exits, or on timeout (default
            ``startup_timeout``), with the last statuses and the log tails.
        """
        members = (
            [n for n in self.nodes if n.running]
            if nodes is None
            else [self._node(n) for n in nodes]
        )
        want = size if size is not None else sum(n.running for n in self.nodes)
        limit = timeout if timeout is not None else self.startup_timeout
        deadline = time.monotonic() + limit
        seen: dict[int, NodeStatus | str] = {}
        while True:
            for member in members:
                if not member.running:
                    raise ClusterError(f"node {member.index} is not running:\n{member.log_tail()}")
                if member.join_failed():
                    raise JoinFailed(f"node {member.index} gave up joining:\n{member.log_tail()}")
                try:
                    seen[member.index] = member.status(self._root_password)
                except (OSError, pymysql.err.MySQLError) as exc:
                    seen[member.index] = f"does not answer ({exc})"
            done = {
                index: status
                for index, status in seen.items()
                if isinstance(status, NodeStatus) and status.synced and status.cluster_size == want
            }
            if len(done) == len(members):
                return done
            if time.monotonic() >= deadline:
                tails = "\n".join(m.log_tail(1500) for m in members)
                raise ClusterError(
                    f"nodes {[m.index for m in members]} not Synced in a primary component "
                    f"of {want} within {limit:g} s: {seen}\n{tails}"
                )
            time.sleep(0.05)

    def log_tail(self, node: int, chars: int = 2000) -> str:
        """The end of the node's error log."""
        return self._node(node).log_tail(chars)

    # -- access ----------------------------------------------------------------

    def settings(self, node: int) -> dict[str, Any]:
        """The test user's connection settings on a node (`MySQLStore`
        keyword arguments ``host``, ``port``, ``user``, ``password``, ``database``)."""
        return {
            "host": "127.0.0.1",
            "port": self._node(node).port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }

    def connect(self, node: int, **options: Any) -> pymysql.connections.Connection[Any]:
        """A plain PyMySQL connection of the test user to a node over TCP
        (autocommit, utf8mb4, 5 s to connect, 30 s per read; ``options`` override)."""
        defaults: dict[str, Any] = {
            "autocommit": True,
            "charset": "utf8mb4",
            "connect_timeout": 5,
            "read_timeout": 30,
            "write_timeout": 30,
        }
        return pymysql.connect(**self.settings(node), **{**defaults, **options})

    def admin(self, node: int) -> pymysql.connections.Connection[Any]:
        """A root connection to a node over its socket (autocommit)."""
        return self._node(node).admin(self._root_password)

    # -- internals -------------------------------------------------------------

    def _node(self, node: int) -> Node:
        if not 1 <= node <= len(self.nodes):
            raise ValueError(f"no node {node}: the nodes are 1 to {len(self.nodes)}")
        return self.nodes[node - 1]

    def _init_datadirs(self) -> None:
        """Config files for every node; ``mariadb-install-db`` for node 1."""
        os.chmod(self.root, 0o755)
        peers = [node.gcomm_port for node in self.nodes]
        for node in self.nodes:
            os.makedirs(node.dir)
            node.write_config(
                provider=self.provider,
                cluster_name=self.cluster_name,
                peers=peers,
                provider_options=self.provider_options,
                as_root=self._as_root,
            )
        self.nodes[0].install(self.install_db, as_root=self._as_root)
        if self._as_root:
            for node in self.nodes:
                chown_tree(node.dir)

    def _join(self, member: Node, *, full_sst: bool, deadline: float) -> None:
        """Start a node, wait until it and every running node are Synced;
        start it once more if it gave up joining (`JoinFailed`)."""
        for attempt in (1, 2):
            member.spawn_rejoining(self.mariadbd, full_sst=full_sst, deadline=deadline)
            try:
                member.wait_answering(max(0.0, deadline - time.monotonic()))
                self.wait_synced(timeout=max(0.0, deadline - time.monotonic()))
                return
            except JoinFailed:
                member.kill()
                if attempt == 2:
                    raise

    def _bootstrap(self, node: Node) -> None:
        """Start a node as a new cluster of one and wait until it is Synced."""
        node.spawn(self.mariadbd, "--wsrep-new-cluster")
        node.wait_answering(self.startup_timeout)
        self.wait_synced([node.index], size=1)

    def _create_accounts(self) -> None:
        """Root password, test database and user, on node 1 (before the
        others are cloned from it, so nothing needs replicating)."""
        root_password = secrets.token_urlsafe(18)
        with self.admin(1) as conn, conn.cursor() as cur:
            cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (root_password,))
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
            for host in ("localhost", "127.0.0.1"):
                cur.execute(
                    f"CREATE USER '{self.user}'@'{host}' IDENTIFIED BY %s", (self.password,)
                )
                cur.execute(
                    f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO '{self.user}'@'{host}'"
                )
        self._root_password = root_password
