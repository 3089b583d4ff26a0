"""MySQLStore against the shared store contract, on a real MariaDB."""

from __future__ import annotations

from tests.contract import StoreContract


class TestMySQLStoreContract(StoreContract):
    """Runs every contract test with the ``store`` fixture of tests/mysql/conftest.py."""
