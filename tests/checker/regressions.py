"""Fixed scenarios, kept for ever: each finding of issue 17, and each bug
the checker found, as the schedule that reaches it.

A regression's ``script`` names the order of store calls it must reach
(``"r4 destroy"``: the next ``destroy`` of request 4); the run fails if the
order is not reached, so a regression cannot pass by missing its race.
Requests are numbered in the order they start: the setup's three visits
are r1 to r3, then the rounds' actors in order (a process operation takes
a number too: ``p1.end_user#5``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tornado_sessions.config import SessionConfig

from .model import NAMES
from .ops import VALUES
from .runner import MAX_AGE, ProcessSpec, RequestSpec, Round, Scenario
from .world import World


def config(**fields: Any) -> tuple[tuple[str, Any], ...]:
    base = {"rolling": False, "touch_interval": None, "max_sessions_per_user": None}
    base.update(fields)
    return tuple(base.items())


@dataclasses.dataclass(frozen=True)
class Regression:
    name: str
    #: What it covers (a finding of issue 17, or a bug the checker found).
    covers: str
    scenario: Scenario
    #: A further check of the outcome, beyond the invariants.
    check: Callable[[World], None] | None = None
    #: Runs (the race is left to chance where the store decides, finding 5).
    repeat: int = 1


def _writes_of(world: World, actor: str) -> int:
    return sum(1 for line in world.model.trace if line.startswith(actor + ":") and ": set(" in line)


def _resave_writes_once(world: World) -> None:
    assert _writes_of(world, "r4:b0@p0") == 1, world.model.trace


def _destroy_without_cookie_clears_nothing(world: World) -> None:
    assert world.responses["r4:b0@p0"] == ""  # it held one: cleared
    assert world.responses["r5:b0@p0"] is None  # it held none: no Set-Cookie


def _first_id_moved(world: World) -> None:
    kinds = [(e.kind.value, e.reason) for e in world.processes[0].events]
    # The second login waited for the first save, then moved the id it stored.
    assert ("regenerated", "regenerate()") in kinds, kinds
    assert ("destroyed", "regenerated during its first save") not in kinds, kinds
    alice = [row for row in world.model.rows.values() if row.user_id == "alice"]
    assert len(alice) == 1, alice  # the socket's session, under the id it holds


def _the_last_saved_lifetime_is_stored(world: World) -> None:
    """Both sockets' saves returned: the one saved last (A's, after its
    merge) holds the session's lifetime."""
    sid = world.sockets[0].session._id
    assert world.sockets[1].session._id == sid
    assert world.model.rows[sid].ttl == 3600, (world.model.rows[sid], world.model.trace)


def _cookie_ends_with_its_record(world: World) -> None:
    """The browser still holds its session: the last request read it (no
    fresh session, so no new record), and the cookie it holds says the
    expiry its record has."""
    (row,) = world.model.rows.values()
    cookie = world.browsers[0].cookie
    assert cookie is not None, world.model.trace
    payload = world.processes[0].manager.decode_cookie(cookie)
    assert payload is not None, world.model.trace
    assert (payload["i"], payload["e"]) == (row.sid, row.expires_at), (payload, row)
    assert row.ttl == 86400, row


def _socket_kept_its_session(world: World) -> None:
    """The socket of two logins at once is open, on a stored session of
    alice that still holds the key its browser set before."""
    socket = world.sockets[0]
    assert socket.closed is None and socket.session is not None, socket.closed
    row = world.model.rows.get(socket.session._id)
    assert row is not None, world.model.trace
    assert row.user_id == "alice", row
    assert any(key.startswith("k") for key in row.data), row.data


#: A socket opened, then two logins by its own code at once.
TWO_SOCKET_LOGINS = (
    Round((ProcessSpec(0, "open_socket", (0,)),)),
    Round(
        (
            ProcessSpec(0, "socket_login", (0, "alice")),
            ProcessSpec(0, "socket_login", (0, "alice")),
        )
    ),
)

