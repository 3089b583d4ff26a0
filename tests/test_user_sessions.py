"""Sessions per user: list them, end one, end all ("log out everywhere")."""

from __future__ import annotations

import json
from typing import Any

import pytest
import tornado.web

from tests.conftest import SECRET, Browser, FakeClock, body
from tornado_sessions import MemoryStore, SessionConfig, SessionMixin


class Base(SessionMixin, tornado.web.RequestHandler):
    pass


class Login(Base):
    async def get(self) -> None:
        await self.session.regenerate()
        self.session["user_id"] = self.get_argument("user")
        self.write("ok")


class Mine(Base):
    async def get(self) -> None:
        sessions = await self.get_user_sessions()
        self.write(
            {
                "current": self.session.fingerprint,
                "sessions": [
                    {"fp": s.fingerprint, "ip": s.ip, "ua": s.user_agent, "exp": s.expires_at}
                    for s in sessions
                ],
            }
        )


class EndOthers(Base):
    async def get(self) -> None:
        keep = self.get_argument("keep", "1") == "1"
        self.write({"ended": await self.end_user_sessions(keep_current=keep)})


class EndOne(Base):
    async def get(self) -> None:
        self.write({"ended": await self.end_user_session(self.get_argument("fp"))})


class WhoAmI(Base):
    async def get(self) -> None:
        self.write({"user": self.session.get("user_id")})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def app(store: MemoryStore, clock: FakeClock, request: pytest.FixtureRequest) -> Any:
    marker = request.node.get_closest_marker("session_config")
    return tornado.web.Application(
        [
            (r"/login", Login),
            (r"/mine", Mine),
            (r"/end-others", EndOthers),
            (r"/end-one", EndOne),
            (r"/whoami", WhoAmI),
        ],
        session_store=store,
        session_config=SessionConfig(
            secret=SECRET, clock=clock, **(marker.kwargs if marker else {})
        ),
    )


async def login(http_client: Any, base_url: str, user: str, agent: str = "test") -> Browser:
    b = Browser(http_client, base_url)
    await b.get(f"/login?user={user}", headers={"User-Agent": agent})
    return b


@pytest.mark.gen_test
async def test_list_and_log_out_everywhere(
    http_client: Any, base_url: str, clock: FakeClock
) -> None:
    laptop = await login(http_client, base_url, "alice")
    clock.advance(5)
    phone = await login(http_client, base_url, "alice")
    clock.advance(5)
    tablet = await login(http_client, base_url, "alice")
    bob = await login(http_client, base_url, "bob")

    listing = body(await tablet.get("/mine"))
    assert len(listing["sessions"]) == 3
    assert listing["sessions"][0]["fp"] == listing["current"]  # most recent first
    assert all(s["ip"] is None and s["ua"] is None for s in listing["sessions"])  # off by default

    assert body(await tablet.get("/end-others")) == {"ended": 2}
    assert body(await laptop.get("/whoami")) == {"user": None}
    assert body(await phone.get("/whoami")) == {"user": None}
    assert body(await tablet.get("/whoami")) == {"user": "alice"}
    assert body(await bob.get("/whoami")) == {"user": "bob"}

    assert body(await tablet.get("/end-others?keep=0")) == {"ended": 1}
    assert body(await tablet.get("/whoami")) == {"user": None}


@pytest.mark.gen_test
async def test_end_one_session_by_fingerprint(http_client: Any, base_url: str) -> None:
    laptop = await login(http_client, base_url, "alice")
    phone = await login(http_client, base_url, "alice")
    mallory = await login(http_client, base_url, "mallory")
    phone_fp = body(await phone.get("/mine"))["current"]
    # Another user cannot end alice's session, even knowing its fingerprint.
    assert body(await mallory.get(f"/end-one?fp={phone_fp}")) == {"ended": False}
    assert body(await phone.get("/whoami")) == {"user": "alice"}
    assert body(await laptop.get(f"/end-one?fp={phone_fp}")) == {"ended": True}
    assert body(await phone.get("/whoami")) == {"user": None}
    assert body(await laptop.get("/whoami")) == {"user": "alice"}


@pytest.mark.session_config(track_client=True)
@pytest.mark.gen_test
async def test_client_details_when_enabled(http_client: Any, base_url: str) -> None:
    b = await login(http_client, base_url, "carol", agent="Firefox/140")
    (info,) = body(await b.get("/mine"))["sessions"]
    assert info["ip"] == "127.0.0.1"
    assert info["ua"] == "Firefox/140"
    json.dumps(info)
