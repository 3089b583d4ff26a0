"""Secrets worth the name: weak ones fail at startup, generated ones always pass.

HKDF makes the cookie key from ``SESSION_SECRET`` without stretching it, so a
guessable secret is a guessable key (and with the key one forges cookies).
"""

from __future__ import annotations

import base64
import os
import random
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from zxcvbn import zxcvbn

from tornado_sessions import ConfigError, SessionConfig
from tornado_sessions.config import ENV_NAMES, DatabaseConfig, generate_secret
from tornado_sessions.crypto import secret_problem
from tornado_sessions.secrets_check import guesses_log10

ROOT = Path(__file__).resolve().parents[1]
CURRENT = "current-6bqL0b3nQ1xWkB8vJ2yH5tRzC9mD4sF7gA0eK3uN1pV"
OLDER = "older-Yp2Wm9Kq4Rt7Vx1Zb3Nd6Hf8Jg0Lc5Ms2Qa9We4Ru7Ty"


def env_example_placeholder() -> str:
    text = (ROOT / ".env.example").read_text()
    (value,) = re.findall(r"^SESSION_SECRET=(.*)$", text, re.M)
    return value.strip()


WEAK: dict[str, str] = {
    "one repeated character": "a" * 32,
    "spaces": " " * 32,
    "a word repeated": "password" * 4,
    "letters and digits repeated": "abc123" * 6,
    "digits repeated": "0123456789" * 4,
    "two characters": "ab" * 20,
    "a password repeated": "Tr0ub4dor&3" * 3,
    "a keyboard row repeated": "qwertyuiop" * 4,
    "a label then a run": "test-secret-" + "s" * 40,
    "two runs": "a" * 20 + "b" * 20,
    "a sequence": "abcdefghijklmnopqrstuvwxyz0123456789",
    "a word, a run and a sequence": "mysecret" + "x" * 16 + "0123456789",
    "five characters shuffled": "".join(random.Random(7).choice("abcde") for _ in range(40)),
    "the CLI's old placeholder": "cli-placeholder-never-used-for-cookies-0000",
    "a placeholder phrase": "please-change-me-before-going-to-production",
    "Django's insecure prefix": "django-insecure-" + secrets.token_urlsafe(32),
    "too short": "Zx8!kQ2#pL9$",
    # Issue 17, finding 8: they passed 0.2's rules; zxcvbn finds them guessable.
    "a sentence about the secret": "my-super-secret-session-key-for-production",
    "an example's secret": "example-secret-do-not-use-in-production",
    "keyboard rows": "qwertyuiopasdfghjklzxcvbnm1234567890",
    "hex words, twice": "deadbeefcafebabe" * 2,
}
#: The secrets of issue 17 that 0.2 accepted.
SENTENCES = [
    "my-super-secret-session-key-for-production",
    "example-secret-do-not-use-in-production",
    "qwertyuiopasdfghjklzxcvbnm1234567890",
    "deadbeefcafebabe" * 2,
]

