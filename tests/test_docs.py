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


def test_every_code_block_of_the_built_pages_is_one_the_examples_test_knows(built: Path) -> None:
    """tests/docs_examples.py reads the sources; Sphinx is the judge of what
    a code block is: each page has as many as the extractor found (outside
    the docstrings autodoc brings in, which are the package's, not the
    page's)."""
    from tests.docs_examples import rst_blocks

    for source in sorted((ROOT / "docs").glob("*.rst")):
        page = (built / f"{source.stem}.html").read_text(encoding="utf-8")
        shown, stack = 0, []  # stack: is each open <dl> (or one around it) autodoc's?
        for tag in re.finditer(r"<dl\b[^>]*>|</dl>|<div class=\"highlight-", page):
            if tag.group(0) == "</dl>":
                stack.pop()
            elif tag.group(0).startswith("<dl"):
                autodoc = tag.group(0).startswith('<dl class="py')
                stack.append(bool(stack and stack[-1]) or autodoc)
            elif not (stack and stack[-1]):
                shown += 1
        assert shown == len(rst_blocks(source)), source.name
