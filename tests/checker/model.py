"""What the history of one example allows, and the invariants, written once.

The model does not re-implement the library.  It follows the history (which
store call ended which session, which changes each request had
acknowledged, when each record was last used) and, after every store call,
reads the real store back (`.world.World.peek`) and checks it against
`INVARIANTS`, whose statements are those of docs/guarantees.rst.

A session is followed by a lineage token (data key ``_t``) that the
operations put in it at its first change: it moves with the data when a
login regenerates the id, so "never readable again under any id" is a check
on tokens, not on ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from tornado_sessions.session import FLASH_KEY
from tornado_sessions.stores.base import fingerprint

from .audit import Audit
from .world import TOKEN, Call, Row

#: An acknowledged deletion.
DELETED = "<deleted>"
#: The keys besides the generated ones (``k<n>``) a session may hold.
FIXED = frozenset({TOKEN, "user_id", FLASH_KEY})


@dataclasses.dataclass(frozen=True)
class Invariant:
    """One guarantee: its name, and its statement as docs/guarantees.rst gives it."""

    name: str
    statement: str


INVARIANTS = (
    Invariant(
        "ended_stays_ended",
        "An ended session (destroyed, logged out everywhere, ended by the per-user "
        "limit, expired) never becomes readable again, under any id.",
    ),
    Invariant(
        "expiry_bounded",
        "A stored expiry never exceeds what the latest set_expiry() allows; a stale "
        "request never lengthens it, and an acknowledged set_expiry() is stored.",
    ),
    Invariant(
        "writes_kept",
        "Every acknowledged change of a distinct key is kept while the session lives, "
        "across concurrent saves, processes and logins.",
    ),
    Invariant(
        "flashes_once",
        "A flash message is shown at most once and never lost while its session lives.",
    ),
    Invariant(
        "users_exact",
        "Per-user operations act on exactly the user ids given, byte for byte, the same "
        "on every store.",
    ),
    Invariant(
        "cap_lru",
        "The per-user cap ends the least recently used sessions, ties broken by creation order.",
    ),
    Invariant(
        "private",
        "A response whose content depends on the session is never cacheable by a shared cache.",
    ),
    Invariant(
        "revocation_closes",
        "An open WebSocket of a session that ended by any route (destroy, the old id of a "
        "regenerate, log out everywhere, the per-user limit, expiry, cleanup) is closed, with "
        "code 4001: in the process that ended it at once, elsewhere at its process's next "
        "revocation check.",
    ),
    Invariant(
        "live_sockets_stay",
        "No WebSocket of a live session is ever closed by the revocation.",
    ),
    Invariant(
        "events_match",
        "Every session a request destroys, a login regenerates, log out everywhere or the "
        "per-user limit ends gives exactly one matching event with its reason, the cleanup one "
        "count per batch, every new session one created event; no event carries a session id.",
    ),
)

NAMES = frozenset(invariant.name for invariant in INVARIANTS)


class Violation(AssertionError):
    """An invariant failed; the message names it and shows the schedule."""


@dataclasses.dataclass
class Pending:
    """A running request's changes not yet acknowledged."""

    token: str | None = None
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    added: list[str] = dataclasses.field(default_factory=list)
    shown: list[str] = dataclasses.field(default_factory=list)


