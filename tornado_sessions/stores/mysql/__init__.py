"""`MySQLStore`: sessions in a MySQL or MariaDB table, through aiomysql.

One row per session, keyed by `.hash_sid` of the id (``BINARY(32)``), with
the data as JSON text, the times as whole seconds, a version for optimistic
concurrency, the session's own lifetime, and the user id (indexed, for "log
out everywhere").  Every store call is one statement on the happy path (see
`.statements`); under load, concurrent calls share round trips (see
`.batching`).  A session that is gone is never recreated by an update (no
upsert), so a concurrent logout wins.

The package, one module per job:

=================  ==========================================================
``store``          `MySQLStore`: the loads and saves of the store contract
``admin``          listings, per-user queries, cleanup of expired rows, stats
``connection``     the pool, one round trip, the retry policy, error hints
``pools``          `create_pool` and `pool_options`: a pool from the config
``schema``         the table's DDL, its check at first use, its upgrade
``statements``     the SQL of every statement, and rows into records
``batching``       coalesced reads and saves, and how a failed batch splits
=================  ==========================================================

.. versionadded:: 0.1
.. versionchanged:: 0.2
   A package (it was one module); ``from tornado_sessions.stores.mysql import
   MySQLStore`` works as before.
.. versionchanged:: 0.3
   `create_pool` and `pool_options` (module ``pools``).
"""

from .pools import create_pool as create_pool
from .pools import pool_options as pool_options
from .store import MySQLStore as MySQLStore

__all__ = ["MySQLStore", "create_pool", "pool_options"]
