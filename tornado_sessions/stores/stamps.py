"""Stamps of last use: microseconds that order every use in a process.

The per-user cap ends a user's least recently used sessions, so a store must
tell which of two sessions was used last, also within one second (issue 17,
finding 5: with whole seconds, three quick logins ended the newest one).
`stamp` gives the store clock's time in microseconds, raised if needed to
one more than the last stamp of the same clock in this process: stamps of
one process never tie and never go back, even when the clock does (an NTP
step) or stands still (a test's clock).  Stores sharing a clock (several
stores in one process, all on `time.time`) share the sequence.

Across processes, stamps order uses as their clocks do; two processes that
stamp the very same microsecond tie, and the creation stamp then decides
(see `.SessionRecord.created_seq`).  No server-side counter is used: an
``AUTO_INCREMENT`` steps by node on a Galera cluster, so its order is not
the order of time.

.. versionadded:: 0.3
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["stamp"]

_lock = threading.Lock()
#: The last stamp of each clock: weakly held (a test's clock goes with its
#: stores), or strongly for clocks that cannot be, and for `time.time`, the
#: default, which lives as long as the process anyway (held weakly, each
#: stamp would make a weak reference to it and two calls of the weak map).
_weak: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_strong: dict[Any, int] = {time.time: 0}


def stamp(clock: Callable[[], float]) -> int:
    """Return the time of ``clock`` in microseconds, greater than any stamp
    of the same clock returned before in this process."""
    now = int(clock() * 1_000_000)
    last: MutableMapping[Any, int]
    if clock in _strong:  # time.time, or a clock that cannot be weakly held
        last = _strong
    else:
        try:
            weakref.ref(clock)
            last = _weak
        except TypeError:
            last = _strong
    with _lock:
        value = max(now, last.get(clock, 0) + 1)
        last[clock] = value
    return value
