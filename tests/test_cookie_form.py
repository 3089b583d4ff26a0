"""One exact cookie form: every other spelling of a valid token is a hostile cookie.

Fernet's base64 decoding is lenient: it skips characters outside the
alphabet, accepts extra padding and ignores the unused bits of the last
character, so one token had many spellings that all authenticated, each a
new entry in the verified-token cache.  Only the form `CookieCipher.encrypt`
issues is read now, and the cache keeps only those, least recently used out.
"""

from __future__ import annotations

import base64
import secrets

import pytest

from tests.conftest import SECRET, Browser, FakeClock, RecordingStore, body
from tornado_sessions.crypto import (
    CACHE_SIZE,
    CACHE_TOKEN_LIMIT,
    MAX_TOKEN_LENGTH,
    CookieCipher,
    canonical_token,
)

NAME = "__Host-session"
OTHER = "another-key-" + "Qm9xQ2FyZ29CYXlHcmVlbkRvbmtleUVsbQ"

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def decoded(token: str) -> bytes:
    """The bytes a lenient decoder (Python's, as Fernet uses it) reads."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def same_bytes_spellings(token: str) -> list[str]:
    """Other last characters that decode to the same bytes (unused low bits set)."""
    return [
        token[:-1] + c
        for c in ALPHABET
        if c != token[-1] and len(token) % 4 and decoded(token[:-1] + c) == decoded(token)
    ]


def altered_forms(token: str) -> dict[str, str]:
    """Spellings of ``token`` that a lenient reader accepts and we must not."""
    forms: dict[str, str] = {}
    middle = len(token) // 2
    for char in "!.~ =\"'+/%*$\\,:@\t":
        for where, at in (
            ("very start", 0),
            ("start", 1),
            ("middle", middle),
            ("end", len(token)),
        ):
            forms[f"{char!r} at the {where}"] = token[:at] + char + token[at:]
    for pad in ("=", "==", "==="):
        forms[f"padding {pad}"] = token + pad
    forms["padding to a multiple of 4"] = token + "=" * (-len(token) % 4 or 4)
    forms["opening quote only"] = '"' + token
    forms["closing quote only"] = token + '"'
    forms["two pairs of quotes"] = '""' + token + '""'
    forms["single quotes"] = "'" + token + "'"
    forms["quotes and padding"] = '"' + token + '=="'
    forms["space inside the quotes"] = '" ' + token + '"'
    for n, spelling in enumerate(same_bytes_spellings(token)):
        forms[f"unused bits set #{n}"] = spelling
    return forms


def tokens_of_every_length_class(cipher: CookieCipher) -> list[str]:
    """Genuine tokens whose length is 0, 2 and 3 modulo 4 (all Fernet can make)."""
    found: dict[int, str] = {}
    for n in range(60):
        token = cipher.encrypt({"i": "x" * n})
        found.setdefault(len(token) % 4, token)
    assert sorted(found) == [0, 2, 3]
    return list(found.values())


# -- the form ------------------------------------------------------------------


def test_issued_tokens_and_one_pair_of_quotes_are_the_accepted_forms() -> None:
    cipher = CookieCipher([SECRET], clock=FakeClock())
    for token in tokens_of_every_length_class(cipher):
        assert canonical_token(token) == token
        assert canonical_token(f'"{token}"') == token
        assert cipher.decrypt(token, 60) is not None
        assert cipher.decrypt(f'"{token}"', 60) == cipher.decrypt(token, 60)


def test_every_altered_form_of_a_valid_token_is_refused() -> None:
    cipher = CookieCipher([SECRET], clock=FakeClock())
    genuine = tokens_of_every_length_class(cipher)
    for token in genuine:
        assert cipher.decrypt(token, 60) is not None
        forms = altered_forms(token)
        # The trailing-bits spellings exist for the tokens whose length is not
        # a multiple of 4 (3 or 15 of them); they decode to the very same bytes.
        assert any(label.startswith("unused bits") for label in forms) == bool(len(token) % 4)
        for label, value in forms.items():
            assert canonical_token(value) is None, label
            assert cipher.decrypt(value, 60) is None, label
    assert set(cipher._verified) == set(genuine)  # only the issued spellings were cached


def test_lengths_no_fernet_token_can_have_are_refused_before_decrypting() -> None:
    cipher = CookieCipher([SECRET], clock=FakeClock())
    token = cipher.encrypt({"i": "abc"})
    for value in (
        token[:-1],
        token + "A",
        token[:-4],
        "g" * 97,
        "g" * 99,
        "g" + "A" * (MAX_TOKEN_LENGTH + 10),
        "",
        '""',
        '"',
        "hAAAAA" + token[6:],  # not the Fernet version byte
    ):
        assert canonical_token(value) is None, value[:20]
        assert cipher.decrypt(value, 60) is None, value[:20]


@pytest.mark.gen_test
async def test_altered_cookies_give_a_fresh_session_and_no_store_call(
    browser: Browser, store: RecordingStore
) -> None:
    await browser.get("/counter")
    token = browser.jar[NAME]
    quoted = await browser.get("/read", headers={"Cookie": f'{NAME}="{token}"'})
    assert body(quoted) == {"data": {"n": 1}, "new": False}  # the RFC 6265 quoted form
    forms = altered_forms(token)
    assert len(forms) > 50
    for label, value in forms.items():
        store.calls.clear()
        # Another cookie follows, so that whitespace at the end of the value
        # is not the end of the header line (which HTTP trims).
        response = await browser.get("/read", headers={"Cookie": f"{NAME}={value}; x=1"})
        assert response.code == 200, label
        assert body(response) == {"data": {}, "new": True}, label
        assert store.calls == [], label
    # The genuine cookie still names the session.
    response = await browser.get("/read", headers={"Cookie": f"{NAME}={token}"})
    assert body(response) == {"data": {"n": 1}, "new": False}


# -- the verified-token cache ------------------------------------------------------


def forged_tokens(genuine: list[str], count: int) -> list[str]:
    """``count`` distinct forgeries: altered spellings of genuine tokens,
    well-formed tokens of another key, and well-formed random strings."""
    other = CookieCipher([OTHER], clock=FakeClock())
    # Four characters outside the alphabet keep the length's padding class,
    # which is what a lenient decoder needs to read the token underneath.
    altered = (
        source[:at] + junk + source[at:]
        for junk in ("!.~!", "~~ .", "....", "!!!!")
        for at in range(1, 90)
        for source in genuine
    )
    out: dict[str, None] = {}
    n = 0
    while len(out) < count:
        if n % 3 == 0:
            out[next(altered)] = None
        elif n % 3 == 1:
            out[other.encrypt({"n": n})] = None
        else:
            size = len(genuine[0])
            out["g" + "".join(secrets.choice(ALPHABET) for _ in range(size - 1))] = None
        n += 1
    return list(out)


def test_forged_tokens_never_enter_the_cache_nor_push_genuine_ones_out() -> None:
    clock = FakeClock()
    cipher = CookieCipher([SECRET], clock=clock)
    genuine = [cipher.encrypt({"i": "u" * n}) for n in range(50)]  # every length class
    for token in genuine:
        assert cipher.decrypt(token, 3600) is not None
    for forgery in forged_tokens(genuine, 20_000):
        assert cipher.decrypt(forgery, 3600) is None
    assert list(cipher._verified) == genuine  # nothing else got in, nothing was evicted
    for token in genuine:
        assert cipher.decrypt(token, 3600) is not None


def test_the_cache_evicts_the_least_recently_used_token_never_all() -> None:
    clock = FakeClock()
    cipher = CookieCipher([SECRET], clock=clock, cache_size=3)
    a, b, c, d = (cipher.encrypt({"i": name}) for name in "abcd")
    for token in (a, b, c):
        cipher.decrypt(token, 60)
    cipher.decrypt(a, 60)  # a is now the most recently used
    cipher.decrypt(d, 60)  # so b goes
    assert list(cipher._verified) == [c, a, d]
    assert cipher.decrypt(b, 60) is not None  # verified again, and cached again
    assert list(cipher._verified) == [a, d, b]


def test_the_default_cache_is_bounded_by_its_size() -> None:
    clock = FakeClock()
    cipher = CookieCipher([SECRET], clock=clock)
    tokens = [cipher.encrypt({"i": n}) for n in range(CACHE_SIZE + 25)]
    for token in tokens:
        cipher.decrypt(token, 60)
    assert len(cipher._verified) == CACHE_SIZE
    assert list(cipher._verified)[0] == tokens[25]  # exactly the 25 oldest went
    assert list(cipher._verified)[-1] == tokens[-1]


def test_long_tokens_are_verified_but_not_remembered() -> None:
    cipher = CookieCipher([SECRET], clock=FakeClock())
    long_token = cipher.encrypt({"i": "x" * 600})
    assert len(long_token) > CACHE_TOKEN_LIMIT
    assert cipher.decrypt(long_token, 60) == ({"i": "x" * 600}, False)
    assert long_token not in cipher._verified
    session_sized = cipher.encrypt({"v": 1, "i": "x" * 43, "c": 10**10, "e": 10**10, "t": 10**8})
    assert len(session_sized) <= CACHE_TOKEN_LIMIT // 2


def _request_with_cookie_lines(*lines: str) -> object:
    import tornado.httputil

    headers = tornado.httputil.HTTPHeaders({"Host": "example.com"})
    for line in lines:
        headers.add("Cookie", line)
    return tornado.httputil.HTTPServerRequest(
        start_line=tornado.httputil.RequestStartLine("GET", "/", "HTTP/1.1"), headers=headers
    )


def test_the_cookie_is_found_in_any_cookie_header_line_and_counted_across_them() -> None:
    # HTTP/2 lets a client (or a proxy) split the cookies into several
    # Cookie header lines: ours is found in any of them, and sent in two
    # lines counts as sent twice (cookie tossing).
    from tornado_sessions.response import cookie_value

    one = _request_with_cookie_lines("theme=dark", f"a=1; {NAME}=tok-1; b=2")
    assert cookie_value(one, NAME) == ("tok-1", False)
    two = _request_with_cookie_lines(f"{NAME}=tok-1", "theme=dark", f"{NAME}=tok-2")
    assert cookie_value(two, NAME) == (None, True)
    near = _request_with_cookie_lines(f"x{NAME}=tok-1; {NAME}x=tok-2", f"{NAME} =tok-3")
    assert cookie_value(near, NAME) == ("tok-3", False)
    assert cookie_value(_request_with_cookie_lines("theme=dark"), NAME) == (None, False)
    assert cookie_value(_request_with_cookie_lines(), NAME) == (None, False)
