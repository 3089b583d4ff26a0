"""tornado_sessions.testing, used the way an application's own tests use it."""

from __future__ import annotations

from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.testing
import tornado.web

from tornado_sessions import MemoryStore, SessionConfig, SessionMixin
from tornado_sessions.testing import make_session_cookie, memory_store, read_session

# -- the "application" ---------------------------------------------------------


class Dashboard(SessionMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        user = self.session.get("user_id")
        if user is None:
            self.redirect("/login")
            return
        self.session["visits"] = self.session.get("visits", 0) + 1
        self.write(f"Hello, {user}")


class Logout(SessionMixin, tornado.web.RequestHandler):
    async def get(self) -> None:
        await self.session.destroy()
        self.write("bye")


@pytest.fixture
def app() -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/dashboard", Dashboard), (r"/logout", Logout)],
        session_store=MemoryStore(),
        session_config=SessionConfig(
            secret="app-test-secret-vNJcl0VxVOfkTMMigbpUXkOkjaJTukBLLY34WM8VWnM"
        ),
    )


# -- the application's tests -----------------------------------------------------


@pytest.mark.gen_test
async def test_logged_in_user_sees_the_dashboard(http_client: Any, base_url: str, app: Any) -> None:
    cookie = await make_session_cookie(app, {"user_id": "alice"})
    response = await http_client.fetch(base_url + "/dashboard", headers={"Cookie": cookie})
    assert response.body == b"Hello, alice"
    assert await read_session(app, response, cookie) == {"user_id": "alice", "visits": 1}


@pytest.mark.gen_test
async def test_anonymous_user_is_sent_to_login(http_client: Any, base_url: str) -> None:
    response = await http_client.fetch(
        base_url + "/dashboard", follow_redirects=False, raise_error=False
    )
    assert response.code == 302


@pytest.mark.gen_test
async def test_logout_ends_the_session(http_client: Any, base_url: str, app: Any) -> None:
    cookie = await make_session_cookie(app, {"user_id": "alice"})
    response = await http_client.fetch(base_url + "/logout", headers={"Cookie": cookie})
    assert response.body == b"bye"
    assert await read_session(app, response, cookie) is None
    assert await read_session(app, cookie=cookie) is None


@pytest.mark.gen_test
async def test_forged_cookie_is_not_a_session(app: Any) -> None:
    assert await read_session(app, cookie="__Host-session=forged") is None


# -- stores for tests -------------------------------------------------------------


@pytest.mark.parametrize("make, warns", [(MemoryStore, True), (memory_store, False)])
@pytest.mark.gen_test
async def test_only_the_plain_memory_store_warns_outside_debug_mode(
    make: Any, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    app = tornado.web.Application(
        [(r"/dashboard", Dashboard)],
        session_store=make(),
        session_config=SessionConfig(
            secret="app-test-secret-vNJcl0VxVOfkTMMigbpUXkOkjaJTukBLLY34WM8VWnM"
        ),
    )
    cookie = await make_session_cookie(app, {"user_id": "alice"})
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)  # a request attaches the store
    server.add_sockets([sock])
    try:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/dashboard", headers={"Cookie": cookie}
        )
    finally:
        server.stop()
    assert response.body == b"Hello, alice"
    warned = [r for r in caplog.records if "outside debug mode" in r.getMessage()]
    assert len(warned) == (1 if warns else 0)
