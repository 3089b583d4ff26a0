"""What sealing costs per request: the same MySQL server, sealed and unsealed.

An A/B of two whole bench runs cannot show a change of 0.02 in a ratio
against express: the runs differ by ±0.1 on this kind of machine.  So here
two servers of the same code run side by side, ``mysql-sealed`` and
``mysql-unsealed`` (bench/server.py ``--unsealed``: a bench-only patch of
that process's store, whose seal and open hooks become the identity; the
library has no way to turn sealing off), each on a table of its own, and:

* before measuring, each table is read back (`check_tables`): every row of
  the sealed one starts with ``s1:``, every row of the unsealed one is plain
  JSON, so the A/B cannot compare sealed with sealed;
* `measure` alternates short runs, A B then B A, for ``--sealing-pairs``
  pairs of each case (``read-many`` and ``write-many``), and keeps each
  server's CPU time per request, read from the scheduler's nanosecond count
  (`.Server.cpu_ns`), not from clock ticks: CPU time is much less sensitive
  than throughput to the other work on the machine, and a pair's two runs
  are seconds apart, so slow drifts cancel;
* `summarize` reports the median of the pairs' differences (sealed minus
  unsealed, µs of CPU per request), their interquartile range and extremes,
  and the *ratio move*: that difference over express-session +
  express-mysql-session's CPU cost per request (over bare express) in the
  same run, which is how much sealing moves our CPU ratio against express;
* and, since the pairs' spread on a shared machine is wider than the target,
  `timed_hooks` times the seal and open hooks themselves inside both servers
  under the same load (``--time-sealing``: the thread's CPU clock around
  each call, the clock's own cost subtracted): the sealing code's direct
  cost per request, to within a µs or so, but not what it costs elsewhere
  (the longer text through the driver and the socket), which only the pairs
  can show.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
from typing import Any

from bench import BenchError, log
from bench.db import connect
from bench.load import Load
from bench.measure import Shape, Variant, workload
from bench.servers import Server, check, get, seed, start_python

SEALED_TABLE = "bench_sealed"
UNSEALED_TABLE = "bench_unsealed"
CASES = ("read-many", "write-many")
#: The issue's target: sealing moves the ratios against express by at most this.
TARGET = 0.02
#: The confidence of the interval around the pairs' median (`median_ci`).
CONFIDENCE = 0.95
#: Paired runs of express (bare, then with sessions) for a case the main
#: run did not measure.
EXPRESS_ROUNDS = 3


def variant(name: str, server: Server, sessions: int) -> Variant:
    cookies = seed(server, sessions + 1)
    check(server, cookies[0])
    return Variant(
        name=name, server=server, bare=server, bare_name="-", many=tuple(cookies[:-1]), one=""
    )


def check_tables(settings: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Count the sealed rows of both tables; raise if the sealed server's
    table holds a row that is not sealed, or the unsealed one's a row that
    is not plain JSON (the comparison would not be what it says)."""
    out = {}
    with contextlib.closing(connect(settings)) as conn, conn.cursor() as cur:
        for kind, table in (("sealed", SEALED_TABLE), ("unsealed", UNSEALED_TABLE)):
            cur.execute(f"SELECT data FROM `{table}` WHERE expires_at > 0")
            texts = [row[0] for row in cur.fetchall()]
            sealed = sum(1 for t in texts if t.startswith("s1:"))
            plain = 0
            for t in texts:
                with contextlib.suppress(ValueError):
                    plain += isinstance(json.loads(t), dict)
            out[kind] = {"rows": len(texts), "sealed": sealed, "plain_json": plain}
    if not out["sealed"]["rows"] or out["sealed"]["sealed"] != out["sealed"]["rows"]:
        raise BenchError(f"sealing A/B: the sealed server's rows are not all sealed: {out}")
    if not out["unsealed"]["rows"] or out["unsealed"]["plain_json"] != out["unsealed"]["rows"]:
        raise BenchError(f"sealing A/B: the unsealed server's rows are not plain JSON: {out}")
    return out


def cpu_us_per_request(v: Variant, case: str, shape: Shape, load: Load, seconds: float) -> float:
    before = v.server.cpu_ns()
    answered = load.run(v.server, workload(case, v, shape), seconds)
    if answered["non_2xx"] or answered["socket_errors"]:
        raise BenchError(f"sealing A/B: {v.name} answered errors in {case}: {answered}")
    return (v.server.cpu_ns() - before) / 1e3 / int(answered["requests"])


def measure(
    sealed: Variant,
    unsealed: Variant,
    *,
    pairs: int,
    shape: Shape,
    load: Load,
    seconds: float,
    warmup: float,
) -> dict[str, list[tuple[float, float]]]:
    """``{case: [(sealed µs, unsealed µs) per pair]}``: CPU per request,
    the pairs alternating which server runs first."""
    if warmup > 0:
        for case in CASES:
            for v in (sealed, unsealed):
                load.run(v.server, workload(case, v, shape), warmup)
    runs: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
    for i in range(pairs):
        for case in CASES:
            order = (sealed, unsealed) if i % 2 == 0 else (unsealed, sealed)
            cpu = {v.name: cpu_us_per_request(v, case, shape, load, seconds) for v in order}
            runs[case].append((cpu[sealed.name], cpu[unsealed.name]))
            log(
                f"  sealing pair {i + 1}/{pairs} {case:10} sealed {cpu[sealed.name]:7.1f} "
                f"unsealed {cpu[unsealed.name]:7.1f} us CPU/request: "
                f"{cpu[sealed.name] - cpu[unsealed.name]:+6.1f}"
            )
    return runs


