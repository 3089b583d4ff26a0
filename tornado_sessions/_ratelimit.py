"""Rate-limited logging: one line per kind of event per interval, then a count.

A flood of hostile cookies must not fill the logs (nor slow the server down
writing them).  `RateLimitedLog` lets the first event of each kind through at
once, counts the others of that kind for the rest of the interval, and adds
that count to the next line of the kind it logs, as the Linux kernel's
``printk_ratelimit`` does ("N callbacks suppressed").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]

#: Seconds between two lines of the same kind.
DEFAULT_INTERVAL = 60.0


class RateLimitedLog:
    """Logs at most one WARNING per kind per ``interval`` seconds.

    :param logger: where the lines go.
    :param interval: the least time between two lines of one kind.
    :param clock: returns the current time in seconds (tests inject theirs).

    Kinds are short fixed strings chosen by the caller ("token",
    "duplicated"...), so the state stays as small as the set of kinds.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        # kind -> [when its last line was logged, events not logged since]
        self._kinds: dict[str, list[float]] = {}

    def warning(self, kind: str, message: str, *args: object, level: int = logging.WARNING) -> bool:
        """Log ``message % args`` at WARNING unless a line of ``kind`` was
        logged less than ``interval`` seconds ago; return whether it was logged.

        A logged line ends with the number of events of its kind that were
        held back since the previous line, if any.
        """
        now = self._clock()
        state = self._kinds.get(kind)
        # A clock set back starts a new interval rather than a long silence.
        if state is not None and 0 <= now - state[0] < self._interval:
            state[1] += 1
            return False
        if state is not None and state[1]:
            message += " (%d more like it were not logged in the %d s before this one)"
            args = (*args, int(state[1]), max(0, int(now - state[0])))
        self._kinds[kind] = [now, 0]
        self._logger.log(level, message, *args)
        return True

    def info(self, kind: str, message: str, *args: object) -> bool:
        """The same at INFO (events that are not hostile, only repetitive)."""
        return self.warning(kind, message, *args, level=logging.INFO)
