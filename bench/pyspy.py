"""py-spy for bench/profile.py: finding it, recording a server, reading the samples.

`find_py_spy` finds the ``py-spy`` binary (``pip install py-spy``: an optional
tool of the bench, in the ``test`` extra, never a dependency of the package).
`Recording` runs ``py-spy record --pid <server> --rate <hz> --format raw
--nonblocking`` around a load (idle samples are left out, py-spy's default)
and `read_raw` reads its collapsed stacks: one line per distinct stack,
frames root first, each ``function (file:line)``, then the sample count.

`attribute` puts each sample in one category (`CATEGORIES`) by the leaf-most
frame of a known component:

* ``tornado/`` (not ``tornado_sessions/``): ``tornado``;
* ``tornado_sessions/``: ``library``;
* ``aiomysql/``, ``pymysql/``, ``asyncmy/``: ``driver``; so are asyncio's
  socket transports and streams (``selector_events.py``'s
  ``_SelectorSocketTransport``, ``streams.py``, ``transports.py``), which
  in these servers carry only the database connections (Tornado's HTTP has
  its own ``IOStream``): the "DB socket calls";
* ``asyncio/`` and ``selectors``: ``asyncio``, but only when no frame of the
  three above is on the stack: asyncio called *from* a component (a task
  created, a future resolved, ``call_soon``) is that component's work,
  like the stdlib it calls (json, hashlib, cryptography); what is left is
  the loop itself: ``_run_once``, ``select``, a handle's run, a task's
  step between two awaits: the hand-offs;
* anything else (a stack of none of these): ``other``.

`in_asyncio` tells the samples whose leaf-most component frame is asyncio's
own code, whichever layer they are charged to: `Profile.asyncio_us` splits
asyncio's whole cost into the loop's and what Tornado, the library and the
driver had asyncio do (tasks, futures, callbacks, timers).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import BenchError

#: Categories, in the table's order.
CATEGORIES = ("tornado", "asyncio", "library", "driver", "other")
#: Top-level package (a path component of the frame's file) -> category.
COMPONENTS = {
    "tornado": "tornado",
    "tornado_sessions": "library",
    "aiomysql": "driver",
    "pymysql": "driver",
    "asyncmy": "driver",
    "asyncio": "asyncio",
    "selectors.py": "asyncio",
}
STRONG = {"tornado", "library", "driver"}
#: Where asyncio's own code is charged: the loop, or the layer that called it.
ASYNCIO_CHARGED = ("asyncio", "tornado", "library", "driver")
#: asyncio's files and classes that serve the database connections only.
TRANSPORT_FILES = {"streams.py", "transports.py"}
TRANSPORT_CLASSES = ("_SelectorSocketTransport.", "_SelectorTransport.")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
INSTALL = (
    "py-spy is not installed: pip install py-spy (the test extra has it: pip install -e '.[test]')"
)


@dataclass(frozen=True)
class Frame:
    func: str
    file: str

    @property
    def component(self) -> str | None:
        parts = self.file.replace("\\", "/").split("/")
        for part in parts:
            if part in COMPONENTS:
                return COMPONENTS[part]
        return None

    @property
    def transport(self) -> bool:
        parts = self.file.split("/")
        if len(parts) < 2 or parts[-2] != "asyncio":
            return False
        if parts[-1] in TRANSPORT_FILES:
            return True
        return parts[-1] == "selector_events.py" and self.func.startswith(TRANSPORT_CLASSES)

    def __str__(self) -> str:
        return f"{self.func} ({self.file})"


def parse_frame(text: str) -> Frame:
    m = FRAME.match(text.strip())
    if not m:
        return Frame(text.strip(), "")
    return Frame(m.group("func"), m.group("file"))


def read_raw(text: str) -> list[tuple[tuple[Frame, ...], int]]:
    """py-spy's ``--format raw`` output: (frames root first, samples) per stack."""
    stacks = []
    # Lines end with "\n" only: a frame's name read from a running process
    # (--nonblocking) may hold any character, "\x1c" or "\u2028" too,
    # which str.splitlines would take for the end of a line.
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            raise BenchError(f"unexpected line in py-spy's output: {line[:200]!r}")
        # A sample read with no frame at all (--nonblocking reads a running
        # process) is kept as an empty stack: `Profile` leaves it out.
        frames = tuple(parse_frame(f) for f in stack.split(";")) if stack else ()
        stacks.append((frames, int(count)))
    return stacks


