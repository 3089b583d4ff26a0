"""The cookie cipher: Fernet tokens keyed from ``SESSION_SECRET``.

Each secret is turned into a Fernet key once, at startup, with HKDF-SHA256
(a fixed salt and a purpose label), so the same secret always gives the same
key in every process, and a key made for session cookies cannot be confused
with one made for anything else.  Tokens are encrypted with the first
(current) secret and decrypted with any of them (key rotation); a token that
only an older secret opens is reported so that the cookie can be re-issued.

A cookie value is read only in the exact form `CookieCipher.encrypt` issues
(`canonical_token`), and a secret is used only if it looks random
(`secret_problem`): HKDF makes a key from a random secret, it does not
strengthen a guessable one.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .secrets_check import guessable_problem

__all__ = ["CookieCipher", "canonical_token", "derive_key", "secret_problem"]

_SALT = b"tornado_sessions"
_INFO = b"tornado_sessions/session-cookie/v1"
#: The longest cookie value read (RFC 6265bis caps a cookie at 4096 bytes).
MAX_TOKEN_LENGTH = 4096
#: cryptography's Fernet accepts tokens stamped this far in the future.
_MAX_CLOCK_SKEW = 60
#: Verified tokens remembered per cipher, least recently used evicted first.
CACHE_SIZE = 10_000
#: Longer tokens are verified every time, never remembered (a session cookie
#: is about 230 characters), so a full cache holds about 6 MB of session
#: cookies, and never more than about 11 MB.
CACHE_TOKEN_LIMIT = 512

# -- the exact token form ------------------------------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# A Fernet token starts with the version byte 0x80, which encodes as "g".
_FORM = re.compile(r'\A(?:"(g[A-Za-z0-9_-]+)"|(g[A-Za-z0-9_-]+))\Z')


def _token_lengths(limit: int) -> dict[int, frozenset[str] | None]:
    """Map each possible unpadded token length to the characters that may
    end it (None: any).

    A token is 57 bytes (version, timestamp, IV, HMAC) plus a ciphertext of
    one or more 16-byte blocks.  When the byte count is not a multiple of 3,
    the last character carries unused low bits, which must be zero: other
    final characters decode to the same bytes and would be a second form of
    the same token.
    """
    lengths: dict[int, frozenset[str] | None] = {}
    blocks = 1
    while (length := (4 * (57 + 16 * blocks) + 2) // 3) <= limit:
        rest = (57 + 16 * blocks) % 3
        lengths[length] = None if rest == 0 else frozenset(_ALPHABET[:: 16 if rest == 1 else 4])
        blocks += 1
    return lengths


_LENGTHS = _token_lengths(MAX_TOKEN_LENGTH)

_T = TypeVar("_T")
#: A cache entry's checked payload, before a caller's check has run.
_UNCHECKED: Any = object()


def canonical_token(value: str) -> str | None:
    """Return the token in a cookie value, or None unless the value has the
    exact form `CookieCipher.encrypt` issues.

    That form is a Fernet token in url-safe base64 without ``=`` padding:
    only ``A-Z a-z 0-9 - _``, starting with ``g``, of a length a Fernet
    token can have (at most `MAX_TOKEN_LENGTH`), with the unused bits of
    its last character zero.  One pair of surrounding double quotes, which
    RFC 6265 allows around a cookie value, is accepted and removed.
    Anything else (padding, spaces, other characters, a lone quote) is
    refused, so that each token has a single accepted form.

    .. versionadded:: 0.2
    """
    if len(value) > MAX_TOKEN_LENGTH + 2:
        return None
    match = _FORM.match(value)
    if match is None:
        return None
    token = match.group(1) or match.group(2)
    if len(token) not in _LENGTHS:
        return None
    last = _LENGTHS[len(token)]
    if last is not None and token[-1] not in last:
        return None
    return token


# -- keys ----------------------------------------------------------------------


def derive_key(secret: str) -> bytes:
    """Return the url-safe base64 Fernet key derived from ``secret``.

    HKDF-SHA256 with a fixed salt and the purpose label
    ``tornado_sessions/session-cookie/v1``.  The secret must already be
    random (`.SessionConfig` checks it with `secret_problem`): HKDF does not
    stretch a weak password.
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


