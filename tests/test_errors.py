"""The session before ``prepare()`` loaded it: the empty stand-in of an early
error page, and `SessionNotLoadedError` naming the cause that applies.

Tornado checks the XSRF token (and the method, and the body) in ``_execute``
before it calls ``prepare()``; the 403 then goes to ``send_error`` and
``write_error``, whose template reads ``current_user``, which reads
``self.session``.  Every test runs through a real server.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import tornado.template
import tornado.web

from tests.conftest import Browser, RecordingStore, set_cookies
from tornado_sessions import SessionConfig, SessionMixin, SessionNotLoadedError
from tornado_sessions.testing import make_session_cookie

PAGE = tornado.template.Template(
    "<h1>{{ status }}</h1><p id='user'>{{ current_user or 'nobody' }}</p>"
    "<p id='keys'>{{ keys }}</p>"
)


class Page(SessionMixin, tornado.web.RequestHandler):
    """A handler as applications write them: the user from the session, and
    an error page that shows who is signed in."""

    def get_current_user(self) -> str | None:
        user = self.session.get("user_id")
        return user if isinstance(user, str) else None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.session["seen_error"] = True  # dropped: the stand-in is never saved
        self.write(
            PAGE.generate(
                status=status_code, current_user=self.current_user, keys=sorted(self.session)
            )
        )

    async def get(self) -> None:
        self.write(f"hello {self.current_user or 'nobody'}")

    async def post(self) -> None:
        self.session["posted"] = True
        self.write("posted")


class Forbidden(Page):
    async def prepare(self) -> None:
        if self.get_argument("let_in", None) is None:
            raise tornado.web.HTTPError(403)  # before the session is loaded
        await super().prepare()


class Explains(SessionMixin, tornado.web.RequestHandler):
    """Writes the SessionNotLoadedError it gets, wherever it gets it."""

    caught: str | None = None

    def initialize(self, where: str = "") -> None:
        self.where = where
        if where == "initialize":
            self.catch()

    def catch(self) -> None:
        try:
            self.session.get("x")
        except SessionNotLoadedError as exc:
            self.caught = str(exc)

    async def get(self) -> None:
        self.catch()
        self.write(self.caught or "no error")


class ForgetsSuper(Explains):
    async def prepare(self) -> None:  # never calls super().prepare()
        pass


class WrongOrder(tornado.web.RequestHandler, SessionMixin):  # type: ignore[misc]
    async def get(self) -> None:
        try:
            self.session.get("x")
        except SessionNotLoadedError as exc:
            self.write(str(exc))


@pytest.fixture
def app(store: RecordingStore, config: SessionConfig) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/page", Page),
            (r"/forbidden", Forbidden),
            (r"/in-initialize", Explains, {"where": "initialize"}),
            (r"/forgets-super", ForgetsSuper),
            (r"/wrong-order", WrongOrder),
        ],
        session_store=store,
        session_config=config,
        xsrf_cookies=True,
    )


# -- the empty stand-in of an early error page ---------------------------------------


@pytest.mark.gen_test
async def test_an_xsrf_failure_renders_a_403_page_that_reads_current_user(
    browser: Browser, store: RecordingStore
) -> None:
    response = await browser.get("/page", method="POST", body="x=1")
    assert response.code == 403
    assert b"<h1>403</h1>" in response.body
    assert b"<p id='user'>nobody</p>" in response.body
    assert b"seen_error" in response.body  # the page may even write to it...
    # ... but it is never saved, sets no cookie, and the store was not even asked.
    assert "__Host-session" not in {c.key for c in set_cookies(response)}
    assert store.calls == []


@pytest.mark.gen_test
async def test_a_signed_in_user_rejected_before_prepare_sees_an_empty_session(
    browser: Browser, store: RecordingStore, app: tornado.web.Application
) -> None:
    cookie = await make_session_cookie(app, {"user_id": "alice"})
    store.calls.clear()
    assert (await browser.get("/page", headers={"Cookie": cookie})).body == b"hello alice"
    response = await browser.get("/page", method="POST", body="x=1", headers={"Cookie": cookie})
    assert response.code == 403
    assert b"<p id='user'>nobody</p>" in response.body
    assert "__Host-session" not in {c.key for c in set_cookies(response)}
    assert store.calls == ["get"]  # the GET's load alone: the 403 cost nothing
    # The real session is intact.
    assert (await browser.get("/page", headers={"Cookie": cookie})).body == b"hello alice"


@pytest.mark.gen_test
async def test_an_unsupported_method_renders_its_page_too(browser: Browser) -> None:
    response = await browser.get("/page", method="PROPFIND", allow_nonstandard_methods=True)
    assert response.code == 405
    assert b"<h1>405</h1>" in response.body and b"nobody" in response.body


@pytest.mark.gen_test
async def test_a_prepare_that_raises_before_super_gets_the_stand_in(
    browser: Browser, store: RecordingStore
) -> None:
    response = await browser.get("/forbidden")
    assert response.code == 403
    assert b"<h1>403</h1>" in response.body and b"nobody" in response.body
    assert store.calls == []
    assert (await browser.get("/forbidden?let_in=1")).body == b"hello nobody"


@pytest.mark.gen_test
async def test_a_missing_secret_without_session_config_still_renders_the_500_page(
    http_client: Any,
    base_url: str,
    store: RecordingStore,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    caplog: Any,
    app: tornado.web.Application,
) -> None:
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env
    del app.settings["session_config"]
    with caplog.at_level(logging.ERROR):
        response = await http_client.fetch(base_url + "/page", raise_error=False)
    assert response.code == 500
    assert b"<h1>500</h1>" in response.body and b"nobody" in response.body
    logged = "\n".join((r.exc_text or "") + r.getMessage() for r in caplog.records)
    assert "SESSION_SECRET (SessionConfig.secret) is not set" in logged
    assert "Uncaught exception in write_error" not in logged


# -- SessionNotLoadedError names the cause ----------------------------------------------

CAUSES = {
    "initialize": "initialize()",
    "super": "ForgetsSuper.prepare() overrides SessionMixin.prepare() and has not called it",
    "order": "SessionMixin comes after RequestHandler in the bases of WrongOrder",
}


def assert_names_only(message: str, cause: str) -> None:
    assert CAUSES[cause] in message, message
    for other, text in CAUSES.items():
        if other != cause:
            assert text not in message, (other, message)


@pytest.mark.gen_test
async def test_used_in_initialize(browser: Browser) -> None:
    message = (await browser.get("/in-initialize")).body.decode()
    assert_names_only(message, "initialize")
    assert "after 'await super().prepare()'" in message


@pytest.mark.gen_test
async def test_used_when_prepare_does_not_call_super(browser: Browser) -> None:
    message = (await browser.get("/forgets-super")).body.decode()
    assert_names_only(message, "super")
    assert "call 'await super().prepare()' first" in message


@pytest.mark.gen_test
async def test_used_when_the_mixin_comes_after_request_handler(browser: Browser) -> None:
    message = (await browser.get("/wrong-order")).body.decode()
    assert_names_only(message, "order")
    assert "class WrongOrder(SessionMixin, tornado.web.RequestHandler)" in message
