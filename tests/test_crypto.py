"""CookieCipher: Fernet tokens keyed with HKDF, ttl, rotation, hostile input."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet

from tests.conftest import SECRET, FakeClock
from tornado_sessions.crypto import CookieCipher, derive_key

A = "a" * 40
B = "b" * 40


def test_round_trip_and_no_padding() -> None:
    clock = FakeClock()
    cipher = CookieCipher([A], clock=clock)
    for n in range(40):  # payload sizes that give every padding length
        token = cipher.encrypt({"i": "x" * n})
        assert "=" not in token
        assert cipher.decrypt(token, 60) == ({"i": "x" * n}, False)
        # Only the issued form is read: the padded spelling is another form.
        padded = token + "=" * (-len(token) % 4)
        if padded != token:
            assert cipher.decrypt(padded, 60) is None


def test_key_is_hkdf_of_the_secret_and_stable() -> None:
    key = derive_key(A)
    assert key == derive_key(A) != derive_key(B)
    assert len(base64.urlsafe_b64decode(key)) == 32
    # not the secret itself, nor a plain hash of it
    assert A.encode() not in base64.urlsafe_b64decode(key)


def test_ttl_uses_the_injected_clock() -> None:
    clock = FakeClock()
    cipher = CookieCipher([A], clock=clock)
    token = cipher.encrypt({"i": 1})
    clock.advance(60)
    assert cipher.decrypt(token, 60) is not None
    clock.advance(1)
    assert cipher.decrypt(token, 60) is None


def test_future_tokens_are_refused() -> None:
    clock = FakeClock()
    token = CookieCipher([A], clock=FakeClock(clock.now + 3600)).encrypt({"i": 1})
    assert CookieCipher([A], clock=clock).decrypt(token, 7200) is None


def test_rotation() -> None:
    clock = FakeClock()
    old = CookieCipher([B], clock=clock).encrypt({"i": 1})
    both = CookieCipher([A, B], clock=clock)
    assert both.decrypt(old, 60) == ({"i": 1}, True)
    new = both.encrypt({"i": 1})
    assert both.decrypt(new, 60) == ({"i": 1}, False)
    assert CookieCipher([A], clock=clock).decrypt(new, 60) is not None
    assert CookieCipher([A], clock=clock).decrypt(old, 60) is None


def test_hostile_tokens() -> None:
    clock = FakeClock()
    cipher = CookieCipher([A], clock=clock)
    good = cipher.encrypt({"i": 1})
    raw_key_token = Fernet(Fernet.generate_key()).encrypt(b'{"i":1}').decode()
    not_json = Fernet(derive_key(A)).encrypt_at_time(b"\x80binary", int(clock())).decode()
    not_object = Fernet(derive_key(A)).encrypt_at_time(b"[1]", int(clock())).decode()
    for token in [
        "",
        "garbage",
        good[:-1],
        good[:-20],
        good + "A" * 5000,
        "é" * 10,
        raw_key_token,
        not_json,
        not_object,
        good.replace("g", "h", 1),
    ]:
        assert cipher.decrypt(token, 60) is None, token[:20]


def test_verified_tokens_are_cached_but_still_age() -> None:
    clock = FakeClock()
    old = CookieCipher([B], clock=clock).encrypt({"i": 1})
    both = CookieCipher([A, B], clock=clock)
    for _ in range(3):  # the cached answer keeps its rotation flag
        assert both.decrypt(old, 60) == ({"i": 1}, True)
    assert old in both._verified
    clock.advance(61)
    assert both.decrypt(old, 60) is None  # the cache does not extend a token's life
    clock.advance(-3600)
    assert both.decrypt(old, 7200) is None  # nor accept one from the future
    # a cipher with other keys does not share the cache
    assert CookieCipher([A], clock=FakeClock()).decrypt(old, 60) is None


def test_a_payload_whose_session_id_ends_with_a_newline_is_refused() -> None:
    from tornado_sessions import MemoryStore, SessionConfig
    from tornado_sessions.manager import SessionManager, new_sid

    config = SessionConfig(secret=SECRET)
    manager = SessionManager(MemoryStore(), config)
    good = {"v": 1, "i": new_sid(), "c": 1, "e": 2**40}
    assert manager.decode_cookie(manager.cipher.encrypt(good)) is not None
    for sid in (good["i"] + "\n", good["i"][:-1] + "\n", good["i"] + " "):
        assert manager.decode_cookie(manager.cipher.encrypt({**good, "i": sid})) is None


def test_a_checked_payload_is_checked_once_per_token_and_still_ages() -> None:
    clock = FakeClock()
    cipher = CookieCipher([A], clock=clock)
    token = cipher.encrypt({"i": "abc"})
    seen: list[tuple[dict[str, object], bool]] = []

    def check(payload: dict[str, object], rotated: bool) -> dict[str, object] | None:
        seen.append((payload, rotated))
        return {**payload, "ok": True} if payload.get("i") == "abc" else None

    for value in (token, token, f'"{token}"'):  # the quoted form is the same token
        assert cipher.decrypt_checked(value, 60, check) == ({"i": "abc", "ok": True},)
    assert seen == [({"i": "abc"}, False)]  # parsed and checked once
    assert cipher.decrypt(token, 60) == ({"i": "abc"}, False)  # decrypt is unchanged
    clock.advance(61)
    assert cipher.decrypt_checked(token, 60, check) is None  # the cache never extends a life
    clock.advance(-61)
    refused = cipher.encrypt({"i": "other"})
    assert cipher.decrypt_checked(refused, 60, check) == (None,)  # ours, but refused
    assert cipher.decrypt_checked(refused, 60, check) == (None,)
    assert len(seen) == 2
    # Not ours: a token whose last two characters differ (a fixed "AA" would
    # leave the token unchanged when it already ends so, one time in ~250).
    altered = token[:-2] + ("BB" if token.endswith("AA") else "AA")
    assert cipher.decrypt_checked(altered, 60, check) is None


def test_decode_cookie_parses_a_returning_visitors_payload_once() -> None:
    from tornado_sessions import MemoryStore, SessionConfig
    from tornado_sessions.manager import SessionManager, new_sid

    clock = FakeClock()
    manager = SessionManager(MemoryStore(), SessionConfig(secret=SECRET, clock=clock))
    now = int(clock())
    cookie = manager.cipher.encrypt({"v": 1, "i": new_sid(), "c": now, "e": now + 100})
    first = manager.decode_cookie(cookie)
    assert first is not None and first["rotated"] is False
    first["i"] = "changed by a caller"  # each call gets its own copy
    second = manager.decode_cookie(cookie)
    assert second is not None and second["i"] != "changed by a caller"
    entry = manager.cipher._verified[cookie]
    assert entry[3] is not None and entry[3]["i"] == second["i"]  # remembered, checked
    clock.advance(100)
    assert manager.decode_cookie(cookie) is None  # the session's expiry is checked each time
