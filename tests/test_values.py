"""What a session may hold: checked at assignment, at save, and by every store."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import pytest

from tornado_sessions.values import (
    MAX_USER_ID,
    check_text,
    check_value,
    client_agent,
    client_ip,
    dumps,
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
