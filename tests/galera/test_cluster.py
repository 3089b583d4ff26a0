"""The Galera test harness on a real cluster: what the servers say (rows,
``wsrep_cluster_size``, ``wsrep_local_state_comment``, their logs), not that
code ran.  Reads through another node than the writer's use
``wsrep_sync_wait=1``: the server default, 0, may miss a write just made."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.galera.cluster import ClusterError, GaleraCluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def execute(cluster: GaleraCluster, node: int, sql: str, args: Any = None) -> None:
    with cluster.connect(node) as conn, conn.cursor() as cur:
        cur.execute(sql, args)


def read(cluster: GaleraCluster, node: int, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """Rows read through ``node`` once it has applied every write committed so far."""
    with cluster.connect(node) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION wsrep_sync_wait = 1")
        cur.execute(sql, args)
        return list(cur.fetchall())


def log_text(cluster: GaleraCluster, node: int) -> str:
    with open(cluster.nodes[node - 1].error_log, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_three_nodes_synced_in_one_primary_component(galera: GaleraCluster) -> None:
    statuses = {node: galera.status(node) for node in (1, 2, 3)}
    for status in statuses.values():
        assert (status.state, status.cluster_size, status.cluster_status) == (
            "Synced",
            3,
            "Primary",
        )
        assert status.ready and status.connected
    assert len({status.state_uuid for status in statuses.values()}) == 1
    for node in (1, 2, 3):
        with galera.connect(node) as conn, conn.cursor() as cur:
            cur.execute("SELECT DATABASE(), @@port, @@wsrep_node_name, @@wsrep_sync_wait")
            row = cur.fetchone()
        assert row == (galera.database, galera.settings(node)["port"], f"n{node}", 0)
    assert len({galera.settings(node)["port"] for node in (1, 2, 3)}) == 3


def test_a_row_written_through_node_1_is_read_through_nodes_2_and_3(
    galera: GaleraCluster, galera_table: str
) -> None:
    execute(galera, 1, f"CREATE TABLE `{galera_table}` (id INT PRIMARY KEY, v VARCHAR(20))")
    execute(galera, 1, f"INSERT INTO `{galera_table}` VALUES (1, %s)", ("é🙂",))
    for node in (2, 3):
        assert read(galera, node, f"SELECT id, v FROM `{galera_table}`") == [(1, "é🙂")]


def test_a_killed_node_leaves_a_writable_primary_of_two_and_rejoins_by_ist(
    galera: GaleraCluster, galera_table: str
) -> None:
    execute(galera, 1, f"CREATE TABLE `{galera_table}` (id INT PRIMARY KEY)")
    execute(galera, 1, f"INSERT INTO `{galera_table}` VALUES (0)")
    log_before = log_text(galera, 3)

    galera.kill(3)

    assert not galera.running(3)
    with pytest.raises(ClusterError, match="node 3 is not running"):
        galera.status(3)
    statuses = galera.wait_synced([1, 2], size=2, timeout=30)
    assert {(s.cluster_size, s.cluster_status) for s in statuses.values()} == {(2, "Primary")}
    for i in range(1, 11):
        execute(galera, 1 + i % 2, f"INSERT INTO `{galera_table}` VALUES (%s)", (i,))

    galera.start(3, timeout=60)

    status = galera.status(3)
    assert (status.state, status.cluster_size, status.cluster_status) == ("Synced", 3, "Primary")
    assert read(galera, 3, f"SELECT id FROM `{galera_table}` ORDER BY id") == [
        (i,) for i in range(11)
    ]
    rejoin = log_text(galera, 3)[len(log_before) :]
    assert "rsync IST completed on joiner" in rejoin
    assert "rsync SST completed on joiner" not in rejoin


def test_a_cleanly_stopped_node_starts_again_with_the_rows_written_meanwhile(
    galera: GaleraCluster, galera_table: str
) -> None:
    execute(galera, 1, f"CREATE TABLE `{galera_table}` (id INT PRIMARY KEY)")

    galera.stop(2)

    assert not galera.running(2)
    assert galera.nodes[1].saved_seqno() not in (None, -1)  # the server saved its position
    statuses = galera.wait_synced([1, 3], size=2, timeout=30)
    assert {(s.cluster_size, s.cluster_status) for s in statuses.values()} == {(2, "Primary")}
    execute(galera, 3, f"INSERT INTO `{galera_table}` VALUES (1)")

    galera.start(2, timeout=60)

    assert galera.status(2).synced and galera.status(2).cluster_size == 3
    assert read(galera, 2, f"SELECT id FROM `{galera_table}`") == [(1,)]


#: A table made seconds before a full rsync SST can be undone on the joiner
#: (MariaDB's DDL-log recovery runs on the copied log; docs/operations.rst),
#: so the SST test writes into a table made at least this long before.
SETTLED = 10.0


@pytest.fixture(scope="module")
def settled_table(galera: GaleraCluster) -> Iterator[tuple[str, float]]:
    """A table made when this module's first test starts (name, when)."""
    name = "g_settled_" + uuid.uuid4().hex[:8]
    execute(galera, 1, f"CREATE TABLE `{name}` (id INT PRIMARY KEY)")
    yield name, time.monotonic()
    execute(galera, 1, f"DROP TABLE IF EXISTS `{name}`")


