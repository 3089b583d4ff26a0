"""The operations the checker generates: every verb of the public API.

``@request_op(*argument strategies)`` declares what a request's handler can
do with ``self.session`` between its load and its end (the end saves it,
as `.SessionMixin.finish` does); ``@process_op(...)`` what a process does
outside any request (the cleanup, a key rotation, an administrator's "log
out everywhere").  Each operation tells the model what it changed, so the
model knows which changes were acknowledged (a save that returned) and
which sessions the request itself ended.  A session in the store ends by a
store call (the model sees its record go); an operation ends a lineage
itself only when it drops data it held unsaved (a login's data not stored
yet, by ``destroy()``, ``reload()`` or ``regenerate(keep_data=False)``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import strategies as st

from tornado_sessions.session import Session

from .live import Socket
from .model import DELETED, TOKEN, Model, Pending
from .world import ACTOR, PURPOSE, Process, Request, World

#: The users: two differ by a trailing space only (finding 4).
USERS = ("alice", "alice ", "bob")
#: The lifetimes ``set_expiry`` gets (None: back to the configured one);
#: a short one twice as often, since shortening is what a stale request can undo.
LIFETIMES = (60, 60, 86400, None)


@dataclasses.dataclass
class Op:
    name: str
    run: Callable[..., Awaitable[None]]
    args: st.SearchStrategy[tuple[Any, ...]]


REQUEST_OPS: dict[str, Op] = {}
PROCESS_OPS: dict[str, Op] = {}


def _declare(table: dict[str, Op], args: tuple[st.SearchStrategy[Any], ...]) -> Any:
    def declare(run: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        table[run.__name__] = Op(run.__name__, run, st.tuples(*args))
        return run

    return declare


def request_op(*args: st.SearchStrategy[Any]) -> Any:
    """Declare a request operation: ``async def name(ctx, *args)``."""
    return _declare(REQUEST_OPS, args)


def process_op(*args: st.SearchStrategy[Any]) -> Any:
    """Declare a process operation: ``async def name(world, process, *args)``."""
    return _declare(PROCESS_OPS, args)


_serial = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


@dataclasses.dataclass
class Ctx:
    """One running request, as its operations see it."""

    actor: str
    world: World
    model: Model
    request: Request
    session: Session
    loaded_at: int
    #: The changes a login moved with the data, not stored yet: a reload()
    #: goes back to them (`.Session.reload`), the first save stores them.
    carried: Pending | None = None

    @property
    def pending(self) -> Pending:
        return self.model.pending[self.actor]

    def token(self) -> str | None:
        return self.session._data.get(TOKEN)

    def own(self) -> None:
        """Before a change: the session carries a token, and the pending
        changes are those of that token."""
        if TOKEN not in self.session._data:
            self.session[TOKEN] = unique("T")
        self.sync()
        self.pending.token = self.token()

    def sync(self) -> None:
        """The session changed lineage (it ended, and is fresh): the pending
        changes were dropped with it."""
        if self.pending.token is not None and self.pending.token != self.token():
            self.model.drop(self.actor)

    def saved(self) -> None:
        """A save or the end of the request returned."""
        self.sync()
        if not self.session._is_new:
            self.carried = None
            if self.pending.token is not None:
                self.model.ack(self.actor)


# -- reads -------------------------------------------------------------------------


@request_op()
async def read(ctx: Ctx) -> None:
    ctx.session.accessed = False
    dict(ctx.session)
    ctx.model.read(ctx.actor, ctx.session.accessed, "the data")


@request_op(st.sampled_from(["id", "fingerprint", "expires_at"]))
async def identity(ctx: Ctx, what: str) -> None:
    ctx.session.accessed = False
    getattr(ctx.session, what)
    ctx.model.read(ctx.actor, ctx.session.accessed, f"session.{what}")


# -- changes -----------------------------------------------------------------------


@request_op()
async def set_key(ctx: Ctx) -> None:
    ctx.own()
    key = unique("k")
    ctx.session[key] = key
    ctx.pending.changes[key] = key


#: Values that have broken stores: finding 3's GBK injection (a value whose
#: first character ends in a backslash byte under GBK), quotes, non-BMP text.
VALUES = (
    "\u7e17', data='{\"role\":\"admin\"}', version=version WHERE user_id='alice' -- ",
    'it\'s "quoted" \\ and % and _',
    "\U0001f389 party",
)


@request_op(st.sampled_from(VALUES))
async def set_value(ctx: Ctx, value: str) -> None:
    ctx.own()
    key = unique("k")
    ctx.session[key] = value
    ctx.pending.changes[key] = value


@request_op(st.integers(0, 7))
async def delete_key(ctx: Ctx, index: int) -> None:
    keys = sorted(key for key in ctx.session._data if key.startswith("k"))
    if not keys:
        return
    ctx.own()
    key = keys[index % len(keys)]
    del ctx.session[key]
    ctx.pending.changes[key] = DELETED


@request_op()
async def flash(ctx: Ctx) -> None:
    ctx.own()
    message = unique("m")
    ctx.session.flash(message)
    ctx.pending.added.append(message)


@request_op()
async def pop(ctx: Ctx) -> None:
    shown = [message for _, message in ctx.session.pop_flashes()]
    ctx.model.read(ctx.actor, ctx.session.accessed, "the flashes")
    ctx.model.popped(ctx.actor, ctx.loaded_at, shown)
    if shown:
        ctx.own()
        ctx.pending.shown.extend(shown)


@request_op()
async def save(ctx: Ctx) -> None:
    await ctx.session.save()
    ctx.saved()


@request_op()
async def touch(ctx: Ctx) -> None:
    ctx.session.touch()


@request_op(st.sampled_from(LIFETIMES))
async def set_expiry(ctx: Ctx, seconds: int | None) -> None:
    ctx.model.lifetimes += 1
    ctx.model.expiring.add(ctx.actor)
    ctx.session.set_expiry(seconds)


@request_op()
async def reload(ctx: Ctx) -> None:
    before, new = ctx.token(), ctx.session._is_new
    await ctx.session.reload()
    ctx.model.drop(ctx.actor)  # unsaved changes are dropped, by design
    carried = ctx.carried
    if new and carried is not None and ctx.token() == carried.token:
        # A login's data not stored yet: back to what it moved.
        ctx.model.pending[ctx.actor] = dataclasses.replace(
            carried,
            changes=dict(carried.changes),
            added=list(carried.added),
            shown=list(carried.shown),
        )
    elif new and ctx.token() != before:
        ctx.model.end(before)  # a new session's data, never stored


# -- lifecycle ---------------------------------------------------------------------


@request_op(st.sampled_from(USERS), st.booleans())
async def login(ctx: Ctx, user: str, keep_data: bool) -> None:
    """``regenerate()`` then bind the user (the documented login), under
    ``SESSION_MAX_PER_USER`` when the config sets it."""
    before, new = ctx.token(), ctx.session._is_new
    reset = PURPOSE.set("move" if keep_data else "renew")
    try:
        await ctx.session.regenerate(keep_data=keep_data)
    finally:
        PURPOSE.reset(reset)
    if new and ctx.token() != before:
        ctx.model.end(before)  # data not stored yet, dropped (keep_data=False)
    ctx.sync()
    moved = not new or ctx.carried is not None  # stored data, or moved data again
    if moved and ctx.session._is_new and ctx.token() is not None and ctx.token() == before:
        # The data moved, with this request's changes on top.
        pending = ctx.pending
        ctx.carried = dataclasses.replace(
            pending,
            changes=dict(pending.changes),
            added=list(pending.added),
            shown=list(pending.shown),
        )
    else:
        ctx.carried = None  # nothing moved (a new session, or it had ended)
    ctx.own()
    ctx.session["user_id"] = user


@request_op()
async def destroy(ctx: Ctx) -> None:
    token, new = ctx.token(), ctx.session._is_new
    await ctx.session.destroy()
    if new:  # never stored, or moved here by this request's login: over now
        ctx.model.end(token)
    ctx.sync()


@request_op(st.booleans())
async def logout_everywhere(ctx: Ctx, keep_current: bool) -> None:
    user = ctx.request.manager.user_of(ctx.session)
    if user is None:
        return
    keep = ctx.session if keep_current else None
    await ctx.request.manager.end_user_sessions(user, except_session=keep)


# -- processes ---------------------------------------------------------------------


@process_op()
async def cleanup(world: World, process: Process) -> None:
    await process.store.clear_expired()


@process_op()
async def rotate_key(world: World, process: Process) -> None:
    process.rotate()


@process_op(st.sampled_from(USERS))
async def end_user(world: World, process: Process, user: str) -> None:
    await process.manager.end_user_sessions(user)


@process_op(st.sampled_from(USERS))
async def list_user(world: World, process: Process, user: str) -> None:
    await process.manager.user_sessions(user)


@process_op(st.sampled_from(USERS), st.integers(0, 7))
async def revoke(world: World, process: Process, user: str, index: int) -> None:
    """A "my sessions" page ends one session by its fingerprint."""
    known = list(world.sids)  # in the order first stored: a replay picks the same one
    if known:
        await process.manager.end_user_session(user, known[index % len(known)])


# -- live revocation (issue 20) ------------------------------------------------------


@process_op(st.integers(0, 2))
async def open_socket(world: World, process: Process, browser: int) -> None:
    """A WebSocket handshake of a browser: its session, watched by the
    process's revocation until the library closes it."""
    socket = Socket(unique("s"), world, process, world.browsers[browser])
    world.sockets.append(socket)
    await socket.handshake()