GENERATED: dict[str, Callable[[], str]] = {
    "python -m tornado_sessions secret": generate_secret,
    "secrets.token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "secrets.token_urlsafe(48)": lambda: secrets.token_urlsafe(48),
    "openssl rand -hex 32": lambda: secrets.token_hex(32),
    "openssl rand -hex 16": lambda: secrets.token_hex(16),
    "openssl rand -base64 32": lambda: base64.b64encode(os.urandom(32)).decode(),
    "openssl rand -base64 24": lambda: base64.b64encode(os.urandom(24)).decode(),
    "Fernet.generate_key()": lambda: Fernet.generate_key().decode(),
    "upper-case hex": lambda: secrets.token_hex(32).upper(),
    "two uuid4": lambda: f"{uuid.uuid4()}{uuid.uuid4()}",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ENV_NAMES.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def assert_names_and_helps(message: str, variable: str, secret: str) -> None:
    assert variable in message
    assert "secrets.token_urlsafe" in message and "python -m tornado_sessions secret" in message
    if secret.strip():
        assert secret not in message  # the value itself is never echoed
        assert secret[:12] not in message


# -- refused -------------------------------------------------------------------


def test_the_env_example_placeholder_is_a_known_placeholder() -> None:
    value = env_example_placeholder()
    assert len(value) >= 32  # refused for what it is, not merely for its length
    assert secret_problem(value) == "is a placeholder, not a secret"
    with pytest.raises(ConfigError, match="placeholder"):
        SessionConfig(secret=value)


@pytest.mark.parametrize("label", WEAK)
def test_a_weak_secret_fails_at_startup(label: str, monkeypatch: pytest.MonkeyPatch) -> None:
    weak = WEAK[label]
    assert secret_problem(weak) is not None, label
    with pytest.raises(ConfigError) as direct:
        SessionConfig(secret=weak)
    assert_names_and_helps(str(direct.value), "SESSION_SECRET", weak)
    monkeypatch.setenv("SESSION_SECRET", weak)
    with pytest.raises(ConfigError) as from_env:
        SessionConfig.from_env()
    if weak.strip():
        assert str(from_env.value) == str(direct.value)
    else:  # the environment's value is stripped: all spaces is "not set"
        assert "is not set" in str(from_env.value)


@pytest.mark.parametrize("label", WEAK)
def test_a_weak_fallback_fails_at_startup_naming_its_entry(
    label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    weak = WEAK[label]
    with pytest.raises(ConfigError) as direct:
        SessionConfig(secret=CURRENT, secret_fallbacks=(OLDER, weak))
    message = str(direct.value)
    assert_names_and_helps(message, "SESSION_SECRET_FALLBACKS", weak)
    assert "entry 2" in message
    assert CURRENT not in message and OLDER not in message


def test_a_fallback_equal_to_the_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", CURRENT)
    monkeypatch.setenv("SESSION_SECRET_FALLBACKS", f"{OLDER}, {CURRENT}")
    with pytest.raises(ConfigError) as info:
        SessionConfig.from_env()
    message = str(info.value)
    assert "SESSION_SECRET_FALLBACKS" in message and "entry 2" in message
    assert "same as SESSION_SECRET" in message
    assert CURRENT not in message and OLDER not in message


def test_a_fallback_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(secret=CURRENT, secret_fallbacks=(OLDER, generate_secret(), OLDER))
    message = str(info.value)
    assert "SESSION_SECRET_FALLBACKS" in message and "entry 3 repeats entry 1" in message
    assert OLDER not in message


# -- accepted ------------------------------------------------------------------


@pytest.mark.parametrize("kind", GENERATED)
def test_generated_secrets_always_pass(kind: str) -> None:
    make = GENERATED[kind]
    for _ in range(1000):
        secret = make()
        assert secret_problem(secret) is None, (kind, secret)
    config = SessionConfig(secret=make(), secret_fallbacks=(make(), make()))
    assert len(config.secrets) == 3


def test_the_secret_command_prints_a_secret_the_library_accepts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    outputs = set()
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-m", "tornado_sessions", "secret"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        secret = result.stdout.strip()
        assert SessionConfig(secret=secret).secret == secret
        outputs.add(secret)
    assert len(outputs) == 3


@pytest.mark.parametrize("sentence", SENTENCES)
def test_a_secret_that_reads_like_words_fails_at_startup_as_guessable(
    sentence: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = secret_problem(sentence)
    assert problem is not None and problem.startswith("is guessable"), problem
    assert "zxcvbn estimates" in problem
    monkeypatch.setenv("SESSION_SECRET", sentence)
    with pytest.raises(ConfigError) as caught:
        SessionConfig.from_env()
    message = str(caught.value)
    assert message.startswith("SESSION_SECRET (SessionConfig.secret) is guessable")
    assert_names_and_helps(message, "SESSION_SECRET", sentence)


def test_a_passphrase_is_judged_by_its_cost_not_by_its_look() -> None:
    # Six words (zxcvbn: about 10^32.5 guesses for 41 characters) pass;
    # a sentence made of the words a secret's name is made of does not.
    assert secret_problem("correct horse battery staple and a violin") is None
    problem = secret_problem("supersecretsessionkeyforproduction")
    assert problem is not None and problem.startswith("is guessable")


def test_a_random_tail_behind_a_label_passes() -> None:
    for secret in (CURRENT, OLDER, "myapp-production-" + secrets.token_urlsafe(32)):
        assert secret_problem(secret) is None, secret


def test_the_estimate_is_zxcvbns_own() -> None:
    # The merged dictionaries change the cost, never the estimate.
    for text in [*SENTENCES, CURRENT, secrets.token_hex(16), secrets.token_urlsafe(32)]:
        assert guesses_log10(text) == pytest.approx(zxcvbn(text)["guesses_log10"]), text


def test_long_secrets_are_judged_whole_in_pieces() -> None:
    assert secret_problem(secrets.token_urlsafe(300)) is None
    prose = (
        "thesecretkeyofoursessionstoreinproductionpleasenevershare"
        "thiswithanyoneoutsidetheoperationsteam"
    )
    assert len(prose) > 72
    problem = secret_problem(prose)
    assert problem is not None and problem.startswith("is guessable")


# -- the operations command line needs no secret --------------------------------


def test_database_settings_are_read_without_any_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_HOST", "db.internal")
    monkeypatch.setenv("SESSION_TABLE", "web_sessions")
    monkeypatch.setenv("SESSION_MAX_AGE", "not a number")  # a cookie setting: not read
    database = DatabaseConfig.from_env()
    assert (database.host, database.table, database.port) == ("db.internal", "web_sessions", 3306)
    assert not hasattr(database, "secret")
    with pytest.raises(ConfigError, match="SESSION_PORT"):
        DatabaseConfig.from_env(port=0)
    # An application's config holds the same database settings.
    monkeypatch.delenv("SESSION_MAX_AGE")
    config = SessionConfig.from_env(secret=CURRENT)
    assert isinstance(config, DatabaseConfig)
    assert (config.host, config.table) == ("db.internal", "web_sessions")


def test_cli_database_commands_read_neither_the_secret_nor_cookie_settings(
    tmp_path: Path,
) -> None:
    # A .env with the placeholder secret and a bad cookie setting does not
    # concern an operations command: printing the DDL works.
    (tmp_path / ".env").write_text(
        "SESSION_SECRET=replace-me\nSESSION_MAX_AGE=a month\nSESSION_TABLE=ops_sessions\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    result = subprocess.run(
        [sys.executable, "-m", "tornado_sessions", "create-table"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CREATE TABLE IF NOT EXISTS `ops_sessions`")
