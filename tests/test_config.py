"""SessionConfig: environment, .env in the working directory, and errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tornado_sessions import ConfigError, SessionConfig
from tornado_sessions.config import ENV_NAMES

GOOD = "good-3Fiw6CXWtkR8WTDvF_nebqed_nc8KGjuRXYF42guyFE"
OLD1 = "MNrwNDz65Faoa6Fa-iEn5wNSEvMsoePi8FoeSjcLmnE"
OLD2 = "IiqOQyDk65n_UWjCsIhU71hq_Gl-ccttZpZso6ryA3Q"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_secure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", GOOD)
    config = SessionConfig.from_env()
    assert config.secure and config.httponly
    assert config.samesite == "lax"
    assert config.path == "/" and config.domain is None
    assert config.persistent is True
    assert config.cookie_name == "__Host-session"
    assert config.max_age == 2_628_000
    assert not config.resave and not config.save_uninitialized and not config.rolling
    assert config.max_data_size == 1024 * 1024


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SESSION_SECRET": GOOD,
        "SESSION_SECRET_FALLBACKS": OLD1 + ", " + OLD2,
        "SESSION_COOKIE_NAME": "sid",
        "SESSION_MAX_AGE": "3600",
        "SESSION_ABSOLUTE_MAX_AGE": "28800",
        "SESSION_TOUCH_INTERVAL": "60",
        "SESSION_COOKIE_SECURE": "false",
        "SESSION_COOKIE_HTTPONLY": "no",
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_DOMAIN": "example.com",
        "SESSION_COOKIE_PATH": "/app",
        "SESSION_COOKIE_PERSISTENT": "off",
        "SESSION_RESAVE": "1",
        "SESSION_SAVE_UNINITIALIZED": "on",
        "SESSION_ROLLING": "yes",
        "SESSION_MAX_DATA_SIZE": "2048",
        "SESSION_USER_KEY": "uid",
        "SESSION_TRACK_CLIENT": "true",
        "SESSION_MAX_PER_USER": "3",
        "SESSION_REVOCATION_INTERVAL": "1.5",
        "SESSION_HOST": "db.internal",
        "SESSION_PORT": "3307",
        "SESSION_USER": "app",
        "SESSION_PASSWORD": "pw",
        "SESSION_DATABASE": "appdb",
        "SESSION_TABLE": "web_sessions",
        "SESSION_POOL_SIZE": "4",
        "SESSION_DB_TIMEOUT": "2.5",
        "SESSION_DB_VARIABLES": "wsrep_sync_wait=3, max_statement_time=10",
        "SESSION_DB_DRIVER": "AIOMySQL ",
    }
    assert set(env) == set(ENV_NAMES.values())
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    c = SessionConfig.from_env()
    assert c.secret_fallbacks == (OLD1, OLD2)
    assert c.secrets == (GOOD, OLD1, OLD2)
    assert (c.cookie_name, c.max_age, c.absolute_max_age, c.touch_interval) == (
        "sid",
        3600,
        28800,
        60,
    )
    assert (c.secure, c.httponly, c.samesite, c.domain, c.path) == (
        False,
        False,
        "strict",
        "example.com",
        "/app",
    )
    assert c.persistent is False
    assert (c.resave, c.save_uninitialized, c.rolling) == (True, True, True)
    assert (c.max_data_size, c.user_key, c.track_client) == (2048, "uid", True)
    assert c.max_sessions_per_user == 3
    assert (c.host, c.port, c.user, c.password, c.database) == (
        "db.internal",
        3307,
        "app",
        "pw",
        "appdb",
    )
    assert (c.table, c.pool_size, c.db_timeout) == ("web_sessions", 4, 2.5)
    assert c.revocation_interval == 1.5
    assert c.db_variables == (("wsrep_sync_wait", "3"), ("max_statement_time", "10"))
    assert c.db_driver == "aiomysql"


def test_dotenv_in_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"SESSION_SECRET={GOOD}\nSESSION_MAX_AGE=600\n")
    config = SessionConfig.from_env()
    assert config.max_age == 600
    monkeypatch.setenv("SESSION_MAX_AGE", "900")  # the environment wins over .env
    assert SessionConfig.from_env().max_age == 900


def test_app_variables_through_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tornado_sessions.config import config

    (tmp_path / ".env").write_text("APP_PORT=9000\n")
    assert config("APP_PORT", cast=int) == 9000
    assert config("APP_MISSING", default="x") == "x"


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", GOOD)
    monkeypatch.setenv("SESSION_MAX_AGE", "600")
    assert SessionConfig.from_env(max_age=60).max_age == 60


def _error(env: dict[str, str], **kwargs: Any) -> str:
    for k, v in env.items():
        os.environ[k] = v
    try:
        with pytest.raises(ConfigError) as info:
            SessionConfig.from_env(**kwargs)
    finally:
        for k in env:
            del os.environ[k]
    return str(info.value)


def test_missing_secret_says_how_to_make_one() -> None:
    message = _error({})
    assert "SESSION_SECRET" in message
    assert "secrets.token_urlsafe" in message


def test_missing_secret_names_the_env_file_looked_in(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    message = _error({})
    assert f"looked for in the environment and in {env_file}, which does not exist" in message
    env_file.write_text("SESSION_MAX_AGE=600\n")
    assert f"in {env_file}, which does not set it" in _error({})
    env_file.write_text("SESSION_SECRET=\n")
    assert f"in {env_file}, which sets it empty" in _error({})


def test_missing_secret_through_a_config_callable_says_so() -> None:
    with pytest.raises(ConfigError, match="through the config callable given to from_env"):
        SessionConfig.from_env(lambda name, default=None: default)


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("2628000000", "2628000000 ms would be 2628000 (30.4 days)"),  # express's maxAge
        ("86400000", "86400000 ms would be 86400 (1.0 days)"),
        ("99999999999", None),  # too long in milliseconds too: no hint
    ],
)
def test_a_max_age_in_milliseconds_gets_a_hint(value: str, hint: str | None) -> None:
    message = _error({"SESSION_SECRET": GOOD, "SESSION_MAX_AGE": value})
    assert "SESSION_MAX_AGE" in message and "at most 34560000 seconds" in message
    if hint is None:
        assert "milliseconds" not in message
    else:
        assert "in seconds here, not milliseconds as in express-session" in message
        assert hint in message
    with pytest.raises(ConfigError, match="milliseconds" if hint else "400 days"):
        SessionConfig(secret=GOOD, max_age=int(value))


def test_short_secret() -> None:
    message = _error({"SESSION_SECRET": "short"})
    assert "SESSION_SECRET" in message and "at least 32" in message
    assert "short" not in message.split("(")[0]  # the value itself is never echoed


def test_short_fallback() -> None:
    message = _error({"SESSION_SECRET": GOOD, "SESSION_SECRET_FALLBACKS": "tiny"})
    assert "SESSION_SECRET_FALLBACKS" in message


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("SESSION_PORT", "abc", "SESSION_PORT='abc' is not a whole number"),
        ("SESSION_PORT", "70000", "between 1 and 65535"),
        ("SESSION_COOKIE_SAMESITE", "sometimes", "accepted values: lax, strict, none"),
        ("SESSION_COOKIE_SECURE", "maybe", "accepted values: true, false"),
        ("SESSION_COOKIE_PERSISTENT", "browser", "accepted values: true, false"),
        ("SESSION_MAX_AGE", "-5", "positive whole number"),
        ("SESSION_MAX_AGE", "99999999999", "400 days"),
        ("SESSION_DB_TIMEOUT", "soon", "number of seconds"),
        ("SESSION_COOKIE_PATH", "app", "must start with '/'"),
        ("SESSION_TABLE", "x; DROP TABLE y", "letters, digits and underscores"),
        ("SESSION_COOKIE_NAME", "a;b", "not a valid cookie name"),
        ("SESSION_DB_VARIABLES", "wsrep_sync_wait", "is not name=value"),
        ("SESSION_DB_VARIABLES", "x=1; DROP TABLE y", "a whole number or a plain word"),
        ("SESSION_DB_VARIABLES", "sql mode=1", "name=value pairs"),
        ("SESSION_DB_VARIABLES", "a=it's", "a whole number or a plain word"),
        ("SESSION_DB_DRIVER", "pymysql", "accepted values: auto, aiomysql, asyncmy"),
        ("SESSION_DB_DRIVER", "mysqlclient", "is not a database driver"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str, expect: str) -> None:
    message = _error({"SESSION_SECRET": GOOD, var: value})
    assert var in message
    assert expect in message


@pytest.mark.parametrize("name", ["t\u00e0ble", "sessions\n", "", "a" * 65, "x-y"])
def test_table_name_is_ascii_letters_digits_and_underscores(name: str) -> None:
    with pytest.raises(ConfigError, match="SESSION_TABLE"):
        SessionConfig(secret=GOOD, table=name)
    assert SessionConfig(secret=GOOD, table="web_sessions_2").table == "web_sessions_2"


def test_host_prefix_rules() -> None:
    message = _error(
        {
            "SESSION_SECRET": GOOD,
            "SESSION_COOKIE_NAME": "__Host-x",
            "SESSION_COOKIE_DOMAIN": "a.com",
        }
    )
    assert "__Host-" in message and "SESSION_COOKIE_DOMAIN" in message
    # Without an explicit name, an insecure cookie falls back to a plain name.
    assert SessionConfig(secret=GOOD, secure=False).cookie_name == "session"
    assert SessionConfig(secret=GOOD, path="/app").cookie_name == "session"


def test_samesite_none_needs_secure() -> None:
    message = _error(
        {
            "SESSION_SECRET": GOOD,
            "SESSION_COOKIE_SAMESITE": "none",
            "SESSION_COOKIE_SECURE": "false",
        }
    )
    assert "SESSION_COOKIE_SECURE" in message


def test_absolute_timeout_zero_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", GOOD)
    monkeypatch.setenv("SESSION_ABSOLUTE_MAX_AGE", "0")
    assert SessionConfig.from_env().absolute_max_age is None


def test_a_table_name_with_a_trailing_newline_is_refused() -> None:
    from tornado_sessions import ConfigError
    from tornado_sessions.stores.mysql.schema import check_table_name

    for bad in ("sessions\n", "sessions\r\n", "sess ions", ""):
        with pytest.raises(ConfigError, match="SESSION_TABLE"):
            SessionConfig(secret=GOOD, table=bad)
        with pytest.raises(ConfigError, match="SESSION_TABLE"):
            check_table_name(bad)
    assert check_table_name("sessions_2") == "sessions_2"


def test_db_driver_defaults_to_auto_and_asyncmy_needs_its_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SessionConfig(secret=GOOD).db_driver == "auto"
    # Without the extra, importing asyncmy fails: asking for it names the extra.
    monkeypatch.setitem(sys.modules, "asyncmy", None)
    message = _error({"SESSION_SECRET": GOOD, "SESSION_DB_DRIVER": "asyncmy"})
    assert "SESSION_DB_DRIVER" in message
    assert "pip install 'tornado_sessions[asyncmy]'" in message
    assert SessionConfig(secret=GOOD, db_driver="aiomysql").db_driver == "aiomysql"
