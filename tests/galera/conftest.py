"""Fixtures for the Galera tests: a real 3-node MariaDB Galera cluster, never mocked.

* ``galera`` (session): the `GaleraCluster` (cluster.py), started once per
  test run on first use (so only when a test that needs it is selected), and
  removed at the end of the run.  When it cannot start, the tests that need
  it fail, never skip, with a message saying what to do.
* ``galera_settings`` (session): ``galera_settings(2)`` is node 2's
  connection settings for the test user (`MySQLStore` keyword arguments).
* ``galera_table``: a table name of the test's own, dropped at the end.

The cluster is shared, and a test may kill, stop and start nodes: before each
test that uses it (directly or through other fixtures) all three nodes must be
Synced, and after it every node that is down is started again and all three
are waited for, so the next test finds a healthy cluster whatever the last one
did.
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
def galera() -> Iterator[GaleraCluster]:
    """The private 3-node cluster, for the whole test run."""
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


@pytest.fixture(autouse=True)
def _galera_healthy(request: pytest.FixtureRequest) -> Iterator[None]:
    """For a test that uses ``galera``: all nodes Synced before it, and
    started again and Synced after it."""
    if "galera" not in request.fixturenames:
        yield
        return
    cluster: GaleraCluster = request.getfixturevalue("galera")
    cluster.wait_synced(size=len(cluster.nodes), timeout=60)
    yield
    _recover(cluster)


def _recover(cluster: GaleraCluster) -> None:
    """Start every node that is down and wait until all are Synced."""
    try:
        cluster.start(*(node.index for node in cluster.nodes), timeout=60)
        cluster.wait_synced(size=len(cluster.nodes), timeout=60)
    except ClusterError as exc:
        pytest.fail(f"the Galera cluster did not recover after the test: {exc}", pytrace=False)


@pytest.fixture(scope="session")
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
