"""``python -m demo`` itself (a real process), its config and ``.env.example``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from decouple import Config, RepositoryEnv

from demo.app import demo_config
from tornado_sessions import ConfigError, SessionConfig
from tornado_sessions.config import ENV_NAMES

from .conftest import ROOT, SECRET, clean_env, closed_port


def test_python_m_demo_serves_with_memory_store_and_throwaway_secret(run_demo: Any) -> None:
    proc, banner = run_demo(DEMO_PORT="0")  # DEMO_PORT is read; 0 picks a free port
    text = "\n".join(banner)
    match = re.search(r"open: +(http://localhost:(\d+)/)", text)
    assert match, text
    assert match.group(2) != "0"
    assert "MemoryStore" in text
    assert "SESSION_SECRET is not set" in text and "throwaway" in text
    assert "autoreload: on" in text

    with urllib.request.urlopen(match.group(1), timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
        cookies = response.headers.get_all("Set-Cookie")
    assert 'id="visits">1<' in page
    (session,) = [c for c in cookies if c.startswith("__Host-session=")]
    assert "Secure" in session and "HttpOnly" in session and "Max-Age=2628000" in session

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


def test_python_m_demo_port_option_wins_over_demo_port(run_demo: Any) -> None:
    port = closed_port()
    proc, banner = run_demo("--port", str(port), "--no-reload", DEMO_PORT=str(closed_port()))
    text = "\n".join(banner)
    assert f"open:       http://localhost:{port}/" in text
    assert "autoreload: off" in text
    with urllib.request.urlopen(f"http://localhost:{port}/notes", timeout=10) as response:
        assert response.status == 200
        assert "No notes yet." in response.read().decode()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


def test_unreachable_mysql_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--port", "0"],
        cwd=tmp_path,
        env=clean_env(
            SESSION_SECRET=SECRET,
            SESSION_HOST="127.0.0.1",
            SESSION_PORT=str(closed_port()),
            SESSION_USER="demo",
            SESSION_PASSWORD="hunter2-not-shown",
            SESSION_DATABASE="demo",
            SESSION_DB_TIMEOUT="3",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("demo: cannot "), lines[0]
    assert "127.0.0.1" in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_mysql_without_user_and_database_is_a_config_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--port", "0"],
        cwd=tmp_path,
        env=clean_env(SESSION_HOST="127.0.0.1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("demo: ")
    assert "SESSION_USER" in result.stderr and "SESSION_DATABASE" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_env_example_placeholder_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--port", "0"],
        cwd=tmp_path,  # reads .env from here
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SESSION_SECRET" in result.stderr and "placeholder" in result.stderr
    assert "secrets.token_urlsafe" in result.stderr
    assert "Traceback" not in result.stderr


# -- configuration ------------------------------------------------------------------


def fake_env(values: dict[str, str]) -> Any:
    def env(name: str, default: Any = None, cast: Any = None) -> Any:
        return values.get(name, default)

    return env


def test_demo_config_keeps_the_library_defaults_and_makes_a_throwaway_secret() -> None:
    config, throwaway = demo_config(fake_env({}))
    assert throwaway
    assert config == SessionConfig(secret=config.secret)  # every other field: the default
    assert config.save_uninitialized is False and config.track_client is False
    assert config.resave is False
    assert config.secure is True
    assert config.max_age == 2_628_000
    assert config.cookie_name == "__Host-session"
    again, _ = demo_config(fake_env({}))
    assert again.secret != config.secret


def test_demo_config_lets_the_environment_win() -> None:
    config, throwaway = demo_config(
        fake_env(
            {
                "SESSION_SECRET": SECRET,
                "SESSION_SAVE_UNINITIALIZED": "true",
                "SESSION_RESAVE": "true",
                "SESSION_COOKIE_SECURE": "false",
                "SESSION_MAX_AGE": "600",
            }
        )
    )
    assert not throwaway
    assert config.secret == SECRET
    assert (config.save_uninitialized, config.resave, config.secure) == (True, True, False)
    assert config.max_age == 600
    assert config.cookie_name == "session"


def test_env_example_lists_every_variable() -> None:
    path = ROOT / ".env.example"
    names = set(re.findall(r"^([A-Z_]+)=", path.read_text(), re.M))
    assert set(ENV_NAMES.values()) | {"DEMO_PORT"} <= names
    env = Config(RepositoryEnv(str(path)))
    assert env("DEMO_PORT", cast=int) == 8888
    # The placeholder secret is refused, with the command to make one.
    with pytest.raises(ConfigError, match="token_urlsafe"):
        SessionConfig.from_env(env)
    # (that its values are the library's defaults: tests/test_env_example.py)