def timed_hooks(
    sealed: Variant, unsealed: Variant, *, shape: Shape, load: Load, seconds: float
) -> dict[str, dict[str, float]]:
    """``{case: {server name: µs per request in the seal and open hooks}}``,
    timed inside each server (bench/server.py ``--time-sealing``) over one
    run per case and server."""
    out: dict[str, dict[str, float]] = {}
    for case in CASES:
        for v in (sealed, unsealed):
            get(v.server, "/sealing-time?on=1")
            answered = load.run(v.server, workload(case, v, shape), seconds)
            t = get(v.server, "/sealing-time?on=0")[2]
            calls = t["seal_calls"] + t["open_calls"]
            ns = t["seal_ns"] + t["open_ns"] - calls * t["clock_ns"]
            out.setdefault(case, {})[v.name] = ns / 1e3 / int(answered["requests"])
        log(
            f"  sealing hooks timed {case:10} sealed {out[case][sealed.name]:6.2f} "
            f"unsealed {out[case][unsealed.name]:6.2f} us/request"
        )
    return out


def express_cost(express: Variant, case: str, shape: Shape, load: Load, seconds: float) -> float:
    """express-session's CPU cost per request over bare express (µs), the
    median of `EXPRESS_ROUNDS` paired runs: for a case the main run skipped."""
    work = workload(case, express, shape)
    costs = []
    for _ in range(EXPRESS_ROUNDS):
        bare = load.run(express.bare, work, seconds)
        costs.append(load.run(express.server, work, seconds)["cpu_us"] - bare["cpu_us"])
    return float(statistics.median(costs))


