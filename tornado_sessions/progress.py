"""A one-line text progress bar, redrawn in place on a terminal: what
``tornado-sessions clear-expired`` shows while it deletes.

.. versionadded:: 0.3
   (Moved out of ``cli.py``.)
"""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """A one-line text progress bar redrawn in place on a terminal stream.

    :param total: the expected count (0 or less: unknown, only the count is shown).
    :param stream: where to draw (standard error).
    :param label: what is being counted.
    :param interval: the least time between two redraws, in seconds.
    """

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, label: str, *, interval: float = 0.1) -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.interval = interval
        self._last = 0.0
        self._drawn = False
        self._started = time.monotonic()

    def update(self, done: int, *, force: bool = False) -> None:
        """Redraw the bar for ``done`` items (at most every ``interval`` seconds)."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._started
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        if self.total > 0:
            fraction = min(1.0, done / self.total)
            filled = int(round(fraction * self.WIDTH))
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"[{bar}] {fraction:4.0%} {done:,}/{self.total:,} {self.label} {rate}"
        else:
            line = f"{done:,} {self.label} {rate}"
        self.stream.write("\r" + line.rstrip() + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self, done: int) -> None:
        """Draw the final state and end the line."""
        self.update(done, force=True)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
