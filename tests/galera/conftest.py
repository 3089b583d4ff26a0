"""Fixtures for the Galera tests: a real 3-node MariaDB Galera cluster, never mocked.

* ``galera``: the `GaleraCluster` (cluster.py), started once per test run, on
  first use (so only when a test that needs it is selected), and removed at
  the end of the run.  It fails, never skips, the tests that need it when it
  cannot start, saying what to do.
* ``galera_settings``: ``galera_settings(2)`` is node 2's connection settings
  for the test user (`MySQLStore` keyword arguments).
* ``galera_table``: a table name of the test's own, dropped at the end.

The cluster is shared: a test may kill, stop and start nodes, and after each
test every node is started again and the three are waited for until Synced, so
the next test finds a healthy cluster whatever the last one did.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.galera.cluster import ClusterError, GaleraCluster
from tests.mysql.server import ServerError

Settings = dict[str, Any]


@pytest.fixture(scope="session")
def _galera_cluster() -> Iterator[GaleraCluster]:
    try:
        cluster = GaleraCluster()
        cluster.setup()
    except ServerError as exc:
        pytest.fail(
            f"could not start the private 3-node Galera cluster for the tests: {exc}\n"
            "(scripts/galera-test-env installs galera-4, rsync and mariadb-server; "
            "a node's log tail above says why it did not start)",
            pytrace=False,
        )
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def galera(_galera_cluster: GaleraCluster) -> Iterator[GaleraCluster]:
    """The cluster, all three nodes Synced at the start of the test and again
    after it (nodes it killed or stopped are started again)."""
    _galera_cluster.wait_synced(size=len(_galera_cluster.nodes), timeout=60)
    yield _galera_cluster
    _recover(_galera_cluster)


def _recover(cluster: GaleraCluster) -> None:
    """Start every node that is down and wait until all are Synced."""
    try:
        cluster.start(*(node.index for node in cluster.nodes), timeout=60)
        cluster.wait_synced(size=len(cluster.nodes), timeout=60)
    except ClusterError as exc:
        pytest.fail(f"the Galera cluster did not recover after the test: {exc}", pytrace=False)


@pytest.fixture
def galera_settings(galera: GaleraCluster) -> Callable[[int], Settings]:
    """``galera_settings(node)``: the test user's settings on node 1, 2 or 3."""
    return galera.settings


@pytest.fixture
def galera_table(galera: GaleraCluster) -> Iterator[str]:
    """A table name of the test's own, dropped at the end (once the cluster recovered)."""
    name = "g_" + uuid.uuid4().hex[:12]
    yield name
    _recover(galera)
    with galera.connect(1) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{name}`")
