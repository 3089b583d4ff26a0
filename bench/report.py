"""The results: medians over rounds, the printed tables, the ratios, the JSON.

`summarize` turns the paired samples into one row per case and variant;
`ratios` divides our MySQL cost by express-session + express-mysql-session's
per case; `floors` is the layer's own cost (MemoryStore's CPU time over bare
Tornado's per read and per write); `print_tables` shows the detail, the
single-request statement counts, the floor and the final summary (ours,
express, ratio, target, lost updates); `result` is what ``--json`` writes.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.measure import CASES, Samples, Shape, connections_of

OURS = "mysql"
PEER = "express-mysql"
VERBS = ("select", "insert", "update", "delete")
#: The targets for our cost over express's, per case (none for the other reads).
TARGETS = {
    "read-many": 0.30,
    "write-many": 0.50,
    "write-one": 0.60,
    "write-1": 0.80,
    "write-4": 0.80,
}
AIMS = {"write-one": 0.5}
#: The floor's targets (MemoryStore's CPU µs over bare Tornado's) and aims.
FLOOR_TARGETS = {"read": 35.0, "write": 50.0}
FLOOR_AIMS = {"read": 20.0, "write": 30.0}
#: The cases the floor is read from, the first present (the most connections
#: first: the shape the issue's profile was made at).
FLOOR_CASES = {
    "read": ("read-many", "read-4", "read-1", "read-one"),
    "write": ("write-many", "write-4", "write-1", "write-one"),
}
LABELS = {
    "memory": "MemoryStore",
    "mysql": "MySQLStore",
    "express-mysql": "express-session + express-mysql-session",
}


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summarize(samples: dict[tuple[str, str], Samples]) -> dict[str, dict[str, Any]]:
    """``{case: {variant: row}}`` with the medians of the rounds."""
    rows: dict[str, dict[str, Any]] = {}
    for (case, name), s in samples.items():
        stmts = None
        if s.stmts:
            stmts = {k: round(median([x[k] for x in s.stmts]) or 0.0, 3) for k in s.stmts[0]}
        row: dict[str, Any] = {
            "bare_rps": _round(median([b["rps"] for b in s.bare])),
            "rps": _round(median([v["rps"] for v in s.variant])),
            "cost_us": _round(median(s.cost_us)),
            "cost_us_all": [round(c, 1) for c in s.cost_us],
            "bare_cpu_us": _round(median([b["cpu_us"] for b in s.bare])),
            "cpu_us": _round(median([v["cpu_us"] for v in s.variant])),
            "cpu_cost_us": _round(median(s.cpu_cost_us)),
            "bare_idle_us": _round(median([b["idle_us"] for b in s.bare])),
            "idle_us": _round(median([v["idle_us"] for v in s.variant])),
            "p50_ms": _round(median([v["p50_ms"] for v in s.variant if v["p50_ms"]]), 3),
            "p99_ms": _round(median([v["p99_ms"] for v in s.variant if v["p99_ms"]]), 3),
            "requests": sum(v["requests"] for v in s.variant),
            "non_2xx": sum(v["non_2xx"] for v in s.variant),
            "socket_errors": sum(v["socket_errors"] for v in s.variant),
            "statements_per_request": stmts,
            "round_trips_per_request": _round(median(s.trips), 3),
        }
        if s.writes:
            row["writes"] = {k: sum(w[k] for w in s.writes) for k in s.writes[0]}
        rows.setdefault(case, {})[name] = row
    return rows


def ratios(
    rows: dict[str, dict[str, Any]], key: str = "cost_us", ours_name: str = OURS
) -> dict[str, float | None]:
    """Our cost over express's per case (``key``: ``cost_us``, or ``cpu_cost_us``
    for the servers' CPU time; ``ours_name``: the variant, ``mysql-base`` for
    the baseline's); None when express's is not above zero."""
    out: dict[str, float | None] = {}
    for case, variants in rows.items():
        ours, peer = variants.get(ours_name), variants.get(PEER)
        if ours and peer and peer[key] and peer[key] > 0:
            out[case] = round(ours[key] / peer[key], 2)
        elif ours and peer:
            out[case] = None
    return out


def floors(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The layer's floor per MemoryStore variant: its CPU time per request
    over the bare framework's, ``{variant: {"read": µs, "read_case": case,
    "write": ..., "write_case": ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    names = {name for variants in rows.values() for name in variants}
    for name in sorted(n for n in names if n.startswith("memory")):
        floor: dict[str, Any] = {}
        for action, cases in FLOOR_CASES.items():
            for case in cases:
                row = rows.get(case, {}).get(name)
                if row is not None:
                    floor[action] = row["cpu_cost_us"]
                    floor[f"{action}_case"] = case
                    break
        if floor:
            out[name] = floor
    return out


def _sql(s: dict[str, float] | None) -> str:
    if not s:
        return "-"
    return f"{sum(s[k] for k in VERBS):.2f} ({' '.join(f'{s[k]:.2f}' for k in VERBS)})"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_tables(
    rows: dict[str, dict[str, Any]],
    probes: dict[str, dict[str, Any]],
    ratio: dict[str, float | None],
    cpu_ratio: dict[str, float | None],
    heading: str,
    floor: dict[str, dict[str, Any]] | None = None,
    base_ratio: dict[str, float | None] | None = None,
    unbatched_ratio: dict[str, float | None] | None = None,
) -> None:
    print(heading)
    head = (
        f"{'case':10} {'variant':14} {'bare rps':>9} {'rps':>9} {'cost us/req':>12} "
        f"{'cpu cost':>9} {'p50 ms':>7} {'p99 ms':>7} {'SQL/req (sel ins upd del)':>27} "
        f"{'trips/req':>9} {'idle us':>8} {'errors':>6}"
    )
    print(head)
    print("-" * len(head))
    for case in CASES:
        for name, row in rows.get(case, {}).items():
            print(
                f"{case:10} {name:14} {row['bare_rps']:9.0f} {row['rps']:9.0f} "
                f"{row['cost_us']:12.1f} {row['cpu_cost_us']:9.1f} "
                f"{_num(row['p50_ms'], '.2f'):>7} {_num(row['p99_ms'], '.2f'):>7} "
                f"{_sql(row['statements_per_request']):>27} "
                f"{_num(row['round_trips_per_request'], '.2f'):>9} "
                f"{_num(row['idle_us'], '.1f'):>8} "
                f"{row['non_2xx'] + row['socket_errors']:6d}"
            )
    if probes:
        print()
        print("statements for a single request (select insert update delete):")
        for name, kinds in probes.items():
            text = ", ".join(
                f"{kind} {' '.join(str(counts[v]) for v in VERBS)}"
                for kind, counts in kinds.items()
            )
            print(f"  {name:14} {text}")
    print(
        "(idle us: the server's wall time per request less its CPU time per request, "
        "i.e. how long it sat waiting, per request)"
    )
    for name, f in (floor or {}).items():
        parts = []
        for action in ("read", "write"):
            if action in f:
                verdict = "ok" if f[action] <= FLOOR_TARGETS[action] else "MISSED"
                parts.append(
                    f"{action} {f[action]:.1f} us ({f[f'{action}_case']}; target <= "
                    f"{FLOOR_TARGETS[action]:g}, aim {FLOOR_AIMS[action]:g}: {verdict})"
                )
        print()
        print(f"floor ({name} CPU over bare Tornado, per request): {', '.join(parts)}")
    print()
    print("summary: session cost per request over the bare framework")
    head = (
        f"{'case':10} {'ours us/req':>12} {'express us/req':>15} {'ratio':>6}  {'target':16} "
        f"{'cpu ratio':>9}  {'lost: ours':>14} {'lost: express':>14}"
        + (f" {'base ratio':>10}" if base_ratio else "")
        + (f" {'unbatched':>10}" if unbatched_ratio else "")
    )
    print(head)
    print("-" * len(head))
    for case in CASES:
        if case not in rows:
            continue
        ours, peer = rows[case].get(OURS), rows[case].get(PEER)
        r = ratio.get(case)
        target = ""
        if case in TARGETS and r is not None:
            verdict = "ok" if r <= TARGETS[case] else "MISSED"
            target = f"<= {TARGETS[case]:.2f}: {verdict}"
        print(
            f"{case:10} {_num(ours['cost_us'] if ours else None, '.1f'):>12} "
            f"{_num(peer['cost_us'] if peer else None, '.1f'):>15} {_num(r, '.2f'):>6}  "
            f"{target:16} {_num(cpu_ratio.get(case), '.2f'):>9}  "
            f"{_lost(ours):>14} {_lost(peer):>14}"
            + (f" {_num(base_ratio.get(case), '.2f'):>10}" if base_ratio else "")
            + (f" {_num(unbatched_ratio.get(case), '.2f'):>10}" if unbatched_ratio else "")
        )
    print(
        "(ratio: ours over express, of the cost per request over the bare framework; "
        "cpu ratio: the same for the servers' CPU time per request; lost: in write-one, "
        "increments answered 200 but missing from the session, of all answered 200"
        + ("; base ratio: the ratio of mysql-base, the --baseline checkout's" if base_ratio else "")
        + (
            "; unbatched: the ratio of mysql-unbatched, this checkout with coalescing off"
            if unbatched_ratio
            else ""
        )
        + ")"
    )


def _lost(row: dict[str, Any] | None) -> str:
    if not row or "writes" not in row:
        return ""
    return f"{row['writes']['lost']} of {row['writes']['acknowledged']}"


def result(
    *,
    rows: dict[str, dict[str, Any]],
    probes: dict[str, dict[str, Any]],
    ratio: dict[str, float | None],
    cpu_ratio: dict[str, float | None],
    shape: Shape,
    base_ratio: dict[str, float | None] | None = None,
    unbatched_ratio: dict[str, float | None] | None = None,
    settings: dict[str, Any],
    floor: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON results (``--json``)."""
    cases = {}
    for case, variants in rows.items():
        path, kind, _ = CASES[case]
        many = kind == "many"
        cases[case] = {
            "action": path.strip("/"),
            "shape": kind,
            "connections": connections_of(case, shape),
            "sessions": shape.sessions if many else 1,
            "variants": variants,
            "ratio_ours_over_express": ratio.get(case),
            "cpu_ratio_ours_over_express": cpu_ratio.get(case),
            "target_ratio": TARGETS.get(case),
        }
    lost = {
        name: row["writes"] for name, row in rows.get("write-one", {}).items() if "writes" in row
    }
    return {
        **settings,
        "cases": cases,
        "ratios_ours_over_express": ratio,
        "cpu_ratios_ours_over_express": cpu_ratio,
        "ratios_baseline_over_express": base_ratio or {},
        "ratios_unbatched_over_express": unbatched_ratio or {},
        "lost_updates_write_one": lost,
        "single_request_statements": probes,
        "floor_cpu_us_over_bare": floor or {},
        "notes": (
            "cost_us = 1e6/rps(variant) - 1e6/rps(bare) of each paired run, median over rounds; "
            "statements_per_request are Com_* deltas at the server minus the background counted "
            "during the paired bare run; single_request_statements are counted one request at "
            "a time (exact on a server no one else uses); lost_updates_write_one compares the "
            "increments each server acknowledged with a 200 with what the session holds; "
            "idle_us = 1e6/rps - cpu_us (the server's wait per request); "
            "floor_cpu_us_over_bare is MemoryStore's cpu_cost_us in the first of the many, 4 "
            "and 1 connection cases run"
        ),
    }
