"""Shared fixtures: an injected clock, configs, a recording store and a test app.

pytest-tornado's fixtures (``io_loop``, ``http_server``, ``http_client``,
``base_url``) are used only through the ``app`` fixture and the `Browser`
helper below, so the suite depends on the plugin in one place.
"""

from __future__ import annotations

import asyncio
import builtins
import http.cookies
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.web

import tornado_sessions.ui
from tornado_sessions import MemoryStore, SessionConfig, SessionMixin, StoreError
from tornado_sessions.stores.base import SessionInfo, SessionRecord, SessionStore

# A shared test module (not collected by its name) gets pytest's assertion messages too.
pytest.register_assert_rewrite("tests.events")

#: The database driver the suite runs on: ``TEST_SESSION_DB_DRIVER=aiomysql``
#: (the default dependency; the default here) or ``asyncmy`` (scripts/test
#: runs the MySQL and contract tests a second time on it).  On aiomysql,
#: asyncmy is made unimportable for the run, exactly as for a user without the
#: extra, so that the store's default driver (``auto``) is aiomysql; on
#: asyncmy, ``auto`` picks it because it is installed.  Subprocesses get
#: ``SESSION_DB_DRIVER`` set to it (`driver_env`).
TEST_DRIVER = os.environ.get("TEST_SESSION_DB_DRIVER", "") or "aiomysql"
if TEST_DRIVER == "aiomysql":
    sys.modules["asyncmy"] = None  # type: ignore[assignment]
elif TEST_DRIVER == "asyncmy":
    try:
        import asyncmy  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a broken setup, said plainly
        raise pytest.UsageError(
            "TEST_SESSION_DB_DRIVER=asyncmy but asyncmy is not installed: "
            "pip install -e '.[test,asyncmy]'"
        ) from exc
else:  # pragma: no cover
    raise pytest.UsageError(
        f"TEST_SESSION_DB_DRIVER={TEST_DRIVER!r}: accepted values are aiomysql and asyncmy"
    )


def driver_env() -> dict[str, str]:
    """The environment that makes a subprocess's store use the run's driver."""
    return {"SESSION_DB_DRIVER": TEST_DRIVER}


SECRET = "test-secret-ftQCQMrW8hZMBF9YHXmQuKrT2PtTysZfM_4Ez_ijnNg"
OLD_SECRET = "old-secret-tURLqdUVnMyuD3H5mLNGH3GEMUOTmtvQeFVLU3zNZxs"
T0 = 1_800_000_000


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingStore(SessionStore):
    """A real store (MemoryStore by default) that records every call made to
    it, and can be told to fail: instrumentation, not a mock."""

    def __init__(self, inner: SessionStore) -> None:
        super().__init__(clock=inner.clock)
        self.inner = inner
        self.calls: list[str] = []
        self.fail: set[str] = set()
        #: How many ids each `live` call asked about.
        self.live_asked: list[int] = []
        #: Seconds a call waits before it reaches the store (a slow server).
        self.delays: dict[str, float] = {}

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail or "*" in self.fail:
            raise StoreError(f"injected failure in {name} (test store at 127.0.0.1:1, table t)")

    async def get(self, sid: str) -> SessionRecord | None:
        self._call("get")
        return await self.inner.get(sid)

    async def set(self, sid: str, record: SessionRecord, *, expected_version: int | None) -> int:
        self._call("set")
        if self.delays.get("set"):
            await asyncio.sleep(self.delays["set"])
        return await self.inner.set(sid, record, expected_version=expected_version)

    async def destroy(self, sid: str, *, expected_version: int | None = None) -> bool:
        self._call("destroy")
        return await self.inner.destroy(sid, expected_version=expected_version)

    async def touch(self, sid: str, expires_at: int, *, ttl: int | None) -> bool:
        self._call("touch")
        return await self.inner.touch(sid, expires_at, ttl=ttl)

    async def live(self, sids: Iterable[str]) -> builtins.set[str]:
        asked = set(sids)
        self._call("live")
        self.live_asked.append(len(asked))
        return await self.inner.live(asked)

    async def all(self) -> list[SessionInfo]:
        return await self.inner.all()

    async def length(self) -> int:
        return await self.inner.length()

    async def clear(self) -> int:
        return await self.inner.clear()

    async def clear_expired(self) -> int:
        return await self.inner.clear_expired()

    def add_cleanup_listener(self, listener: Any) -> None:
        self.inner.add_cleanup_listener(listener)  # the inner store cleans up

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return await self.inner.sessions_for_user(user_id)

    async def destroy_user_sessions(self, user_id: str, *, except_sid: str | None = None) -> int:
        return await self.inner.destroy_user_sessions(user_id, except_sid=except_sid)

    async def destroy_user_session(self, user_id: str, fingerprint: str) -> bool:
        return await self.inner.destroy_user_session(user_id, fingerprint)

    async def limit_user_sessions(self, user_id: str, limit: int, *, current_sid: str) -> int:
        self._call("limit_user_sessions")
        return await self.inner.limit_user_sessions(user_id, limit, current_sid=current_sid)


