"""`stores.records.replaced` and `stores.records.new_record`: the stores'
fast copy of a `SessionRecord` with some fields changed must equal what
`dataclasses.replace` makes, and their fast constructor what the dataclass's
own makes, field by field (they build the record positionally, slot by slot,
so a reordered or added field would silently land in the wrong place)."""

from __future__ import annotations

import dataclasses

import pytest

from tornado_sessions.stores.base import SessionRecord
from tornado_sessions.stores.records import new_record, replaced

RECORD = SessionRecord(
    data='{"n":1}',
    created_at=11,
    expires_at=12,
    version=13,
    user_id="alice",
    updated_at=14,
    ip="203.0.113.7",
    user_agent="agent",
    ttl=15,
    updated_us=16,
    created_seq=17,
)
CHANGEABLE = (
    "data",
    "created_at",
    "expires_at",
    "version",
    "updated_at",
    "updated_us",
    "created_seq",
)


def test_a_copy_with_nothing_changed_is_equal() -> None:
    assert replaced(RECORD) == RECORD


@pytest.mark.parametrize("field", CHANGEABLE)
def test_each_field_given_changes_that_field_alone(field: str) -> None:
    value: object = '{"n":2}' if field == "data" else 99
    assert replaced(RECORD, **{field: value}) == dataclasses.replace(RECORD, **{field: value})


def test_every_field_of_the_record_is_copied() -> None:
    # A field added to SessionRecord must be added to replaced() too.
    names = [f.name for f in dataclasses.fields(SessionRecord)]
    copy = replaced(RECORD)
    assert [getattr(copy, n) for n in names] == [getattr(RECORD, n) for n in names]
    assert len({getattr(RECORD, n) for n in names}) == len(names)  # distinct: no mix-up hides


def test_the_fast_constructor_makes_the_very_record_the_dataclass_makes() -> None:
    names = [f.name for f in dataclasses.fields(SessionRecord)]
    values = [getattr(RECORD, n) for n in names]
    made = new_record(*values)
    assert type(made) is SessionRecord
    assert [getattr(made, n) for n in names] == values
    assert made == RECORD and hash(made) == hash(RECORD) and repr(made) == repr(RECORD)
    # The defaults are the dataclass's.
    assert new_record("{}", 1, 2) == SessionRecord(data="{}", created_at=1, expires_at=2)


def test_a_record_of_the_fast_constructor_is_frozen_too() -> None:
    made = new_record("{}", 1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.data = "{}"  # type: ignore[misc]
