"""Exceptions raised by `tornado_sessions`.

Every exception the package raises on purpose derives from `SessionError`, so
an application can catch them all in one place.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "SessionConflict",
    "SessionError",
    "SessionExists",
    "SessionGone",
    "SessionNotLoadedError",
    "SessionTooLarge",
    "StoreError",
]


class SessionError(Exception):
    """Base class of every error raised by `tornado_sessions`."""


class ConfigError(SessionError, ValueError):
    """A setting is missing or has a value that cannot be used.

    The message names the environment variable (or `.SessionConfig` field)
    and says what to set it to.  Raised at startup by
    `.SessionConfig.from_env` and by the `.SessionConfig` constructor.
    """


class SessionNotLoadedError(SessionError, RuntimeError):
    """``self.session`` was used before the session was loaded.

    This happens when a handler overrides ``prepare()`` without calling
    ``await super().prepare()``, or uses the session in ``initialize()``;
    and when a request outside ``SESSION_COOKIE_PATH`` tries to change its
    (empty, never saved) session.

    .. versionchanged:: 0.3
       Also raised on changes outside the cookie path.
    """


class StoreError(SessionError):
    """The session store could not do what was asked (for example the
    database is unreachable).

    `.SessionMixin` answers such a request with ``503 Service Unavailable``
    and logs the message, which names what failed and what to check but never
    a password or a raw session id.

    :param code: the server's error code, when there is one (``1213`` for a
        deadlock or a cluster's certification conflict, ``2003`` for a
        server that cannot be reached...); also the `code` attribute.

    .. versionchanged:: 0.2
       The ``code`` attribute.
    """

    def __init__(self, message: str = "", code: int | None = None) -> None:
        super().__init__(message)
        #: The server's error code, or None.
        self.code = code

    def copy(self) -> StoreError:
        """A new exception with the same message and code (each waiter of a
        shared round trip raises its own)."""
        return type(self)(str(self), self.code)


class SessionTooLarge(SessionError, ValueError):
    """The serialized session data is larger than
    `.SessionConfig.max_data_size`; nothing was written."""


class SessionExists(SessionError):
    """`.SessionStore.set` was asked to create a record whose id exists."""


class SessionGone(SessionError):
    """`.SessionStore.set` was asked to update a record that no longer exists
    (it was destroyed by a concurrent request, or it expired).  Stores never
    recreate such a record."""


class SessionConflict(SessionError):
    """`.SessionStore.set` was asked to update a record whose version is not
    the expected one: another request saved it in between."""
