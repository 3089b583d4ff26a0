import re
from pathlib import Path

from setuptools import find_packages, setup

#: What building the docs needs (make docs installs it): Sphinx alone.
DOCS = ["sphinx>=7"]
#: The oldest Tornado the package allows: scripts/test runs the in-memory
#: part of the suite on exactly this version too (.venv-oldest).
OLDEST_TORNADO = "6.5.5"
#: The Python versions the suite runs on (the classifiers say these).
TESTED_PYTHONS = ["3.11"]
HOME = "https://github.com/tornado-sessions/tornado_sessions"

here = Path(__file__).parent
version = re.search(
    r'^__version__ = "([^"]+)"', (here / "tornado_sessions" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="tornado_sessions",
    version=version,
    description="Server-side sessions for Tornado: encrypted cookies, async MySQL/MariaDB store",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    project_urls={
        "Documentation": f"{HOME}/tree/main/docs",
        "Source": HOME,
        "Changelog": f"{HOME}/blob/main/CHANGES.rst",
        "Issues": f"{HOME}/issues",
    },
    python_requires=">=3.11",
    packages=find_packages(include=["tornado_sessions", "tornado_sessions.*"]),
    package_data={"tornado_sessions": ["py.typed"]},
    install_requires=[
        f"tornado>={OLDEST_TORNADO}",
        "cryptography>=42",
        "python-decouple>=3.8",
        "aiomysql>=0.2",
        # The guessing-cost estimate of SESSION_SECRET (secrets_check.py).
        "zxcvbn>=4.4.28",
    ],
    extras_require={
        "test": [
            "pytest>=8.4",
            "pytest-tornado==0.8.1",
            # pytest-tornado imports pkg_resources, which setuptools 82 removed.
            "setuptools<82",
            # Pinned: a new release may lint or format differently.
            "mypy==2.4.1",
            "ruff==0.17.6",
            "selenium>=4.20",
            # tests/test_packaging.py: build the sdist and wheel, check them as PyPI would.
            "build>=1.2",
            "twine>=6",
            "trove-classifiers",
            # The benchmark's --uvloop (make bench); never a dependency of the package.
            "uvloop>=0.19",
            # bench/profile.py's profiler (tests/test_bench.py runs it); never a dependency.
            "py-spy>=0.4",
            # The stateful concurrency checker (tests/checker).
            "hypothesis>=6.100",
            *DOCS,  # scripts/test builds the docs too
        ],
        "docs": DOCS,
        # The second database driver (SESSION_DB_DRIVER; auto prefers it when installed).
        "asyncmy": ["asyncmy>=0.2.18"],
    },
    entry_points={"console_scripts": ["tornado-sessions=tornado_sessions.__main__:main"]},
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        *[f"Programming Language :: Python :: {v}" for v in TESTED_PYTHONS],
        "Topic :: Internet :: WWW/HTTP :: Session",
        "Typing :: Typed",
    ],
)
