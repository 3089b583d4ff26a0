"""Reading the environment: the ``SESSION_*`` variables, from the process's
environment or from ``.env`` in the current working directory (the
environment wins), through python-decouple, and their text turned into typed
values.  With `.config` (which checks the values and builds the frozen
`.SessionConfig`), the only code of the package that reads the environment.

The module also exports `config`, the decouple callable it uses, so an
application reads its own variables the same way (it is re-exported by
`.config`)::

    from tornado_sessions.config import config

    PORT = config("PORT", default=8888, cast=int)

.. versionadded:: 0.2
   (Moved out of ``config.py``.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from decouple import Config, RepositoryEmpty, RepositoryEnv

from .errors import ConfigError

__all__ = ["ENV_NAMES", "config", "looked_in", "parse"]


class _DotEnvInCwd(RepositoryEmpty):  # type: ignore[misc]
    """A decouple repository over ``.env`` in the *current* directory.

    decouple's own ``config`` looks for ``.env`` next to the calling module,
    which for an installed library is site-packages.  This one follows the
    working directory of the application, re-reading if it changes.
    """

    def __init__(self) -> None:
        self._path: str | None = None
        self._repo: Any = RepositoryEmpty()

    def _current(self) -> Any:
        path = self.path()
        if path != self._path:
            self._path = path
            self._repo = RepositoryEnv(path) if os.path.isfile(path) else RepositoryEmpty()
        return self._repo

    @staticmethod
    def path() -> str:
        """The ``.env`` file read now: the one in the current directory."""
        return os.path.join(os.getcwd(), ".env")

    def looked_in(self, var: str) -> str:
        """Where ``var`` was looked for, for an error saying it is not set."""
        path = self.path()
        if not os.path.isfile(path):
            found = "which does not exist"
        elif var in RepositoryEnv(path):
            found = "which sets it empty"
        else:
            found = "which does not set it"
        return f"looked for in the environment and in {path}, {found}"

    def __contains__(self, key: str) -> bool:
        return key in self._current()

    def __getitem__(self, key: str) -> str:
        return cast(str, self._current()[key])


#: The python-decouple ``config`` callable: environment first, then ``.env``
#: in the current working directory.  ``config(name, default=..., cast=...)``.
_DOTENV = _DotEnvInCwd()
config: Callable[..., Any] = Config(_DOTENV)


def looked_in(var: str, source: Callable[..., Any] | None = None) -> str:
    """Where a missing variable was looked for (the ``.env`` path included)."""
    if source is not None and source is not config:
        return "looked for through the config callable given to from_env()"
    return _DOTENV.looked_in(var)


# field name -> environment variable
ENV_NAMES: dict[str, str] = {
    "secret": "SESSION_SECRET",
    "secret_fallbacks": "SESSION_SECRET_FALLBACKS",
    "cookie_name": "SESSION_COOKIE_NAME",
    "max_age": "SESSION_MAX_AGE",
    "absolute_max_age": "SESSION_ABSOLUTE_MAX_AGE",
    "touch_interval": "SESSION_TOUCH_INTERVAL",
    "secure": "SESSION_COOKIE_SECURE",
    "httponly": "SESSION_COOKIE_HTTPONLY",
    "samesite": "SESSION_COOKIE_SAMESITE",
    "domain": "SESSION_COOKIE_DOMAIN",
    "path": "SESSION_COOKIE_PATH",
    "persistent": "SESSION_COOKIE_PERSISTENT",
    "resave": "SESSION_RESAVE",
    "save_uninitialized": "SESSION_SAVE_UNINITIALIZED",
    "rolling": "SESSION_ROLLING",
    "max_data_size": "SESSION_MAX_DATA_SIZE",
    "user_key": "SESSION_USER_KEY",
    "track_client": "SESSION_TRACK_CLIENT",
    "max_sessions_per_user": "SESSION_MAX_PER_USER",
    "revocation_interval": "SESSION_REVOCATION_INTERVAL",
    "host": "SESSION_HOST",
    "port": "SESSION_PORT",
    "user": "SESSION_USER",
    "password": "SESSION_PASSWORD",
    "database": "SESSION_DATABASE",
    "table": "SESSION_TABLE",
    "pool_size": "SESSION_POOL_SIZE",
    "db_timeout": "SESSION_DB_TIMEOUT",
    "db_variables": "SESSION_DB_VARIABLES",
    "db_driver": "SESSION_DB_DRIVER",
}

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


_INT_FIELDS = {
    "max_sessions_per_user",
    "max_age",
    "absolute_max_age",
    "touch_interval",
    "max_data_size",
    "port",
    "pool_size",
}
_BOOL_FIELDS = {
    "secure",
    "httponly",
    "persistent",
    "resave",
    "save_uninitialized",
    "rolling",
    "track_client",
}


def parse(field: str, raw: str) -> Any:
    """The typed value of ``raw``, the text of field ``field``'s variable.

    :raises ConfigError: naming the variable and what it accepts.
    """
    var = ENV_NAMES[field]
    value = raw.strip()
    if field in _INT_FIELDS:
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a whole number") from None
        if field in ("absolute_max_age", "max_sessions_per_user") and number == 0:
            return None  # 0 switches the absolute timeout (or the limit) off
        return number
    if field == "db_variables":
        pairs = []
        for item in value.split(","):
            name, sep, setting = item.partition("=")
            if not item.strip():
                continue
            if not sep:
                raise ConfigError(
                    f"{var}={raw!r}: {item.strip()!r} is not name=value (e.g. wsrep_sync_wait=1)"
                )
            pairs.append((name.strip(), setting.strip()))
        return tuple(pairs)
    if field in ("db_timeout", "revocation_interval"):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{var}={raw!r} is not a number of seconds") from None
    if field == "secure" and value.lower() == "auto":
        return "auto"
    if field in _BOOL_FIELDS:
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        auto = ", auto" if field == "secure" else ""
        raise ConfigError(
            f"{var}={raw!r} is not a boolean; accepted values: true, false (1/0, yes/no, "
            f"on/off){auto}"
        )
    if field == "samesite":
        lowered = value.lower()
        if lowered not in ("lax", "strict", "none"):
            raise ConfigError(f"{var}={raw!r} is not accepted; accepted values: lax, strict, none")
        return lowered
    if field == "secret_fallbacks":
        return tuple(s.strip() for s in value.split(",") if s.strip())
    if field == "password":
        return raw
    return value
