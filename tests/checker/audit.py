"""The checks of live revocation and session events (issue 20), for
`.model.Model`: what the history requires of the open sockets
(`.live.Socket`) and of the events each process's manager delivered.

What a store call ended, and which process's revocation must know it:

* a ``destroy`` that ended a live record (a logout, a login's hand-over of
  the old id), made by a manager whose revocation watches the process's
  sockets: that process's sockets of the id close at once (the next time
  every task is paused, `settled`);
* a ``live`` call (a revocation check) of a process that asked about an id
  not live at that moment: the process's sockets of that id close as soon
  as the check returns;
* a per-user end (log out everywhere, the per-user limit, one session
  ended from a list) in the process: a check runs at once, so its sockets
  of the ended ids are closed by the end of the round (`round_done`).

Events: each such call expects its event in the process that made it, and
`round_done` compares, after every event has been delivered.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

from tornado_sessions.events import EventKind, SessionEvent
from tornado_sessions.revocation import CLOSE_CODE, CLOSE_REASON
from tornado_sessions.stores.base import fingerprint

from .world import TOKEN, Call, Row, World

if TYPE_CHECKING:
    from .model import Model

PER_USER_ENDS = ("destroy_user_sessions", "limit_user_sessions", "destroy_user_session")

#: An event as compared: kind, fingerprint, previous, user, count.
Key = tuple[str, Any, Any, Any, int]


class Audit:
    """The socket and event history of one example."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.world: World | None = None
        #: (process, sid): that process's sockets of sid must be closed now.
        self.must_close: set[tuple[int, str]] = set()
        #: (process, sid): must be closed by the end of the round.
        self.closing_soon: set[tuple[int, str]] = set()
        #: Per process: the events expected, but created/regenerated ones.
        self.expected: dict[int, collections.Counter[Key]] = collections.defaultdict(
            collections.Counter
        )
        #: Per process: the fingerprints inserted (a first save).
        self.inserted: dict[int, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )

    def _same_revocation(self, call: Call) -> bool:
        assert self.world is not None
        manager = self.world.managers.get(call.actor)
        process = self.world.processes[call.process]
        return manager is not None and manager.revocation is process.revocation

    def step(self, call: Call, before: dict[str, Row], after: dict[str, Row]) -> None:
        """A store call completed: what it requires of sockets and events."""
        if self.world is None or call.error is not None or call.process < 0:
            return
        p, method, result = call.process, call.method, call.result
        gone = before.keys() - after.keys()
        expected = self.expected[p]
        if method == "live":
            self.must_close |= {(p, sid) for sid in call.args[0] if sid not in before}
        elif method == "destroy" and result is True:
            assert call.sid is not None
            if self._same_revocation(call):
                self.must_close.add((p, call.sid))
            if call.purpose in ("move", "renew"):  # a login's hand-over
                expected[("regenerated", None, fingerprint(call.sid), None, 1)] += 1
            else:
                expected[("destroyed", fingerprint(call.sid), None, None, 1)] += 1
        elif method == "set" and call.args[0] is None and call.sid is not None:
            self.inserted[p][fingerprint(call.sid)] += 1
        elif method == "clear_expired" and result:
            expected[("cleaned", None, None, None, result)] += 1
        elif method in PER_USER_ENDS and result:
            if self._same_revocation(call):
                self.closing_soon |= {(p, sid) for sid in gone}
            user = call.args[0]
            if method == "limit_user_sessions":
                expected[("limited", None, None, user, result)] += 1
            elif method == "destroy_user_session":
                expected[("user_ended", call.args[1].lower(), None, user, 1)] += 1
            else:
                expected[("user_ended", None, None, user, result)] += 1

    def settled(self) -> None:
        """Every task is paused at the store or done: check the sockets."""
        if self.world is None:
            return
        for socket in self.world.sockets:
            if socket.sid is None:
                continue
            where = (socket.process.index, socket.sid)
            if socket.closed is None:
                if where in self.must_close:
                    self.model.fail(
                        "revocation_closes",
                        f"socket {socket.name} of p{where[0]} is open, its session "
                        f"{fingerprint(socket.sid)[:6]} ended and its process knows it",
                    )
                continue
            if socket.sid in self.model.rows:
                self.model.fail(
                    "live_sockets_stay",
                    f"socket {socket.name} was closed at step {socket.closed_at}, its "
                    f"session {fingerprint(socket.sid)[:6]} is live",
                )
            if socket.closed != (CLOSE_CODE, CLOSE_REASON):
                self.model.fail(
                    "revocation_closes", f"socket {socket.name} closed with {socket.closed}"
                )

    async def round_done(self) -> None:
        """The round's tasks are done: every event is delivered; compare."""
        world = self.world
        if world is None:
            return
        for process in world.processes:
            for manager in process.managers:
                await manager.events.join()
        for where in self.closing_soon:
            for socket in world.sockets:
                if (socket.process.index, socket.sid) == where and socket.closed is None:
                    self.model.fail(
                        "revocation_closes",
                        f"socket {socket.name}: its session was ended in its process by a "
                        "per-user call, and it is still open when the round ends",
                    )
        self.closing_soon.clear()
        self._sockets_keep_their_sessions(world)
        secrets = set(world.sids.values())
        for process in world.processes:
            self._events(process.index, process.events, secrets)

    def _sockets_keep_their_sessions(self, world: World) -> None:
        """An open socket never drops a session that still lives under an id
        its own calls gave it: its messages (a login, a save, a reload)
        racing each other leave it on its lineage.  (A login of the browser
        ends the socket's id: the revocation closes it.)"""
        model = self.model
        for socket in world.sockets:
            if socket.closed is not None or socket.session is None:
                continue
            held = socket.session._data.get(TOKEN)
            if socket.token is not None and held != socket.token:
                live = [
                    sid
                    for sid, row in model.rows.items()
                    if row.data.get(TOKEN) == socket.token
                    and sid in socket.held
                    and model.live(row)
                ]
                if live:
                    model.fail(
                        "writes_kept",
                        f"socket {socket.name} dropped its session {socket.token}, which "
                        f"lives as {fingerprint(live[0])[:6]}, and holds {held}",
                    )
            socket.token = held

    def _events(self, p: int, events: list[SessionEvent], secrets: set[str]) -> None:
        fail = self.model.fail
        for event in events:
            text = repr(event)
            if any(sid in text for sid in secrets):
                fail("events_match", f"p{p}: a {event.kind.value} event carries a session id")
        actual: collections.Counter[Key] = collections.Counter()
        new: collections.Counter[str] = collections.Counter()
        live = {fingerprint(sid) for sid in self.model.rows}
        for event in events:
            kind = EventKind(event.kind).value
            if kind == "expired":
                if event.fingerprint in live:
                    fail("events_match", f"p{p}: an expired event for a live session")
                continue
            if kind in ("created", "regenerated"):
                assert event.fingerprint is not None
                new[event.fingerprint] += 1
            if kind == "created":
                continue
            user = event.user_id if kind in ("user_ended", "limited") else None
            single = event.fingerprint if kind in ("destroyed",) else None
            if kind == "user_ended" and event.count == 1 and event.reason.startswith("ended from"):
                single = event.fingerprint
            previous = event.previous if kind == "regenerated" else None
            actual[(kind, single, previous, user, event.count)] += 1
        if actual != self.expected[p]:
            missing = self.expected[p] - actual
            extra = actual - self.expected[p]
            fail("events_match", f"p{p}: events missing {dict(missing)}, unexpected {dict(extra)}")
        created = collections.Counter(
            e.fingerprint for e in events if e.kind is EventKind.CREATED and e.fingerprint
        )
        for fp, count in self.inserted[p].items():
            if new[fp] != count:
                fail(
                    "events_match",
                    f"p{p}: session {fp[:6]} was stored new {count} time(s), with {new[fp]} "
                    "created/regenerated event(s)",
                )
        for fp in created:
            if fp not in self.inserted[p]:
                fail("events_match", f"p{p}: a created event for {fp[:6]}, never stored new")
