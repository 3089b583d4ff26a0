"""Configuration: every setting, typed and checked, in one frozen object.

Settings come from environment variables, or from a ``.env`` file in the
current working directory (the environment wins), through python-decouple
(`.env`, which reads them).  `SessionConfig.from_env` reads every
``SESSION_*`` variable once, checks it, and returns one frozen, typed
`SessionConfig`; nothing else in the package looks at the environment.

The module also exports `config`, the decouple callable it uses, so an
application reads its own variables the same way::

    from tornado_sessions.config import config

    PORT = config("PORT", default=8888, cast=int)
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections.abc import Callable
from typing import Any, Literal, Self

from .cookies import CookieSpec as CookieSpec
from .cookies import cookie_specs
from .crypto import MIN_SECRET_LENGTH as MIN_SECRET_LENGTH
from .crypto import secret_problem
from .env import ENV_NAMES as ENV_NAMES
from .env import config as config
from .env import looked_in as _looked_in
from .env import parse as _parse
from .errors import ConfigError
from .stores.mysql.charset import refused_variable
from .stores.mysql.driver import choose as _choose_driver
from .values import MAX_COOKIE_LIFETIME as MAX_COOKIE_LIFETIME

__all__ = ["CookieSpec", "DatabaseConfig", "SessionConfig", "config", "generate_secret"]

SameSite = Literal["lax", "strict", "none"]


#: The default session lifetime in seconds (the original app's 2,628,000,000 ms).
DEFAULT_MAX_AGE = 2_628_000
_TABLE = re.compile(r"\A[A-Za-z0-9_]{1,64}\Z")

_SECRET_HELP = (
    'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))" '
    "(or python -m tornado_sessions secret) and put it in the environment or in .env"
)


def _seconds_hint(value: int) -> str:
    """A hint for a lifetime too long in seconds that would fit in
    milliseconds, express-session's unit (``2628000000`` for 30.4 days)."""
    if value <= MAX_COOKIE_LIFETIME or value // 1000 > MAX_COOKIE_LIFETIME:
        return ""
    seconds = value // 1000
    return (
        f"; times are in seconds here, not milliseconds as in express-session: "
        f"{value} ms would be {seconds} ({seconds / 86400:.1f} days)"
    )


def generate_secret() -> str:
    """Return a new random secret suitable for ``SESSION_SECRET`` (64 characters)."""
    import secrets

    return secrets.token_urlsafe(48)


_DB_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_DB_VALUE = re.compile(r"-?[0-9]{1,18}\Z|[A-Za-z0-9_.\-]{1,64}\Z")


