"""Figures of the private Galera cluster, measured with plain PyMySQL (not a test)::

    .venv/bin/python -m tests.galera.measure [-o evs.suspect_timeout=PT5S ...]

On a fresh `GaleraCluster` (with its `PROVIDER_OPTIONS`, or those given with
``-o``), it prints:

* how long the cluster takes to start (three nodes Synced, accounts made);
* the write stall after ``kill -9`` of node 3 while two writers, one through
  node 1 and one through node 2, insert rows steadily: the longest a write
  blocked, how many failed, and whether every acknowledged row is on every
  node once node 3 is back;
* how long the killed node takes to rejoin and be Synced, by IST (the
  default of `GaleraCluster.start`) and by a full rsync SST;
* stale reads among 600 pairs of (write through node 1, read through node 2
  at once), with ``wsrep_sync_wait`` 0 (the server default) and 1.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from tests.galera.cluster import PROVIDER_OPTIONS, GaleraCluster

PAIRS = 600


class Writer(threading.Thread):
    """Inserts rows through one node until stopped, timing every write."""

    def __init__(self, cluster: GaleraCluster, node: int) -> None:
        super().__init__(name=f"writer-{node}", daemon=True)
        self.conn = cluster.connect(node, read_timeout=60, write_timeout=60)
        self.node = node
        self.stopping = threading.Event()
        self.writes: list[tuple[float, float]] = []  # (start, end) of acknowledged writes
        self.errors: list[tuple[float, str]] = []

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            start = time.monotonic()
            try:
                with self.conn.cursor() as cur:
                    cur.execute("INSERT INTO load_rows (node, n) VALUES (%s, %s)", (self.node, n))
            except Exception as exc:  # a failed write is a figure, not a crash
                self.errors.append((start, f"{type(exc).__name__}: {exc}"))
                time.sleep(0.05)
                continue
            self.writes.append((start, time.monotonic()))
            time.sleep(0.005)
        self.conn.close()


def longest(writer: Writer, since: float, until: float) -> float:
    """The longest acknowledged write of ``writer`` that ended in [since, until]."""
    return max((end - start for start, end in writer.writes if since <= end <= until), default=0.0)


def wait_resumed(writers: list[Writer], since: float, count: int = 50) -> None:
    """Wait (30 s at most) until each writer has ``count`` writes begun after ``since``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(sum(start > since for start, _ in w.writes) >= count for w in writers):
            return
        time.sleep(0.05)
    raise SystemExit("writes did not resume within 30 s of the kill")


def measure_crash(cluster: GaleraCluster, *, full_sst: bool) -> None:
    """Kill node 3 under writes through nodes 1 and 2, then start it again."""
    with cluster.connect(1) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS load_rows")
        cur.execute(
            "CREATE TABLE load_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "node INT NOT NULL, n INT NOT NULL)"
        )
    writers = [Writer(cluster, 1), Writer(cluster, 2)]
    for writer in writers:
        writer.start()
    time.sleep(2)
    killed_at = time.monotonic()
    cluster.kill(3)
    wait_resumed(writers, killed_at)
    began = time.monotonic()
    cluster.start(3, full_sst=full_sst)
    rejoined = time.monotonic()
    time.sleep(0.5)
    for writer in writers:
        writer.stopping.set()
    for writer in writers:
        writer.join(timeout=90)
    how = "a full rsync SST" if full_sst else "IST"
    print(f"  node 3 rejoined by {how} and was Synced in {rejoined - began:.2f} s")
    for writer in writers:
        before = [end - start for start, end in writer.writes if end < killed_at]
        print(
            f"  writer through node {writer.node}: {len(writer.writes)} acknowledged, "
            f"{len(writer.errors)} failed; median {statistics.median(before) * 1000:.1f} ms "
            f"before the kill; longest write after the kill "
            f"{longest(writer, killed_at, began):.2f} s, during the rejoin "
            f"{longest(writer, began, rejoined + 0.5):.2f} s"
        )
        for at, error in writer.errors[:3]:
            print(f"    failed at {at - killed_at:+.2f} s from the kill: {error}")
    acknowledged = sum(len(w.writes) for w in writers)
    counts = []
    for node in (1, 2, 3):
        with cluster.connect(node) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SELECT COUNT(*) FROM load_rows")
            row = cur.fetchone()
            counts.append(row[0] if row else None)
    print(f"  rows on nodes 1, 2, 3: {counts} (acknowledged: {acknowledged})")


def measure_stale(cluster: GaleraCluster, sync_wait: int) -> int:
    with cluster.connect(1) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS kv (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.execute("REPLACE INTO kv VALUES (1, 0)")
    stale = 0
    writer = cluster.connect(1)
    reader = cluster.connect(2)
    try:
        with reader.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = %s", (sync_wait,))
        for i in range(1, PAIRS + 1):
            with writer.cursor() as cur:
                cur.execute("UPDATE kv SET v = %s WHERE id = 1", (i,))
            with reader.cursor() as cur:
                cur.execute("SELECT v FROM kv WHERE id = 1")
                row: Any = cur.fetchone()
            if row is None or row[0] != i:
                stale += 1
    finally:
        writer.close()
        reader.close()
    return stale


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.galera.measure", description=__doc__)
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a wsrep_provider_options entry over the harness's own (repeatable)",
    )
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.option):
        parser.error("-o takes KEY=VALUE, e.g. -o evs.suspect_timeout=PT5S")
    options = dict(item.split("=", 1) for item in args.option)
    chosen = {**PROVIDER_OPTIONS, **options}
    print("provider options: " + ";".join(f"{k}={v}" for k, v in chosen.items()))
    began = time.monotonic()
    cluster = GaleraCluster(provider_options=options)
    try:
        cluster.setup()
        print(f"cluster start (3 nodes Synced, accounts made): {time.monotonic() - began:.2f} s")
        for full_sst in (False, True):
            print("kill -9 of node 3 under writes through nodes 1 and 2, then start(3):")
            measure_crash(cluster, full_sst=full_sst)
        for sync_wait in (0, 1):
            stale = measure_stale(cluster, sync_wait)
            print(
                f"stale reads, write through node 1 then read through node 2, "
                f"wsrep_sync_wait={sync_wait}: {stale} of {PAIRS}"
            )
    finally:
        began = time.monotonic()
        cluster.cleanup()
        print(f"cleanup: {time.monotonic() - began:.2f} s")


if __name__ == "__main__":
    main()
