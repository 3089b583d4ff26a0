"""The stateful concurrency checker on MemoryStore (see tests/checker)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tornado.ioloop

from tests.checker import regressions
from tests.checker.model import INVARIANTS, NAMES
from tests.checker.regressions import Regression, params, replay
from tests.checker.runner import check, examples
from tests.conftest import FakeClock
from tornado_sessions.stores.memory import MemoryStore


def test_every_generated_interleaving_keeps_the_guarantees(io_loop: tornado.ioloop.IOLoop) -> None:
    clock = FakeClock()
    check(
        lambda fn: io_loop.run_sync(fn, timeout=120),
        lambda: [MemoryStore(clock=clock)],
        clock,
        examples=examples(200),
        enabled=NAMES,
    )


@pytest.mark.gen_test
@pytest.mark.parametrize("regression", params())
async def test_regression(regression: Regression) -> None:
    clock = FakeClock()
    await replay(regression, lambda: [MemoryStore(clock=clock)], clock)


@pytest.mark.parametrize("secret", regressions.WEAK_SECRETS)
def test_a_secret_that_reads_like_a_sentence_is_refused(secret: str) -> None:
    regressions.weak_secret_is_refused(secret)


def test_the_guarantees_page_states_every_invariant_as_the_checker_does() -> None:
    page = (Path(__file__).parent.parent / "docs" / "guarantees.rst").read_text()
    text = " ".join(page.replace("**", "").split())
    for invariant in INVARIANTS:
        assert invariant.statement in text, invariant.name