REGRESSIONS = (
    Regression(
        "regenerate-after-log-out-everywhere",
        "finding 1: regenerate() resurrected an ended session",
        Scenario(
            config(),
            ("alice", None, None),
            (
                Round(
                    (
                        RequestSpec(0, 0, (("login", ("alice", True)), ("set_key", ()))),
                        ProcessSpec(1, "end_user", ("alice",)),
                    )
                ),
            ),
            script=("r4 get", "p1.end_user destroy_user_sessions", "r4 destroy"),
        ),
    ),
    *(
        Regression(
            f"stale-touch-{name}",
            "finding 2: a stale touch lengthened a shortened session",
            Scenario(
                config(**fields),
                (None, None, None),
                (
                    Round((ProcessSpec(0, "cleanup"),), advance=5),
                    Round(
                        (
                            RequestSpec(0, 0, (("read", ()),)),
                            RequestSpec(0, 1, (("set_expiry", (60,)),)),
                        )
                    ),
                ),
                script=("r5 get", "r6 get", "r6 set", "r5 touch"),
            ),
        )
        for name, fields in (("rolling", {"rolling": True}), ("interval-0", {"touch_interval": 0}))
    ),
    *(
        Regression(
            f"stale-touch-cookie-{name}",
            "found by the checker (deep run): a stale touch, refused by the store after "
            "another request lengthened the session (remember me), still re-issued its "
            "own shorter expiry in the browser's last cookie; once that passed, the "
            "cookie read as expired while its record lived on (the user logged out early)",
            Scenario(
                config(**fields),
                (None, None, None),
                (
                    Round((ProcessSpec(0, "cleanup"),), advance=5),
                    Round(
                        (
                            RequestSpec(0, 0, (("read", ()),)),
                            RequestSpec(0, process, (("set_expiry", (86400,)),)),
                        ),
                        advance=MAX_AGE + 1,
                    ),
                    Round((RequestSpec(0, 0, (("read", ()),)),)),
                ),
                script=("r5 get", "r6 get", "r6 set", "r5 touch"),
            ),
            check=_cookie_ends_with_its_record,
        )
        for name, fields, process in (
            ("rolling", {"rolling": True}, 0),
            ("interval-0", {"touch_interval": 0}, 1),
        )
    ),
    Regression(
        "hostile-values",
        "finding 3: values that rewrote another user's session (GBK); each is "
        "kept as written and touches no other session",
        Scenario(
            config(),
            ("alice", "bob", None),
            (
                Round(
                    tuple(
                        RequestSpec(browser, browser % 2, (("set_value", (value,)), ("save", ())))
                        for browser, value in enumerate(VALUES)
                    )
                ),
                Round((RequestSpec(1, 0, (("read", ()), ("set_key", ()))),)),
            ),
        ),
    ),
    Regression(
        "trailing-space-is-another-user",
        "finding 4: 'alice ' ended and listed alice's sessions",
        Scenario(
            config(),
            ("alice", "alice ", "alice"),
            (
                Round(
                    (
                        ProcessSpec(0, "list_user", ("alice ",)),
                        ProcessSpec(0, "end_user", ("alice ",)),
                        ProcessSpec(1, "list_user", ("alice",)),
                    )
                ),
            ),
        ),
    ),
    Regression(
        "cap-ends-the-least-recently-used-within-a-second",
        "finding 5: the per-user cap ended the newest session within one second",
        Scenario(config(max_sessions_per_user=2), ("alice", "alice", "alice"), ()),
        repeat=20,
    ),
    Regression(
        "identity-reads-are-private",
        "finding 6: reading id, fingerprint or expires_at did not make the response private",
        Scenario(
            config(),
            (None, None, None),
            (
                Round(
                    (
                        RequestSpec(
                            0,
                            0,
                            tuple(
                                ("identity", (what,))
                                for what in ("id", "fingerprint", "expires_at")
                            ),
                        ),
                        RequestSpec(1, 1, (("flash", ()), ("pop", ()))),
                    )
                ),
            ),
        ),
    ),
    Regression(
        "resave-writes-once",
        "finding 7: save() then the end of the request wrote twice under resave",
        Scenario(
            config(resave=True), (None, None, None), (Round((RequestSpec(0, 0, (("save", ()),)),)),)
        ),
        check=_resave_writes_once,
    ),
    Regression(
        "destroy-clears-a-cookie-only-if-one-was-sent",
        "finding 7: destroy() without a cookie sent a clearing Set-Cookie",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((RequestSpec(0, 0, (("destroy", ()),)),)),
                Round((RequestSpec(0, 0, (("destroy", ()),)),)),
            ),
        ),
        check=_destroy_without_cookie_clears_nothing,
    ),
    Regression(
        "login-keeps-concurrent-writes",
        "found by the checker: a login (regenerate) dropped a change a concurrent "
        "request saved on the old id while it ran",
        Scenario(
            config(),
            (None, None, None),
            (
                Round(
                    (
                        RequestSpec(0, 0, (("login", ("alice", True)),)),
                        RequestSpec(0, 0, (("set_key", ()), ("flash", ()))),
                    )
                ),
                Round((RequestSpec(0, 1, (("pop", ()), ("read", ()))),)),
            ),
            script=("r5 get", "r4 get", "r5 set", "r4 destroy"),
        ),
    ),
    Regression(
        "concurrent-pops-show-a-flash-once",
        "a flash message is shown at most once, and none is lost",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((RequestSpec(0, 0, (("flash", ()), ("flash", ()))),)),
                Round(
                    (
                        RequestSpec(0, 0, (("pop", ()),)),
                        RequestSpec(0, 1, (("flash", ()), ("set_key", ()))),
                        RequestSpec(0, 1, (("pop", ()),)),
                    )
                ),
            ),
            script=("r5 get", "r6 get", "r5 set", "r6 set", "r7 get"),
        ),
    ),
    Regression(
        "regenerated-during-its-first-save",
        "found by the checker (issue 20): a new session regenerated while its first "
        "save ran got a created event naming its new id, not the one stored, and the "
        "id stored stayed live with no cookie carrying it; since regenerate() waits for "
        "a first save under way, the second login moves the id the first stored",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((RequestSpec(0, 0, (("destroy", ()),)),)),
                Round(
                    (
                        ProcessSpec(0, "open_socket", (0,)),
                        ProcessSpec(0, "socket_login", (0, "alice")),
                        ProcessSpec(0, "socket_login", (0, "alice")),
                    )
                ),
            ),
            script=("p0.socket_login#6 set", "p0.socket_login#7 set"),
        ),
        check=_first_id_moved,
    ),
    Regression(
        "two-logins-of-one-socket",
        "found by the checker's deep run (issue 20): two logins of one WebSocket at once; "
        "the second found the id moved by the first and moved the new one, but its "
        "regenerated event named the id it started from, and it forgot and revoked that "
        "one instead of the id it ended",
        Scenario(
            config(),
            (None, None, None),
            TWO_SOCKET_LOGINS,
            # Before the logins took turns: the first login's delete and
            # first save, then the second's delete, of the id already gone.
            script=("p0.socket_login#5 destroy", "p0.socket_login#5 set"),
        ),
        check=_socket_kept_its_session,
    ),
    Regression(
        "two-logins-of-one-socket-before-the-first-save",
        "the neighbour of the case above: the second login reads the id the first "
        "moved the session to before the first save stored it, found nothing, and "
        "dropped the socket's session as if it had ended (the user was logged out); "
        "one session object's save(), reload(), regenerate() and destroy() now take turns",
        Scenario(
            config(),
            (None, None, None),
            TWO_SOCKET_LOGINS,
            # Before the fix: the second login's failed delete of the old
            # id, then its read of the new one (not stored yet), went first.
            schedule=(0, 0, 0, 0, 0, 0, 1),
            script=("p0.socket_login#5 destroy",),
        ),
        check=_socket_kept_its_session,
    ),
    Regression(
        "socket-reload-racing-its-login",
        "found by the checker with socket operations: a socket's reload() read the id "
        "its own login had just deleted, found nothing, and dropped the session the "
        "login had moved (it lived on under the new id, held by no one); a reload() "
        "after a login, before the first save, also emptied the data it moved",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((ProcessSpec(0, "open_socket", (0,)),)),
                Round(
                    (
                        ProcessSpec(0, "socket_reload", (0,)),
                        ProcessSpec(0, "socket_login", (0, "alice")),
                    )
                ),
            ),
            script=("p0.socket_login#6 destroy", "p0.socket_login#6 set"),
        ),
        check=_socket_kept_its_session,
    ),
    Regression(
        "two-first-saves-of-one-socket",
        "found by review: two saves at once of a socket's new session both inserted it; "
        "the second found the id taken, and stored the data again under another id",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((RequestSpec(0, 0, (("destroy", ()),)),)),
                Round((ProcessSpec(0, "open_socket", (0,)),)),
                Round(
                    (
                        ProcessSpec(0, "socket_save", (0,)),
                        ProcessSpec(0, "socket_save", (0,)),
                    )
                ),
            ),
        ),
    ),
    Regression(
        "socket-set-expiry-during-its-save",
        "found by the checker once it had socket_set_expiry (after review, helper-39): a "
        "socket's set_expiry(60) made while another of its messages' saves was at the "
        "store was dropped when that save returned (the session took back the stored "
        "lifetime and forgot the call); its own save then wrote nothing",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((ProcessSpec(0, "open_socket", (0,)),)),
                Round(
                    (
                        ProcessSpec(0, "socket_save", (0,)),
                        ProcessSpec(0, "socket_set_expiry", (0, 60)),
                    )
                ),
            ),
            script=("p0.socket_save#5 set", "p0.socket_set_expiry#6 set"),
        ),
    ),
    Regression(
        "socket-set-expiry-saved-after-a-later-one",
        "the checker's own false alarm, found on Galera (1 run in 37): socket A's "
        "set_expiry(3600) began before socket B's set_expiry(60) and was saved after it (a "
        "conflict, then the merge, which keeps A's own lifetime) before B read its record "
        "back (an unscheduled read then, which a slow node let A's save overtake): B saw A's "
        "lifetime and the checker called B's lost; it now checks an acknowledged "
        "set_expiry() only if no other was pending when it began, and the read is gated",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((ProcessSpec(0, "open_socket", (0,)), ProcessSpec(1, "open_socket", (0,)))),
                Round(
                    (
                        ProcessSpec(0, "socket_set_expiry", (0, 3600)),
                        ProcessSpec(1, "socket_set_expiry", (1, 60)),
                    )
                ),
            ),
            script=(
                "p1.socket_set_expiry#7 set",
                "p0.socket_set_expiry#6 set",  # a conflict
                "p0.socket_set_expiry#6 get",
                "p0.socket_set_expiry#6 set",  # the merge, with A's lifetime
            ),  # then B's read-back, if it makes one (it waited, paused, all along)
        ),
        check=_the_last_saved_lifetime_is_stored,
    ),
    Regression(
        "socket-watched-during-a-check",
        "found by the checker: a socket whose handshake was watched while a revocation "
        "check was at the store stayed open after the check found its session ended "
        "(only the sockets the check had started with were closed)",
        Scenario(
            config(),
            (None, None, None),
            (
                Round((ProcessSpec(0, "open_socket", (1,)),)),
                Round(
                    (
                        RequestSpec(1, 1, (("destroy", ()),)),
                        ProcessSpec(0, "open_socket", (1,)),
                        ProcessSpec(0, "revocation_check"),
                    )
                ),
            ),
            script=("r5 get", "p0.open_socket#6 get", "r5 destroy"),
        ),
    ),
)

#: Finding 8 is no schedule: these secrets read like sentences and must be
#: refused at startup (the key a rotation moves to included).
WEAK_SECRETS = (
    "my-super-secret-session-key-for-production",
    "example-secret-do-not-use-in-production",
    "qwertyuiopasdfghjklzxcvbnm1234567890",
    "deadbeefcafebabe" * 2,
)


def weak_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        SessionConfig(secret=secret)


def params() -> list[Any]:
    """The regressions as pytest parameters (every one must pass on every store)."""
    return [pytest.param(regression, id=regression.name) for regression in REGRESSIONS]


async def replay(regression: Regression, stores: Callable[[], Any], clock: Any) -> None:
    """Run ``regression`` with every invariant checked."""
    from .runner import run_scenario

    for _ in range(regression.repeat):
        world = await run_scenario(stores(), clock, regression.scenario, NAMES)
        if regression.check is not None:
            regression.check(world)
