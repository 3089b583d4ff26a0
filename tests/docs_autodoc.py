"""The docstrings a page brings in through autodoc, found as Sphinx finds them.

A page's ``.. autoclass::``, ``.. autofunction::``, ``.. automethod::``,
``.. autoexception::``, ``.. autodata::``, ``.. autoattribute::`` and
``.. automodule::`` directives show docstrings that are not in the page's
source.  `documented` imports each object a directive names and walks its
members the way ``sphinx.ext.autodoc`` does with this project's settings
(``autoclass_content = "class"``, docstrings inherited): a ``:members:``
list, or with a bare ``:members:`` every public member that has a
docstring (or a ``#:`` comment, read by Sphinx's own `ModuleAnalyzer`),
``:undoc-members:`` adding the others, ``:inherited-members:`` those of the
base classes, ``:exclude-members:`` taking some away, and a member class
documented with all of its own.  Each comes with the id Sphinx gives it in
the HTML (``tornado_sessions.SessionMixin.load_session``), so
tests/test_docs.py can check, object by object, that the built page shows
exactly the code blocks found here.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sphinx.pycode import ModuleAnalyzer

AUTO = re.compile(
    r"^(\s*)\.\. auto(module|class|function|method|exception|data|attribute|property|decorator)"
    r"::\s*(\S+)\s*$"
)
#: Members Sphinx documents even when the object's own ``__doc__`` is None.
_CALLABLE = (
    types.FunctionType,
    staticmethod,
    classmethod,
    property,
    functools.cached_property,
    type,
)


@dataclass
class Docstring:
    """One docstring a page shows."""

    #: The id of its entry in the HTML (None: a module's, shown in the page).
    object_id: str | None
    source: Path
    #: The file line of the docstring's first line (0 when unknown).
    line: int
    lines: list[str]
    #: The module whose namespace its doctests run in.
    module: str


def directive(lines: list[str], i: int) -> tuple[str, str, dict[str, str], int] | None:
    """``(kind, name, options, indent)`` of an autodoc directive at ``lines[i]``."""
    m = AUTO.match(lines[i])
    if m is None:
        return None
    indent = len(m.group(1))
    options: dict[str, str] = {}
    key = ""
    for line in lines[i + 1 :]:
        if not line.strip() or len(line) - len(line.lstrip()) <= indent:
            break
        option = re.match(r"\s*:([\w-]+):\s*(.*)$", line)
        if option:
            key = option.group(1)
            options[key] = option.group(2).strip()
        elif key:  # a continuation line of the option before
            options[key] += " " + line.strip()
        else:
            break
    return m.group(2), m.group(3), options, indent


def _resolve(name: str) -> tuple[Any, str]:
    """The object named ``name`` and the module it was found through."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj, ".".join(parts[:i])
    raise ImportError(name)


@functools.cache
def _attr_docs(module: str) -> dict[tuple[str, str], list[str]]:
    """The ``#:`` comments and attribute docstrings of a module, by
    ``(class qualname or "", name)``, as Sphinx reads them."""
    try:
        return dict(ModuleAnalyzer.for_module(module).find_attr_docs())
    except Exception:  # noqa: BLE001 - no source: no attribute docs, as for Sphinx
        return {}


def _doc_of(obj: Any) -> str | None:
    doc = getattr(obj, "__doc__", None)
    if isinstance(obj, functools.cached_property):
        doc = obj.func.__doc__
    return doc if isinstance(doc, str) else None


def _location(obj: Any) -> tuple[Path, int]:
    """The file and line of ``obj``'s docstring."""
    target = obj.func if isinstance(obj, functools.cached_property) else obj
    target = getattr(target, "fget", None) or getattr(target, "__func__", None) or target
    try:
        source, start = inspect.getsourcelines(target)
        path = Path(inspect.getsourcefile(target) or "")
    except (OSError, TypeError):
        return Path(inspect.getfile(inspect.getmodule(target) or target)), 0
    for offset, line in enumerate(source):
        if '"""' in line:
            return path, (start or 1) + offset  # a module's lines start at 0
    return path, start


