"""Server-side sessions for Tornado: an encrypted cookie names a session kept
in MySQL/MariaDB (or memory, for development).

.. versionadded:: 0.1
"""

from typing import Any

from .config import SessionConfig as SessionConfig
from .errors import ConfigError as ConfigError
from .errors import SessionError as SessionError
from .errors import SessionNotLoadedError as SessionNotLoadedError
from .errors import SessionTooLarge as SessionTooLarge
from .errors import StoreError as StoreError
from .manager import SessionManager as SessionManager
from .mixin import SessionMixin as SessionMixin
from .session import Session as Session
from .stores import MemoryStore as MemoryStore
from .stores import SessionInfo as SessionInfo
from .stores import SessionRecord as SessionRecord
from .stores import SessionStore as SessionStore

__version__ = "0.3.0.dev0"

__all__ = [
    "ConfigError",
    "MemoryStore",
    "MySQLStore",
    "Session",
    "SessionConfig",
    "SessionError",
    "SessionInfo",
    "SessionManager",
    "SessionMixin",
    "SessionNotLoadedError",
    "SessionRecord",
    "SessionStore",
    "SessionTooLarge",
    "StoreError",
]


def __getattr__(name: str) -> Any:
    # MySQLStore imports aiomysql; load it only when asked for.
    if name == "MySQLStore":
        from .stores.mysql import MySQLStore

        return MySQLStore
    raise AttributeError(f"module 'tornado_sessions' has no attribute {name!r}")
