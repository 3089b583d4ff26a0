"""What is measured: the cases, paired runs, statement probes, lost updates.

The cases (`CASES`) cross two actions with shapes of traffic:

* ``read-many`` / ``write-many``: each request carries one of N session
  cookies (``--sessions``), in turn, over ``--connections`` connections:
  many users, concurrent requests on different sessions;
* ``read-1`` / ``write-1`` and ``read-4`` / ``write-4``: the same over 1 and
  4 connections: a quiet site, where nothing waits to be batched;
* ``read-one`` / ``write-one``: ``--concurrency`` connections all on one
  cookie: a browser's parallel XHRs.  In ``write-one`` each connection
  increments a key of its own; the session is read back after each run
  (`lost_updates`) and compared with the writes the server acknowledged.

`measure_pairs` runs, for each round, case and variant, the bare framework
and then the variant, so each cost is ``1e6/rps(variant) - 1e6/rps(bare)``
of a pair; the variants' order turns by one each round (`round_order`), so
that no server always runs first or last in a case.  Statements per request
under load are ``Com_*`` deltas at the server minus the background seen
during the paired bare run (which sends no SQL); `probe_statements` counts
them for single requests, one at a time.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench import log
from bench.db import Counters, delta
from bench.load import Load, Workload
from bench.servers import Server, get, tally

#: case -> (path, shape, connections: None for --connections / --concurrency)
CASES: dict[str, tuple[str, str, int | None]] = {
    "read-1": ("/read", "many", 1),
    "write-1": ("/write", "many", 1),
    "read-4": ("/read", "many", 4),
    "write-4": ("/write", "many", 4),
    "read-many": ("/read", "many", None),
    "write-many": ("/write", "many", None),
    "read-one": ("/read", "one", None),
    "write-one": ("/write", "one", None),
}


def connections_of(case: str, shape: Shape) -> int:
    """The connections a case runs over."""
    _, kind, fixed = CASES[case]
    if fixed is not None:
        return fixed
    return shape.connections if kind == "many" else shape.concurrency


@dataclass
class Variant:
    """A server with sessions, its bare counterpart, and its cookies."""

    name: str
    server: Server
    bare: Server
    bare_name: str
    many: tuple[str, ...]
    one: str
    #: Its statements are counted at the database (the MySQL variants).
    counted: bool = False
    #: It reports ``MySQLStore.round_trips``.
    trips: bool = False


@dataclass
class Shape:
    sessions: int
    connections: int
    concurrency: int


@dataclass
class Samples:
    bare: list[dict[str, Any]] = field(default_factory=list)
    variant: list[dict[str, Any]] = field(default_factory=list)
    cost_us: list[float] = field(default_factory=list)
    cpu_cost_us: list[float] = field(default_factory=list)
    stmts: list[dict[str, float]] = field(default_factory=list)
    trips: list[float] = field(default_factory=list)
    writes: list[dict[str, int]] = field(default_factory=list)


def workload(case: str, variant: Variant, shape: Shape) -> Workload:
    path, kind, _ = CASES[case]
    cookie_name = variant.server.cookie_name
    connections = connections_of(case, shape)
    if kind == "many":
        return Workload(path, cookie_name, variant.many, connections)
    return Workload(
        path, cookie_name, (variant.one,), connections, one=True, keyed=path == "/write"
    )


def lost_updates(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, int]:
    """Compare the writes acknowledged (200 answers) with what the session holds.

    Each connection writes its own key, one request at a time, so every
    acknowledged increment of a key must be in the session: ``lost`` counts
    those that are not; ``unacknowledged`` counts increments present without
    a 200 (there should be none).
    """
    keys = set(after["acked"]) | set(after["held"])
    acked = {k: after["acked"].get(k, 0) - before["acked"].get(k, 0) for k in keys}
    held = {k: after["held"].get(k, 0) - before["held"].get(k, 0) for k in keys}
    return {
        "acknowledged": sum(acked.values()),
        "held": sum(held.values()),
        "lost": sum(max(0, acked[k] - held[k]) for k in keys),
        "unacknowledged": sum(max(0, held[k] - acked[k]) for k in keys),
    }


def warm_up(
    cases: list[str], variants: list[Variant], shape: Shape, load: Load, seconds: float
) -> None:
    if seconds <= 0:
        return
    log(f"warm-up ({seconds:g} s per server and case)")
    for case in cases:
        for v in variants:
            work = workload(case, v, shape)
            load.run(v.bare, work, seconds)
            load.run(v.server, work, seconds)


def round_order(variants: list[Variant], r: int) -> list[Variant]:
    """The variants in the order of round ``r`` (from 0): turned by ``r``,
    so that over as many rounds as variants each runs once in each place
    (what the database still does after the run before, such as InnoDB's
    purge after writes, then falls on each server alike)."""
    if not variants:
        return []
    k = r % len(variants)
    return variants[k:] + variants[:k]


def measure_pairs(
    *,
    rounds: int,
    cases: list[str],
    variants: list[Variant],
    shape: Shape,
    load: Load,
    seconds: float,
    counters: Counters,
) -> dict[tuple[str, str], Samples]:
    """For each round, case and variant (in `round_order`): a bare run, then
    the variant run."""
    samples: dict[tuple[str, str], Samples] = {}
    for r in range(rounds):
        for case in cases:
            for v in round_order(variants, r):
                work = workload(case, v, shape)
                checked = case == "write-one"
                tally_before = tally(v.server, v.one) if checked else None
                before = counters.read() if v.counted else None
                b = load.run(v.bare, work, seconds)
                middle = counters.read() if v.counted else None
                trips = v.server.round_trips() if v.trips else None
                m = load.run(v.server, work, seconds)
                if trips is not None:
                    trips = v.server.round_trips() - trips
                after = counters.read() if v.counted else None
                entry = samples.setdefault((case, v.name), Samples())
                if tally_before is not None:
                    entry.writes.append(lost_updates(tally_before, tally(v.server, v.one)))
                if trips is not None:
                    entry.trips.append(trips / m["requests"])
                if before is not None and middle is not None and after is not None:
                    background = delta(before, middle)
                    seen = delta(middle, after)
                    per: dict[str, float] = {
                        verb: max(0, seen[verb] - background[verb]) / m["requests"] for verb in seen
                    }
                    per["background_per_s"] = sum(background.values()) / seconds
                    entry.stmts.append(per)
                entry.bare.append(b)
                entry.variant.append(m)
                cost = 1e6 / m["rps"] - 1e6 / b["rps"]
                entry.cost_us.append(cost)
                entry.cpu_cost_us.append(m["cpu_us"] - b["cpu_us"])
                lost = f" | lost {entry.writes[-1]['lost']}" if entry.writes else ""
                log(
                    f"  round {r + 1}/{rounds} {case:10} {v.name:14} bare({v.bare_name}) "
                    f"{b['rps']:8.0f} rps | {m['rps']:8.0f} rps | {cost:8.1f} us/request{lost}"
                )
    return samples


def tampered(cookie: str) -> str:
    """The cookie with one character changed: a forged or damaged cookie."""
    i = len(cookie) // 2
    return cookie[:i] + ("A" if cookie[i] != "A" else "B") + cookie[i + 1 :]


def probe_statements(v: Variant, counters: Counters, repeats: int = 5) -> dict[str, Any]:
    """Statements the database receives for one request at a time, by kind.

    ``read`` and ``write`` carry a live session's cookie, ``new`` starts a
    session (``/seed`` without a cookie), ``untouched`` is a visitor without
    a cookie whose session is not used, ``tampered`` a damaged cookie.  Each
    probe runs ``repeats`` times and keeps the median count per verb: a
    window that another client of a shared server added to does not decide
    it; the counters' own reading, measured the same way with no request, is
    subtracted.  (express-session's read was seen, in a few runs out of
    dozens, with its SELECT and no touch in every window: the session probed
    had never been stored, its /seed having raced express-mysql-session's
    creation of its table; app.js now listens once the table is there, and
    `~bench.servers.check` stops a run whose probed session is missing.)
    """
    cookie = v.many[0]
    probes = {
        "read": ("/read", cookie),
        "write": ("/write", cookie),
        "new": ("/seed", None),
        "untouched": ("/read", None),
        "tampered": ("/read", tampered(cookie)),
    }

    def typical(request: tuple[str, str | None] | None) -> dict[str, int]:
        seen = []
        for _ in range(repeats):
            before = counters.read()
            if request is not None:
                status = get(v.server, request[0], request[1])[0]
                if status != 200:
                    log(f"  {v.name}: probe {request[0]} answered {status}")
            seen.append(delta(before, counters.read()))
        return {verb: statistics.median_low(s[verb] for s in seen) for verb in seen[0]}

    idle = typical(None)
    result: dict[str, Any] = {}
    for name, request in probes.items():
        counts = typical(request)
        result[name] = {verb: max(0, n - idle[verb]) for verb, n in counts.items()}
    return result