class CookieCipher:
    """Encrypts and authenticates the session cookie's payload.

    :param secrets: the current secret first, then older ones still
        accepted for reading.
    :param clock: returns the current time in seconds.
    :param cache_size: how many verified tokens to remember (the least
        recently used one is forgotten first).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Only the exact token form is read (`canonical_token`); the cache
       evicts its least recently used entry; ``cache_size``.
    .. versionchanged:: 0.3
       `decrypt_checked` remembers a check of the payload with the token.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        self._fernets = [Fernet(derive_key(s)) for s in secrets]
        self._multi = MultiFernet(self._fernets)
        self._clock = clock
        self._cache_size = cache_size
        # token -> [payload text, issued at, rotated, checked payload] for
        # tokens whose HMAC has been verified: a returning visitor's cookie
        # is checked once, then only its age.  Only canonical tokens made
        # with our keys get in, so forgeries cannot fill it, and it is
        # bounded all the same.
        self._verified: OrderedDict[str, list[Any]] = OrderedDict()

    def encrypt(self, payload: dict[str, Any]) -> str:
        """Return the token for ``payload`` (a JSON object), without the
        base64 ``=`` padding so that the cookie value never needs quoting."""
        text = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        token = self._multi.encrypt_at_time(text, int(self._clock()))
        return token.decode("ascii").rstrip("=")

    def decrypt(self, token: str, ttl: int) -> tuple[dict[str, Any], bool] | None:
        """Return ``(payload, rotated)`` or None if ``token`` is not ours.

        ``token`` is a cookie value, which must have the exact form
        `canonical_token` describes.  ``rotated`` is True when only an older
        secret opened the token.  The token must be younger than ``ttl``
        seconds and not from the future.  None covers every failure (another
        form, garbage, truncation, tampering, an unknown key, expiry); the
        caller logs it without the token's value.
        """
        entry = self._open(token, ttl)
        if entry is None:
            return None
        payload = _parse(entry[0])
        return None if payload is None else (payload, entry[2])

    def decrypt_checked(
        self, token: str, ttl: int, check: Callable[[dict[str, Any], bool], _T | None]
    ) -> tuple[_T | None] | None:
        """As `decrypt`, but return ``(check(payload, rotated),)``, the
        answer of ``check`` remembered with the token, so that a returning
        visitor's payload is parsed and checked once, not on every request
        (``check`` must depend on the payload alone).  None if the token is
        not ours; ``(None,)`` if ``check`` refused its payload.

        .. versionadded:: 0.3
        """
        entry = self._open(token, ttl)
        if entry is None:
            return None
        checked = entry[3]
        if checked is _UNCHECKED:
            payload = _parse(entry[0])
            checked = None if payload is None else check(payload, entry[2])
            entry[3] = checked
        return (checked,)

    def _open(self, token: str, ttl: int) -> list[Any] | None:
        """The cache entry of a verified ``token`` of the right age (a new
        one, not cached, for a token past `CACHE_TOKEN_LIMIT`), or None."""
        # Only canonical tokens are cached: a hit needs no check of the form.
        cached = self._verified.get(token) if isinstance(token, str) else None
        found: str | None = token
        if cached is None:
            found = canonical_token(token) if isinstance(token, str) else None
            if found is None:
                return None
            cached = self._verified.get(found)
        now = int(self._clock())
        if cached is not None:
            self._verified.move_to_end(found)  # type: ignore[arg-type]
            issued = cached[1]
            # The same age checks Fernet makes (ttl, and at most 60 s ahead).
            if issued + ttl < now or issued > now + _MAX_CLOCK_SKEW:
                return None
            return cached
        assert found is not None
        raw = (found + "=" * (-len(found) % 4)).encode("ascii")
        for index, fernet in enumerate(self._fernets):
            try:
                text = fernet.decrypt_at_time(raw, ttl, now)
                issued = fernet.extract_timestamp(raw)
            except (InvalidToken, binascii.Error, ValueError, TypeError):
                continue
            entry = [text, issued, index > 0, _UNCHECKED]
            if len(found) <= CACHE_TOKEN_LIMIT and self._cache_size > 0:
                self._verified[found] = entry
                if len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
            return entry
        return None


def _parse(text: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


# -- secrets -------------------------------------------------------------------

#: The fewest characters a secret may have.
MIN_SECRET_LENGTH = 32
_MIN_DISTINCT = 6
#: Only this much of a (very long) secret is examined for repetition.
_SAMPLE = 1024
#: Known placeholders (compared in lower case): the CLI's stand-in of 0.1,
#: and ``.env.example``'s, now and in 0.1.
_PLACEHOLDERS = frozenset(
    {
        "cli-placeholder-never-used-for-cookies-0000",
        "replace-me-with-the-output-of-python-m-tornado_sessions-secret",
        "replace-me",
    }
)
#: Words that mark a placeholder wherever they appear in a secret.
_PLACEHOLDER_WORDS = (
    "placeholder",
    "replace-me",
    "replace_me",
    "replaceme",
    "change-me",
    "change_me",
    "changeme",
    "your-secret",
    "your_secret",
    "yoursecret",
    "not-a-secret",
    "notasecret",
    "insecure",
)


def _alphabet_size(text: str) -> int:
    """How many symbols ``text`` plausibly draws from (by character class)."""
    chars = set(text)
    if chars <= set("0123456789"):
        return 10
    if chars <= set("0123456789abcdef") or chars <= set("0123456789ABCDEF"):
        return 16
    size = 0
    for present, count in (
        (any("a" <= c <= "z" for c in chars), 26),
        (any("A" <= c <= "Z" for c in chars), 26),
        (any("0" <= c <= "9" for c in chars), 10),
        (any(c.isascii() and not c.isalnum() for c in chars), 33),
        (any(not c.isascii() for c in chars), 128),
    ):
        if present:
            size += count
    return size


def _fresh_characters(text: str) -> int:
    """Count the characters of ``text`` that neither repeat an earlier
    stretch of it nor continue a run or a step-by-one sequence.

    Repeats are stretches of at least ``shortest`` characters already seen
    (they may overlap, so a run of one character counts); ``shortest`` is 3,
    or more for texts of few symbols (4 for hex digits), so that a random
    text repeats itself by chance only rarely.  In a step-by-one sequence
    of four characters or more (``abcd``, ``4321``) all but the first count.
    """
    shortest = max(3, math.ceil(16 / math.log2(max(2, _alphabet_size(text)))))
    fresh = 0
    i, n = 0, len(text)
    while i < n:
        if i:
            step = ord(text[i]) - ord(text[i - 1])
            if step in (1, -1):
                k = 0
                while i + k < n and ord(text[i + k]) - ord(text[i + k - 1]) == step:
                    k += 1
                if k >= 3:
                    i += k
                    continue
            length = shortest
            # an earlier occurrence starts before i (overlapping i allowed)
            while i + length <= n and text.find(text[i : i + length], 0, i + length - 1) >= 0:
                length += 1
            if length > shortest:
                i += length - 1
                continue
        fresh += 1
        i += 1
    return fresh


def secret_problem(secret: str) -> str | None:
    """Return why ``secret`` is not fit to key the cookies, or None.

    A secret is refused when it is a known placeholder, shorter than
    `MIN_SECRET_LENGTH` characters, made of fewer than 6 distinct
    characters, mostly repetition: when more than half of its characters
    repeat an earlier stretch of it (``"password" * 4``, ``"abc123" * 6``),
    continue a run of one character (``"a" * 32``, ``"secret-" + "s" * 40``)
    or a sequence (``abcdefgh``, ``12345678``); or guessable by zxcvbn's
    estimate of its guessing cost (`.secrets_check.guessable_problem`:
    ``my-super-secret-session-key-for-production``).  Generated secrets
    (`secrets.token_urlsafe`, `secrets.token_hex`, ``openssl rand -hex 32``,
    ``openssl rand -base64 32``) always pass.  This cannot prove a secret
    random: a phrase made up by a person may pass and still be guessable.
    The returned text never contains the secret.

    .. example: secret-problem

    >>> secret_problem("password" * 4)
    'is mostly repetition (24 of its 32 characters repeat an earlier stretch, ...'
    >>> import secrets
    >>> secret_problem(secrets.token_urlsafe(32)) is None
    True

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       Guessable secrets (zxcvbn) are refused.
    """
    folded = secret.strip().lower()
    if folded in _PLACEHOLDERS or any(word in folded for word in _PLACEHOLDER_WORDS):
        return "is a placeholder, not a secret"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is too short ({len(secret)} characters; at least {MIN_SECRET_LENGTH} are required)"
    distinct = len(set(secret))
    if distinct < _MIN_DISTINCT:
        return (
            f"uses only {distinct} distinct character{'' if distinct == 1 else 's'} "
            f"(at least {_MIN_DISTINCT} are required; a random secret uses many more)"
        )
    sample = secret[:_SAMPLE]
    repeated = len(sample) - _fresh_characters(sample)
    if repeated * 2 > len(sample):
        return (
            f"is mostly repetition ({repeated} of its {len(sample)} characters repeat an "
            "earlier stretch, or continue a run of one character or a sequence): it does "
            "not look random"
        )
    return guessable_problem(secret)
