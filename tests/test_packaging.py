"""The package as it would be published: the sdist and the wheel built with
``python -m build`` (the wheel from the sdist, so the sdist is complete),
checked with ``twine check --strict`` and by reading what they carry, then
the wheel installed into a clean virtualenv that runs a user's app.

The versions the package claims are the versions it is tested on: the
oldest Tornado it allows is the one scripts/test installs into
``.venv-oldest`` to run the in-memory part of the suite again, and the docs
say both.
"""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

import tornado_sessions

ROOT = Path(__file__).resolve().parents[1]
SETUP = (ROOT / "setup.py").read_text(encoding="utf-8")
OLDEST_TORNADO = re.search(r'^OLDEST_TORNADO = "([^"]+)"', SETUP, re.M).group(1)  # type: ignore[union-attr]
TESTED_PYTHONS = re.findall(
    r'"(3\.\d+)"', re.search(r"^TESTED_PYTHONS = \[(.*)\]", SETUP, re.M).group(1)
)  # type: ignore[union-attr]
MODULES = [
    "__init__.py",
    "py.typed",
    "mixin.py",
    "testing.py",
    "values.py",
    "saves.py",
    "stores/mysql/__init__.py",
    "stores/mysql/store.py",
    "stores/mysql/connection.py",
    "stores/mysql/schema.py",
    "stores/memory.py",
    "__main__.py",
]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing the build tools deprecate (license classifiers, license tables, ...).
    assert "deprecat" not in (result.stdout + result.stderr).lower()
    (sdist,) = out.glob("tornado_sessions-*.tar.gz")
    (wheel,) = out.glob("tornado_sessions-*-py3-none-any.whl")
    return {"sdist": sdist, "wheel": wheel}


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(zf.read(name).decode("utf-8"))


def test_twine_accepts_both(dist: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_sdist_carries_the_license_readme_and_typing_marker(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for name in ("LICENSE", "README.md", "setup.py", "pyproject.toml", "CHANGES.rst"):
        assert name in names, name
    for module in MODULES:
        assert f"tornado_sessions/{module}" in names, module
    assert ".env" not in names and not any(n.startswith((".venv", "tests/")) for n in names)


def test_the_wheel_carries_the_license_typing_marker_and_metadata(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as zf:
        names = set(zf.namelist())
        (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert zf.read(license_file) == (ROOT / "LICENSE").read_bytes()
    for module in MODULES:
        assert f"tornado_sessions/{module}" in names, module
    assert "tornado_sessions/stores/mysql.py" not in names  # 0.1's module, gone
    assert not any(n.startswith("tests/") for n in names)

    meta = metadata(dist["wheel"])
    assert meta["Name"] == "tornado_sessions"
    assert meta["Version"] == tornado_sessions.__version__
    assert meta["License"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()
    assert meta["License-File"] == "LICENSE"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "README.md").read_text(encoding="utf-8").strip()
    urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL"))
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())
    assert meta["Requires-Python"] == f">={TESTED_PYTHONS[0]}"
    assert f"tornado>={OLDEST_TORNADO}" in meta.get_all("Requires-Dist")
    classifiers = meta.get_all("Classifier")
    assert set(classifiers) <= KNOWN_CLASSIFIERS, set(classifiers) - KNOWN_CLASSIFIERS
    pythons = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r":: 3\.\d+$", c)}
    assert pythons == set(TESTED_PYTHONS)
    # The Python the suite runs on is one the classifiers name.
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in TESTED_PYTHONS


def test_the_wheel_installs_into_a_clean_venv_and_a_users_app_works(
    dist: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
        + [str(dist["wheel"])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "PYTHON"))}
    env["SESSION_SECRET"] = "a-users-own-secret-W0efHCzqmEprqtijMTVDn2I6A7fuBa3DVJ6FZHuKJUM"
    result = subprocess.run(
        [str(python), "-B", str(ROOT / "tests" / "data" / "user_app.py")],
        cwd=tmp_path,  # not the repository: the import must find the installed package
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"tornado_sessions from {venv / 'lib'}" in result.stdout
    for check in (
        "counter: ok",
        "login with regenerate, redirect-then-read: ok",
        "tampered cookie: ok",
        "logout: ok",
    ):
        assert check in result.stdout
    # The typing marker is installed, so a user's mypy sees the annotations.
    assert list((venv / "lib").glob("python3*/site-packages/tornado_sessions/py.typed"))


def test_the_oldest_tornado_allowed_is_the_one_the_test_command_runs_on() -> None:
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "tornado==$oldest" in script and "OLDEST_TORNADO" in script
    assert ".venv-oldest/bin/python -m pytest" in script
    assert ".venv-oldest/" in (ROOT / ".gitignore").read_text()


def test_the_docs_state_the_supported_versions() -> None:
    quickstart = (ROOT / "docs" / "quickstart.rst").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for text in (quickstart, readme):
        assert f"Python {TESTED_PYTHONS[0]}" in text
        assert f"Tornado {OLDEST_TORNADO}" in text
