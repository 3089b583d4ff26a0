"""Session: the mapping, change detection, JSON-only values."""

from __future__ import annotations

import pytest

from tornado_sessions.session import Session, dumps


def make(data: dict | None = None) -> Session:
    session = Session(None, "sid", created_at=0, expires_at=10)  # type: ignore[arg-type]
    if data is not None:
        text = dumps(data)
        session._data = dict(__import__("json").loads(text))
        session._snapshot = text
        session._is_new = False
    return session


def test_mapping_behaviour() -> None:
    s = make()
    assert not s.accessed
    s["a"] = 1
    assert s.accessed
    assert s["a"] == 1 and s.get("b", 2) == 2 and "a" in s and len(s) == 1
    assert list(s) == ["a"] and dict(s) == {"a": 1}
    s.update(b=2)
    assert s.pop("a") == 1
    assert dict(s) == {"b": 2}
    with pytest.raises(KeyError):
        s["missing"]
    with pytest.raises(TypeError):
        s[1] = "x"  # type: ignore[index]


def test_change_detection_includes_nested_edits() -> None:
    s = make({"cart": [1], "n": 1})
    assert not s.modified
    s["cart"].append(2)
    assert s.modified
    assert s.changed_keys() == ({"cart"}, set())


def test_changed_keys_sees_type_changes_and_deletes() -> None:
    s = make({"a": 1, "b": 2, "c": 3})
    s["a"] = True  # == 1 in Python, but a different JSON value
    del s["b"]
    s["d"] = None
    assert s.changed_keys() == ({"a", "d"}, {"b"})


def test_setting_the_same_value_is_not_a_modification() -> None:
    s = make({"a": {"x": [1, 2]}})
    s["a"] = {"x": [1, 2]}
    assert not s.modified


def test_non_json_value_names_the_key_at_assignment() -> None:
    s = make()
    s["ok"] = [1, "two", {"three": 3.0}]
    with pytest.raises(TypeError, match=r"session\['when'\] cannot be stored: it is a set"):
        s["when"] = {1, 2}
    with pytest.raises(TypeError, match=r"session\['nan'\]"):
        s["nan"] = float("nan")
    assert dict(s) == {"ok": [1, "two", {"three": 3.0}]}  # nothing half-stored


def test_a_nested_edit_is_checked_at_save() -> None:
    s = make()
    s["cart"] = []
    s["cart"].append({1, 2})  # no __setitem__: found when serialized
    with pytest.raises(TypeError, match=r"session\['cart'\]\[0\] cannot be stored: it is a set"):
        s.serialize()


def test_canonical_serialization() -> None:
    assert dumps({"b": 1, "a": "é😀"}) == '{"a":"é😀","b":1}'


def test_set_expiry_checks_its_argument() -> None:
    s = make()
    for bad in (0, -1, 1.5, True, 400 * 86400 + 1):
        with pytest.raises(ValueError):
            s.set_expiry(bad)  # type: ignore[arg-type]
    s.set_expiry(60)
    assert s.ttl == 60
    s.set_expiry(None)
    assert s.ttl is None


def test_repr_hides_the_id() -> None:
    s = make({"k": 1})
    assert "sid" not in repr(s).replace(s.fingerprint, "")


def test_nested_edits_through_get_and_views_are_seen() -> None:
    s = make({"cart": [1], "prefs": {"a": 1}, "n": 1})
    assert s.get("n") == 1 and s["n"] == 1
    assert not s.modified and s.serialize() == s._snapshot  # a read-only use
    s.get("cart").append(2)
    assert s.modified
    s = make({"prefs": {"a": 1}})
    for value in s.values():
        value["b"] = 2
    assert s.modified and s.changed_keys() == ({"prefs"}, set())


def test_changed_keys_are_exact() -> None:
    s = make()
    s._snapshot = '{"a":1,"b":true,"c":"x","d":[1,{"e":2}],"f":null,"g":1.5}'
    s._data = {"a": 1.0, "b": 1, "c": "x", "d": [1, {"e": 2}], "g": 1.5, "h": None}
    changed, deleted = s.changed_keys()
    assert changed == {"a", "b", "h"}  # 1 -> 1.0 and true -> 1 are changes
    assert deleted == {"f"}
    s._data["d"][1]["e"] = 3  # a nested edit
    assert s.changed_keys()[0] == {"a", "b", "d", "h"}


def test_flash_messages_queue_and_pop_once_in_order() -> None:
    s = make({"n": 1})
    s.flash("Saved.")
    s.flash("Wrong password.", "error")
    assert dict(s) == {"n": 1} and len(s) == 1 and "__flashes__" not in s  # hidden
    assert s.get("__flashes__") is None
    text = s.serialize()
    assert '"__flashes__":[["message","Saved."],["error","Wrong password."]]' in text
    again = make(__import__("json").loads(text))  # as the next request loads it
    assert again.pop_flashes() == [("message", "Saved."), ("error", "Wrong password.")]
    assert again.pop_flashes() == []
    assert again.serialize() == '{"n":1}'


def test_popping_an_empty_queue_changes_nothing() -> None:
    s = make({"n": 1})
    assert s.pop_flashes() == []
    assert not s.modified and s.serialize() is s._snapshot  # nothing to write


def test_the_flash_key_is_reserved_and_messages_are_text() -> None:
    s = make()
    with pytest.raises(TypeError, match="reserved for flash messages"):
        s["__flashes__"] = []
    with pytest.raises(TypeError, match="a flash message must be a str"):
        s.flash(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lone surrogate"):
        s.flash(__import__("json").loads('"\\udcbf"'))
    with pytest.raises(KeyError):
        del s["__flashes__"]