def _open_socket(world: World, index: int) -> Socket | None:
    sockets = [s for s in world.sockets if s.closed is None and s.session is not None]
    return sockets[index % len(sockets)] if sockets else None


@process_op(st.integers(0, 7), st.sampled_from(USERS))
async def socket_login(world: World, process: Process, index: int, user: str) -> None:
    """An open socket's own code logs in (``regenerate()``, bind the user,
    ``save()``), as a message handler may: the socket holds the new id and
    must stay open while it lives."""
    socket = _open_socket(world, index)
    if socket is None:
        return
    assert socket.session is not None
    world.managers[ACTOR.get()] = socket.manager
    reset = PURPOSE.set("move")
    try:
        await socket.session.regenerate()
    finally:
        PURPOSE.reset(reset)
    socket.held.add(socket.session._id)
    socket.session["user_id"] = user
    await socket.session.save()
    socket.held.add(socket.session._id)


@process_op(st.integers(0, 7))
async def socket_save(world: World, process: Process, index: int) -> None:
    """An open socket's own code changes its session and saves it
    (``session[k] = v``, ``await session.save()``), as a message handler
    may, while others of its messages run: the change is acknowledged
    when the save returns with it still in the session."""
    socket = _open_socket(world, index)
    if socket is None:
        return
    session = socket.session
    assert session is not None
    actor = ACTOR.get()
    world.managers[actor] = socket.manager
    model = world.model
    pending = model.begin(actor)
    try:
        if TOKEN not in session._data:
            session[TOKEN] = unique("T")
        key = unique("k")
        session[key] = key
        pending.token = session._data.get(TOKEN)
        pending.changes[key] = key
        await session.save()
        socket.held.add(session._id)
        # Another message's reload() may have dropped the change unsaved.
        kept = session._data.get(key) == key and session._data.get(TOKEN) == pending.token
        if kept and not session._is_new:
            model.ack(actor)
    finally:
        model.done(actor)


