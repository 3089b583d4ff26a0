"""Session stores: where session records live."""

from .base import SessionInfo as SessionInfo
from .base import SessionRecord as SessionRecord
from .base import SessionStore as SessionStore
from .base import fingerprint as fingerprint
from .base import hash_sid as hash_sid
from .memory import MemoryStore as MemoryStore

__all__ = ["MemoryStore", "SessionInfo", "SessionRecord", "SessionStore", "fingerprint", "hash_sid"]
