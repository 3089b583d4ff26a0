"""How guessable a secret is, by zxcvbn's estimate of its guessing cost.

The rules of `.crypto.secret_problem` catch placeholders, short secrets and
repetition; they let through secrets that read like sentences
(``my-super-secret-session-key-for-production``) or keyboard rows
(``qwertyuiopasdfghjklzxcvbnm1234567890``), which an attacker who holds one
cookie can try offline, since HKDF does not stretch the secret.  Here the
whole secret goes through `zxcvbn <https://github.com/dwolfhub/zxcvbn-python>`_,
the estimator Dropbox published (dictionaries of common passwords, English
words, names and film titles; keyboard walks, sequences, repeats, dates,
l33t substitutions), which answers how many guesses a smart attacker needs.

zxcvbn counts a random character as 10 guesses, so a random secret of ``n``
characters is estimated at about ``10**n`` guesses (less for hex, whose
characters it undervalues: 32 random hex digits score 10**27 to 10**32).
A secret is refused when the estimate is under both ``10**(MIN_RATIO * n)``
and ``10**(n - MAX_SHORTFALL)``: when words, names, walks and patterns make
up so much of it that it costs less than three quarters of the powers of
ten a random secret of its length would, and more than ten of them.

.. versionadded:: 0.3
"""

from __future__ import annotations

import functools
import math
from typing import Any

from zxcvbn import matching, scoring

__all__ = ["MAX_SHORTFALL", "MIN_RATIO", "PIECE", "guessable_problem", "guesses_log10"]

#: The least ``log10(guesses) / length`` a secret may have (unless it
#: falls short by at most `MAX_SHORTFALL`).  The sentences of issue 17 score
#: 0.33 to 0.70; generated kinds score 0.9 and more, 32 hex digits the
#: lowest (0.807, a shortfall of 6.2, at worst in 30,000 samples).
MIN_RATIO = 0.75
#: A secret is refused only if it also falls short of a random secret of
#: its length by more than this many powers of ten, so that a label before
#: a long random part (``myapp-production-<random>``) does not count against it.
MAX_SHORTFALL = 10
#: zxcvbn's own limit on one password (its cost grows with the square of
#: the length): a longer secret is judged in consecutive pieces of this many
#: characters, whose estimates add up.
PIECE = 72
#: Only this much of a (very long) secret is examined.
_SAMPLE = 1024


@functools.cache
def _dictionaries() -> dict[str, dict[str, int]]:
    """zxcvbn's ranked word lists merged into one, each word keeping its
    best rank: the same estimates as ``zxcvbn()`` (it keeps the cheapest
    match anyway), for a sixth of the dictionary lookups."""
    merged: dict[str, int] = {}
    for ranked in matching.RANKED_DICTIONARIES.values():
        for word, rank in ranked.items():
            if rank < merged.get(word, rank + 1):
                merged[word] = rank
    return {"words": merged}


def _log10_guesses(piece: str, enough: float | None = None) -> float:
    """zxcvbn's estimate for ``piece`` (at most `PIECE` characters), as a
    power of ten; or, if ``enough`` is given and a lower bound of the
    estimate reaches it, that bound (the full scoring is the costly part)."""
    # The two steps of zxcvbn.zxcvbn(): find the patterns, then the cheapest
    # way to cover the piece with them.
    matches: list[dict[str, Any]] = matching.omnimatch(piece, _dictionaries())
    if enough is not None:
        bound = _lower_bound(piece, matches)
        if bound >= enough:
            return bound
    found: Any = scoring.most_guessable_match_sequence(piece, matches)
    return float(found["guesses_log10"])


def _lower_bound(piece: str, matches: list[dict[str, Any]]) -> float:
    """A lower bound of zxcvbn's ``guesses_log10`` for ``piece``: the
    cheapest cover by its matches (each priced by zxcvbn) and by random
    characters at 10 guesses each, without the factor zxcvbn adds for the
    number of parts (which is at least 1)."""
    ending: dict[int, list[tuple[int, float]]] = {}
    for match in matches:
        cost = math.log10(float(scoring.estimate_guesses(match, piece)))
        ending.setdefault(match["j"], []).append((match["i"], cost))
    best = [0.0] * (len(piece) + 1)  # best[k]: the cheapest cover of piece[:k]
    for k in range(1, len(piece) + 1):
        best[k] = best[k - 1] + 1.0
        for i, cost in ending.get(k - 1, ()):
            best[k] = min(best[k], best[i] + cost)
    return best[-1]


def guesses_log10(secret: str, enough: float | None = None) -> float:
    """zxcvbn's estimate of the guesses ``secret`` costs, as a power of ten
    (the first 1,024 characters, in pieces of `PIECE`).

    :param enough: stop short once the estimate surely reaches this: the
        result is then a lower bound that does.
    """
    sample = secret[:_SAMPLE]
    pieces = [sample[i : i + PIECE] for i in range(0, len(sample), PIECE)]
    if enough is None or len(pieces) > 1:
        return sum(_log10_guesses(piece) for piece in pieces)
    return _log10_guesses(pieces[0], enough)


def guessable_problem(secret: str) -> str | None:
    """Return why ``secret`` is too guessable (a phrase that never contains
    the secret), or None.  Used by `.crypto.secret_problem`."""
    length = min(len(secret), _SAMPLE)
    if not length:
        return "is empty"
    required = min(MIN_RATIO * length, length - MAX_SHORTFALL)
    estimate = guesses_log10(secret, enough=required)
    if estimate >= required:
        return None
    return (
        f"is guessable: it reads like words, names or keyboard patterns (zxcvbn estimates "
        f"about 10^{estimate:.0f} guesses for its {length} characters, where a random secret "
        f"of that length costs about 10^{length}; at least 10^{MIN_RATIO * length:.0f} "
        "are required)"
    )
