"""The stateful concurrency checker on MySQLStore (see tests/checker): two
processes, each with a store (a pool) of its own, on one table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tornado.ioloop

from tests.checker.model import NAMES
from tests.checker.regressions import Regression, params, replay
from tests.checker.runner import check, examples
from tests.conftest import FakeClock
from tests.mysql.conftest import Settings, make_store
from tornado_sessions.stores.mysql import MySQLStore


@pytest.fixture
def other(
    io_loop: tornado.ioloop.IOLoop, mysql_settings: Settings, table: str, clock: FakeClock
) -> Iterator[MySQLStore]:
    """The second process's store, on the same table."""
    yield from make_store(io_loop, mysql_settings, table=table, clock=clock)


def test_every_generated_interleaving_keeps_the_guarantees(
    io_loop: tornado.ioloop.IOLoop, store: MySQLStore, other: MySQLStore, clock: FakeClock
) -> None:
    check(
        lambda fn: io_loop.run_sync(fn, timeout=120),
        lambda: [store, other],
        clock,
        examples=examples(60),
        enabled=NAMES,
    )


@pytest.mark.gen_test
@pytest.mark.parametrize("regression", params())
async def test_regression(
    regression: Regression, store: MySQLStore, other: MySQLStore, clock: FakeClock
) -> None:
    await replay(regression, lambda: [store, other], clock)
