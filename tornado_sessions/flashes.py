"""Flash messages: one-time notes kept in the session until shown.

`FlashMessages` gives `.Session` its `~FlashMessages.flash` and
`~FlashMessages.pop_flashes`; the queue lives in the session data under
`FLASH_KEY`, which the mapping hides.
"""

from __future__ import annotations

from typing import Any

from .values import check_value

__all__ = ["FLASH_KEY", "FlashMessages"]

#: The data key under which flash messages are kept: reserved, and hidden
#: from the mapping (``dict(session)`` never shows it).
FLASH_KEY = "__flashes__"


class FlashMessages:
    """The flash-message methods of `.Session` (a base class of it)."""

    # Set by Session.__init__.
    _data: dict[str, Any]
    _maybe_changed: bool
    accessed: bool

    def flash(self, message: str, category: str = "message") -> None:
        """Queue a one-time message for the user ("Saved.", "Wrong password.").

        .. example: flash-note given imports module

        It is kept in the session until `pop_flashes` returns it, so it
        survives a redirect, and shows exactly once, in whichever process
        serves the next page::

            class SaveNote(SessionMixin, tornado.web.RequestHandler):
                def post(self):
                    self.session.flash("Your note was saved.", "success")
                    self.redirect("/notes")

        :param message: the text (shown to the user: escape it in templates,
            as Tornado's ``{{ }}`` does).
        :param category: a label for styling, such as ``"error"``.

        .. versionadded:: 0.2
        """
        for name, text in (("message", message), ("category", category)):
            if not isinstance(text, str):
                raise TypeError(f"a flash {name} must be a str, not {type(text).__name__}")
            check_value(FLASH_KEY, text)
        self.accessed = True
        self._maybe_changed = True
        queue = self._data.get(FLASH_KEY)
        if not isinstance(queue, list):
            queue = self._data[FLASH_KEY] = []
        queue.append([category, message])

    def pop_flashes(self) -> list[tuple[str, str]]:
        """Return the queued flash messages as ``(category, message)`` pairs,
        oldest first, and remove them.  An empty queue changes nothing (the
        request then writes nothing).

        .. versionadded:: 0.2
        """
        self.accessed = True
        queue = self._data.get(FLASH_KEY)
        if queue is None:
            return []
        self._maybe_changed = True
        del self._data[FLASH_KEY]
        if not isinstance(queue, list):
            return []
        return [
            (str(item[0]), str(item[1]))
            for item in queue
            if isinstance(item, list) and len(item) == 2
        ]
