"""The benchmark runs for real, briefly, so that it cannot rot unnoticed.

``bench/run.py --quick`` runs against a private MariaDB of the test's own
(passed to it through ``SESSION_*``, ``--db env``), once with the Python load
client (with express-session side by side where Node.js is present) and once
with wrk (which the bench installs with apt-get when it is missing and the run
is as root).  Nothing here is a timing assertion: the checks are that every
case ran and was answered, that no write tornado_sessions acknowledged in
``write-one`` is missing from the session, and the statements a single request
sends (1 SELECT for a read, SELECT + UPDATE for a write, 1 INSERT for a new
session, none for an untouched or tampered one).  The sealing A/B
(bench/sealcost.py) must report its line and fields, and its two servers'
tables are read back here: the unsealed one's rows are plain JSON and the
sealed one's are sealed, so the A/B cannot compare sealed with sealed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.mysql.server import MariaDBServer, running_server

REPO = Path(__file__).resolve().parent.parent
CASES = {
    "read-1",
    "write-1",
    "read-4",
    "write-4",
    "read-many",
    "write-many",
    "read-one",
    "write-one",
}
CONNECTIONS = {"read-1": 1, "write-1": 1, "read-4": 4, "write-4": 4, "read-one": 6, "write-one": 6}
NONE = {"select": 0, "insert": 0, "update": 0, "delete": 0}
OURS = {
    "read": {**NONE, "select": 1},
    "write": {**NONE, "select": 1, "update": 1},
    "new": {**NONE, "insert": 1},
    "untouched": NONE,
    "tampered": NONE,
}
#: express-session + express-mysql-session: a read also touches (UPDATE), a
#: write is a SELECT and an upsert (counted as an INSERT).
EXPRESS = {
    "read": {**NONE, "select": 1, "update": 1},
    "write": {**NONE, "select": 1, "insert": 1},
    "new": {**NONE, "insert": 1},
    "untouched": NONE,
    "tampered": NONE,
}
HAS_NODE = bool(shutil.which("node") and shutil.which("npm"))


@pytest.fixture(scope="module")
def bench_server() -> Iterator[MariaDBServer]:
    """A server no one else talks to: the statement counts are exact."""
    with running_server("for the benchmark") as server:
        yield server


def bench_env(server: MariaDBServer) -> dict[str, str]:
    """The environment with ``SESSION_*`` pointing at ``server`` (``--db env``)."""
    settings = server.settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    env.update(
        SESSION_HOST=settings["host"],
        SESSION_PORT=str(settings["port"]),
        SESSION_USER=settings["user"],
        SESSION_PASSWORD=settings["password"],
        SESSION_DATABASE=settings["database"],
    )
    return env


def run_script(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run a bench script from the repository root; never longer than ``timeout``."""
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the bench stops its servers on SIGTERM
        stdout, stderr = proc.communicate(timeout=60)
        pytest.fail(f"{cmd[1]} did not finish within {timeout:g} s:\n{stderr[-3000:]}")
    return proc.returncode, stdout, stderr


