"""The testing recipe, docs/recipes/test_myapp.py (a user's AsyncHTTPTestCase
with tornado_sessions.testing), run as part of the suite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from test_myapp import MyAppTest  # noqa: F401 - collected by pytest


@pytest.fixture(autouse=True)
def _keep_the_runs_event_loop() -> Iterator[None]:
    """AsyncTestCase.tearDown unsets the current event loop; put back the
    one tests/conftest.py set for the whole run."""
    loop = asyncio.get_event_loop_policy().get_event_loop()
    yield
    asyncio.set_event_loop(loop)