# -- handlers of the test application ------------------------------------------


class Base(SessionMixin, tornado.web.RequestHandler):
    def check_xsrf_cookie(self) -> None:  # the test client posts without a form
        pass


class Counter(Base):
    async def get(self) -> None:
        self.session["n"] = self.session.get("n", 0) + 1
        self.write({"n": self.session["n"]})


class Read(Base):
    async def get(self) -> None:
        self.write({"data": dict(self.session), "new": self.session.is_new})


class Nothing(Base):
    async def get(self) -> None:
        self.write("no session use")


class SetValue(Base):
    async def get(self) -> None:
        key = self.get_argument("k")
        self.session[key] = json.loads(self.get_argument("v"))
        self.write({"ok": True})


class DeleteKey(Base):
    async def get(self) -> None:
        del self.session[self.get_argument("k")]
        self.write({"ok": True})


class Nested(Base):
    async def get(self) -> None:
        cart = self.session.get("cart")
        if cart is None:
            self.session["cart"] = cart = []
        cart.append(len(cart))  # an in-place edit: no __setitem__ after the first
        self.write({"cart": cart})


class Redirect(Base):
    async def get(self) -> None:
        self.session["r"] = self.get_argument("v")
        self.redirect("/read")


class Stream(Base):
    async def get(self) -> None:
        self.session["streamed"] = True
        self.write("first;")
        await self.flush()
        self.write("second")


class Fail500(Base):
    async def get(self) -> None:
        self.session["lost"] = True
        raise RuntimeError("handler bug")


class Status503(Base):
    async def get(self) -> None:
        self.session["lost"] = True
        self.set_status(503)
        self.write("down")


class Login(Base):
    async def get(self) -> None:
        await self.session.regenerate(
            keep_data=self.get_argument("keep", "1") == "1",
            restart_lifetime=self.get_argument("restart", "0") == "1",
        )
        self.session["user_id"] = self.get_argument("user", "alice")
        self.write({"ok": True})


class Logout(Base):
    async def get(self) -> None:
        await self.session.destroy()
        self.write({"ok": True})


class SaveNow(Base):
    async def get(self) -> None:
        self.session["early"] = 1
        await self.session.save()
        self.session["late"] = 2
        self.write({"ok": True})


class Reload(Base):
    async def get(self) -> None:
        self.session["scratch"] = "unsaved"
        await self.session.reload()
        self.write({"data": dict(self.session)})


class Expiry(Base):
    async def get(self) -> None:
        self.session["remember"] = True
        self.session.set_expiry(int(self.get_argument("s")))
        self.write({"ok": True})


class Touch(Base):
    async def get(self) -> None:
        self.session.touch()
        self.write({"ok": True})


class Held(Base):
    """A read that waits, once its session is loaded, until the test lets
    it finish: ``application.settings["arrived"]`` and ``["hold"]`` (two
    ``asyncio.Event`` objects the test sets; without them, a plain read)."""

    async def get(self) -> None:
        data = dict(self.session)
        settings = self.application.settings
        if "hold" in settings:
            settings["arrived"].set()
            await asyncio.wait_for(settings["hold"].wait(), 10)
        self.write({"data": data, "new": self.session.is_new})


class BadValue(Base):
    async def get(self) -> None:
        self.session["when"] = object()
        self.write("unreachable")


class ForgetsSuper(Base):
    async def prepare(self) -> None:  # does not call super().prepare()
        pass

    async def get(self) -> None:
        self.write({"n": self.session.get("n")})


