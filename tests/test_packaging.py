"""The package as a user installs it: build the wheel, run an app from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_a_users_app_works(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("tornado_sessions-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for module in (
        "__init__.py",
        "py.typed",
        "mixin.py",
        "testing.py",
        "values.py",
        "saves.py",
        "stores/mysql/__init__.py",
        "stores/mysql/store.py",
        "stores/mysql/admin.py",
        "stores/mysql/batching.py",
        "stores/mysql/cluster.py",
        "stores/mysql/connection.py",
        "stores/mysql/hints.py",
        "stores/mysql/schema.py",
        "stores/mysql/statements.py",
        "stores/memory.py",
        "__main__.py",
    ):
        assert f"tornado_sessions/{module}" in names, module
    # 0.1's single module must not linger beside the package.
    assert "tornado_sessions/stores/mysql.py" not in names
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    env["PYTHONPATH"] = str(tmp_path / "site")
    env["SESSION_SECRET"] = "a-users-own-secret-W0efHCzqmEprqtijMTVDn2I6A7fuBa3DVJ6FZHuKJUM"
    result = subprocess.run(
        [sys.executable, "-B", str(ROOT / "tests" / "data" / "user_app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"tornado_sessions from {tmp_path / 'site'}" in result.stdout
    for check in (
        "counter: ok",
        "login with regenerate, redirect-then-read: ok",
        "tampered cookie: ok",
        "logout: ok",
    ):
        assert check in result.stdout
