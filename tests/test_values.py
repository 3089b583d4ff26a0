"""What a session may hold: checked at assignment, at save, and by every store."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornado_sessions import values
from tornado_sessions.values import (
    MAX_USER_ID,
    check_text,
    check_value,
    client_agent,
    client_ip,
    dumps,
    loads,
    user_arg,
    user_text,
)

LONE = json.loads('"\\udcbf"')  # what a client's JSON can give: a lone surrogate


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(10**30),
        1.5,
        "é😀",
        "",
        [],
        {},
        [1, [2, [3, {"a": None}]]],
        {"nested": {"deep": ["x", 1.0, False]}},
        "quotes ' \" backslash \\ NUL \x00 %s ; -- emoji 😀",
        Colour.RED,
    ],
)
def test_json_values_are_accepted(value: Any) -> None:
    check_value("k", value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({1, 2}, "it is a set"),
        ((1, 2), "it is a tuple (JSON would give it back as a list): store a list"),
        (b"bytes", "it is a bytes"),
        (datetime.datetime(2026, 1, 1), "it is a datetime.datetime"),
        (decimal.Decimal("1.5"), "it is a decimal.Decimal"),
        (uuid.UUID(int=1), "it is a uuid.UUID"),
        (object(), "it is a object"),
        (float("nan"), "nan has no JSON form"),
        (float("inf"), "inf has no JSON form"),
        (LONE, "lone surrogate"),
        ({"ok": [1, {"when": datetime.date(2026, 1, 1)}]}, "it is a datetime.date"),
        ({1: "a"}, "its key is a int"),
        ({LONE: "a"}, "its key holds a lone surrogate"),
        (["fine", LONE], "lone surrogate"),
    ],
)
def test_other_values_are_refused_naming_the_key(value: Any, says: str) -> None:
    with pytest.raises(TypeError) as caught:
        check_value("cart", value)
    message = str(caught.value)
    assert message.startswith("session['cart']")
    assert says in message
    assert "session data must be JSON" in message


def test_the_path_of_a_nested_bad_value_is_named() -> None:
    with pytest.raises(TypeError, match=r"session\['cart'\]\[1\]\['when'\] cannot be stored"):
        check_value("cart", [{"ok": 1}, {"when": {1}}])


def test_a_container_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="it contains itself"):
        check_value("k", loop)
    shared = [1]
    check_value("k", [shared, shared])  # the same list twice is fine


def test_serialized_text_with_a_lone_surrogate_names_the_key() -> None:
    with pytest.raises(TypeError, match=r"session\['bio'\] cannot be stored.*lone surrogate"):
        dumps({"name": "ok", "bio": "x" + LONE})
    check_text(dumps({"name": "é😀"}))
    with pytest.raises(TypeError, match=r"session\['bio'\]"):
        check_text('{"bio":"' + LONE + '"}')


def test_user_ids_are_text() -> None:
    assert user_text(42) == "42"
    assert user_text("42") == "42"
    assert user_text(Colour.RED) == "1"
    assert user_text(None) is None
    assert user_text("x" * MAX_USER_ID) == "x" * MAX_USER_ID
    with pytest.raises(ValueError, match="256 characters long; at most 255"):
        user_text("x" * 256)
    for bad in (True, 4.2, [1], {"id": 1}, b"42"):
        with pytest.raises(TypeError, match="must be a str or an int"):
            user_text(bad)
    with pytest.raises(TypeError, match="lone surrogate"):
        user_text("bob" + LONE)
    with pytest.raises(TypeError, match="required"):
        user_arg(None)
    assert user_arg(0) == "0"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1%" + "z" * 80, "fe80::1"),  # an overflowing zone id
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ),
        ("not an address but free text from a proxy header" * 3, None),
        (None, None),
    ],
)
def test_client_ips_fit_their_column(given: str | None, kept: str | None) -> None:
    got = client_ip(given)
    if kept is None and given is not None:
        assert got is not None and len(got) == 45 and given.startswith(got)
    else:
        assert got == kept


def test_user_agents_fit_their_column() -> None:
    assert client_agent("Mozilla/5.0") == "Mozilla/5.0"
    assert client_agent("é" * 300) == "é" * 255
    assert client_agent("") is None
    assert client_agent(None) is None
    assert client_agent("a" + LONE) == "a?"


# -- dumps and loads: json's own results, by a faster road ----------------------

_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_DATA = st.dictionaries(st.text(), _JSON, max_size=6)


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(_DATA)
def test_dumps_gives_the_canonical_json_with_and_without_the_c_encoder(
    data: dict[str, Any],
) -> None:
    try:
        expected = _canonical(data)
        check_text(expected)
    except (TypeError, ValueError):  # a lone surrogate: dumps must refuse it too
        with pytest.raises(TypeError):
            dumps(data)
        return
    assert dumps(data) == expected
    saved = values._C_ENCODE
    values._C_ENCODE = None  # json's own encoder, as where _json is absent
    try:
        assert dumps(data) == expected
    finally:
        values._C_ENCODE = saved


@pytest.mark.parametrize("encoder", ["c", "python"])
def test_dumps_names_a_cycle_and_refuses_nan_with_either_encoder(
    encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if encoder == "python":
        monkeypatch.setattr(values, "_C_ENCODE", None)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match=r"session\['cart'\].*contains itself"):
        dumps({"ok": 1, "cart": loop})
    with pytest.raises(TypeError, match=r"session\['price'\]"):
        dumps({"price": float("nan")})
    # The same list twice is no cycle, and the encoder is left clean.
    shared = [1]
    assert dumps({"a": [shared, shared]}) == '{"a":[[1],[1]]}'


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\r\n"]))
def test_loads_is_json_loads(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value, ensure_ascii=False) + after
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "text", ["", " ", "{", '{"a":1}x', '{"a":1} {}', "[1,]", '{"a":1,}', "nul", '"\\x"', "01"]
)
def test_loads_refuses_what_json_loads_refuses_with_its_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        loads(text)
    assert str(got.value) == str(expected.value)


def test_loads_refuses_what_is_not_text_as_json_loads_does() -> None:
    for value in (None, 12, ["{}"]):
        with pytest.raises(TypeError):
            json.loads(value)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            loads(value)  # type: ignore[arg-type]
