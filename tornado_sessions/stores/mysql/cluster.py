"""What the store does on a cluster: it recognizes a Galera node at first use
and makes its reads causal.

On a Galera cluster a node applies the writes of the others asynchronously
after certifying them; with the server's default ``wsrep_sync_wait=0`` a read
through one node can miss a write just acknowledged through another (a
stale session, and, merged back by a later save, a lost update).  With bit 1
of ``wsrep_sync_wait`` set, a read first waits until the node has applied
every write the cluster had committed when the read began: a write
acknowledged through any node is seen by the next read through any other.

The store's own pool gets ``wsrep_sync_wait=1`` on its connections, unless
the application chose a value itself (``session_variables`` or
``SESSION_DB_VARIABLES``).  A pool passed in cannot be changed by the store:
without the setting it is refused with a `.ConfigError` saying what to add.

.. versionadded:: 0.2
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ...errors import ConfigError
from .connection import Connections, text_of

__all__ = ["Server", "inspect", "make_reads_causal"]

log = logging.getLogger("tornado_sessions.stores.mysql")

#: The ``wsrep_sync_wait`` bit that makes reads (SELECT, SHOW, BEGIN) causal.
CAUSAL_READS = 1


@dataclass(frozen=True, slots=True)
class Server:
    """What the store learned of its server at first use."""

    version: str
    #: Replication with wsrep (MariaDB Galera Cluster, Percona XtraDB Cluster).
    galera: bool
    #: This connection's ``wsrep_sync_wait`` (0 without Galera).
    sync_wait: int


async def inspect(conns: Connections) -> Server:
    """One query: the server's version and, on Galera, ``wsrep_sync_wait``."""
    result = await conns.execute(
        "checking the server",
        "SHOW SESSION VARIABLES WHERE Variable_name IN ('version', 'wsrep_on', 'wsrep_sync_wait')",
        fetch=True,
    )
    found = {text_of(name).lower(): text_of(value) for name, value in result.rows}
    galera = found.get("wsrep_on", "OFF").upper() in ("ON", "1")
    try:
        sync_wait = int(found.get("wsrep_sync_wait", "0"))
    except ValueError:
        sync_wait = 0
    server = Server(found.get("version", ""), galera, sync_wait if galera else 0)
    conns.cluster = "galera" if galera else None
    return server


async def make_reads_causal(conns: Connections, server: Server) -> None:
    """Make the store's reads causal on a Galera node (see the module)."""
    if not server.galera or server.sync_wait & CAUSAL_READS:
        return
    if not conns.own_pool:
        raise ConfigError(
            f"the {conns.driver.name} pool given to MySQLStore connects to a Galera node "
            f"({conns.where()}) with wsrep_sync_wait={server.sync_wait}: a read through one "
            "node can miss a write acknowledged through another (stale sessions, lost "
            "updates); create the pool with "
            'init_command="SET SESSION sql_notes=0, wsrep_sync_wait=1" '
            "(MySQLStore.pool_options(session_variables={'wsrep_sync_wait': 1}))"
        )
    if "wsrep_sync_wait" in conns.variables:
        log.warning(
            "Galera node with wsrep_sync_wait=%s, as configured (SESSION_DB_VARIABLES): reads "
            "through one node may miss writes acknowledged through another (%s)",
            conns.variables["wsrep_sync_wait"],
            conns.where(),
        )
        return
    await conns.set_variables({"wsrep_sync_wait": CAUSAL_READS})
    log.info(
        "Galera node recognized: the store's reads are causal (wsrep_sync_wait=1) (%s)",
        conns.where(),
    )