class PublicCache(Base):
    async def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=600")
        self.session["x"] = 1
        self.write("cacheable?")


ROUTES: list[Any] = [
    (r"/counter", Counter),
    (r"/read", Read),
    (r"/nothing", Nothing),
    (r"/set", SetValue),
    (r"/delete", DeleteKey),
    (r"/nested", Nested),
    (r"/redirect", Redirect),
    (r"/stream", Stream),
    (r"/fail500", Fail500),
    (r"/status503", Status503),
    (r"/login", Login),
    (r"/logout", Logout),
    (r"/save-now", SaveNow),
    (r"/reload", Reload),
    (r"/expiry", Expiry),
    (r"/touch", Touch),
    (r"/held", Held),
    (r"/bad-value", BadValue),
    (r"/forgets-super", ForgetsSuper),
    (r"/public-cache", PublicCache),
]


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _independent_of_the_developers_settings(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The suite never reads the developer's own settings: every
    ``SESSION_*`` variable is removed from the environment for the run, and
    the tests run from an empty directory, so that a ``.env`` made with
    ``cp .env.example .env`` (as the README invites) is not read either.
    A test that wants a setting sets it; the MySQL tests take their server
    from ``TEST_SESSION_*`` (tests/mysql/conftest.py)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SESSION_"):
                patch.delenv(name)
        patch.chdir(tmp_path_factory.mktemp("empty-cwd"))
        yield


@pytest.fixture(scope="session", autouse=True)
def _event_loop_for_the_run() -> Iterator[None]:
    """One event loop set for the whole run and closed at its end, so that no
    test or plugin leaves a loop to be garbage-collected unclosed (which
    warnings-as-errors would blame on whichever test runs then)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(clock: FakeClock, request: pytest.FixtureRequest) -> SessionConfig:
    """The test's config; ``@pytest.mark.session_config(field=value)`` changes fields."""
    marker = request.node.get_closest_marker("session_config")
    overrides = marker.kwargs if marker else {}
    return SessionConfig(secret=SECRET, clock=clock, **overrides)


@pytest.fixture
def store(clock: FakeClock) -> RecordingStore:
    return RecordingStore(MemoryStore(clock=clock))


@pytest.fixture
def app(store: SessionStore, config: SessionConfig) -> tornado.web.Application:
    return tornado.web.Application(
        ROUTES,
        session_store=store,
        session_config=config,
        debug=False,
        ui_methods=tornado_sessions.ui,
    )


class Browser:
    """A minimal HTTP client that keeps cookies like a browser does."""

    def __init__(self, client: tornado.httpclient.AsyncHTTPClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.jar: dict[str, str] = {}

    async def get(self, path: str, **kwargs: Any) -> tornado.httpclient.HTTPResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.jar and "Cookie" not in headers:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        kwargs.setdefault("follow_redirects", False)
        kwargs.setdefault("raise_error", False)
        kwargs.setdefault("request_timeout", 10)
        response = await self.client.fetch(self.base_url + path, headers=headers, **kwargs)
        for line in response.headers.get_list("Set-Cookie"):
            morsel = parse_set_cookie(line)
            if not morsel.value:  # clear_cookie() sends an empty value, expired
                self.jar.pop(morsel.key, None)
            else:
                self.jar[morsel.key] = morsel.coded_value
        return response


def parse_set_cookie(line: str) -> http.cookies.Morsel[str]:
    cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    cookie.load(line)
    (morsel,) = cookie.values()
    return morsel


def set_cookies(response: tornado.httpclient.HTTPResponse) -> list[http.cookies.Morsel[str]]:
    return [parse_set_cookie(line) for line in response.headers.get_list("Set-Cookie")]


def body(response: tornado.httpclient.HTTPResponse) -> Any:
    return json.loads(response.body)


@pytest.fixture
def browser(http_client: tornado.httpclient.AsyncHTTPClient, base_url: str) -> Iterator[Browser]:
    yield Browser(http_client, base_url)


class StreamThenModify(Base):
    async def get(self) -> None:
        self.write("head;")
        await self.flush()
        self.session["after_flush"] = True
        self.write("tail")


class BypassesFinish(Base):
    async def get(self) -> None:
        self.session["late"] = True
        self.write("bypassed")
        tornado.web.RequestHandler.finish(self)  # skips SessionMixin.finish


class BypassesFinishThenExpires(Base):
    """As `BypassesFinish`, with a set_expiry(60) that runs after the
    response, before the late save starts (a task of the handler's)."""

    async def get(self) -> None:
        self.session["late"] = True
        tornado.ioloop.IOLoop.current().add_callback(self.session.set_expiry, 60)
        self.write("bypassed")
        tornado.web.RequestHandler.finish(self)  # skips SessionMixin.finish


ROUTES += [
    (r"/stream-then-modify", StreamThenModify),
    (r"/bypass", BypassesFinish),
    (r"/bypass-then-expire", BypassesFinishThenExpires),
]


class Increment(Base):
    async def get(self) -> None:
        key = self.get_argument("k")
        self.session[key] = self.session.get(key, 0) + 1
        self.write({key: self.session[key]})


class SlowSet(Base):
    """Loads the session, waits (while another request may end it), then writes."""

    async def get(self) -> None:
        await asyncio.sleep(float(self.get_argument("wait", "0.3")))
        self.session["slow"] = json.loads(self.get_argument("v", "true"))
        self.write({"ok": True})


ROUTES += [(r"/incr", Increment), (r"/slow-set", SlowSet)]


# -- flash messages and lazy handlers (0.2) --------------------------------------


class FlashAdd(Base):
    """Queues a flash message, then redirects to the page that shows them."""

    async def get(self) -> None:
        self.session.flash(self.get_argument("m"), self.get_argument("c", "message"))
        self.redirect(self.get_argument("next", "/flash/show"))


class FlashShow(Base):
    async def get(self) -> None:
        self.write({"flashes": self.session.pop_flashes()})


class FlashPage(Base):
    """A page whose template shows the flashes through the ui_method."""

    async def get(self) -> None:
        self.write(
            self.render_string_template(
                "{% for category, message in pop_flashes() %}"
                "<p class='{{ category }}'>{{ message }}</p>{% end %}"
            )
        )

    def render_string_template(self, source: str) -> bytes:
        import tornado.template

        namespace = self.get_template_namespace()
        return tornado.template.Template(source).generate(**namespace)


class LazyNothing(Base):
    lazy_session = True

    async def get(self) -> None:
        self.write("no session needed")


class LazyReads(Base):
    lazy_session = True

    async def get(self) -> None:
        session = await self.load_session()
        self.write({"n": session.get("n"), "same": session is self.session})


class LazyWrites(Base):
    lazy_session = True

    async def get(self) -> None:
        session = await self.load_session()
        session["lazy"] = session.get("lazy", 0) + 1
        self.write({"lazy": session["lazy"]})


class LazyForgets(Base):
    lazy_session = True

    async def get(self) -> None:
        self.write({"n": self.session.get("n")})  # without load_session()


ROUTES += [
    (r"/flash/add", FlashAdd),
    (r"/flash/show", FlashShow),
    (r"/flash/page", FlashPage),
    (r"/lazy/nothing", LazyNothing),
    (r"/lazy/reads", LazyReads),
    (r"/lazy/writes", LazyWrites),
    (r"/lazy/forgets", LazyForgets),
]


# -- the seams of 0.3's guarantees (tests/seams.py) --------------------------------

#: Gates a handler waits at (by name), opened by the test: a request paused
#: exactly where another request must overtake it.
GATES: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _fresh_gates() -> Iterator[None]:
    GATES.clear()
    yield
    GATES.clear()


def gate(name: str) -> asyncio.Event:
    """The gate ``name`` (made on first use, by the test or the handler)."""
    return GATES.setdefault(name, asyncio.Event())


async def wait_gate(name: str) -> None:
    """Wait at gate ``name``; the test learns it was reached from the gate
    ``name + ":reached"``."""
    gate(name + ":reached").set()
    async with asyncio.timeout(10):  # never hang: a test that forgets fails
        await gate(name).wait()


class GatedRead(Base):
    """Loads the session, waits at its gate, then reads it (read-only)."""

    async def get(self) -> None:
        await wait_gate(self.get_argument("gate"))
        self.write({"data": dict(self.session)})


class GatedRegenerate(Base):
    """A login step after a slow check (a password hash): waits at its gate,
    then regenerates the session and raises its privileges."""

    async def get(self) -> None:
        await wait_gate(self.get_argument("gate"))
        await self.session.regenerate()
        if self.get_argument("elevate", "1") == "1":
            self.session["elevated"] = True
        self.write({"data": dict(self.session)})


class EndEverywhere(Base):
    """Log out everywhere: end every session of the session's user."""

    async def get(self) -> None:
        self.write({"ended": await self.end_user_sessions(keep_current=False)})


class IdentityRead(Base):
    """Answers from the session's identity alone (a CSRF token made from the
    id, a fingerprint, an expiry), never from its data."""

    async def get(self) -> None:
        import hashlib

        what = self.get_argument("what")
        if what == "id":
            self.write(hashlib.sha256(self.session.id.encode()).hexdigest())
        elif what == "fingerprint":
            self.write(self.session.fingerprint)
        else:
            self.write(str(self.session.expires_at))


class StreamThenRead(Base):
    async def get(self) -> None:
        self.write("head;")
        await self.flush()
        self.write({"n": self.session.get("n")})


class SaveUnmodified(Base):
    """save() of a session this request did not change, then the end."""

    async def get(self) -> None:
        await self.session.save()
        self.write({"ok": True})


class SaveThenDestroy(Base):
    async def get(self) -> None:
        self.session["x"] = 1
        await self.session.save()
        await self.session.destroy()
        self.write({"ok": True})


class LoginWithBadData(Base):
    """A nested edit JSON cannot hold (a set, or nesting too deep), then a login."""

    async def get(self) -> None:
        cart = self.session["cart"]
        if self.get_argument("deep", None):
            for _ in range(5000):
                cart = [cart]
            self.session["cart"].append(cart)
        else:
            cart.append({"a set"})
        await self.session.regenerate()


class LoginThenReload(Base):
    """A login, a change, then reload() before anything is saved."""

    async def get(self) -> None:
        await self.session.regenerate()
        self.session["scratch"] = "unsaved"
        await self.session.reload()
        self.write({"data": dict(self.session)})


class FlushThenSave(Base):
    """A new session's flush() not awaited, then save() beside it."""

    async def get(self) -> None:
        self.session["x"] = 1
        self.write("a")
        flushed = self.flush()
        await self.session.save()
        await flushed
        self.finish("b")


ROUTES += [
    (r"/save-then-destroy", SaveThenDestroy),
    (r"/login-then-reload", LoginThenReload),
    (r"/login-with-bad-data", LoginWithBadData),
    (r"/flush-then-save", FlushThenSave),
    (r"/gated-read", GatedRead),
    (r"/gated-regenerate", GatedRegenerate),
    (r"/end-everywhere", EndEverywhere),
    (r"/identity", IdentityRead),
    (r"/stream-then-read", StreamThenRead),
    (r"/save-unmodified", SaveUnmodified),
    (r"/app/counter", Counter),
    (r"/app", Read),
    (r"/application/counter", Counter),
]


# -- sealed data (0.3) -----------------------------------------------------------


def sid_of(app: tornado.web.Application, cookie: str) -> str:
    """The session id a cookie value carries (decoded as the application does)."""
    from tornado_sessions.testing import session_manager

    payload = session_manager(app).decode_cookie(cookie)
    assert payload is not None, "not a valid session cookie"
    return str(payload["i"])


def unseal(sid: str, stored: str) -> str:
    """The JSON text of a stored ``data`` value of the session ``sid``,
    opened as the stores open it (`tornado_sessions.sealing`)."""
    from tornado_sessions.sealing import is_sealed, open_data
    from tornado_sessions.stores.base import hash_sid

    assert is_sealed(stored), f"stored data is not sealed: {stored[:40]!r}"
    return open_data(sid, hash_sid(sid), stored)


class MarkedSealing:
    """Mixed into a store: its own sealing marks the text (what a store of
    one's own, or the bench's unsealed server, does by overriding the two
    hooks ``seal_data`` and ``open_data``)."""

    def seal_data(self, sid: str, data: str, row_key: bytes) -> str:
        from tornado_sessions.stores.base import hash_sid

        assert row_key == hash_sid(sid)
        return "marked:" + data

    def open_data(self, sid: str, data: str, row_key: bytes) -> str | None:
        from tornado_sessions.stores.base import hash_sid

        assert row_key == hash_sid(sid)
        return data.removeprefix("marked:") if data.startswith("marked:") else None
