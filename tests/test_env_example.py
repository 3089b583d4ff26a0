""".env.example, which the README tells users to copy, keeps the library's defaults.

It once set ``SESSION_SAVE_UNINITIALIZED=true`` and ``SESSION_TRACK_CLIENT=true``
while the library defaults both off: every cookieless or hostile request then
cost an INSERT and left a row for a month.  Read with the library's own
config reader, the file must give exactly the defaults; express-session's
settings appear only commented out.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tornado_sessions import SessionConfig
from tornado_sessions.config import ENV_NAMES, generate_secret

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / ".env.example"

SECURITY_SETTINGS = {
    "cookie_name",
    "secure",
    "httponly",
    "samesite",
    "domain",
    "path",
    "max_age",
    "absolute_max_age",
    "touch_interval",
    "rolling",
    "resave",
    "save_uninitialized",
    "track_client",
    "max_data_size",
    "user_key",
}


@pytest.fixture
def copied_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``cp .env.example .env`` in an empty directory, with no SESSION_* set."""
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)
    (tmp_path / ".env").write_text(EXAMPLE.read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path / ".env"


def test_env_example_gives_the_library_defaults_for_every_setting(copied_env: Path) -> None:
    secret = generate_secret()
    # The library's own reader: the environment, then .env in the working directory.
    from_file = SessionConfig.from_env(secret=secret)
    defaults = SessionConfig(secret=secret)
    for field in SECURITY_SETTINGS:
        assert getattr(from_file, field) == getattr(defaults, field), field
    assert from_file == defaults  # the database settings too
    assert SECURITY_SETTINGS <= {f.name for f in dataclasses.fields(SessionConfig)}


def test_express_parity_settings_are_shown_commented_with_their_cost() -> None:
    text = EXAMPLE.read_text()
    for line in (
        "# SESSION_SAVE_UNINITIALIZED=true",
        "# SESSION_RESAVE=true",
        "# SESSION_TRACK_CLIENT=true",
    ):
        assert line in text.splitlines(), line
    block = text[: text.index("# SESSION_SAVE_UNINITIALIZED=true")]
    assert "costs" in block.rsplit("SESSION_SAVE_UNINITIALIZED=false", 1)[1]
    assert not re.search(r"^SESSION_(SAVE_UNINITIALIZED|TRACK_CLIENT|RESAVE)=true", text, re.M)
