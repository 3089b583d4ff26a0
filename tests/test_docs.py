"""The built documentation, read as a reader sees it: what each page holds
and where.

The docs are built once for this module with warnings as errors, exactly as
CI builds them, into a temporary directory.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tornado_sessions.config import ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        + ["-d", str(doctrees), str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def sections(page: str) -> dict[str, str]:
    """``{h2 title: the HTML up to the next h2}``."""
    parts = re.split(r"<h2>(.*?)<a class=\"headerlink\"", page)
    return {html.unescape(parts[i]).strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_the_configuration_reference_is_a_definition_list_of_every_variable(
    built: Path,
) -> None:
    page = (built / "configuration.html").read_text(encoding="utf-8")
    reference = sections(page)["Reference"]
    # A table wider than the page covered the sidebar: none is left.
    assert "<table" not in reference
    terms = re.findall(r"<dt[^>]*>(.*?)</dt>", reference, re.S)
    named = [re.search(r"SESSION_[A-Z_]+", term) for term in terms]
    assert {m.group(0) for m in named if m} == set(ENV_NAMES.values())
    for term in terms:  # each names its SessionConfig field too
        assert "field" in term


def test_the_api_page_puts_each_object_under_its_heading(built: Path) -> None:
    page = sections((built / "api.html").read_text(encoding="utf-8"))
    expected = {
        "The handler mixin": ["tornado_sessions.SessionMixin"],
        "The session": ["tornado_sessions.Session"],
        "Configuration": ["tornado_sessions.SessionConfig"],
        "Errors": ["tornado_sessions.SessionNotLoadedError"],
        "Cookie cipher": ["tornado_sessions.crypto.CookieCipher"],
        "Testing helpers": ["tornado_sessions.testing.make_session_cookie"],
    }
    for heading, ids in expected.items():
        for object_id in ids:
            assert f'id="{object_id}"' in page[heading], (heading, object_id)
    assert 'id="tornado_sessions.crypto.CookieCipher"' not in page["Testing helpers"]


PEERS = [
    "tornado_sessions",
    "express",
    "aiohttp-session",
    "Django",
    "Flask-Session",
    "scs (Go)",
    "Spring Session",
    "Laravel",
]


def _text(cell: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", cell)).replace("\u200b", "").strip()


def test_the_feature_comparison_is_a_table_linked_from_the_index(built: Path) -> None:
    """One table, a column per system, a short verdict in every cell, a note
    for every "partial", and each of our "yes" a link to where it is
    described."""
    index = sections((built / "index.html").read_text(encoding="utf-8"))
    assert 'href="comparison.html"' in index["What it does differently"]
    page = (built / "comparison.html").read_text(encoding="utf-8")
    (table,) = re.findall(r"<table\b.*?</table>", page, re.S)
    assert "comparison" in re.match(r"<table[^>]*>", table).group(0)  # its CSS
    rows = [
        re.findall(r"<t[hd]\b[^>]*>(.*?)</t[hd]>", row, re.S)
        for row in re.findall(r"<tr\b.*?</tr>", table, re.S)
    ]
    assert [_text(c) for c in rows[0][1:]] == PEERS
    assert len(rows) >= 16  # the header and 15 features
    for row in rows[1:]:
        feature, ours, *peers = row
        assert len(peers) == len(PEERS) - 1, _text(feature)
        assert _text(ours) == "yes" and re.search(r'<a class="reference internal"', ours)
        for cell in peers:
            verdict = _text(cell).split()[0]
            assert verdict in {"yes", "no", "partial", "n/a"}, (_text(feature), cell)
            if verdict in {"partial", "n/a"}:  # always says why
                assert 'class="footnote-reference' in cell, (_text(feature), cell)
    assert "rubric" in page and page.count('class="footnote-reference') >= 40


RECIPES = [
    "recipe-current-user",
    "recipe-login",
    "recipe-remember-me",
    "recipe-log-out-everywhere",
    "recipe-json-api",
    "recipe-websocket",
    "recipe-testing",
]


def test_the_quickstart_links_every_recipe(built: Path) -> None:
    recipes = (built / "recipes.html").read_text(encoding="utf-8")
    quickstart = (built / "quickstart.html").read_text(encoding="utf-8")
    for label in RECIPES:
        assert f'id="{label}"' in recipes, label
        assert f'href="recipes.html#{label}"' in quickstart, label
    # The recipes show the tested program itself, not a copy that could drift.
    program = (ROOT / "docs" / "recipes" / "myapp.py").read_text(encoding="utf-8")
    for name in ("class BaseHandler", "class CartSocket", "def local_url"):
        assert name in program
        assert html.escape(name, quote=False).split()[-1] in recipes


EXPLICIT = re.compile(
    r"^\s*\.\. (?:py:)?(?:data|attribute|function|class|method|exception|property)::\s*(\S+)",
    re.M,
)


def shown_blocks(page: str) -> tuple[Counter[str | None], set[str]]:
    """The code blocks of a built page, counted by the id of the innermost
    autodoc entry around each (None: in the page's own text), and the ids
    of the entries."""
    counts: Counter[str | None] = Counter()
    ids: set[str] = set()
    stack: list[tuple[bool, str | None]] = []  # (is it a Python entry, its id)
    pattern = r'<dl\b[^>]*>|</dl>|<dt\b[^>]*\bid="([^"]+)"|<div class="[^"]*\bhighlight-'
    for tag in re.finditer(pattern, page):
        text, outer = tag.group(0), (stack[-1][1] if stack else None)
        if text == "</dl>":
            stack.pop()
        elif text.startswith("<dl"):
            stack.append((text.startswith('<dl class="py'), outer))
        elif text.startswith("<dt"):
            if stack and stack[-1][0]:
                stack[-1] = (True, tag.group(1))
                ids.add(tag.group(1))
        else:
            counts[outer] += 1
    return counts, ids


def test_every_code_block_of_the_built_pages_is_one_the_examples_test_knows(built: Path) -> None:
    """tests/docs_examples.py reads the sources, and the docstrings autodoc
    brings in; Sphinx is the judge of what a code block is: each entry of
    each page shows as many as the extractor found in its docstring, and
    the page's own text as many as it found in the page."""
    from tests.docs_autodoc import directive, documented
    from tests.docs_examples import rst_blocks

    for source in sorted((ROOT / "docs").glob("*.rst")):
        page = (built / f"{source.stem}.html").read_text(encoding="utf-8")
        counts, ids = shown_blocks(page)
        lines = source.read_text(encoding="utf-8").splitlines()
        autodoc: set[str] = set()
        for i in range(len(lines)):
            found = directive(lines, i)
            if found:
                autodoc |= {d.object_id for d in documented(*found[:3]) if d.object_id}
        # The extractor walks exactly the entries autodoc made; the others
        # are the page's own (.. attribute:: and the like).
        assert autodoc <= ids, (source.name, sorted(autodoc - ids))
        explicit = EXPLICIT.findall("\n".join(lines))
        for other in ids - autodoc:
            assert any(other == n or other.endswith(f".{n}") for n in explicit), other
        shown: Counter[str | None] = Counter()
        for key, n in counts.items():
            shown[key if key in autodoc else None] += n
        found_here = Counter(b.object_id for b in rst_blocks(source))
        assert +shown == +found_here, (source.name, shown, found_here)


def test_the_api_page_shows_the_docstrings_code_blocks(built: Path) -> None:
    """The docstrings' blocks are counted, not excluded (a check that the
    test above does not pass by finding none)."""
    counts, _ = shown_blocks((built / "api.html").read_text(encoding="utf-8"))
    for object_id in (
        "tornado_sessions.SessionMixin",
        "tornado_sessions.SessionMixin.load_session",
        "tornado_sessions.Session.flash",
        "tornado_sessions.stores.mysql.MySQLStore",
        "tornado_sessions.config.DatabaseConfig",
        "tornado_sessions.crypto.secret_problem",
    ):
        assert counts[object_id] >= 1, object_id
