"""``python -m tornado_sessions``: the operations command line (see `tornado_sessions.cli`)."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
