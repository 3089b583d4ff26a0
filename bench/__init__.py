"""The benchmark: what the session layer costs per request (not part of the package).

Run it with ``make bench`` or ``python bench/run.py`` (see ``--help`` and
docs/benchmarks.rst).  One module per job:

* ``run``: the command line, and the order of a run;
* ``db``: which database, the connection, the server's statement counters;
* ``server``: the Tornado app under test (bare, MemoryStore, MySQLStore),
  run as a subprocess; ``node/app.js`` is its express-session twin;
* ``servers``: starting those processes and talking to them (seed cookies,
  tallies of acknowledged writes, the Node peer's packages);
* ``load``: the load generators (wrk with a Lua script, or a Python client);
* ``measure``: the four cases, paired runs, single-request statement probes;
* ``report``: medians, the printed tables, the ratios and the JSON results;
* ``sealcost``: what sealing costs per request, the same server sealed and
  unsealed in alternating runs;
* ``profile``: a second command, the CPU per request by layer (Tornado,
  asyncio, the library, the driver) with py-spy, which ``pyspy`` runs and
  whose samples it attributes.

This file holds the little they share.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


class BenchError(Exception):
    """The benchmark cannot go on; the message says why (no secrets in it)."""


def log(message: str) -> None:
    """Progress goes to stderr; the tables go to stdout."""
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