def median_ci(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``values``:
    the order statistics ``k`` and ``n + 1 - k`` (1-based), with ``k`` the
    largest rank that still covers the median with at least ``confidence``
    (binomial, as the sign test).  With fewer than 6 values no interval
    reaches 95 %: the whole range is returned."""
    ordered = sorted(values)
    n = len(ordered)
    # P(X <= j) for X ~ Binomial(n, 1/2), the tail the interval leaves out.
    tail, k, mass = (1 - confidence) / 2, 0, 0.0
    for j in range(n // 2):
        mass += math.comb(n, j) / 2**n
        if mass > tail:
            break
        k = j + 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def summarize(
    runs: dict[str, list[tuple[float, float]]],
    express: dict[str, float | None],
    tables: dict[str, dict[str, int]],
    timed: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The JSON result: per case the pairs' differences and their spread,
    express's CPU cost per request and the ratio move."""
    cases: dict[str, Any] = {}
    for case, pairs in runs.items():
        diffs = sorted(s - u for s, u in pairs)
        q1, q3 = diffs[0], diffs[-1]
        if len(diffs) > 1:
            q1, _, q3 = statistics.quantiles(diffs, n=4)
        mid = statistics.median(diffs)
        ci = median_ci(diffs)
        peer = express.get(case)
        move = peer is not None and peer > 0
        hooks = timed[case]["mysql-sealed"] - timed[case]["mysql-unsealed"]
        cases[case] = {
            "pairs": len(pairs),
            "sealed_cpu_us": round(statistics.median(s for s, _ in pairs), 1),
            "unsealed_cpu_us": round(statistics.median(u for _, u in pairs), 1),
            "diff_us": round(mid, 1),
            "diff_us_iqr": [round(q1, 1), round(q3, 1)],
            "diff_us_ci": [round(ci[0], 1), round(ci[1], 1)],
            "diff_us_range": [round(diffs[0], 1), round(diffs[-1], 1)],
            "diff_us_all": [round(s - u, 1) for s, u in pairs],
            "express_cpu_cost_us": None if peer is None else round(peer, 1),
            "ratio_move": round(mid / peer, 3) if move and peer else None,
            "ratio_move_iqr": [round(q1 / peer, 3), round(q3 / peer, 3)] if move and peer else None,
            "ratio_move_ci": [round(ci[0] / peer, 3), round(ci[1] / peer, 3)]
            if move and peer
            else None,
            "hooks_us": round(hooks, 2),
            "hooks_us_by_server": {k: round(v, 2) for k, v in timed[case].items()},
            "hooks_ratio_move": round(hooks / peer, 4) if move and peer else None,
        }
    moves = [c["ratio_move"] for c in cases.values()]
    hook_moves = [c["hooks_ratio_move"] for c in cases.values()]
    return {
        "cases": cases,
        "target_ratio_move": TARGET,
        "met": None if None in moves else all(m <= TARGET for m in moves),
        "verdict": verdict([c["ratio_move_ci"] for c in cases.values()]),
        "confidence": CONFIDENCE,
        "hooks_met": None if None in hook_moves else all(m <= TARGET for m in hook_moves),
        "tables": tables,
        "notes": (
            "the same bench server sealed and unsealed (bench/server.py --unsealed, bench only), "
            "each on its own table, alternating runs (A B, then B A); *_cpu_us is the server's "
            "CPU time per request from /proc/<pid>/task/*/schedstat; diff_us is the median of "
            "the pairs' sealed - unsealed; ratio_move = diff_us / express-session + "
            "express-mysql-session's CPU cost per request over bare express in the same run; "
            "hooks_us is the CPU time per request inside the seal and open hooks, timed in "
            "each server under the same load (sealed - unsealed), hooks_ratio_move the same "
            "over express's cost; *_ci is the 95 % confidence interval of the median (order "
            "statistics, as the sign test); verdict: ok if every case's interval of the ratio "
            "move is within the target, MISSED if a case's interval is wholly above it, else "
            "unresolved"
        ),
    }


def verdict(intervals: list[list[float] | None]) -> str | None:
    """The pairs' verdict on the target, from each case's confidence
    interval of the median ratio move (`median_ci`): ``ok`` if every upper
    bound is within it, ``MISSED`` if some lower bound is above it, else
    ``unresolved`` (more pairs would narrow the interval)."""
    if any(ci is None for ci in intervals):
        return None
    if any(ci[0] > TARGET for ci in intervals if ci):
        return "MISSED"
    if all(ci[1] <= TARGET for ci in intervals if ci):
        return "ok"
    return "unresolved"


def line(result: dict[str, Any]) -> str:
    """The summary's line."""
    cases = result["cases"]
    pairs = min(c["pairs"] for c in cases.values())
    parts = []
    for case, c in cases.items():
        lo, hi = c["diff_us_iqr"]
        parts.append(
            f"{case.split('-')[0]} {c['diff_us']:+.1f} (IQR {lo:+.1f}..{hi:+.1f}, range "
            f"{c['diff_us_range'][0]:+.1f}..{c['diff_us_range'][1]:+.1f}; sealed "
            f"{c['sealed_cpu_us']:.0f}, unsealed {c['unsealed_cpu_us']:.0f})"
        )
    text = (
        f"sealing (sealed - unsealed, CPU us per request, median of {pairs} pairs): "
        + ", ".join(parts)
        + "; "
    )
    hooks = ", ".join(f"{case.split('-')[0]} {c['hooks_us']:+.2f}" for case, c in cases.items())
    text += f"seal+open hooks timed in the servers, us per request: {hooks}; "
    if result["met"] is None:
        return text + "ratio move vs express: not measured (no express-session in this run)"
    moves = ", ".join(
        f"{case.split('-')[0]} {c['ratio_move']:+.3f} (95% CI {c['ratio_move_ci'][0]:+.3f}.."
        f"{c['ratio_move_ci'][1]:+.3f}, IQR {c['ratio_move_iqr'][0]:+.3f}.."
        f"{c['ratio_move_iqr'][1]:+.3f}; hooks {c['hooks_ratio_move']:+.4f}; express "
        f"{c['express_cpu_cost_us']:.0f} us)"
        for case, c in cases.items()
    )
    hooks_verdict = "ok" if result["hooks_met"] else "MISSED"
    return text + (
        f"ratio move vs express: {moves} (target <= {TARGET}: pairs {result['verdict']} "
        f"by the median's 95% CI, hooks {hooks_verdict})"
    )


def run_ab(
    args: Any,
    env: dict[str, str],
    settings: dict[str, Any],
    started_server: Any,
    variants: list[Variant],
    shape: Shape,
    load: Load,
) -> tuple[Any, Any, Any, dict[str, float]]:
    """The sealing A/B (bench/py): the runs, the tables' check and
    express's cost in the cases the main run skipped; Nones if skipped."""
    if not args.sealing_pairs:
        return None, None, None, {}
    loop = {"uvloop": args.uvloop}
    log(
        f"sealing A/B: {args.sealing_pairs} pairs x {len(CASES)} cases, "
        f"{args.sealing_seconds:g} s per run"
    )
    pair = []
    for name, table, unsealed in (
        ("mysql-sealed", SEALED_TABLE, False),
        ("mysql-unsealed", UNSEALED_TABLE, True),
    ):
        server = started_server(
            start_python(
                "mysql", env, table, name=name, unsealed=unsealed, time_sealing=True, **loop
            )
        )
        pair.append(variant(name, server, args.sessions))
    tables = check_tables(settings)
    runs = measure(
        *pair,
        pairs=args.sealing_pairs,
        shape=shape,
        load=load,
        seconds=args.sealing_seconds,
        warmup=min(args.warmup, 1.0),
    )
    timed = timed_hooks(*pair, shape=shape, load=load, seconds=args.sealing_seconds)
    extra = {}
    node = [v for v in variants if v.name == "express-mysql"]
    for case in CASES:
        if node and case not in args.cases:
            extra[case] = express_cost(node[0], case, shape, load, args.duration)
    return runs, tables, timed, extra