def run_bench(server: MariaDBServer, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "results.json"
    cmd = [sys.executable, "bench/run.py", "--quick", "--db", "env", "--json", str(out), *args]
    code, stdout, stderr = run_script(cmd, bench_env(server), 180)
    assert code == 0, f"exit {code}:\n{stderr[-3000:]}"
    assert "summary: session cost per request over the bare framework" in stdout
    result = dict(json.loads(out.read_text()))
    result["stdout"], result["stderr"] = stdout, stderr
    return result


def run_order(result: dict[str, Any], case: str, r: int) -> list[str]:
    """The servers a run measured in round ``r`` of ``case``, in order (its log)."""
    return [
        line.split()[3]
        for line in result["stderr"].splitlines()
        if line.split()[:3] == ["round", f"{r}/{result['rounds']}", case]
    ]


def check_sealing(result: dict[str, Any], with_express: bool) -> None:
    """The sealing A/B's summary line and JSON fields (2 pairs in --quick)."""
    sealing = result["sealing"]
    assert set(sealing["cases"]) == {"read-many", "write-many"}
    for case, entry in sealing["cases"].items():
        assert entry["pairs"] == 2 and len(entry["diff_us_all"]) == 2, case
        assert entry["sealed_cpu_us"] > 0 and entry["unsealed_cpu_us"] > 0, (case, entry)
        lo, hi = entry["diff_us_range"]
        assert lo <= entry["diff_us"] <= hi, (case, entry)
        # 2 pairs are too few for a 95 % interval: it is the whole range.
        assert entry["diff_us_ci"] == [lo, hi], (case, entry)
        # The hooks were timed in both servers: the unsealed one's are the
        # identity, so the sealed one's take longer (a seal or an open is
        # µs of CPU; the identity, with the clock around it, far less).
        hooks = entry["hooks_us_by_server"]
        assert hooks["mysql-sealed"] > hooks["mysql-unsealed"] >= 0, (case, entry)
        assert entry["hooks_us"] > 0, (case, entry)
        if with_express:
            assert entry["express_cpu_cost_us"] > 0, (case, entry)
            assert isinstance(entry["ratio_move"], float), (case, entry)
            assert isinstance(entry["hooks_ratio_move"], float), (case, entry)
        else:
            assert entry["express_cpu_cost_us"] is None and entry["ratio_move"] is None
            assert entry["hooks_ratio_move"] is None
    assert sealing["tables"]["sealed"]["sealed"] == sealing["tables"]["sealed"]["rows"] == 51
    assert sealing["tables"]["unsealed"]["plain_json"] == 51
    assert sealing["tables"]["unsealed"]["sealed"] == 0
    lines = [x for x in result["stdout"].splitlines() if x.startswith("sealing (")]
    assert len(lines) == 1, result["stdout"][-2000:]
    assert "sealed - unsealed, CPU us per request, median of 2 pairs" in lines[0]
    assert "read " in lines[0] and "write " in lines[0]
    assert "seal+open hooks timed in the servers, us per request: read +" in lines[0]
    if with_express:
        assert "ratio move vs express: read " in lines[0] and "(target <= 0.02: " in lines[0]
        assert "by the median's 95% CI" in lines[0] and sealing["verdict"] in lines[0]
    else:
        assert "ratio move vs express: not measured (no express-session" in lines[0]


def stored_data(server: MariaDBServer, table: str) -> list[str]:
    settings = server.settings()
    conn = pymysql.connect(
        host=settings["host"],
        port=int(settings["port"]),
        user=settings["user"],
        password=settings["password"],
        database=settings["database"],
    )
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT data FROM `{table}` WHERE expires_at > 0")
        return [row[0] for row in cur.fetchall()]


def check_common(result: dict[str, Any], variants: set[str]) -> None:
    assert set(result["cases"]) == CASES
    for case, entry in result["cases"].items():
        assert set(entry["variants"]) == variants, case
        for name, row in entry["variants"].items():
            assert row["rps"] > 0 and row["bare_rps"] > 0, (case, name)
            assert row["requests"] > 0, (case, name)
            assert row["non_2xx"] == 0 and row["socket_errors"] == 0, (case, name, row)
            # The server's idle time per request is reported for every case.
            assert row["idle_us"] >= 0 and row["bare_idle_us"] >= 0, (case, name)
        assert entry["connections"] == CONNECTIONS.get(case, 16), case
        assert entry["sessions"] == (50 if entry["shape"] == "many" else 1)
        # Statements and round trips are counted for our MySQL variant in every case.
        assert entry["variants"]["mysql"]["statements_per_request"]["select"] > 0, case
        assert entry["variants"]["mysql"]["round_trips_per_request"] > 0, case
    for name in variants - {"express-mysql"}:
        writes = result["cases"]["write-one"]["variants"][name]["writes"]
        assert writes["acknowledged"] > 0, (name, writes)
        assert writes["lost"] == 0, (name, writes)
        assert writes["unacknowledged"] == 0, (name, writes)
        assert writes["held"] == writes["acknowledged"], (name, writes)
    assert result["single_request_statements"]["mysql"] == OURS
    # The floor: MemoryStore's CPU over bare Tornado, per read and per write.
    if "memory" in variants:
        floor = result["floor_cpu_us_over_bare"]["memory"]
        assert (floor["read_case"], floor["write_case"]) == ("read-many", "write-many")
        assert isinstance(floor["read"], float) and isinstance(floor["write"], float)
        # And paired in one process (bench/floor.py).
        paired = result["floor_paired"]
        assert paired["pairs"] == 1
        for action in ("read", "write"):
            row = paired[action]
            assert row["bare_cpu_us"] > 0 and row["session_cpu_us"] > 0, row
            assert row["floor_us"] == pytest.approx(
                row["session_cpu_us"] - row["bare_cpu_us"], abs=0.2
            )


def test_quick_run_python_client(bench_server: MariaDBServer, tmp_path: Path) -> None:
    result = run_bench(
        bench_server,
        tmp_path,
        *("--load", "python", "--duration", "0.3", "--driver", "aiomysql", "--rounds", "2"),
    )
    assert result["load_generator"] == "python keep-alive client"
    # The servers' order turns by one each round: none always runs first.
    first, second = run_order(result, "write-one", 1), run_order(result, "write-one", 2)
    assert len(first) >= 2 and second == first[1:] + first[:1], (first, second)
    assert result["driver"] == "aiomysql"
    variants = {"memory", "mysql"} | ({"express-mysql"} if HAS_NODE else set())
    check_common(result, variants)
    if HAS_NODE:
        assert set(result["ratios_ours_over_express"]) == CASES
        assert all(isinstance(r, float) for r in result["ratios_ours_over_express"].values())
        assert result["single_request_statements"]["express-mysql"] == EXPRESS
        peer = result["lost_updates_write_one"]["express-mysql"]
        assert peer["acknowledged"] > 0 and peer["unacknowledged"] == 0, peer
        assert result["node_versions"]["express-mysql-session"]
    check_sealing(result, with_express=HAS_NODE)
    # The A/B's two servers, read back here: one keeps plain JSON, the other
    # sealed text that holds none of the session's values.
    unsealed = stored_data(bench_server, "bench_unsealed")
    sealed = stored_data(bench_server, "bench_sealed")
    assert len(unsealed) == len(sealed) == 51
    for text in unsealed:
        assert json.loads(text)["user"] == {"name": "bench", "roles": ["reader", "writer"]}
    for text in sealed:
        assert text.startswith("s1:") and "bench" not in text and "reader" not in text


def test_quick_run_wrk(bench_server: MariaDBServer, tmp_path: Path) -> None:
    """wrk, on uvloop, with this checkout as its own --baseline (mysql-base),
    and with coalescing off (--unbatched: mysql-unbatched)."""
    result = run_bench(
        bench_server,
        tmp_path,
        *("--load", "wrk", "--no-node", "--no-memory", "--uvloop", "--baseline", str(REPO)),
        "--unbatched",
    )
    assert result["load_generator"].startswith("wrk")
    assert result["uvloop"] is True and result["baseline"] == str(REPO)
    assert result["unbatched"] is True
    check_common(result, {"mysql", "mysql-base", "mysql-unbatched"})
    assert result["single_request_statements"]["mysql-base"] == OURS
    assert result["single_request_statements"]["mysql-unbatched"] == OURS
    assert result["ratios_ours_over_express"] == {}
    assert result["ratios_unbatched_over_express"] == {}  # no express to divide by
    check_sealing(result, with_express=False)
    # Unbatched, each read is a round trip of its own (the store's own count),
    # whatever the load.
    for case in ("read-1", "read-4", "read-many", "read-one"):
        row = result["cases"][case]["variants"]["mysql-unbatched"]
        assert row["round_trips_per_request"] >= 0.95, (case, row)


#: bench/profile.py's table: issue 18's rows and columns (and "other").
PROFILE_ROWS = [
    "Tornado HTTP (Python)",
    "asyncio: loop, task/future hand-offs",
    "library: cookie, bookkeeping, JSON, store",
    "aiomysql/PyMySQL + DB socket calls",
    "other (no known component on the stack)",
]
PROFILE_COLUMNS = ["bare", "memory read", "mysql read", "memory write", "mysql write"]


def table_rows(stdout: str, first_row: str) -> dict[str, list[int]]:
    """The printed table that starts at ``first_row``: row label -> its cells
    ("–", no sample, as 0)."""
    rows: dict[str, list[int]] = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith(f"| {first_row} |") or (rows and line.startswith("| ")):
            rows[cells[0]] = [0 if c == "–" else int(c.replace(",", "")) for c in cells[1:]]
        elif rows:
            break
    return rows


def test_profile_quick(bench_server: MariaDBServer, tmp_path: Path) -> None:
    """``bench/profile.py --quick``: py-spy attached to each server by pid
    prints issue 18's table, every row and column, the layers summing to the
    CPU total; each layer shows up where it runs and only there."""
    out = tmp_path / "profile.json"
    cmd = [sys.executable, "bench/profile.py", "--quick", "--db", "env", "--driver", "aiomysql"]
    code, stdout, stderr = run_script([*cmd, "--json", str(out)], bench_env(bench_server), 150)
    assert code == 0, f"exit {code}:\n{stderr[-3000:]}"
    assert "| | " + " | ".join(PROFILE_COLUMNS) + " |" in stdout, stdout
    rows = table_rows(stdout, PROFILE_ROWS[0])
    assert list(rows) == [*PROFILE_ROWS, "CPU total", "waiting (wall − CPU)"], stdout
    assert all(len(cells) == len(PROFILE_COLUMNS) for cells in rows.values()), stdout
    for i, column in enumerate(PROFILE_COLUMNS):
        layers = sum(rows[label][i] for label in PROFILE_ROWS)
        # Each printed cell is rounded to a whole µs.
        assert abs(layers - rows["CPU total"][i]) <= 3, (column, stdout)
    # asyncio's own code, by the layer it is charged to: the loop's part is
    # the asyncio row; the rest is within the rows of the callers.
    split = table_rows(stdout, "the loop itself (the asyncio row)")
    assert list(split) == [
        "the loop itself (the asyncio row)",
        "called by Tornado (in its row)",
        "called by the library (in its row)",
        "called by the driver (in its row)",
    ], stdout
    assert split["the loop itself (the asyncio row)"] == rows[PROFILE_ROWS[1]], stdout
    for label, row in (("Tornado", 0), ("the library", 2), ("the driver", 3)):
        charged = split[f"called by {label} (in its row)"]
        assert all(a <= b + 1 for a, b in zip(charged, rows[PROFILE_ROWS[row]], strict=True)), (
            stdout
        )
    result = json.loads(out.read_text())
    assert result["driver"] == "aiomysql" and result["connections"] == 32
    columns = result["columns"]
    assert list(columns) == ["bare", "memory-read", "mysql-read", "memory-write", "mysql-write"]
    for name, column in columns.items():
        assert column["cpu_us"] > 0 and column["requests"] > 0, name
        assert column["profiled"]["samples"] > 0, name
        assert abs(sum(column["categories_us"].values()) - column["cpu_us"]) < 0.5, name
        assert column["waiting_us"] >= 0, name
        assert column["shares"]["tornado"] > 0 and column["shares"]["asyncio"] > 0, name
        # The library and the driver are only where they run.
        assert (column["shares"]["library"] > 0) == (name != "bare"), (name, column)
        assert (column["shares"]["driver"] > 0) == name.startswith("mysql"), (name, column)
    for name in ("memory-write", "mysql-write"):
        top = columns[name]["library_top"]
        assert 0 < len(top) <= 15, name
        assert all("tornado_sessions/" in entry["function"] for entry in top), top
        assert f"library, leaf-most functions, µs per request ({name.replace('-', ' ')})" in stdout


def test_profile_without_py_spy(tmp_path: Path) -> None:
    """Without py-spy the script says how to install it and exits 2."""
    missing = str(tmp_path / "py-spy")
    cmd = [sys.executable, "bench/profile.py", "--quick", "--py-spy", missing]
    code, stdout, stderr = run_script(cmd, dict(os.environ), 60)
    assert code == 2, (code, stderr)
    assert "pip install py-spy" in stderr
    assert stdout == ""


def test_profile_attribution() -> None:
    """A sample belongs to its leaf-most component frame; asyncio only when
    nothing of Tornado, the library or the driver is on the stack, except
    its socket transports and streams (the database connections')."""
    from bench.pyspy import attribute, read_raw

    loop = "<module> (bench/server.py:1);BaseEventLoop._run_once (asyncio/base_events.py:1)"
    cases = {
        f"{loop};EpollSelector.select (selectors.py:464)": "asyncio",
        f"{loop};Handle._run (asyncio/events.py:80)": "asyncio",
        f"{loop};Handle._run (asyncio/events.py:80);RequestHandler.finish (tornado/web.py:1)": (
            "tornado"
        ),
        # Tornado's asyncio glue is Tornado's.
        f"{loop};BaseAsyncIOLoop._handle_events (tornado/platform/asyncio.py:200)": "tornado",
        # The stdlib and asyncio called from the library are the library's.
        f"{loop};RequestHandler._execute (tornado/web.py:1);seal (tornado_sessions/sealing.py:1)"
        ";dumps (json/__init__.py:1)": "library",
        f"{loop};SessionFinishing._session_chain (tornado_sessions/finishing.py:1)"
        ";create_task (asyncio/tasks.py:1)": "library",
        f"{loop};Cursor.execute (aiomysql/cursors.py:1);escape (pymysql/converters.py:1)": "driver",
        f"{loop};_SelectorSocketTransport._read_ready (asyncio/selector_events.py:1)"
        ";StreamReaderProtocol.data_received (asyncio/streams.py:1)": "driver",
        f"{loop};BaseSelectorEventLoop._process_events (asyncio/selector_events.py:1)": "asyncio",
        "deepcopy (copy.py:1)": "other",
    }
    raw = "\n".join(f"{stack} 3" for stack in cases)
    stacks = read_raw(raw + "\n7\n")
    assert [attribute(frames)[0] for frames, _ in stacks[:-1]] == list(cases.values())
    assert [count for _, count in stacks] == [3] * len(cases) + [7]
    assert stacks[-1][0] == ()  # a sample without frames
    _, leaf = attribute(stacks[4][0])
    assert str(leaf) == "seal (tornado_sessions/sealing.py)"
    # A frame name garbled by a nonblocking read, with characters that
    # str.splitlines takes for line ends, stays within its line (a run of
    # bench/profile.py failed on one).
    (garbled,) = read_raw(f"{loop};\x05\x1c (\u2028x.py:1) 2\n")
    assert garbled[1] == 2 and len(garbled[0]) == 3


def test_floor_in_instructions(tmp_path: Path) -> None:
    """``bench/floor.py --instructions``: the floor counted by callgrind
    (valgrind, installed with apt-get when missing), per request, for reads
    and writes; a session request runs more instructions than a bare one."""
    cmd = [sys.executable, "bench/floor.py", "--pairs", "0", "--instructions"]
    cmd += ["--ipairs", "1", "--irequests", "30", "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counted = json.loads(proc.stdout)["floor_paired"]["instructions"]
    for action in ("read", "write"):
        row = counted[action]
        # A bare Tornado request is hundreds of thousands of instructions.
        assert row["bare_instructions"] > 100_000, row
        assert row["session_instructions"] > row["bare_instructions"], row
        floor = row["session_instructions"] - row["bare_instructions"]
        assert row["floor_instructions"] == pytest.approx(floor, abs=1)
    # A write saves: it costs more than a read.
    assert counted["write"]["floor_instructions"] > counted["read"]["floor_instructions"]


def test_drivers_quick(bench_server: MariaDBServer) -> None:
    """``bench/drivers.py``: the store's point SELECT on each installed
    driver's pool, one row of figures per driver."""
    cmd = [sys.executable, "bench/drivers.py", "--db", "env", "--tasks", "4", "--pool", "2"]
    cmd += ["--queries", "200", "--rounds", "1"]
    code, stdout, stderr = run_script(cmd, bench_env(bench_server), 120)
    assert code == 0, f"exit {code}:\n{stderr[-3000:]}"
    rows = [line.split() for line in stdout.splitlines()[2:] if line.strip()]
    # asyncmy (and its prepared statements) where the script finds it installed.
    names = [row[0] for row in rows]
    assert names in (["aiomysql"], ["aiomysql", "asyncmy", "asyncmy,"]), stdout
    for row in rows:
        # "<cpu> (<min>-<max>) <statements/s>"
        assert float(row[-3]) > 0 and int(row[-1].replace(",", "")) > 0, stdout


def test_statements_quick(tmp_path: Path) -> None:
    """``bench/statements.py``: every statement's server time, from the slow
    log of a private server, each statement counted once per round."""
    out = tmp_path / "statements.json"
    cmd = [sys.executable, "bench/statements.py", "--count", "40", "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    code, stdout, stderr = run_script(cmd, env, 180)
    assert code == 0, f"exit {code}:\n{stderr[-3000:]}"
    result = json.loads(out.read_text())
    statements = result["statements"]
    assert set(statements) == {
        "ours-load",
        "ours-load-4",
        "ours-save",
        "ours-touch",
        "express-get",
        "express-set",
        "express-touch",
        "floor",
    }
    for name, entry in statements.items():
        assert entry["n"] == 40, (name, entry)
        assert 0 < entry["q1_us"] <= entry["median_us"] <= entry["q3_us"], (name, entry)
        assert entry["what"] in stdout, stdout
    # A statement that reads no table costs the server less than any that does.
    floor = statements["floor"]["median_us"]
    assert all(e["median_us"] > floor for n, e in statements.items() if n != "floor")
    assert result["write_us"]["ours"] == pytest.approx(
        statements["ours-load"]["median_us"] + statements["ours-save"]["median_us"], abs=0.2
    )
    assert "a write request: ours" in stdout


def test_the_sealing_verdict_rests_on_the_median_confidence_interval() -> None:
    """The interval is the sign test's (ranks 2 and 9 of 10 at 95 %), it
    covers the median as often as it says, and the verdict needs a whole
    interval on one side of the target."""
    import random

    from bench.sealcost import median_ci, verdict

    assert median_ci([float(x) for x in range(10)]) == (1.0, 8.0)
    assert median_ci([float(x) for x in range(5)]) == (0.0, 4.0)  # too few: the range
    rng = random.Random(7)
    trials = 2000
    covered = sum(
        lo <= 0 <= hi
        for lo, hi in (median_ci([rng.gauss(0, 1) for _ in range(40)]) for _ in range(trials))
    )
    assert 0.94 <= covered / trials <= 0.99, covered / trials
    assert verdict([[0.001, 0.019], [-0.01, 0.02]]) == "ok"
    assert verdict([[0.001, 0.019], [0.021, 0.05]]) == "MISSED"
    assert verdict([[0.001, 0.019], [0.01, 0.03]]) == "unresolved"
    assert verdict([None, [0.0, 0.01]]) is None
