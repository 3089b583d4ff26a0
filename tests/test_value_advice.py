"""A value a session cannot hold: the error names its whole path, says what
to store instead, and its traceback ends in the library's check, not in a
walk over the value nor in ``json``'s encoder.  Through a real server, at
assignment and at save (a value changed in place after it was assigned)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import logging
import traceback
import uuid

import pytest
import tornado.web

from tests.conftest import Base, Browser
from tornado_sessions import MemoryStore, SessionConfig
from tornado_sessions.values import check_value, dumps

from .conftest import SECRET


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Item:
    sku: str


@pytest.mark.parametrize(
    ("value", "kind", "instead"),
    [
        (datetime.datetime(2026, 1, 1, 12), "datetime.datetime", "value.isoformat()"),
        (datetime.date(2026, 1, 1), "datetime.date", "date.fromisoformat()"),
        (datetime.time(12, 30), "datetime.time", "time.fromisoformat()"),
        (datetime.timedelta(hours=1), "datetime.timedelta", "value.total_seconds()"),
        ({1, 2}, "set", "store a list, sorted(value)"),
        (frozenset({1}), "frozenset", "store a list, sorted(value)"),
        (b"\x00\x01", "bytes", "base64.b64encode(value).decode('ascii')"),
        (bytearray(b"x"), "bytearray", "value.decode()"),
        (decimal.Decimal("9.99"), "decimal.Decimal", "str(value), and read it back with Decimal"),
        (uuid.UUID(int=7), "uuid.UUID", "str(value)"),
        (Colour.RED, "Colour", "value.value"),
        (Item("a"), "Item", "dataclasses.asdict(value)"),
        (object(), "object", "a dict of the fields you need, or its text"),
    ],
)
def test_each_kind_says_what_to_store_instead(value: object, kind: str, instead: str) -> None:
    with pytest.raises(TypeError) as caught:
        check_value("v", value)
    message = str(caught.value)
    assert message.startswith("session['v'] cannot be stored: it is a ")
    assert kind in message and instead in message


def test_a_nested_value_names_its_path_and_the_traceback_ends_in_the_check() -> None:
    deep: object = {"added": datetime.datetime(2026, 1, 1)}
    for _ in range(30):  # thirty levels: the old walk left thirty frames
        deep = [deep]
    with pytest.raises(TypeError) as caught:
        check_value("cart", {"items": deep})
    assert str(caught.value).startswith(
        "session['cart']['items']" + "[0]" * 30 + "['added'] cannot be stored: "
        "it is a datetime.datetime: store its ISO 8601 text"
    )
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert [f.name for f in frames[1:]] == ["check_value"]  # one frame of the library


def test_a_value_changed_in_place_is_named_by_its_path_at_save() -> None:
    with pytest.raises(TypeError) as caught:
        dumps({"cart": [{"n": 1}, {"price": decimal.Decimal("1.5")}], "user_id": "a"})
    assert str(caught.value).startswith(
        "session['cart'][1]['price'] cannot be stored: it is a decimal.Decimal: store its text"
    )
    assert "JSON serializable" not in str(caught.value)  # not json's own words
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert [f.name for f in frames[1:]] == ["dumps"]
    assert all("json" not in f.filename for f in frames)


class Assigns(Base):
    async def get(self) -> None:
        self.session["cart"] = [{"added": datetime.datetime(2026, 1, 1)}]
        self.write("unreachable")


class Fills(Base):
    async def get(self) -> None:
        self.session["cart"] = [{"n": 1}]
        self.write("ok")


class AppendsInPlace(Base):
    async def get(self) -> None:
        self.session["cart"].append({"tags": {"gift"}})  # a set, after assignment
        self.write("ok")


@pytest.fixture
def app() -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/assign", Assigns), (r"/fill", Fills), (r"/append", AppendsInPlace)],
        session_store=MemoryStore(warn=False),
        session_config=SessionConfig(secret=SECRET),
    )


def logged_error(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], TypeError)]
    return record


@pytest.mark.gen_test
async def test_an_assignment_in_a_handler_logs_the_path_and_ends_in_the_check(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    response = await browser.get("/assign")
    assert response.code == 500
    record = logged_error(caplog)
    assert record.exc_info is not None
    assert "session['cart'][0]['added'] cannot be stored" in str(record.exc_info[1])
    assert "value.isoformat()" in str(record.exc_info[1])
    names = [f.name for f in traceback.extract_tb(record.exc_info[2])]
    assert names[-3:] == ["get", "__setitem__", "check_value"]  # the handler's line, then ours


@pytest.mark.gen_test
async def test_an_in_place_change_fails_at_save_naming_its_path(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await browser.get("/fill")).code == 200
    response = await browser.get("/append")
    assert response.code == 500
    record = logged_error(caplog)
    assert record.exc_info is not None
    message = str(record.exc_info[1])
    assert message.startswith("session['cart'][1]['tags'] cannot be stored: it is a set")
    assert "store a list, sorted(value)" in message
    assert traceback.extract_tb(record.exc_info[2])[-1].name == "dumps"
