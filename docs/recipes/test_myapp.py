"""Tests of myapp.py with Tornado's AsyncHTTPTestCase and the helpers of
tornado_sessions.testing.

Run them from this directory with ``python -m unittest test_myapp`` (or
``python -m pytest test_myapp.py``).
"""

from __future__ import annotations

import unittest

import tornado.escape
import tornado.testing
import tornado.web
from myapp import Users, make_app

from tornado_sessions import SessionConfig
from tornado_sessions.testing import make_session_cookie, memory_store, read_session

#: The tests' own secret (never the one of production).
SECRET = "myapp-tests-Lw3qDkI3Zr7Gx0mNw9tVb2yEoHc5uJ8aRfS1pQ6T"
#: Tornado's XSRF check compares the _xsrf cookie with the form field or
#: the X-XSRFToken header: a test sends the same value in both.
XSRF_COOKIE = "_xsrf=test-token"


class MyAppTest(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        users = Users()
        users.set_password("alice", "wonderland")
        self.app = make_app(
            memory_store(), SessionConfig(secret=SECRET, persistent=False), users=users
        )
        return self.app

    def test_anonymous_visitors_are_sent_to_the_login_page(self) -> None:
        response = self.fetch("/", follow_redirects=False)
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers["Location"], "/login?next=%2F")

    @tornado.testing.gen_test
    async def test_a_signed_in_user_sees_the_home_page(self) -> None:
        # Signed in without going through the login form.
        cookie = await make_session_cookie(self.app, {"user_id": "alice", "cart": ["tea"]})
        response = await self.http_client.fetch(self.get_url("/"), headers={"Cookie": cookie})
        self.assertIn(b"Signed in as alice", response.body)
        self.assertIn(b"1 item(s) in the cart", response.body)

    @tornado.testing.gen_test
    async def test_logging_in_stores_the_user_and_remembers_when_asked(self) -> None:
        response = await self.http_client.fetch(
            self.get_url("/login"),
            method="POST",
            body="_xsrf=test-token&name=alice&password=wonderland&remember=1&next=/",
            headers={"Cookie": XSRF_COOKIE},
            follow_redirects=False,
            raise_error=False,
        )
        self.assertEqual(response.code, 302)
        data = await read_session(self.app, response)
        assert data is not None
        self.assertEqual(data["user_id"], "alice")
        self.assertIn("Max-Age=2592000", response.headers["Set-Cookie"])

    @tornado.testing.gen_test
    async def test_the_cart_api_adds_to_the_session(self) -> None:
        cookie = await make_session_cookie(self.app, {"user_id": "alice"})
        response = await self.http_client.fetch(
            self.get_url("/api/cart"),
            method="POST",
            body='{"sku": "tea"}',
            headers={"Cookie": f"{cookie}; {XSRF_COOKIE}", "X-XSRFToken": "test-token"},
        )
        self.assertEqual(tornado.escape.json_decode(response.body), {"cart": [{"sku": "tea"}]})
        data = await read_session(self.app, response, cookie)
        assert data is not None
        self.assertEqual(data["cart"], [{"sku": "tea"}])

    @tornado.testing.gen_test
    async def test_logging_out_ends_the_session(self) -> None:
        cookie = await make_session_cookie(self.app, {"user_id": "alice"})
        response = await self.http_client.fetch(
            self.get_url("/logout"),
            method="POST",
            body="_xsrf=test-token",
            headers={"Cookie": f"{cookie}; {XSRF_COOKIE}"},
            follow_redirects=False,
            raise_error=False,
        )
        self.assertEqual(response.code, 302)
        self.assertIsNone(await read_session(self.app, cookie=cookie))


if __name__ == "__main__":
    unittest.main()
