"""One benchmark server: a Tornado app on 127.0.0.1, bare or with sessions.

Run by ``bench/run.py`` as a subprocess::

    python bench/server.py --variant bare|memory|mysql --port 8001 [--table bench_sessions]
        [--uvloop] [--unbatched] [--unsealed]

Routes (the same handler bodies in every variant, the session use aside):

* ``/read``: reads the key ``n`` of the session (bare: a constant);
* ``/write``: increments the counter ``n`` (bare: a process-wide counter);
  ``/write?k=<n>`` increments the key ``k<n>`` instead, and counts the
  request as acknowledged if it is answered 200 (after the save);
* ``/seed``: (session variants) starts a session with ``n = 0``: its
  ``Set-Cookie`` is the cookie the load generator sends;
* ``/tally``: (session variants) once no ``/write`` is in flight, the
  session's ``k<n>`` keys and the acknowledged writes per key, as
  ``{"held": {...}, "acked": {...}}``: the lost-update check; and
  ``"seeded"``, whether the session holds what ``/seed`` stored (a read of
  a missing session answers as a read of a new one);
* ``/round-trips``: (session variants) the store's count of queries sent to
  the database so far (``MySQLStore.round_trips``; 0 for MemoryStore).

``--unsealed`` (bench only, for ``bench/sealcost.py``) makes *this process's*
store keep session data as plain JSON: its `~.SessionStore.seal_data` and
`~.SessionStore.open_data` become the identity, so that the same server
can be measured sealed and unsealed.  The library itself has no setting,
variable or flag that turns sealing off.  ``--time-sealing`` (bench only)
times those two hooks with the thread's CPU clock while ``/sealing-time?on=1``
has switched it on; ``/sealing-time?on=0`` switches it off and answers the
totals (``seal_ns``, ``seal_calls``, ``open_ns``, ``open_calls``, and
``clock_ns``, the clock's own cost per timed call, not subtracted).

The MySQL variant reads SESSION_HOST, SESSION_PORT, SESSION_USER,
SESSION_PASSWORD and SESSION_DATABASE; every variant needs SESSION_SECRET
(the session ones only).  Prints ``ready <port>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from tornado_sessions import MemoryStore, SessionConfig, SessionMixin


class BareRead(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"n": 0})


_COUNT = {"n": 0}


class BareWrite(tornado.web.RequestHandler):
    def initialize(self) -> None:
        # The same query lookup as SessionWrite's, so that the floor and the
        # ratios count the session layer's work only.
        self.get_query_argument("k", None)

    def get(self) -> None:
        _COUNT["n"] += 1
        self.write({"n": _COUNT["n"]})


class SessionRead(SessionMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"n": self.session.get("n", 0)})


#: /write?k= requests being handled, and the 200 answers sent per key.
_WRITES: dict[str, Any] = {"in_flight": 0, "acked": {}}


class SessionWrite(SessionMixin, tornado.web.RequestHandler):
    key = "n"

    def initialize(self) -> None:
        # Counted from the start: /tally must wait for a request still loading.
        k = self.get_query_argument("k", None)
        if k is not None:
            self.key = f"k{k}" if k.isdigit() and len(k) <= 6 else ""
            _WRITES["in_flight"] += 1

    def get(self) -> None:
        if not self.key:
            raise tornado.web.HTTPError(400, reason="k must be a small integer")
        self.session[self.key] = self.session.get(self.key, 0) + 1
        self.write({self.key: self.session[self.key]})

    def on_finish(self) -> None:
        # After finish(): the save is done (or failed, and the status says so).
        super().on_finish()
        if self.key != "n":
            _WRITES["in_flight"] -= 1
            if self.key and self.get_status() == 200:
                acked = _WRITES["acked"]
                acked[self.key] = acked.get(self.key, 0) + 1


class Tally(SessionMixin, tornado.web.RequestHandler):
    async def prepare(self) -> None:
        try:
            async with asyncio.timeout(10):
                while _WRITES["in_flight"]:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            raise tornado.web.HTTPError(503, reason="writes still in flight after 10 s") from None
        await super().prepare()

    def get(self) -> None:
        held = {k: v for k, v in self.session.items() if k[:1] == "k" and k[1:].isdigit()}
        seeded = "user" in self.session
        self.write({"held": held, "acked": _WRITES["acked"], "seeded": seeded})


class RoundTrips(tornado.web.RequestHandler):
    def get(self) -> None:
        store = self.settings["session_store"]
        self.write({"round_trips": getattr(store, "round_trips", 0)})


class Seed(SessionMixin, tornado.web.RequestHandler):
    def get(self) -> None:
        self.session["n"] = 0
        self.session["user"] = {"name": "bench", "roles": ["reader", "writer"]}
        self.write({"n": 0})


def unseal(store: Any) -> None:
    """Bench only: this store instance keeps data as plain JSON (the
    identity for its seal and open hooks), to measure what sealing costs."""

    def identity(sid: str, data: str, row_key: bytes) -> str:
        return data

    store.seal_data = identity
    store.open_data = identity


#: The timed hooks' totals (--time-sealing).
_TIMED: dict[str, Any] = {"on": False}


def time_sealing(store: Any) -> None:
    """Bench only: time this store's seal and open hooks with the thread's
    CPU clock while ``_TIMED["on"]`` (both A/B servers are wrapped alike,
    so the wrapper's own cost is the same on each)."""
    clock = time.thread_time_ns
    hooks = {"seal": store.seal_data, "open": store.open_data}

    def timed(name: str) -> Any:
        hook = hooks[name]

        def call(sid: str, data: str, row_key: bytes) -> Any:
            if not _TIMED["on"]:
                return hook(sid, data, row_key)
            start = clock()
            out = hook(sid, data, row_key)
            _TIMED[f"{name}_ns"] += clock() - start
            _TIMED[f"{name}_calls"] += 1
            return out

        return call

    store.seal_data = timed("seal")
    store.open_data = timed("open")
    # The clock's cost per timed call: the least of many empty intervals.
    _TIMED["clock_ns"] = min(-clock() + clock() for _ in range(200))


class SealingTime(tornado.web.RequestHandler):
    def get(self) -> None:
        if self.get_query_argument("on") == "1":
            _TIMED.update(on=True, seal_ns=0, seal_calls=0, open_ns=0, open_calls=0)
            self.write({"on": True})
        else:
            _TIMED["on"] = False
            self.write({k: v for k, v in _TIMED.items() if k != "on"})


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=["bare", "memory", "mysql"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--table", default="bench_sessions")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--unbatched", action="store_true", help="MySQLStore with coalescing off")
    parser.add_argument(
        "--unsealed", action="store_true", help="(bench only) keep data as plain JSON"
    )
    parser.add_argument(
        "--time-sealing", action="store_true", help="(bench only) time the seal and open hooks"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings: dict[str, Any] = {"debug": False}
    store: Any = None
    if args.variant == "bare":
        routes: list[Any] = [(r"/read", BareRead), (r"/write", BareWrite)]
    else:
        config = SessionConfig.from_env()
        if args.variant == "memory":
            store = MemoryStore()
            # MemoryStore warns outside debug mode; say once that it is expected.
            logging.getLogger("tornado_sessions.stores.memory").setLevel(logging.ERROR)
        else:
            from tornado_sessions.stores.mysql import MySQLStore

            store = MySQLStore.from_config(
                config,
                table=args.table,
                create_table=True,
                cleanup_interval=None,
                coalesce_reads=not args.unbatched,
                coalesce_writes=not args.unbatched,
            )
            await store.open()
        if args.unsealed:
            unseal(store)
        if args.time_sealing:
            time_sealing(store)
        settings.update(session_store=store, session_config=config)
        routes = [
            (r"/read", SessionRead),
            (r"/write", SessionWrite),
            (r"/seed", Seed),
            (r"/tally", Tally),
            (r"/round-trips", RoundTrips),
            (r"/sealing-time", SealingTime),
        ]

    app = tornado.web.Application(routes, **settings)
    server = tornado.httpserver.HTTPServer(app, xheaders=False)
    server.add_sockets(tornado.netutil.bind_sockets(args.port, "127.0.0.1"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {args.port}", flush=True)
    await stop.wait()
    server.stop()
    if store is not None:
        await store.close()


if __name__ == "__main__":
    if "PYTHONDEVMODE" in os.environ:
        sys.exit("do not benchmark in Python dev mode")
    if "--uvloop" in sys.argv[1:]:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
