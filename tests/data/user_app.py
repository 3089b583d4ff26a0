"""A new user's app, as the README shows it, exercised end to end.

Run by tests/test_packaging.py with only the built wheel on sys.path.
Prints one line per check and exits non-zero on the first failure.
"""

import asyncio
import json

import tornado.httpclient
import tornado.web

import tornado_sessions
from tornado_sessions import MemoryStore, SessionConfig, SessionMixin


class Counter(SessionMixin, tornado.web.RequestHandler):
    async def get(self):
        self.session["n"] = self.session.get("n", 0) + 1
        self.write({"n": self.session["n"]})


class Login(SessionMixin, tornado.web.RequestHandler):
    async def get(self):
        await self.session.regenerate()
        self.session["user"] = self.get_argument("name")
        self.redirect("/me")


class Me(SessionMixin, tornado.web.RequestHandler):
    async def get(self):
        self.write({"user": self.session.get("user")})


class Logout(SessionMixin, tornado.web.RequestHandler):
    async def get(self):
        await self.session.destroy()
        self.redirect("/me")


async def main() -> None:
    print("tornado_sessions from", tornado_sessions.__file__)
    app = tornado.web.Application(
        [(r"/", Counter), (r"/login", Login), (r"/me", Me), (r"/logout", Logout)],
        session_store=MemoryStore(),
        session_config=SessionConfig.from_env(),
        debug=True,
    )
    server = app.listen(0, address="127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    client = tornado.httpclient.AsyncHTTPClient()
    jar: dict[str, str] = {}

    async def get(path: str, cookie: str | None = None) -> tornado.httpclient.HTTPResponse:
        header = cookie if cookie is not None else "; ".join(f"{k}={v}" for k, v in jar.items())
        r = await client.fetch(
            f"http://127.0.0.1:{port}{path}",
            headers={"Cookie": header} if header else {},
            follow_redirects=False,
            raise_error=False,
            request_timeout=10,
        )
        for line in r.headers.get_list("Set-Cookie") if cookie is None else []:
            name, _, rest = line.partition("=")
            value = rest.split(";")[0]
            if value in ("", '""'):
                jar.pop(name, None)
            else:
                jar[name] = value
        return r

    for n in (1, 2, 3):
        assert json.loads((await get("/")).body) == {"n": n}
    print("counter: ok")
    before = dict(jar)
    r = await get("/login?name=alice")
    assert r.code == 302 and jar != before
    assert json.loads((await get("/me")).body) == {"user": "alice"}  # redirect-then-read
    old = "; ".join(f"{k}={v}" for k, v in before.items())
    assert json.loads((await get("/me", cookie=old)).body) == {"user": None}
    print("login with regenerate, redirect-then-read: ok")
    ((name, value),) = jar.items()
    tampered = f"{name}={value[:50]}{'A' if value[50] != 'A' else 'B'}{value[51:]}"
    assert json.loads((await get("/me", cookie=tampered)).body) == {"user": None}
    print("tampered cookie: ok")
    r = await get("/logout")
    assert r.code == 302 and not jar
    assert json.loads((await get("/me", cookie=f"{name}={value}")).body) == {"user": None}
    print("logout: ok")


asyncio.run(main())
