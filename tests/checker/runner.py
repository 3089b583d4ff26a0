"""Generated scenarios, and running one against a store.

A scenario is a configuration, a setup (each browser's first visit, some of
them logged in), then rounds of concurrent actors (requests of the three
browsers, served by either of two processes, and process operations), each
round followed by a move of the clock: three in four are short races (2 to
6 one-operation requests at once, see `_small_rounds`), the others up to
three rounds of up to three actors.  The schedule, which paused store call
goes next, is drawn step by step while the scenario runs, among the calls
waiting at that moment (``st.data()``).  Hypothesis generates both and, when an invariant fails,
shrinks the scenario and its schedule to a minimal one and keeps it
(``.hypothesis/``); tests/checker/regressions.py keeps the ones worth
keeping for ever.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tornado_sessions.stores.base import SessionStore

from .model import NAMES, Model, Violation
from .ops import PROCESS_OPS, REQUEST_OPS, USERS, Ctx
from .world import ACTOR, Call, Request, World

#: The configured idle lifetime (short, so the clock can end sessions).
MAX_AGE = 7200


@dataclasses.dataclass(frozen=True)
class RequestSpec:
    """A request of browser ``browser``, served by process ``process``."""

    browser: int
    process: int
    ops: tuple[tuple[str, tuple[Any, ...]], ...]


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    process: int
    op: str
    args: tuple[Any, ...] = ()


@dataclasses.dataclass(frozen=True)
class Round:
    actors: tuple[RequestSpec | ProcessSpec, ...]
    #: Seconds the clock moves after the round.
    advance: int = 0


@dataclasses.dataclass(frozen=True)
class Scenario:
    config: tuple[tuple[str, Any], ...]
    #: Each browser's first visit: None (anonymous) or the user it logs in as.
    setup: tuple[str | None, ...]
    rounds: tuple[Round, ...]
    schedule: tuple[int, ...] = ()
    #: A fixed order of store calls to reach (regressions; see `.world.Scheduler`).
    script: tuple[str, ...] = ()


def _ops(table: dict[str, Any]) -> st.SearchStrategy[tuple[str, tuple[Any, ...]]]:
    return st.one_of(*(st.tuples(st.just(name), op.args) for name, op in table.items()))


#: Seconds the clock may move after a round.
ADVANCES = (0, 0, 1, 61, MAX_AGE + 1)


def _configs() -> st.SearchStrategy[tuple[tuple[str, Any], ...]]:
    return st.tuples(
        st.tuples(st.just("rolling"), st.booleans()),
        st.tuples(st.just("touch_interval"), st.sampled_from([None, 0])),
        st.tuples(st.just("max_sessions_per_user"), st.sampled_from([None, 2])),
        st.tuples(st.just("absolute_max_age"), st.sampled_from([None, 3 * MAX_AGE])),
    )


def _actors(
    max_ops: int,
    requests: Iterable[str] = REQUEST_OPS,
    processes: Iterable[str] = PROCESS_OPS,
    browsers: Sequence[int] = (0, 0, 0, 1, 2),
) -> st.SearchStrategy[RequestSpec | ProcessSpec]:
    """Actors using only the operations named (a request's ops among
    ``requests``; a process operation among ``processes``)."""
    requests, processes = list(requests), list(processes)
    choices = []
    if requests:
        request = st.builds(
            RequestSpec,
            # Mostly the same browser: the races of one session's requests.
            st.sampled_from(browsers),
            st.integers(0, 1),
            st.lists(_ops({n: REQUEST_OPS[n] for n in requests}), min_size=1, max_size=max_ops).map(
                tuple
            ),
        )
        choices += [request, request]
    if processes:
        ops = _ops({n: PROCESS_OPS[n] for n in processes})
        choices.append(st.builds(lambda p, op: ProcessSpec(p, *op), st.integers(0, 1), ops))
    return st.one_of(*choices)


#: The operations by what they do, for the short scenarios' swarm: each short
#: scenario uses the operations of one or two families only, so that the few
#: operations of a race (a touch and a set_expiry of one session) meet often.
FAMILIES = {
    "read": ("read", "identity", "pop"),
    "write": ("set_key", "set_value", "delete_key", "flash", "save"),
    "expiry": ("touch", "set_expiry"),
    # With a write: what a login moves to the new id, or a logout drops.
    "lifecycle": ("login", "destroy", "logout_everywhere", "reload", "set_key"),
    "process": tuple(PROCESS_OPS),
    # Sockets, and what ends their sessions.
    "live": (
        "open_socket",
        "socket_login",
        "socket_save",
        "socket_set_expiry",
        "socket_reload",
        "revocation_check",
        "destroy",
        "login",
        "logout_everywhere",
    ),
}
assert {n for names in FAMILIES.values() for n in names} == REQUEST_OPS.keys() | PROCESS_OPS.keys()


@st.composite
def _small_rounds(draw: st.DrawFn) -> tuple[Round, ...]:
    """Two to six operations in all (requests of one operation each), of one
    family or, a third of the time, two (swarm testing), all concurrent,
    after a move of the clock or not: the short races, where a schedule is
    short enough to hit a dangerous order often, and which shrink to a few
    lines."""
    family = st.sampled_from(sorted(FAMILIES))
    families = {draw(family)}
    if draw(st.integers(0, 2)) == 0:  # a third of them mix two families
        families.add(draw(family))
    names = {n for family in families for n in FAMILIES[family]}
    requests, processes = names & REQUEST_OPS.keys(), names & PROCESS_OPS.keys()
    pick = _actors(1, sorted(requests), sorted(processes), browsers=(0, 0, 0, 0, 1))
    budget = draw(st.integers(2, 6))
    actors: list[RequestSpec | ProcessSpec] = []
    while budget > 0:
        spec = draw(pick)
        if isinstance(spec, RequestSpec):
            spec = dataclasses.replace(spec, ops=spec.ops[:budget])
            budget -= len(spec.ops)
        else:
            budget -= 1
        actors.append(spec)
    before = draw(st.sampled_from(ADVANCES))
    rounds = (Round((), before), Round(tuple(actors))) if before else (Round(tuple(actors)),)
    if "live" in families:
        # A socket open before the race, so that its own messages (a login,
        # a save, a reload) meet each other and what ends its session.
        opened = ProcessSpec(draw(st.integers(0, 1)), "open_socket", (draw(st.integers(0, 1)),))
        rounds = (Round((opened,)), *rounds)
    return rounds


def scenarios() -> st.SearchStrategy[Scenario]:
    """Every scenario the checker may generate: three in four short (see
    `_small_rounds`), the others up to three rounds of up to three actors.  The order
    of store calls is not part of the scenario: `check` draws it step by
    step while the scenario runs."""
    full = st.lists(
        st.builds(
            Round,
            st.lists(_actors(5), min_size=1, max_size=3).map(tuple),
            st.sampled_from(ADVANCES),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple)
    return st.builds(
        Scenario,
        _configs(),
        st.tuples(*[st.sampled_from((None, *USERS))] * 3),
        st.one_of(_small_rounds(), _small_rounds(), _small_rounds(), full),
    )


async def _request(world: World, model: Model, name: str, spec: RequestSpec) -> None:
    ACTOR.set(name)
    request = Request(name, world.processes[spec.process], world.browsers[spec.browser])
    world.managers[name] = request.manager
    model.begin(name)
    try:
        session = await request.load()
        ctx = Ctx(name, world, model, request, session, model.steps)
        for op, args in spec.ops:
            await REQUEST_OPS[op].run(ctx, *args)
            ctx.sync()
        await request.commit()
        world.responses[name] = request.response_cookie
        ctx.saved()
    finally:
        model.done(name)


async def _process(world: World, name: str, spec: ProcessSpec) -> None:
    ACTOR.set(name)
    world.managers[name] = world.processes[spec.process].manager
    await PROCESS_OPS[spec.op].run(world, world.processes[spec.process], *spec.args)


async def run_scenario(
    stores: Sequence[SessionStore],
    clock: Any,
    scenario: Scenario,
    enabled: Iterable[str],
    choose: Callable[[Sequence[Call]], int] | None = None,
) -> World:
    """Run ``scenario`` on ``stores`` (emptied first; one per process, or
    one for all), checking the invariants named ``enabled`` at every step.

    ``choose``, if given, picks the next store call to release among those
    waiting (see `.world.Scheduler`); else ``scenario.schedule`` does."""
    await stores[0].clear()
    # Revocation checks run when the schedule runs them (the revocation_check
    # operation) or at once after a per-user end, never by the wall clock.
    config = dict(scenario.config, max_age=MAX_AGE, revocation_interval=3600)
    world = World(stores, clock, config)
    model = Model(max_age=MAX_AGE, absolute=config.get("absolute_max_age"), enabled=enabled)

    async def on_step(call: Call) -> None:
        model.step(call, await world.peek(), world.now())

    world.model = model
    model.audit.world = world
    world.scheduler.on_settle = model.audit.settled
    world.scheduler.choices = list(scenario.schedule)
    world.scheduler.script = list(scenario.script)
    world.scheduler.choose = choose
    world.scheduler.on_step = on_step
    world.scheduler.fatal = (Violation,)
    serial = 0

    async def run(actors: Sequence[RequestSpec | ProcessSpec]) -> None:
        nonlocal serial
        coros = []
        for spec in actors:
            serial += 1
            if isinstance(spec, RequestSpec):
                name = f"r{serial}:b{spec.browser}@p{spec.process}"
                coros.append(_request(world, model, name, spec))
            else:
                coros.append(_process(world, f"p{spec.process}.{spec.op}#{serial}", spec))
        outcomes = await world.scheduler.run(coros)
        await model.audit.round_done()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if isinstance(outcome, Violation):
                    raise outcome
                trace = "\n  ".join(model.trace[-40:])
                raise AssertionError(f"an actor failed: {outcome!r}\n  {trace}") from outcome

    for browser, user in enumerate(scenario.setup):
        ops: list[tuple[str, tuple[Any, ...]]] = [("set_key", ())]
        if user is not None:
            ops.append(("login", (user, True)))
        await run([RequestSpec(browser, 0, tuple(ops))])
    for round_ in scenario.rounds:
        await run(round_.actors)
        if round_.advance:
            clock.advance(round_.advance)
            model.step(
                Call("clock", f"advance {round_.advance}s", None, ""),
                await world.peek(),
                world.now(),
            )
    model.final()
    assert not world.scheduler.script, f"the order {scenario.script} was not reached: " + (
        "\n  ".join(model.trace)
    )
    return world


def examples(default: int) -> int:
    """The number of examples: ``CHECKER_EXAMPLES`` if set, else ``default``."""
    return int(os.environ.get("CHECKER_EXAMPLES") or default)


def check(
    run_sync: Callable[[Callable[[], Any]], Any],
    stores: Callable[[], Sequence[SessionStore]],
    clock: Any,
    *,
    examples: int,
    enabled: Iterable[str] = NAMES,
) -> None:
    """Run ``examples`` generated scenarios on the stores ``stores()`` returns."""
    enabled = frozenset(enabled)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(scenario=scenarios(), data=st.data())
    def generated(scenario: Scenario, data: st.DataObject) -> None:
        def choose(waiting: Sequence[Call]) -> int:
            # Drawn from the calls waiting now: any order is reachable, and a
            # failing one shrinks towards "oldest first" (index 0).
            labels = " | ".join(f"{i}: {call.label}" for i, call in enumerate(waiting))
            return data.draw(st.integers(0, len(waiting) - 1), label=f"release [{labels}]")

        run_sync(lambda: run_scenario(stores(), clock, scenario, enabled, choose))

    generated()
