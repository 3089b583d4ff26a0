"""Session data sealed at rest: AES-GCM under a key only the cookie holds.

A store keeps a session under `.hash_sid` of its id, never the id itself; the
id reaches the server only inside the encrypted cookie.  `seal` encrypts the
session's JSON text under a key derived from the *raw* id, so that the row
alone (a dump, a backup, a replica, a ``SELECT`` by someone who may read the
table, even together with ``SESSION_SECRET``) does not reveal the data:

* key: BLAKE2b-256 of the id, personalised for this purpose (a different
  function from the SHA-256 that names the row, so the row's key does not
  lead to it); the id is 256 random bits, so no stretching is needed;
* cipher: AES-256-GCM with a random 96-bit nonce per write, the row's key
  (`.hash_sid`) as associated data, so that a row copied onto another
  session's id does not open (neither the key nor the associated data fit);
* text: ``"s1:"`` and the base64 of nonce, ciphertext and tag (about 4/3 of
  the JSON plus 43 characters).

Rows written before sealing (plain JSON, which starts with ``{``) still
open as they are, and are sealed at their next write.

.. versionadded:: 0.3
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["PREFIX", "Unsealable", "is_sealed", "open_data", "seal"]

#: What every sealed text starts with (the version of the format).
PREFIX = "s1:"
_PERSON = b"ts-data-seal-v1"  # BLAKE2b personalisation: at most 16 bytes
_NONCE = 12


class Unsealable(ValueError):
    """A sealed text that does not open under this id: copied from another
    session's row, altered, or cut short.

    .. versionadded:: 0.3
    """


#: Session ids whose cipher is kept (a returning session's requests then
#: skip the key derivation and the cipher's set-up, about half of a seal or an
#: open).  The process holds those ids anyway while their requests run, and
#: the cookie cipher's cache of verified tokens holds them too.
CIPHER_CACHE = 4096


@functools.lru_cache(maxsize=CIPHER_CACHE)
def _cipher(sid: str) -> AESGCM:
    key = hashlib.blake2b(sid.encode("ascii"), digest_size=32, person=_PERSON).digest()
    return AESGCM(key)


def seal(sid: str, row_key: bytes, text: str) -> str:
    """Return ``text`` (a session's JSON) sealed for the session ``sid``,
    whose row is keyed by ``row_key`` (`.hash_sid` of ``sid``).

    .. versionadded:: 0.3
    """
    nonce = os.urandom(_NONCE)
    sealed = _cipher(sid).encrypt(nonce, text.encode("utf-8"), row_key)
    return PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")


def is_sealed(stored: str) -> bool:
    """Whether a stored text is sealed (else it is plain JSON from before 0.3).

    .. versionadded:: 0.3
    """
    return stored.startswith(PREFIX)


def open_data(sid: str, row_key: bytes, stored: str) -> str:
    """Return the JSON text of a stored text: opened if it is sealed, as it
    is if it is plain JSON written before sealing.

    :raises Unsealable: the text is sealed, but not for this session's id
        and row (or it was altered).

    .. versionadded:: 0.3
    """
    if not stored.startswith(PREFIX):
        return stored
    try:
        raw = binascii.a2b_base64(stored[len(PREFIX) :], strict_mode=True)
        if len(raw) < _NONCE + 16:
            raise Unsealable("the sealed session data is cut short")
        text = _cipher(sid).decrypt(raw[:_NONCE], raw[_NONCE:], row_key)
        return text.decode("utf-8")
    except (InvalidTag, ValueError) as exc:  # ValueError: not base64, ASCII or UTF-8
        raise Unsealable("the session data was not sealed for this session") from exc