@pytest.fixture(autouse=True, scope="module")
def _settle_early(settled_table: tuple[str, float]) -> None:
    """Make the settled table before the other tests of the module run."""


def test_a_node_can_rejoin_by_a_full_rsync_sst(
    galera: GaleraCluster, settled_table: tuple[str, float]
) -> None:
    galera_table, made = settled_table
    time.sleep(max(0.0, made + SETTLED - time.monotonic()))  # run alone: let it settle
    galera.kill(2)
    galera.wait_synced([1, 3], size=2, timeout=30)
    execute(galera, 1, f"INSERT INTO `{galera_table}` VALUES (1)")
    log_before = log_text(galera, 2)

    galera.start(2, full_sst=True, timeout=60)

    assert galera.status(2).synced and galera.status(2).cluster_size == 3
    assert read(galera, 2, f"SELECT id FROM `{galera_table}`") == [(1,)]
    assert "rsync SST completed on joiner" in log_text(galera, 2)[len(log_before) :]


def test_waits_are_bounded_and_say_what_each_node_said(galera: GaleraCluster) -> None:
    with pytest.raises(ClusterError) as info:
        galera.wait_synced(size=4, timeout=0.3)
    message = str(info.value)
    assert "not Synced in a primary component of 4 within 0.3 s" in message
    assert "cluster_size=3" in message
    assert all(f"node {node} error log" in message for node in (1, 2, 3))
    assert galera.password not in message


def test_a_node_that_cannot_start_fails_with_its_log_and_leaves_nothing() -> None:
    cluster = GaleraCluster(size=1, provider_options={"gcache.size": "lots"})

    with pytest.raises(ClusterError) as info:
        cluster.setup()

    assert "node 1 exited" in str(info.value)
    assert "[ERROR] WSREP: Invalid value 'lots' for integer type." in str(info.value)
    assert not os.path.exists(cluster.root)
    assert processes_mentioning(cluster.root) == []


def test_a_process_that_dies_of_an_error_leaves_no_server_and_no_directory() -> None:
    # A test run that crashes mid-way, before any cleanup: the exit finalizer
    # still kills the nodes and removes the directory.
    script = (
        "from tests.galera.cluster import GaleraCluster\n"
        "cluster = GaleraCluster(size=1)\n"
        "cluster.setup()\n"
        "print(cluster.root, cluster.nodes[0].proc.pid, cluster.status(1).state, flush=True)\n"
        "raise RuntimeError('crash')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert out.returncode == 1, out.stderr
    assert "RuntimeError: crash" in out.stderr
    root, pid, state = out.stdout.split()
    assert state == "Synced"
    assert not os.path.exists(root)
    assert processes_mentioning(root) == []
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)


def test_three_nodes_killed_at_once_come_back_together(
    galera: GaleraCluster, galera_table: str
) -> None:
    execute(galera, 1, f"CREATE TABLE `{galera_table}` (id INT PRIMARY KEY)")
    execute(galera, 2, f"INSERT INTO `{galera_table}` VALUES (1)")
    for node in (1, 2, 3):
        galera.kill(node)

    galera.start(1, 2, 3, timeout=60)

    statuses = galera.wait_synced(size=3, timeout=10)
    assert {(s.cluster_size, s.cluster_status) for s in statuses.values()} == {(3, "Primary")}
    for node in (1, 2, 3):
        assert read(galera, node, f"SELECT id FROM `{galera_table}`") == [(1,)]
