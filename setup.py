import re
from pathlib import Path

from setuptools import find_packages, setup

#: What building the docs needs (make docs installs it): Sphinx alone.
DOCS = ["sphinx>=7"]

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
    python_requires=">=3.11",
    packages=find_packages(include=["tornado_sessions", "tornado_sessions.*"]),
    package_data={"tornado_sessions": ["py.typed"]},
    install_requires=[
        "tornado>=6.5.5",
        "cryptography>=42",
        "python-decouple>=3.8",
        "aiomysql>=0.2",
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
            # The benchmark's --uvloop (make bench); never a dependency of the package.
            "uvloop>=0.19",
            # The stateful concurrency checker (tests/checker).
            "hypothesis>=6.100",
            *DOCS,  # scripts/test builds the docs too
        ],
        "docs": DOCS,
    },
    entry_points={"console_scripts": ["tornado-sessions=tornado_sessions.__main__:main"]},
    classifiers=[
        "Framework :: Tornado",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Typing :: Typed",
    ],
)