def _docstring(object_id: str | None, obj: Any, doc: str, module: str) -> Docstring:
    path, line = _location(obj)
    return Docstring(object_id, path, line, inspect.cleandoc(doc).splitlines(), module)


def _member_doc(cls: type, name: str) -> tuple[Any, list[str] | None]:
    """The member ``name`` of ``cls`` and its docstring's lines, looked up
    through the bases as autodoc does (None: it has none)."""
    for base in cls.__mro__:
        comment = _attr_docs(base.__module__).get((base.__qualname__, name))
        if comment:
            return inspect.getattr_static(cls, name, None), list(comment)
        if name in vars(base):
            raw = vars(base)[name]
            if not isinstance(raw, _CALLABLE):
                return raw, None  # a value: only a comment documents it
            doc = _doc_of(raw)
            if doc is not None:
                return raw, inspect.cleandoc(doc).splitlines()
    return inspect.getattr_static(cls, name, None), None


def _class_member_names(cls: type, inherited: bool) -> list[str]:
    owners = [c for c in cls.__mro__ if c is not object] if inherited else [cls]
    names: list[str] = []
    for owner in owners:
        analyzed = [n for (ns, n) in _attr_docs(owner.__module__) if ns == owner.__qualname__]
        for name in [*vars(owner), *getattr(owner, "__annotations__", {}), *analyzed]:
            if name not in names and not name.startswith("_"):
                names.append(name)
    return names


def _class(object_id: str, cls: type, options: dict[str, str], module: str) -> list[Docstring]:
    found = []
    doc = _doc_of(cls) if "__doc__" in vars(cls) else inspect.getdoc(cls)
    if doc:
        found.append(_docstring(object_id, cls, doc, cls.__module__))
    if "members" not in options:
        return found
    listed = [n.strip() for n in options["members"].split(",") if n.strip()]
    excluded = {n.strip() for n in options.get("exclude-members", "").split(",")}
    names = listed or _class_member_names(cls, "inherited-members" in options)
    for name in names:
        if name in excluded:
            continue
        member, lines = _member_doc(cls, name)
        if not lines and "undoc-members" in options:
            lines = []  # shown, with no docstring
        if isinstance(member, type) and member.__qualname__ == f"{cls.__qualname__}.{name}":
            found += _class(f"{object_id}.{name}", member, {"members": ""}, module)
        elif lines is not None:
            path, line = (
                _location(member)
                if isinstance(member, _CALLABLE)
                else (
                    Path(inspect.getfile(cls)),
                    0,
                )
            )
            found.append(Docstring(f"{object_id}.{name}", path, line, lines, cls.__module__))
    return found


def documented(kind: str, name: str, options: dict[str, str]) -> list[Docstring]:
    """The docstrings one autodoc directive shows, in order."""
    obj, module = _resolve(name)
    if kind == "module":
        found = []
        if obj.__doc__:
            found.append(_docstring(None, obj, obj.__doc__, name))
        listed = [n.strip() for n in options.get("members", "").split(",") if n.strip()]
        assert listed or "members" not in options, f"{name}: list the members shown"
        for member in listed:
            found += documented("data", f"{name}.{member}", {"members": ""})
        return found
    if isinstance(obj, type):
        return _class(name, obj, options, module)
    parent_name, _, attr = name.rpartition(".")
    parent, _ = _resolve(parent_name)
    if isinstance(parent, type):
        member, lines = _member_doc(parent, attr)
        if not lines:
            return []
        path, line = _location(member) if isinstance(member, _CALLABLE) else (Path(), 0)
        return [Docstring(name, path, line, lines, parent.__module__)]
    comment = _attr_docs(parent.__name__).get(("", attr))
    if comment:
        return [Docstring(name, Path(inspect.getfile(parent)), 0, list(comment), parent.__name__)]
    doc = _doc_of(obj) if isinstance(obj, (*_CALLABLE, types.BuiltinFunctionType)) else None
    return [_docstring(name, obj, doc, getattr(obj, "__module__", module))] if doc else []
