"""Sphinx configuration for the tornado_sessions documentation.

Build (from the repository root), with warnings as errors::

    .venv/bin/sphinx-build -W --keep-going -b html -q docs docs/_build/html

Only Sphinx's built-in theme and extensions are used; nothing is downloaded
at build time.
"""

from __future__ import annotations

import os
import sys

# Make the package importable when the docs are built from a checkout
# without an installed (editable) copy.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import tornado_sessions  # noqa: E402

project = "tornado_sessions"
author = "tornado_sessions contributors"
copyright = "tornado_sessions contributors"
version = tornado_sessions.__version__
release = tornado_sessions.__version__

extensions = ["sphinx.ext.autodoc"]

# Docstrings are written Tornado-style: `name` (single backticks) is a
# cross-reference to a Python object.
default_role = "py:obj"
nitpicky = False

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autoclass_content = "class"

master_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = f"tornado_sessions {release}"
html_static_path = ["_static"]
# The feature comparison's table, nine columns in the page's width.
html_css_files = ["comparison.css"]
html_theme_options = {
    "description": "Server-side sessions for Tornado",
    "fixed_sidebar": True,
}


# -- checks ------------------------------------------------------------------


def _check_ddl(app: object) -> None:
    """Warn (an error under -W) if the DDL shown in stores.rst is not exactly
    what ``MySQLStore.create_table_sql()`` returns."""
    from sphinx.util import logging as sphinx_logging

    logger = sphinx_logging.getLogger(__name__)
    try:
        from tornado_sessions.stores.mysql import MySQLStore
    except ImportError as exc:  # aiomysql missing: nothing to compare with
        logger.warning("cannot import MySQLStore to check the DDL in stores.rst: %s", exc)
        return
    expected = MySQLStore.create_table_sql().strip()
    path = os.path.join(os.path.dirname(__file__), "stores.rst")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    indented = "\n".join("    " + line for line in expected.splitlines())
    if indented not in text:
        logger.warning(
            "docs/stores.rst: the CREATE TABLE block differs from "
            "MySQLStore.create_table_sql(); paste its output:\n%s",
            expected,
        )


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("builder-inited", _check_ddl)
    return {"parallel_read_safe": True}
