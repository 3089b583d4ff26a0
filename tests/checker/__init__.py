"""The stateful concurrency checker (issue 17): generated interleavings of
concurrent requests and processes, checked against the guarantees of
docs/guarantees.rst after every store call.

* `world` builds the world one example runs in: processes (a
  `.SessionManager` each, its events kept), browsers holding cookies, and
  a `gate.GatedStore` whose every call waits for the `gate.Scheduler`,
  which picks the next paused call from the generated schedule, so the
  dangerous orders are reached on purpose.
* `live` opens WebSockets of the browsers' sessions (issue 20), watched
  by their process's revocation as a ``SessionMixin`` handshake does.
* `ops` declares the operations (``@request_op``, ``@process_op``).
* `model` holds what the history allows and the invariants, written once;
  `audit` its checks of the sockets and of the session events.
* `runner` generates scenarios with Hypothesis and runs them.
* `regressions` replays a fixed scenario for each finding of issue 17.

The tests that run it: tests/test_checker.py (MemoryStore),
tests/mysql/test_checker.py (MariaDB) and tests/galera/test_checker.py
(a bounded run on the 3-node cluster).  ``CHECKER_EXAMPLES=N`` runs N
examples per store instead of the CI budget.
"""
