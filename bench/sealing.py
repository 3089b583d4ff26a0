"""Micro-benchmark of sealing (`tornado_sessions.sealing`): µs per seal and
per open, by size of the session's JSON, on this machine.

    .venv/bin/python bench/sealing.py            # a table
    .venv/bin/python bench/sealing.py --json     # one JSON object
    .venv/bin/python bench/sealing.py --quick    # fewer rounds (the tests run it)

A write seals once and a read opens once (a read of the very text this
process last sealed or opened for the session is a lookup: "same text
again"); the request's whole cost is
measured by ``make bench`` (read and write ratios against express).  Each
figure here is the best of ``--rounds`` rounds of ``--number`` calls, so it
is the cost without the noise of other work.
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tornado_sessions.sealing import open_data, seal  # noqa: E402
from tornado_sessions.stores.base import hash_sid  # noqa: E402

#: Sizes of the session's JSON, in bytes: a login, a cart, a large session.
SIZES = (64, 512, 4096, 65536)


def measure(size: int, *, number: int, rounds: int) -> dict[str, float]:
    """µs per `seal` and per `open_data` of a ``size``-byte JSON text."""
    sid = secrets.token_urlsafe(32)
    key = hash_sid(sid)
    text = json.dumps({"v": "x" * max(0, size - 8)})[:size]
    sealed = seal(sid, key, text)
    assert open_data(sid, key, sealed) == text
    # Two texts in turn: each open decrypts (the process keeps only the last
    # text of each session, sealing.OPENED_CACHE); the same text again is a
    # read of a session whose last request this process served.
    texts = itertools.cycle([seal(sid, key, text), seal(sid, key, text)])
    timer_seal = timeit.Timer(lambda: seal(sid, key, text))
    timer_open = timeit.Timer(lambda: open_data(sid, key, next(texts)))
    open_data(sid, key, sealed)
    timer_again = timeit.Timer(lambda: open_data(sid, key, sealed))
    return {
        "size": size,
        "sealed_size": len(sealed),
        "seal_us": min(timer_seal.repeat(rounds, number)) / number * 1e6,
        "open_us": min(timer_open.repeat(rounds, number)) / number * 1e6,
        "open_again_us": min(timer_again.repeat(rounds, number)) / number * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    parser.add_argument("--number", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the best counts)")
    args = parser.parse_args(argv)
    number, rounds = (50, 1) if args.quick else (args.number, args.rounds)
    results = [measure(size, number=number, rounds=rounds) for size in SIZES]
    if args.json:
        print(json.dumps({"sealing": results}))
        return 0
    print(
        f"{'JSON bytes':>10}  {'stored chars':>12}  {'seal µs':>8}  {'open µs':>8}"
        f"  {'same text again µs':>18}"
    )
    for r in results:
        print(
            f"{r['size']:>10}  {r['sealed_size']:>12}  {r['seal_us']:>8.1f}  {r['open_us']:>8.1f}"
            f"  {r['open_again_us']:>18.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
