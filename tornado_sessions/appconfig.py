"""The application's `.SessionConfig`: its ``session_config`` setting, or,
without one, a config read from the environment once per application.

An application that forgets ``session_config`` still works when the
``SESSION_*`` settings are in the environment (or ``.env``): they are read
once, at its first request, and that is logged once.  When they cannot be
read (no ``SESSION_SECRET``, a bad value), the error is logged once, with
the fix, and every request answers 500 without a traceback of its own (a
reminder is logged at most once a minute), instead of one traceback per
request.

.. versionadded:: 0.3
"""

from __future__ import annotations

import logging
from typing import Any

from ._ratelimit import RateLimitedLog
from .config import SessionConfig
from .errors import ConfigError

__all__ = ["app_config"]

log = logging.getLogger("tornado_sessions")

_ATTR = "_tornado_sessions_default_config"
_REMINDERS_ATTR = "_tornado_sessions_config_reminders"

#: Seconds between two reminders that requests answer 500.
REMINDER_INTERVAL = 60.0

_FIX = (
    "pass session_config=SessionConfig.from_env() to tornado.web.Application(...) "
    "so that a bad setting stops the application at startup"
)


def app_config(app: Any) -> SessionConfig:
    """Return ``app``'s `.SessionConfig`: its ``session_config`` setting, or
    the one read from the environment at its first call (then kept).

    :raises TypeError: if the setting is not a `.SessionConfig`.
    :raises ConfigError: if there is no setting and the environment's
        cannot be used: the same error at every call, logged once in full
        and then at most once a minute.
    """
    config = app.settings.get("session_config")
    if config is not None:
        if not isinstance(config, SessionConfig):
            raise TypeError("the session_config application setting must be a SessionConfig")
        return config
    found = app.__dict__.get(_ATTR)
    if isinstance(found, SessionConfig):
        return found
    if isinstance(found, ConfigError):
        reminders: RateLimitedLog = app.__dict__[_REMINDERS_ATTR]
        reminders.warning(
            "config",
            "Answering 500: the application has no session_config setting and its "
            "SESSION_* settings could not be read (%s); %s",
            found,
            _FIX,
        )
        raise found
    try:
        config = SessionConfig.from_env()
    except ConfigError as exc:
        setattr(app, _ATTR, exc)
        reminders = RateLimitedLog(log, interval=REMINDER_INTERVAL)
        setattr(app, _REMINDERS_ATTR, reminders)
        reminders.warning(
            "config",
            "The application has no session_config setting, and SessionConfig.from_env() "
            "failed: %s. Every request answers 500 until this is fixed and the application "
            "restarted; %s",
            exc,
            _FIX,
            level=logging.ERROR,
        )
        raise
    log.info(
        "The application has no session_config setting: the SESSION_* settings were read "
        "once, now, with SessionConfig.from_env(); %s",
        _FIX,
    )
    setattr(app, _ATTR, config)
    return config
