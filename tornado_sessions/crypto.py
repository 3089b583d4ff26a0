"""The cookie cipher: Fernet tokens keyed from ``SESSION_SECRET``.

Each secret is turned into a Fernet key once, at startup, with HKDF-SHA256
(a fixed salt and a purpose label), so the same secret always gives the same
key in every process, and a key made for session cookies cannot be confused
with one made for anything else.  Tokens are encrypted with the first
(current) secret and decrypted with any of them (key rotation); a token that
only an older secret opens is reported so that the cookie can be re-issued.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CookieCipher", "derive_key"]

_SALT = b"tornado_sessions"
_INFO = b"tornado_sessions/session-cookie/v1"
#: Fernet tokens are verified against the clock; one further in the future
#: than this is refused by Fernet itself.
MAX_TOKEN_LENGTH = 4096
#: cryptography's Fernet accepts tokens stamped this far in the future.
_MAX_CLOCK_SKEW = 60
#: Verified tokens remembered per cipher (a few MB at most).
_CACHE_SIZE = 10_000


def derive_key(secret: str) -> bytes:
    """Return the url-safe base64 Fernet key derived from ``secret``.

    HKDF-SHA256 with a fixed salt and the purpose label
    ``tornado_sessions/session-cookie/v1``.  The secret must already have
    high entropy (`.SessionConfig` requires 32 characters or more): HKDF
    does not stretch a weak password.
    """
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


class CookieCipher:
    """Encrypts and authenticates the session cookie's payload.

    :param secrets: the current secret first, then older ones still
        accepted for reading.
    :param clock: returns the current time in seconds.

    .. versionadded:: 0.1
    """

    def __init__(self, secrets: Sequence[str], *, clock: Callable[[], float] = time.time) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        self._fernets = [Fernet(derive_key(s)) for s in secrets]
        self._multi = MultiFernet(self._fernets)
        self._clock = clock
        # token -> (payload text, issued at, rotated) for tokens whose HMAC
        # has been verified: a returning visitor's cookie is checked once,
        # then only its age.  Only tokens made with our keys get in, so the
        # cache cannot be filled with forgeries; it is bounded all the same.
        self._verified: dict[str, tuple[bytes, int, bool]] = {}

    def encrypt(self, payload: dict[str, Any]) -> str:
        """Return the token for ``payload`` (a JSON object), without the
        base64 ``=`` padding so that the cookie value never needs quoting."""
        text = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        token = self._multi.encrypt_at_time(text, int(self._clock()))
        return token.decode("ascii").rstrip("=")

    def decrypt(self, token: str, ttl: int) -> tuple[dict[str, Any], bool] | None:
        """Return ``(payload, rotated)`` or None if ``token`` is not ours.

        ``rotated`` is True when only an older secret opened the token.  The
        token must be younger than ``ttl`` seconds and not from the future.
        None covers every failure (garbage, truncation, tampering, an unknown
        key, expiry); the caller logs it without the token's value.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        now = int(self._clock())
        cached = self._verified.get(token)
        if cached is not None:
            text, issued, rotated = cached
            # The same age checks Fernet makes (ttl, and at most 60 s ahead).
            if issued + ttl < now or issued > now + _MAX_CLOCK_SKEW:
                return None
        else:
            raw = token.strip().encode("ascii")
            raw = raw.rstrip(b"=") + b"=" * (-len(raw.rstrip(b"=")) % 4)
            for index, fernet in enumerate(self._fernets):
                try:
                    text = fernet.decrypt_at_time(raw, ttl, now)
                    issued = fernet.extract_timestamp(raw)
                except (InvalidToken, binascii.Error, ValueError, TypeError):
                    continue
                rotated = index > 0
                if len(self._verified) >= _CACHE_SIZE:
                    self._verified.clear()
                self._verified[token] = (text, issued, rotated)
                break
            else:
                return None
        try:
            payload = json.loads(text)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        return payload, rotated
