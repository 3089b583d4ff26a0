"""The stateful concurrency checker on a real 3-node Galera cluster (see
tests/checker), bounded: two processes, the first on node 1, the second on
node 2, on one table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.ioloop

from tests.checker.model import NAMES
from tests.checker.regressions import Regression, params, replay
from tests.checker.runner import check, examples
from tests.conftest import FakeClock
from tests.mysql.conftest import make_store
from tornado_sessions.stores.mysql import MySQLStore

Settings = dict[str, Any]


@pytest.fixture
def stores(
    io_loop: tornado.ioloop.IOLoop,
    galera_settings: Callable[[int], Settings],
    galera_table: str,
    clock: FakeClock,
) -> Iterator[list[MySQLStore]]:
    """A store on node 1 (it creates the table), then one on node 2."""
    for first in make_store(io_loop, galera_settings(1), table=galera_table, clock=clock):
        for second in make_store(io_loop, galera_settings(2), table=galera_table, clock=clock):
            yield [first, second]


def test_every_generated_interleaving_keeps_the_guarantees(
    io_loop: tornado.ioloop.IOLoop, stores: list[MySQLStore], clock: FakeClock
) -> None:
    check(
        lambda fn: io_loop.run_sync(fn, timeout=120),
        lambda: stores,
        clock,
        examples=examples(15),
        enabled=NAMES,
    )


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("regression", params())
async def test_regression(
    regression: Regression, stores: list[MySQLStore], clock: FakeClock
) -> None:
    await replay(regression, lambda: stores, clock)
