"""The README's commands, run as a new user runs them: in a fresh copy of the
repository, one after the other, in the order the README gives them.

The copy holds the files git tracks (as they are in the working tree), and
nothing else: no ``.venv``, no ``.env``, no built docs.  Its commands run
with an environment free of ``SESSION_*`` and ``DEMO_*`` variables, except
``DEMO_PORT=0``, so that the demo listens on a free port rather than 8888.

The test command (``bash scripts/test``) is not run from here (it runs this
suite, so it would recurse): the check is that CI runs exactly it.  The
benchmark (``make bench``, minutes long) runs in tests/test_bench.py, and
the database commands of the operations block against a real MariaDB in
tests/mysql/test_cli.py; here they run as a new user first meets them,
without a database.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python -m demo"
DOCS = "make docs"
TEST = "bash scripts/test"
#: Creating the virtualenv and installing into it (from pip's cache or the
#: local index), then starting the demo.
DEMO_START = 300
COMMAND_TIMEOUT = 300


def code_blocks() -> list[list[str]]:
    """The README's ``sh`` blocks, in order, each as its command lines
    (comments after ``#`` and blank lines left out)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)
    result = []
    for block in blocks:
        lines = [line.split(" #", 1)[0].strip() for line in block.splitlines()]
        result.append([line for line in lines if line and not line.startswith("#")])
    return result


def test_the_readme_gives_the_demo_then_the_docs_then_the_test_command() -> None:
    commands = [command for block in code_blocks() for command in block]
    assert commands[:3] == [DEMO, DOCS, TEST]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == TEST
    assert not any(line.startswith(("bash", "python", "make")) for line in lines[:-1]), lines


# -- the fresh copy -------------------------------------------------------------------


def new_users_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SESSION_", "DEMO_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["DEMO_PORT"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as ``git clone`` would give it, with the working tree's
    contents of every tracked file (so uncommitted edits are tested too)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    if listed.returncode != 0:
        pytest.fail(f"git ls-files failed in {ROOT}: {listed.stderr.decode()} (needs a git clone)")
    target = tmp_path_factory.mktemp("clone") / "tornado_sessions"
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree
            continue
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes())
        dest.chmod(source.stat().st_mode)
    assert not (target / ".venv").exists() and not (target / ".env").exists()
    return target


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=new_users_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


class Running:
    """A command running in its own process group, its output read by a thread."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=new_users_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line with {text!r} within {timeout} s; got:\n" + self.output)
            if line is None:
                pytest.fail(f"the command ended before a line with {text!r}:\n" + self.output)
            self.seen.append(line)
            if text in line:
                return

    @property
    def output(self) -> str:
        return "\n".join(self.seen)

    def interrupt(self) -> int:
        """Ctrl+C, as the reader stops the demo; return the exit status."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for command in started:
        command.stop()


def test_a_new_user_runs_the_readme_commands_in_order(
    fresh_clone: Path, running: list[Running]
) -> None:
    # 1. The demo command: a virtualenv, the package, the demo serving.
    demo = Running(DEMO, fresh_clone)
    running.append(demo)
    demo.wait_for("Press Ctrl+C", DEMO_START)
    match = re.search(r"open: +(http://localhost:(\d+)/)", demo.output)
    assert match, demo.output
    assert "MemoryStore" in demo.output and "throwaway" in demo.output
    with urllib.request.urlopen(match.group(1), timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
    assert 'id="visits">1<' in page
    assert "What this demo shows" in page and "<strong>MemoryStore</strong>" in page
    assert demo.interrupt() == 0
    assert (fresh_clone / ".venv" / "bin" / "python").exists()

    # 2. The docs command, right after: it installs Sphinx itself, then builds.
    docs = run(DOCS, fresh_clone)
    assert docs.returncode == 0, docs.stdout + docs.stderr
    assert "installing Sphinx" in docs.stdout
    assert "docs: built docs/_build/html/index.html" in docs.stdout
    html = fresh_clone / "docs" / "_build" / "html"
    for page_name in ("index.html", "quickstart.html", "recipes.html", "api.html"):
        assert (html / page_name).is_file(), page_name
    again = run(DOCS, fresh_clone)  # a second time: nothing more to install
    assert again.returncode == 0, again.stdout + again.stderr
    assert "installing Sphinx" not in again.stdout

    # The operations block, with the console script the package installed.
    (operations,) = [block for block in code_blocks() if "tornado-sessions" in block[0]]
    outputs = {command.split()[1]: run(command, fresh_clone) for command in operations}
    assert set(outputs) == {"secret", "create-table", "clear-expired", "stats"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}\n", outputs["secret"].stdout)
    assert outputs["create-table"].returncode == 0
    assert outputs["create-table"].stdout.startswith("CREATE TABLE IF NOT EXISTS `sessions`")
    for name in ("clear-expired", "stats"):  # no database yet: it says what to set
        result = outputs[name]
        assert result.returncode == 2, result.stdout + result.stderr
        assert "SESSION_HOST is not set" in result.stderr
        assert "Traceback" not in result.stderr
