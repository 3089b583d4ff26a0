"""What a session may hold, checked before it reaches a store.

Session data is JSON, serialized one canonical way (`dumps`).  A value that
JSON cannot hold, or would silently change (a tuple comes back as a list, a
non-string dict key as a string), or that no UTF-8 store can keep (a lone
surrogate such as ``json.loads('"\\udcbf"')`` gives) is a `TypeError` naming
the top-level key, raised at assignment (`check_value`) or at the latest
when the session is serialized for saving (`dumps`).

The text columns a store keeps beside the data have limits of their own:
the user id is always text (`user_text`: ``42`` and ``"42"`` are one user)
of at most `MAX_USER_ID` characters, and client details are normalized or
cut to fit (`client_ip`, `client_agent`).  Stores apply the same rules
(`.stores.base.check_record`), so bad input fails alone, with a clear error,
never as a database error in someone else's batch.

.. versionadded:: 0.2
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import ipaddress
import json
import pathlib
import uuid
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_AGENT",
    "MAX_COOKIE_LIFETIME",
    "MAX_IP",
    "MAX_USER_ID",
    "advice",
    "check_text",
    "check_value",
    "client_agent",
    "client_ip",
    "dumps",
    "lifetime_arg",
    "loads",
    "same_json",
    "user_arg",
    "user_text",
]

#: The longest user id, IP address and User-Agent a store keeps (characters).
MAX_USER_ID = 255
MAX_IP = 45
MAX_AGENT = 255
#: Browsers cap cookie lifetimes at 400 days (RFC 6265bis), so do we.
MAX_COOKIE_LIFETIME = 400 * 24 * 3600

_KINDS = "dict with str keys, list, str, int, float, bool or None"
#: Containers nested deeper than this are refused (json would recurse).
_MAX_DEPTH = 100


def _refuse(path: str, problem: str) -> TypeError:
    return TypeError(f"{path} cannot be stored: {problem}; session data must be JSON ({_KINDS})")


def _check_str(path: str, text: str, what: str = "text") -> TypeError | None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return _refuse(
                path,
                f"its {what} holds a lone surrogate ({text[exc.start]!r} at index {exc.start}), "
                "which is not valid Unicode (decode client input with errors='replace')",
            )
    return None


def advice(value: Any) -> str:
    """What to store instead of ``value``, a value JSON cannot hold: the
    end of the `TypeError` of `check_value`.

    .. versionadded:: 0.3
    """
    if isinstance(value, datetime.date | datetime.time):
        kind = type(value).__name__ if type(value).__module__ == "datetime" else "datetime"
        return (
            f"store its ISO 8601 text, value.isoformat(), and read it back with "
            f"{kind}.fromisoformat()"
        )
    if isinstance(value, datetime.timedelta):
        return "store its length in seconds, value.total_seconds()"
    if isinstance(value, set | frozenset):
        return "store a list, sorted(value), and make it a set again when you read it"
    if isinstance(value, bytes | bytearray | memoryview):
        return (
            "store text: value.decode() for UTF-8 text, or "
            "base64.b64encode(value).decode('ascii') for binary data"
        )
    if isinstance(value, decimal.Decimal):
        return "store its text, str(value), and read it back with Decimal(...) (a float rounds)"
    if isinstance(value, uuid.UUID | pathlib.PurePath):
        return "store its text, str(value)"
    if isinstance(value, enum.Enum):
        return "store value.value (or value.name) and look the member up when you read it"
    if dataclasses.is_dataclass(value):
        return "store a dict of its fields, dataclasses.asdict(value)"
    return "store a dict of the fields you need, or its text"


def check_value(key: str, value: Any) -> None:
    """Raise `TypeError` naming ``key`` unless ``value`` is JSON that comes
    back from the store exactly as it went in.

    Accepted: `dict` with `str` keys, `list`, `str` (valid Unicode), `int`,
    `bool`, finite `float` and `None`, nested to any reasonable depth.
    Refused: tuples and sets (JSON would return a list, or nothing), bytes,
    datetimes and other objects, non-string dict keys, NaN and infinities,
    lone surrogates, and containers that contain themselves.

    The message names the whole path of a nested value
    (``session['cart'][2]['added']``) and says what to store instead (an
    ISO string for a datetime, a list for a set: `advice`); the traceback
    ends here, not in the walk over the value.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       The message says what to store instead.
    """
    problem = _walk(f"session[{key!r}]", value, 0, set())
    if problem is not None:
        raise problem


def _walk(path: str, value: Any, depth: int, seen: set[int]) -> TypeError | None:
    """The error of the first value under ``value`` that cannot be stored
    (returned, not raised: the caller raises it from one frame)."""
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        return _check_str(path, value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return _refuse(path, f"{value!r} has no JSON form (store None, or its text)")
        return None
    if isinstance(value, dict | list):
        if depth >= _MAX_DEPTH:
            return _refuse(path, f"it is nested more than {_MAX_DEPTH} levels deep")
        if id(value) in seen:
            return _refuse(path, "it contains itself")
        seen.add(id(value))
        problem: TypeError | None = None
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    return _refuse(
                        f"{path}[{k!r}]",
                        f"its key is a {type(k).__name__} (JSON keys are strings: it would "
                        "come back as a string): use str(key)",
                    )
                problem = _check_str(f"{path}[{k!r}]", k, "key") or _walk(
                    f"{path}[{k!r}]", v, depth + 1, seen
                )
                if problem is not None:
                    return problem
        else:
            for index, item in enumerate(value):
                problem = _walk(f"{path}[{index}]", item, depth + 1, seen)
                if problem is not None:
                    return problem
        seen.discard(id(value))
        return None
    if isinstance(value, tuple):
        return _refuse(path, "it is a tuple (JSON would give it back as a list): store a list")
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return _refuse(path, f"it is a {name}: {advice(value)}")


def check_text(text: str) -> None:
    """Raise `TypeError` naming the top-level key if serialized session data
    ``text`` holds a lone surrogate (a store could not keep it as UTF-8).

    .. versionadded:: 0.2
    """
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return
    data = json.loads(text)
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
                continue
            problem = _check_str(f"session[{key!r}]", key, "key") or _walk(
                f"session[{key!r}]", value, 0, set()
            )
            if problem is not None:
                raise problem
    raise _refuse("session data", "it holds a lone surrogate")


#: The one canonical form, made once (``json.dumps`` with these options
#: would make an encoder on every call).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# The same encoder's C core, made once too: `JSONEncoder.encode` builds it
# again on every call (half the cost of a small session's serialization).
# No circular check (a cycle ends in a RecursionError, which dumps names as
# it names one too deep); json's pure-Python fallback when _json is absent.
_make_encoder: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_C_ENCODE = (
    None
    if _make_encoder is None
    else _make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
)
_DECODER = json.JSONDecoder()
#: The decoder's scanner (C, or json's pure-Python one): (value, end) of the
#: JSON value that starts at an index (typeshed does not declare it).
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(_DECODER, "scan_once")  # noqa: B009


def loads(text: str) -> Any:
    """``json.loads(text)``, with the decoder's scanner called directly for
    a text that is exactly one JSON value (what the stores keep): the same
    result, and for any other text (surrounding whitespace, an error) the
    same result or error as `json.loads`, which then handles it.

    .. versionadded:: 0.3
    """
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError, TypeError):
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def dumps(data: dict[str, Any]) -> str:
    """Serialize session data the one canonical way (sorted keys, compact,
    UTF-8 kept as is).

    :raises TypeError: naming the path of a value JSON cannot hold (or a
        lone surrogate), with what to store instead.

    .. versionchanged:: 0.3
       The whole path of a nested value (one changed in place, after
       assignment), not only its top-level key.
    """
    try:
        text = "".join(_C_ENCODE(data, 0)) if _C_ENCODE is not None else _ENCODER.encode(data)
    except (TypeError, ValueError, RecursionError) as exc:  # too deep: _walk names where
        for key, value in data.items():
            if not isinstance(key, str):
                raise TypeError(f"session keys must be strings, not {type(key).__name__}") from None
            problem = _walk(f"session[{key!r}]", value, 0, set())
            if problem is not None:
                raise problem from None
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as inner:
                raise _refuse(f"session[{key!r}]", str(inner)) from None
        raise TypeError(f"session data cannot be stored as JSON: {exc}") from None
    check_text(text)
    return text


_SCALARS = (str, int, float, bool, type(None))


def same_json(value: Any, stored: Any) -> bool:
    """Whether ``value`` serializes as ``stored`` does (exactly: ``1`` is not
    ``1.0`` nor ``True``).  Scalars compare by type and value; containers
    by their canonical JSON (`dumps`).

    .. versionadded:: 0.3
    """
    if type(value) in _SCALARS and type(stored) in _SCALARS:
        return type(value) is type(stored) and value == stored
    return dumps({"": value}) == dumps({"": stored})


def lifetime_arg(seconds: Any, *, name: str = "set_expiry()") -> int | None:
    """Return ``seconds``, a session's own lifetime (None: the configured
    one), checked: a positive int of at most `MAX_COOKIE_LIFETIME`.

    :raises ValueError: naming ``name``.

    .. versionadded:: 0.3
    """
    if seconds is None:
        return None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError(f"{name} takes a positive number of seconds, not {seconds!r}")
    if seconds > MAX_COOKIE_LIFETIME:
        raise ValueError(f"{name} takes at most {MAX_COOKIE_LIFETIME} seconds (400 days)")
    return seconds


def user_text(user: Any, *, name: str = "the user id") -> str | None:
    """Return the text form of a user id (None stays None).

    A user id is a `str` or an `int` (not a `bool`); ``42`` and ``"42"``
    are the same user.  Stores compare it as text, never as a number.

    :raises TypeError: for any other type, or a lone surrogate.
    :raises ValueError: if the text is longer than `MAX_USER_ID` characters.

    .. versionadded:: 0.2
    """
    if user is None:
        return None
    if isinstance(user, bool) or not isinstance(user, str | int):
        raise TypeError(f"{name} must be a str or an int, not {type(user).__name__}")
    # The plain value of str and int subclasses (enums): what JSON stores.
    text = str.__str__(user) if isinstance(user, str) else int.__repr__(user)
    if len(text) > MAX_USER_ID:
        raise ValueError(
            f"{name} is {len(text)} characters long; at most {MAX_USER_ID} are kept "
            "(use a shorter key, such as the user's database id)"
        )
    problem = _check_str(name, text)
    if problem is not None:
        raise problem
    return text


def user_arg(user: Any) -> str:
    """Return the text form of a user id given to a store's per-user
    method (`user_text`, but None is refused: it would name every anonymous
    session).

    .. versionadded:: 0.2
    """
    text = user_text(user)
    if text is None:
        raise TypeError("a user id is required, not None")
    return text


def client_ip(ip: str | None) -> str | None:
    """Return ``ip`` in the form a store keeps (at most `MAX_IP` characters).

    An IPv6 zone id (``fe80::1%eth0``) is dropped; an address is written in
    its compressed form; anything else (a proxy header's free text) is cut.

    .. versionadded:: 0.2
    """
    if ip is None:
        return None
    text = str(ip).strip()
    bare = text.split("%", 1)[0]
    try:
        text = ipaddress.ip_address(bare).compressed
    except ValueError:
        pass
    return _fit(text, MAX_IP) or None


def client_agent(agent: str | None) -> str | None:
    """Return a User-Agent cut to `MAX_AGENT` characters (None if empty).

    .. versionadded:: 0.2
    """
    if not agent:
        return None
    return _fit(str(agent), MAX_AGENT) or None


def _fit(text: str, most: int) -> str:
    text = text[:most]
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
