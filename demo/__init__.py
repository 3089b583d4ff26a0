"""A small Tornado site that shows every feature of `tornado_sessions`.

Run it with ``python -m demo`` (see ``python -m demo --help``); tests build it
with `demo.app.make_app`.
"""

from .app import make_app as make_app

__all__ = ["make_app"]