def attribute(frames: tuple[Frame, ...]) -> tuple[str, Frame | None]:
    """The category of one stack, and its leaf-most library frame if it is
    the library's."""
    loop = False
    for frame in reversed(frames):
        component = frame.component
        if component in STRONG:
            return component, frame if component == "library" else None
        if component == "asyncio":
            if frame.transport:
                return "driver", None
            loop = True
    return ("asyncio" if loop else "other"), None


def in_asyncio(frames: tuple[Frame, ...]) -> bool:
    """Whether the leaf-most component frame is asyncio's own code (not a
    transport): asyncio's work, whichever layer it is charged to."""
    for frame in reversed(frames):
        component = frame.component
        if component in STRONG:
            return False
        if component == "asyncio":
            return not frame.transport
    return False


@dataclass
class Profile:
    """Samples per category, and per leaf-most library function."""

    samples: int = 0
    #: Samples py-spy read with no frame (not counted in ``samples``).
    empty: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    library: Counter[str] = field(default_factory=Counter)
    #: Samples in asyncio's own code, by the category they are charged to.
    asyncio_code: Counter[str] = field(default_factory=Counter)

    def add(self, stacks: list[tuple[tuple[Frame, ...], int]]) -> None:
        for frames, count in stacks:
            if not frames:
                self.empty += count
                continue
            category, leaf = attribute(frames)
            self.samples += count
            self.categories[category] += count
            if leaf is not None:
                self.library[str(leaf)] += count
            if in_asyncio(frames):
                self.asyncio_code[category] += count

    def us(self, cpu_us: float) -> dict[str, float]:
        """Each category's share of ``cpu_us`` (the CPU per request)."""
        if not self.samples:
            raise BenchError("py-spy recorded no sample of the server")
        return {c: cpu_us * self.categories[c] / self.samples for c in CATEGORIES}

    def asyncio_us(self, cpu_us: float) -> dict[str, float]:
        """asyncio's own code in µs per request, by the category charged."""
        return {c: cpu_us * self.asyncio_code[c] / self.samples for c in ASYNCIO_CHARGED}

    def library_top(self, cpu_us: float, n: int = 15) -> list[tuple[str, float]]:
        return [(f, cpu_us * k / self.samples) for f, k in self.library.most_common(n)]


def find_py_spy(given: str | None) -> str | None:
    """``--py-spy``, else py-spy on PATH, else next to this Python (a venv's bin)."""
    if given is not None:
        return given if os.access(given, os.X_OK) and os.path.isfile(given) else None
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if os.access(beside, os.X_OK) else None


class Recording:
    """``py-spy record`` attached to a running process, until `stop`."""

    def __init__(self, py_spy: str, pid: int, rate: int) -> None:
        self.out = tempfile.NamedTemporaryFile("r", suffix=".raw", delete=False)
        self.log = tempfile.TemporaryFile("w+")
        cmd = [py_spy, "record", "--pid", str(pid), "--rate", str(rate)]
        cmd += ["--format", "raw", "--nonblocking", "-o", self.out.name]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        # Wait until it samples: it says so once attached.
        deadline = time.monotonic() + 15
        while "Sampling process" not in self._said():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                said = self._said()
                self.abort()
                raise BenchError(f"py-spy could not attach to pid {pid}: {said[-500:]}")
            time.sleep(0.05)

    def _said(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
        self.out.close()
        os.unlink(self.out.name)

    def stop(self) -> list[tuple[tuple[Frame, ...], int]]:
        """Stop (Control-C, as py-spy expects) and return its stacks."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.abort()
            raise BenchError("py-spy did not stop within 30 s of SIGINT") from None
        said = self._said()
        try:
            if "Wrote raw" not in said:
                raise BenchError(f"py-spy wrote no profile: {said[-500:]}")
            return read_raw(Path(self.out.name).read_text())
        finally:
            self.abort()