def _name(field: str) -> str:
    return f"{ENV_NAMES[field]} (SessionConfig.{field})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    """The MySQL/MariaDB settings alone, typed and checked.

    .. example: database-config given imports module

    What the operations command line (``python -m tornado_sessions``) reads:
    it never handles a cookie, so it needs no ``SESSION_SECRET``.
    `SessionConfig` has these fields too (it is a `DatabaseConfig`), so an
    application reads everything once::

        database = DatabaseConfig.from_env()  # SESSION_HOST, SESSION_PORT, ...

    .. versionadded:: 0.2
    """

    host: str | None = None
    port: int = 3306
    user: str | None = None
    password: str = dataclasses.field(default="", repr=False)
    database: str | None = None
    table: str = "sessions"
    pool_size: int = 10
    #: Seconds to wait for a connection, a pool slot or a statement.
    db_timeout: float = 5.0
    #: Server variables each connection of MySQLStore's own pool sets
    #: (``SESSION_DB_VARIABLES="wsrep_sync_wait=1,max_statement_time=5"``).
    db_variables: tuple[tuple[str, str], ...] = ()
    #: ``auto`` (asyncmy if installed, else aiomysql), ``aiomysql`` or ``asyncmy``.
    db_driver: str = "auto"
    #: The clock (seconds since the epoch); tests inject their own.
    clock: Callable[[], float] = dataclasses.field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        for label in ("pool_size", "port"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{_name(label)} must be a positive whole number, not {value!r}")
        if self.port > 65535:
            raise ConfigError(f"{_name('port')} must be between 1 and 65535, not {self.port}")
        if not (isinstance(self.db_timeout, (int, float)) and self.db_timeout > 0):
            raise ConfigError(f"{_name('db_timeout')} must be a positive number of seconds")
        if not isinstance(self.table, str) or not _TABLE.match(self.table):
            raise ConfigError(
                f"{_name('table')} must be letters, digits and underscores (at most 64), "
                f"not {self.table!r}"
            )
        _choose_driver(self.db_driver, source=_name("db_driver"))
        object.__setattr__(self, "db_driver", str(self.db_driver).strip().lower())
        if isinstance(self.db_variables, dict):
            object.__setattr__(self, "db_variables", tuple(self.db_variables.items()))
        for pair in self.db_variables:
            if not (isinstance(pair, tuple) and len(pair) == 2 and _DB_VARIABLE.match(pair[0])):
                raise ConfigError(
                    f"{_name('db_variables')} must be name=value pairs separated by commas, "
                    f"such as wsrep_sync_wait=1; {pair!r} is not one"
                )
            refused = refused_variable(pair[0], _name("db_variables"))
            if refused is not None:
                raise refused
            if not _DB_VALUE.match(str(pair[1])):
                raise ConfigError(
                    f"{_name('db_variables')}: the value of {pair[0]} must be a whole number or "
                    f"a plain word (letters, digits, _ . -), not {pair[1]!r}"
                )

    def replace(self, **changes: Any) -> Self:
        """Return a copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, config: Callable[..., Any] | None = None, **overrides: Any) -> Self:
        """Read this class's ``SESSION_*`` variables and return a checked config.

        :param config: a decouple-style ``config(name, default=...)``
            callable; by default the module's `config` (environment, then
            ``.env`` in the current directory).
        :param overrides: field values that win over the environment.
        :raises ConfigError: naming the variable and the accepted values.
        """
        cfg = config if config is not None else globals()["config"]
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in ENV_NAMES or field.name in overrides:
                continue
            raw = cfg(ENV_NAMES[field.name], default=None)
            if raw is None or (raw == "" and field.name != "password"):
                continue
            values[field.name] = _parse(field.name, str(raw))
        values.update(overrides)
        if "secret" in {f.name for f in dataclasses.fields(cls)} and "secret" not in values:
            where = _looked_in(ENV_NAMES["secret"], cfg)
            raise ConfigError(f"{_name('secret')} is not set ({where}): {_SECRET_HELP}")
        return cls(**values)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionConfig(DatabaseConfig):
    """All session settings, typed and checked.

    Build it from the environment with `from_env` (the usual way), or directly
    with keyword arguments; both check every value and raise `.ConfigError`
    naming the variable.  Pass it to the application as the
    ``session_config`` setting; without one, `.SessionMixin` calls
    `from_env` on first use.

    Each field's environment variable is listed in the docs' configuration
    reference; the defaults are secure (``Secure``, ``HttpOnly``,
    ``SameSite=Lax``, a ``__Host-`` cookie name).  The MySQL/MariaDB fields
    (``host``, ``port``, ``user``, ``password``, ``database``, ``table``,
    ``pool_size``, ``db_timeout``) are those of `DatabaseConfig`.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       The secret and each fallback must look random (`.crypto.secret_problem`),
       and the fallbacks must differ from the secret and from each other.
    .. versionchanged:: 0.2
       ``persistent`` (``SESSION_COOKIE_PERSISTENT``): browser-session cookies.
    .. versionchanged:: 0.3
       ``secure="auto"`` (``SESSION_COOKIE_SECURE=auto``); `cookie_for`.
    """

    #: The current secret (``SESSION_SECRET``): random, at least 32 characters.
    secret: str = dataclasses.field(repr=False)
    #: Older secrets still accepted for reading (``SESSION_SECRET_FALLBACKS``).
    secret_fallbacks: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    #: Cookie name; by default ``__Host-session`` when the cookie can carry the
    #: ``__Host-`` prefix (secure, path ``/``, no domain), else ``session``.
    cookie_name: str = ""
    #: Idle timeout in seconds: a session unused this long expires.
    max_age: int = DEFAULT_MAX_AGE
    #: Absolute timeout in seconds from creation, however active (None: off).
    absolute_max_age: int | None = None
    #: Extend a read-only session's expiry at most this often (seconds);
    #: None means 10% of the session's max age.
    touch_interval: int | None = None
    #: Send the cookie with ``Secure`` (``SESSION_COOKIE_SECURE``): true,
    #: false, or ``"auto"``: ``Secure`` exactly on requests Tornado sees as
    #: https (behind a TLS-terminating proxy, only with ``xheaders=True``);
    #: see `cookie_for`.
    secure: bool | Literal["auto"] = True
    httponly: bool = True
    samesite: SameSite = "lax"
    domain: str | None = None
    path: str = "/"
    #: Give the cookie ``Max-Age`` and ``Expires`` (the session's expiry), so
    #: that it outlives the browser.  False: a browser-session cookie (no
    #: ``Max-Age`` nor ``Expires``, gone when the browser closes; express's
    #: ``cookie.maxAge`` unset), except for a session given a lifetime of
    #: its own with `.Session.set_expiry` ("remember me"), whose cookie lasts
    #: exactly that lifetime.  The server ends every session after ``max_age``
    #: idle (and at ``absolute_max_age``) either way.
    persistent: bool = True
    #: Write unmodified sessions back on every request (express ``resave``).
    resave: bool = False
    #: Store new sessions that were never modified (express ``saveUninitialized``).
    save_uninitialized: bool = False
    #: Re-send the cookie, and extend the expiry, on every response.
    rolling: bool = False
    #: Largest serialized session accepted at save, in bytes.
    max_data_size: int = 1024 * 1024
    #: Session key whose value binds the session to a user (indexed by stores).
    user_key: str = "user_id"
    #: Record the client's IP address and User-Agent with each session (for a
    #: "my sessions" page); off by default.
    track_client: bool = False
    #: The most live sessions one user may hold (``SESSION_MAX_PER_USER``);
    #: when a login goes past it, the least recently used others end.  None:
    #: no limit.
    max_sessions_per_user: int | None = None
    #: Seconds between two checks of the sessions of this process's open
    #: WebSockets (``SESSION_REVOCATION_INTERVAL``): a socket whose session
    #: ended in another process is closed within about this long (see
    #: `.revocation`).  Each check is one statement, whatever the number of
    #: sockets.
    revocation_interval: float = 5.0

    def __post_init__(self) -> None:
        self._check_secrets()
        super().__post_init__()
        if self.samesite not in ("lax", "strict", "none"):
            raise ConfigError(
                f"{_name('samesite')} is {self.samesite!r}; accepted values: lax, strict, none"
            )
        if not (isinstance(self.secure, bool) or self.secure == "auto"):
            raise ConfigError(
                f"{_name('secure')} is {self.secure!r}; accepted values: true, false, auto"
            )
        if self.samesite == "none" and self.secure is not True:
            raise ConfigError(
                f"{_name('samesite')}=none requires {_name('secure')}=true "
                "(browsers reject it otherwise, and auto sends it without Secure over http)"
            )
        for label in ("max_age", "max_data_size"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{_name(label)} must be a positive whole number, not {value!r}")
        if self.max_age > MAX_COOKIE_LIFETIME:
            raise ConfigError(
                f"{_name('max_age')} must be at most {MAX_COOKIE_LIFETIME} seconds (400 days, "
                f"the browsers' cap), not {self.max_age}{_seconds_hint(self.max_age)}"
            )
        if self.absolute_max_age is not None and (
            not isinstance(self.absolute_max_age, int) or self.absolute_max_age <= 0
        ):
            raise ConfigError(
                f"{_name('absolute_max_age')} must be a positive whole number of seconds "
                f"(or unset), not {self.absolute_max_age!r}"
            )
        if self.max_sessions_per_user is not None and (
            not isinstance(self.max_sessions_per_user, int)
            or isinstance(self.max_sessions_per_user, bool)
            or self.max_sessions_per_user < 1
        ):
            raise ConfigError(
                f"{_name('max_sessions_per_user')} must be a whole number of sessions >= 1 "
                f"(or unset for no limit), not {self.max_sessions_per_user!r}"
            )
        if (
            isinstance(self.revocation_interval, bool)
            or not isinstance(self.revocation_interval, (int, float))
            or not self.revocation_interval > 0
        ):
            raise ConfigError(
                f"{_name('revocation_interval')} must be a positive number of seconds, "
                f"not {self.revocation_interval!r}"
            )
        if self.touch_interval is not None and (
            not isinstance(self.touch_interval, int) or self.touch_interval < 0
        ):
            raise ConfigError(
                f"{_name('touch_interval')} must be a whole number of seconds >= 0 "
                f"(or unset), not {self.touch_interval!r}"
            )
        if not self.path.startswith("/"):
            raise ConfigError(f"{_name('path')} must start with '/', not {self.path!r}")
        if not self.user_key:
            raise ConfigError(f"{_name('user_key')} must not be empty")
        if not self.cookie_name:
            host_ok = self.secure is not False and self.path == "/" and not self.domain
            object.__setattr__(self, "cookie_name", "__Host-session" if host_ok else "session")
        name = self.cookie_name
        if any(c in name for c in ' \t\r\n;,="()<>@:\\/[]?{}') or not name.isascii():
            raise ConfigError(f"{_name('cookie_name')} {name!r} is not a valid cookie name")
        if name.startswith("__Host-") and (self.secure is False or self.path != "/" or self.domain):
            raise ConfigError(
                f"{_name('cookie_name')} {name!r} has the __Host- prefix, which browsers accept "
                f"only with {_name('secure')}=true, {_name('path')}=/ and no "
                f"{_name('domain')}: change one or the other"
            )
        if name.startswith("__Secure-") and self.secure is False:
            raise ConfigError(
                f"{_name('cookie_name')} {name!r} has the __Secure- prefix, which requires "
                f"{_name('secure')}=true"
            )

    def _check_secrets(self) -> None:
        if not isinstance(self.secret, str) or not self.secret:
            raise ConfigError(f"{_name('secret')} is not set: {_SECRET_HELP}")
        fallbacks = self.secret_fallbacks
        if isinstance(fallbacks, str) or not all(isinstance(s, str) for s in fallbacks):
            raise ConfigError(f"{_name('secret_fallbacks')} must be a tuple of strings")
        named = [(_name("secret"), self.secret)] + [
            (f"{_name('secret_fallbacks')} entry {n}", s) for n, s in enumerate(fallbacks, 1)
        ]
        for label, value in named:
            problem = secret_problem(value)
            if problem is not None:
                raise ConfigError(f"{label} {problem}: {_SECRET_HELP}")
        for n, value in enumerate(fallbacks, 1):
            if value == self.secret:
                raise ConfigError(
                    f"{_name('secret_fallbacks')} entry {n} is the same as {_name('secret')}: "
                    "a fallback is an older secret, still accepted while cookies move to the "
                    "new one; remove it, or set a new SESSION_SECRET and keep the old one as "
                    f"the fallback ({_SECRET_HELP})"
                )
            if value in fallbacks[: n - 1]:
                first = fallbacks.index(value) + 1
                raise ConfigError(
                    f"{_name('secret_fallbacks')} entry {n} repeats entry {first}: "
                    "list each older secret once"
                )

    def cookie_for(self, protocol: str) -> CookieSpec:
        """The cookie's name and ``Secure`` flag for a request that Tornado
        sees as ``protocol`` (``request.protocol``: ``"https"`` or ``"http"``;
        with ``xheaders=True``, what the proxy's ``X-Forwarded-Proto`` says).

        With ``secure`` true or false: `cookie_name` and that flag, whatever
        the protocol.  With ``"auto"``: on https, `cookie_name` (by default
        ``__Host-session``) with ``Secure``; on http, the same name without
        its ``__Host-`` or ``__Secure-`` prefix (``session``), which browsers
        accept only with ``Secure``, and no ``Secure``.  The cookie is read
        back under the name that fits the request, so each protocol has its
        own session.

        .. versionadded:: 0.3
        """
        https, http = self._cookie_specs
        return https if protocol == "https" else http

    @functools.cached_property
    def _cookie_specs(self) -> tuple[CookieSpec, CookieSpec]:
        return cookie_specs(self.cookie_name, self.secure)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The current secret followed by the fallbacks (newest first)."""
        return (self.secret, *self.secret_fallbacks)

    @property
    def cookie_ttl(self) -> int:
        """The longest a cookie can be valid: the ttl passed to Fernet."""
        if self.absolute_max_age is not None:
            return min(self.absolute_max_age, MAX_COOKIE_LIFETIME)
        return MAX_COOKIE_LIFETIME
