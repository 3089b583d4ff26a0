"""The test command is independent of the developer's settings: with a
``.env`` made by ``cp .env.example .env`` and edited (another server, a
weak password, other cookie settings), and ``SESSION_*`` variables in the
environment, the suite runs exactly as without them.

Checked from outside: pytest is run in a subprocess from a directory that
holds such a ``.env``, with such variables set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tornado_sessions import ConfigError, SessionConfig

ROOT = Path(__file__).resolve().parents[1]

USERS_ENV = """\
SESSION_SECRET=tornado
SESSION_COOKIE_SECURE=false
SESSION_COOKIE_NAME=shop
SESSION_MAX_AGE=5
SESSION_HOST=192.0.2.1
SESSION_USER=tornado
SESSION_PASSWORD=tornado
SESSION_DATABASE=tornado_sessions
"""


def test_no_session_variable_and_no_env_file_inside_the_suite() -> None:
    assert [k for k in os.environ if k.startswith("SESSION_")] == []
    assert not Path(".env").exists()
    assert Path.cwd().resolve() != ROOT and ROOT not in Path.cwd().resolve().parents
    try:
        SessionConfig.from_env()
    except ConfigError as exc:
        assert "SESSION_SECRET" in str(exc) and "which does not exist" in str(exc)
    else:
        raise AssertionError("from_env() found a secret")


def test_a_developers_env_file_and_variables_change_nothing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(USERS_ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(SESSION_COOKIE_SAMESITE="strict", SESSION_ROLLING="true")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={ROOT}",
            str(ROOT / "tests" / "test_config.py") + "::test_defaults_are_secure",
            str(ROOT / "tests" / "test_missing_config.py"),
            str(ROOT / "tests" / "test_suite_isolation.py")
            + "::test_no_session_variable_and_no_env_file_inside_the_suite",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "6 passed" in result.stdout
