"""Template helpers: ``ui_methods`` for Tornado templates.

Pass the module to the application, alone or with your own:

.. example: ui-app given routes,store,config,my_ui_methods

.. code-block:: python

    app = tornado.web.Application(
        routes,
        ui_methods=[tornado_sessions.ui, my_ui_methods],
        session_store=store,
        session_config=config,
    )

and show the flash messages in a base template:

.. example: ui-template template

.. code-block:: html+jinja

    {% for category, message in pop_flashes() %}
      <p class="flash {{ category }}">{{ message }}</p>
    {% end %}

Every public callable of this module is a template helper (Tornado loads
them all), so it holds nothing else.

.. versionadded:: 0.2
"""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:
    from .mixin import SessionMixin as _SessionMixin


def pop_flashes(handler: _SessionMixin) -> list[tuple[str, str]]:
    """The flash messages of the current session, oldest first, as
    ``(category, message)`` pairs; they are removed, so each shows once.

    A page that pops an empty queue writes nothing.  See
    `.Session.flash`.
    """
    return handler.session.pop_flashes()


__all__ = ["pop_flashes"]