class Model:
    """The history of one example and the checks made on it.

    :param max_age: the configured idle lifetime.
    :param absolute: the configured absolute timeout, or None.
    :param enabled: the names of the invariants checked.
    """

    def __init__(self, *, max_age: int, absolute: int | None, enabled: Iterable[str]) -> None:
        self.max_age = max_age
        self.absolute = absolute
        self.enabled = frozenset(enabled)
        assert self.enabled <= NAMES, self.enabled - NAMES
        self.rows: dict[str, Row] = {}
        self.steps = 0
        self.now = 0
        self.ended: set[str] = set()
        #: Tokens whose record a login deleted, until it stores them anew: actor.
        self.transit: dict[str, str] = {}
        self.acked: dict[str, dict[str, Any]] = {}
        self.flashes: dict[str, set[str]] = {}
        #: Flash message: the step its showing was acknowledged.
        self.shown: dict[str, int] = {}
        self.pending: dict[str, Pending] = {}
        self.used: dict[str, int] = {}
        self.created: dict[str, int] = {}
        #: set_expiry() calls started so far, by any actor.
        self.lifetimes = 0
        #: Actors whose set_expiry() may still be saved: a request's until it
        #: ends, a socket operation's until its save returns.
        self.expiring: set[str] = set()
        self.trace: list[str] = []
        #: The sockets' and events' checks (`.audit.Audit`).
        self.audit = Audit(self)

    # -- reports -----------------------------------------------------------------

    def fail(self, name: str, message: str) -> None:
        if name not in self.enabled:
            return
        statement = next(i.statement for i in INVARIANTS if i.name == name)
        steps = "\n  ".join(self.trace[-40:])
        raise Violation(f"[{name}] {statement}\n  {message}\nschedule (store calls):\n  {steps}")

    # -- the history -------------------------------------------------------------

    def step(self, call: Call, after: dict[str, Row], now: int) -> None:
        """A store call completed (or the clock moved): learn, then check."""
        before, self.rows, self.now = self.rows, after, now
        self.steps += 1
        self.trace.append(str(call))
        for sid in before.keys() - after.keys():
            token = before[sid].data.get(TOKEN)
            if token is None:
                continue
            if call.method == "destroy" and call.purpose == "move":
                self.transit[token] = call.actor
            else:
                self.ended.add(token)
        if call.error is None and call.sid is not None and call.sid in after:
            if call.method == "set" or (call.method == "touch" and call.result):
                self.used[call.sid] = self.steps
                self.created.setdefault(call.sid, self.steps)
        for row in after.values():
            self.transit.pop(row.data.get(TOKEN, ""), None)
        self.audit.step(call, before, after)
        self._check_rows()
        if call.method in (
            "sessions_for_user",
            "destroy_user_sessions",
            "limit_user_sessions",
            "destroy_user_session",
        ):
            self._check_user_call(call, before, after)

    def end(self, token: str | None) -> None:
        """A request ended the session it held (a logout, a login that
        dropped the data): its token is over."""
        if token is not None:
            self.ended.add(token)
            self.transit.pop(token, None)

    def begin(self, actor: str) -> Pending:
        self.pending[actor] = Pending()
        return self.pending[actor]

    def ack(self, actor: str) -> None:
        """The actor's save returned: its pending changes are acknowledged."""
        pending = self.pending[actor]
        if pending.token is not None:
            self.acked.setdefault(pending.token, {}).update(pending.changes)
            self.flashes.setdefault(pending.token, set()).update(pending.added)
            for message in pending.shown:
                self.shown.setdefault(message, self.steps)
        self.pending[actor] = Pending()

    def drop(self, actor: str) -> None:
        """The actor's pending changes were dropped (not acknowledged)."""
        self.pending[actor] = Pending()

    def done(self, actor: str) -> None:
        self.pending.pop(actor, None)
        self.expiring.discard(actor)

    def popped(self, actor: str, loaded_at: int, messages: list[str]) -> None:
        for message in messages:
            acked = self.shown.get(message)
            if acked is not None and acked < loaded_at:
                self.fail(
                    "flashes_once",
                    f"{actor} (loaded at step {loaded_at}) showed {message!r} again; its "
                    f"showing was acknowledged at step {acked}",
                )

    def read(self, actor: str, accessed: bool, what: str) -> None:
        if not accessed:
            self.fail("private", f"{actor} built a response from {what} with accessed=False")

    # -- checks ------------------------------------------------------------------

    def _exempt(self) -> set[tuple[str, str]]:
        """(token, key) pairs some running request has changed, unacknowledged."""
        out = set()
        for pending in self.pending.values():
            if pending.token is None:
                continue
            for key in pending.changes:
                out.add((pending.token, key))
            for message in pending.added + pending.shown:
                out.add((pending.token, "flash:" + message))
        return out

    def _check_rows(self) -> None:
        exempt = self._exempt()
        holders: dict[str, str] = {}
        for sid, row in self.rows.items():
            token = row.data.get(TOKEN)
            if token is None:
                continue
            if token in self.ended:
                self.fail("ended_stays_ended", f"{token} is readable again as {_fp(sid)}")
            if token in holders:
                self.fail(
                    "ended_stays_ended",
                    f"{token} is live under two ids ({_fp(holders[token])}, {_fp(sid)})",
                )
            holders[token] = sid
            limit = self.now + (row.ttl or self.max_age)
            if row.expires_at > limit:
                self.fail(
                    "expiry_bounded",
                    f"{token} expires at now+{row.expires_at - self.now}, its lifetime "
                    f"{row.ttl or self.max_age} allows now+{limit - self.now}",
                )
            if self.absolute is not None and row.expires_at > row.created_at + self.absolute:
                self.fail("expiry_bounded", f"{token} outlives the absolute timeout")
            strangers = [k for k in row.data if k not in FIXED and not k.startswith("k")]
            if strangers:
                self.fail("writes_kept", f"{token} holds keys no request wrote: {strangers}")
            for key, value in self.acked.get(token, {}).items():
                if (token, key) in exempt:
                    continue
                if value == DELETED and key in row.data:
                    self.fail("writes_kept", f"{token}: acknowledged deletion of {key} undone")
                if value != DELETED and row.data.get(key) != value:
                    self.fail(
                        "writes_kept",
                        f"{token}: acknowledged {key}={value!r} lost (holds {row.data.get(key)!r})",
                    )
            queue = [item[1] for item in row.data.get(FLASH_KEY) or []]
            for message in self.flashes.get(token, ()):
                if message in self.shown or (token, "flash:" + message) in exempt:
                    continue
                if message not in queue:
                    self.fail("flashes_once", f"{token}: flash {message!r} lost, never shown")

    def final(self) -> None:
        """At the end: every session with acknowledged changes is ended or live."""
        self._check_rows()
        live = {row.data.get(TOKEN) for row in self.rows.values()}
        for token, changes in self.acked.items():
            if changes and token not in self.ended and token not in live:
                self.fail("writes_kept", f"{token} neither ended nor live: its data was lost")

    def live(self, row: Row) -> bool:
        """Whether ``row`` is a live session now (not past its expiry or the
        absolute timeout)."""
        if row.expires_at <= self.now:
            return False
        return self.absolute is None or row.created_at + self.absolute > self.now

    def _check_user_call(self, call: Call, before: dict[str, Row], after: dict[str, Row]) -> None:
        if call.error is not None:
            return
        user = call.args[0]
        mine = {sid for sid, row in before.items() if row.user_id == user}
        gone = before.keys() - after.keys()
        strangers = {sid for sid in gone if before[sid].user_id != user}
        if strangers:
            names = sorted(repr(before[sid].user_id) for sid in strangers)
            self.fail("users_exact", f"{call.method}({user!r}) ended sessions of {names}")
        if call.method == "sessions_for_user":
            listed = {info.fingerprint for info in call.result}
            if listed != {fingerprint(sid) for sid in mine}:
                self.fail(
                    "users_exact",
                    f"sessions_for_user({user!r}) listed {len(listed)}, the user has {len(mine)}",
                )
        elif call.method == "destroy_user_sessions":
            if mine - {call.sid} - gone:
                self.fail("users_exact", f"destroy_user_sessions({user!r}) left some alive")
        elif call.method == "limit_user_sessions":
            limit = call.args[1]
            others = sorted(
                mine - {call.sid}, key=lambda sid: (self.used.get(sid, 0), self.created.get(sid, 0))
            )
            expected = set(others[: max(0, len(others) - (limit - 1))])
            if gone & mine != expected:
                order = [(_fp(s), "ended" if s in gone else "kept") for s in others]
                self.fail(
                    "cap_lru",
                    f"limit {limit} for {user!r}, least recently used first: {order}",
                )


def _fp(sid: str) -> str:
    return fingerprint(sid)[:6]
