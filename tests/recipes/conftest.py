"""The recipes' program (docs/recipes/myapp.py) is imported as its own
directory makes it importable: ``import myapp``."""

from __future__ import annotations

import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes"
if str(RECIPES) not in sys.path:
    sys.path.insert(0, str(RECIPES))
