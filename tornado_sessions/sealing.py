"""Session data sealed at rest: AES-GCM under a key only the cookie holds.

A store keeps a session under `.hash_sid` of its id, never the id itself; the
id reaches the server only inside the encrypted cookie.  `seal` encrypts the
session's JSON text under a key derived from the *raw* id, so that the row
alone (a dump, a backup, a replica, a ``SELECT`` by someone who may read the
table, even together with ``SESSION_SECRET``) does not reveal the data:

* key: BLAKE2b-256 of the id, personalised for this purpose (a different
  function from the SHA-256 that names the row, so the row's key does not
  lead to it); the id is 256 random bits, so no stretching is needed;
* cipher: AES-256-GCM with a random 96-bit nonce per write (drawn from
  the OS 64 at a time, each used once), the row's key
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
import collections
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


#: Sessions whose last sealed text is kept with its JSON (the one this
#: process last sealed or opened for each), so that reading the same sealed
#: text again needs no decryption: the common case of a session whose
#: previous request this process served.  Only JSON texts of up to
#: `OPENED_MAX_TEXT` characters are kept: with its sealed form an entry
#: holds at most about 1.2 KB of ASCII JSON (5 MB for all 4,096; sessions
#: of 100 characters, 1.3 MB with Python's own overhead).  A hit is not
#: moved to the back of the queue (that would cost every read): a session
#: read again and again is opened once more after 4,096 other sessions were
#: sealed or opened.
#:
#: .. versionadded:: 0.3
OPENED_CACHE = 4096
#: The longest JSON text `OPENED_CACHE` keeps.
OPENED_MAX_TEXT = 512

# sid -> (row key, sealed text, JSON text); a hit needs the very same
# sealed text and row: what this process verified or made before.
_opened: collections.OrderedDict[str, tuple[bytes, str, str]] = collections.OrderedDict()


def _remember(sid: str, row_key: bytes, sealed: str, text: str) -> None:
    if len(text) > OPENED_MAX_TEXT:
        _opened.pop(sid, None)
        return
    _opened[sid] = (row_key, sealed, text)
    _opened.move_to_end(sid)
    if len(_opened) > OPENED_CACHE:
        _opened.popitem(last=False)


#: Nonces are drawn from the OS this many at a time: one ``getrandom`` call
#: per batch, not per write (the call is about a fifth of a small seal in a
#: loop, more on a busy server).  Each is used once: ``list.pop`` is atomic,
#: so two threads never take the same one, and a forked child starts with
#: none, so that it never uses one of its parent's.
#:
#: .. versionadded:: 0.3
NONCE_BATCH = 64
_nonces: list[bytes] = []


def _draw_nonces() -> bytes:
    raw = os.urandom(_NONCE * NONCE_BATCH)
    _nonces.extend([raw[i : i + _NONCE] for i in range(_NONCE, len(raw), _NONCE)])
    return raw[:_NONCE]


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_nonces.clear)


def seal(sid: str, row_key: bytes, text: str) -> str:
    """Return ``text`` (a session's JSON) sealed for the session ``sid``,
    whose row is keyed by ``row_key`` (`.hash_sid` of ``sid``).

    .. versionadded:: 0.3
    """
    try:
        nonce = _nonces.pop()  # 96 random bits, used once
    except IndexError:
        nonce = _draw_nonces()
    sealed = _cipher(sid).encrypt(nonce, text.encode("utf-8"), row_key)
    stored = PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")
    _remember(sid, row_key, stored, text)
    return stored


def is_sealed(stored: str) -> bool:
    """Whether a stored text is sealed (else it is plain JSON from before 0.3).

    .. versionadded:: 0.3
    """
    return stored.startswith(PREFIX)


def open_data(sid: str, row_key: bytes, stored: str) -> str:
    """Return the JSON text of a stored text: opened if it is sealed, as it
    is if it is plain JSON written before sealing.

    The text this process last sealed or opened for ``sid``, read again in
    the same row, is answered from `OPENED_CACHE`, with no decryption.

    :raises Unsealable: the text is sealed, but not for this session's id
        and row (or it was altered).

    .. versionadded:: 0.3
    """
    if not stored.startswith(PREFIX):
        return stored
    known = _opened.get(sid)
    if known is not None and known[1] == stored and known[0] == row_key:
        return known[2]  # the very text this process sealed or opened before
    try:
        raw = binascii.a2b_base64(stored[len(PREFIX) :], strict_mode=True)
        if len(raw) < _NONCE + 16:
            raise Unsealable("the sealed session data is cut short")
        text = _cipher(sid).decrypt(raw[:_NONCE], raw[_NONCE:], row_key).decode("utf-8")
    except (InvalidTag, ValueError) as exc:  # ValueError: not base64, ASCII or UTF-8
        raise Unsealable("the session data was not sealed for this session") from exc
    _remember(sid, row_key, stored, text)
    return text