@process_op(st.integers(0, 7), st.sampled_from(LIFETIMES))
async def socket_set_expiry(
    world: World, process: Process, index: int, seconds: int | None
) -> None:
    """An open socket's own code changes its session's lifetime and saves
    (``set_expiry()``, ``await session.save()``), while its other messages
    save, touch or reload: the lifetime must be stored with its own expiry."""
    socket = _open_socket(world, index)
    if socket is None:
        return
    session = socket.session
    assert session is not None
    actor = ACTOR.get()
    world.managers[actor] = socket.manager
    model = world.model
    model.lifetimes += 1
    mine, sid, reloads = model.lifetimes, session._id, socket.reloads
    # Another actor's set_expiry() made before this one may be saved after
    # it, and then rightly stored last (a merge keeps the request's own
    # lifetime): this one is checked only if no other was pending.
    alone = not model.expiring
    model.expiring.add(actor)
    try:
        session.set_expiry(seconds)
        await session.save()
    finally:
        model.expiring.discard(actor)
    socket.held.add(session._id)
    # Acknowledged: unless another set_expiry() was pending or began
    # meanwhile, a reload() of another message dropped it unsaved (as it
    # drops unsaved data), or the session moved or ended, its record has
    # this lifetime.  Read through the socket's own store, which wrote it
    # (on a cluster another node may not have applied it yet), and gated
    # like every store call: the schedule decides what runs before the read,
    # not the time the read takes.
    if not alone or model.lifetimes != mine or socket.reloads != reloads or session._id != sid:
        return
    record = await socket.process.store.get(sid)
    if record is not None and record.ttl != seconds and model.lifetimes == mine:
        model.fail(
            "expiry_bounded",
            f"socket {socket.name}'s set_expiry({seconds}) was acknowledged, and its record "
            f"keeps the lifetime {record.ttl}",
        )


@process_op(st.integers(0, 7))
async def socket_reload(world: World, process: Process, index: int) -> None:
    """An open socket's own code reloads its session (``reload()``)."""
    socket = _open_socket(world, index)
    if socket is None:
        return
    assert socket.session is not None
    world.managers[ACTOR.get()] = socket.manager
    try:
        await socket.session.reload()
    finally:
        socket.reloads += 1
    socket.held.add(socket.session._id)


@process_op()
async def revocation_check(world: World, process: Process) -> None:
    """The process's periodic revocation check (one `live` call)."""
    await process.revocation.check()
