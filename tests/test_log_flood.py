"""Logs that a flood cannot fill: hostile-cookie warnings are rate-limited.

Each kind of rejection (an invalid token, an unexpected payload, an expired
cookie, a cookie sent twice) logs its first occurrence at once, then at most
one line per minute, carrying the count of those it held back.  No line ever
holds a cookie's value.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import SECRET, Browser, FakeClock, RecordingStore, body
from tornado_sessions._ratelimit import RateLimitedLog
from tornado_sessions.crypto import CookieCipher
from tornado_sessions.manager import new_sid

NAME = "__Host-session"
PER_KIND = 120


def hostile_cookies(clock: FakeClock, good: str, n: int) -> dict[str, str]:
    """The ``n``-th cookie header value of each kind (all distinct)."""
    ours = CookieCipher([SECRET], clock=clock)  # the application's own key
    other = CookieCipher(["someone-else-Lw8Qe2Rn5Tb1Yc7Ux4Zd9Hk3Mf6Gp0Js"], clock=clock)
    now = int(clock())
    payload = {"v": 1, "i": new_sid(), "c": now - 100, "e": now + 3600}
    return {
        "altered form": f"{NAME}={good[: 10 + n]}!{good[10 + n :]}",
        "another key": f"{NAME}={other.encrypt(payload)}",
        "unexpected payload": f"{NAME}={ours.encrypt({**payload, 'v': 2})}",
        "expired": f"{NAME}={ours.encrypt({**payload, 'e': now - 1 - n})}",
        "sent twice": f"{NAME}={good}; {NAME}={ours.encrypt(payload)}",
    }


def cookie_values(header: str) -> list[str]:
    return [part.split("=", 1)[1] for part in header.split("; ")]


def assert_no_cookie_in(messages: list[str], headers: list[str]) -> None:
    text = "\n".join(messages)
    for header in headers:
        for value in cookie_values(header):
            # no stretch of 12 characters of any value sent
            for start in range(0, len(value) - 12, 6):
                assert value[start : start + 12] not in text


@pytest.mark.gen_test(timeout=60)
async def test_600_hostile_requests_log_one_line_per_kind_then_a_count(
    browser: Browser, store: RecordingStore, clock: FakeClock, caplog: Any
) -> None:
    await browser.get("/counter")
    good = browser.jar[NAME]
    sent: list[str] = []
    caplog.set_level(logging.WARNING, logger="tornado_sessions")
    caplog.clear()
    store.calls.clear()
    for n in range(PER_KIND):
        for kind, header in hostile_cookies(clock, good, n).items():
            response = await browser.get("/read", headers={"Cookie": header})
            assert response.code == 200, kind
            assert body(response) == {"data": {}, "new": True}, kind
            sent.append(header)
    assert len(sent) == 600 == 5 * PER_KIND
    assert store.calls == []  # not one of them reached the store
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("tornado_sessions")]
    # One line per kind of rejection ("another key" and "altered form" are
    # both an invalid token): four lines for 600 requests.
    assert len(lines) == 4, lines
    assert sum("not a valid token" in line for line in lines) == 1
    assert sum("unexpected payload" in line for line in lines) == 1
    assert sum("Rejected an expired" in line for line in lines) == 1
    assert sum("more than once" in line for line in lines) == 1
    assert not any("not logged" in line for line in lines)
    assert_no_cookie_in(lines, sent)

    # A minute later the next one of each kind is logged, with the count of
    # those held back (an invalid token: 2 × 120 - 1 of them).
    clock.advance(60)
    caplog.clear()
    later = hostile_cookies(clock, good, PER_KIND)
    for header in later.values():
        await browser.get("/read", headers={"Cookie": header})
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("tornado_sessions")]
    # "another key" is the second invalid token of the new interval: held back.
    assert len(lines) == 4, lines
    counts = sorted(line.split(" (")[-1] for line in lines if "not logged" in line)
    assert counts == sorted(
        [
            f"{2 * PER_KIND - 1} more like it were not logged in the 60 s before this one)",
            f"{PER_KIND - 1} more like it were not logged in the 60 s before this one)",
            f"{PER_KIND - 1} more like it were not logged in the 60 s before this one)",
            f"{PER_KIND - 1} more like it were not logged in the 60 s before this one)",
        ]
    )
    assert_no_cookie_in(lines, list(later.values()))


@pytest.mark.gen_test
async def test_the_first_rejection_of_each_kind_is_logged_at_once(
    browser: Browser, clock: FakeClock, caplog: Any
) -> None:
    await browser.get("/counter")
    good = browser.jar[NAME]
    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        await browser.get("/read", headers={"Cookie": f"{NAME}=garbage"})
        await browser.get("/read", headers={"Cookie": f"{NAME}={good}; {NAME}={good}"})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "from 127.0.0.1" in lines[0] and "garbage" not in lines[0]
    assert "more than once" in lines[1]


# -- the limiter itself ------------------------------------------------------------


def test_one_line_per_kind_per_interval_with_the_count_of_the_rest(caplog: Any) -> None:
    clock = FakeClock(0)
    limiter = RateLimitedLog(logging.getLogger("tests.ratelimit"), interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tests.ratelimit"):
        assert limiter.warning("a", "event a from %s", "x") is True
        assert limiter.warning("b", "event b") is True  # kinds are independent
        for _ in range(10):
            clock.advance(5)
            assert limiter.warning("a", "event a from %s", "y") is False
        clock.advance(10)  # 60 s after the first line of a
        assert limiter.warning("a", "event a from %s", "z") is True
        assert limiter.warning("a", "event a from %s", "z") is False
        clock.advance(60)
        assert limiter.warning("a", "event a from %s", "w") is True
        clock.advance(-3600)  # a clock set back starts afresh, not a silence
        assert limiter.warning("a", "event a from %s", "v") is True
    assert [r.getMessage() for r in caplog.records] == [
        "event a from x",
        "event b",
        "event a from z (10 more like it were not logged in the 60 s before this one)",
        "event a from w (1 more like it were not logged in the 60 s before this one)",
        "event a from v",
    ]


@pytest.mark.gen_test(timeout=60)
async def test_replaying_the_cookie_of_an_ended_session_logs_once_a_minute(
    browser: Browser, store: RecordingStore, clock: FakeClock, caplog: Any
) -> None:
    await browser.get("/counter")
    ended = browser.jar[NAME]
    await browser.get("/logout")
    caplog.set_level(logging.INFO, logger="tornado_sessions")
    caplog.clear()
    for _ in range(200):
        response = await browser.get("/read", headers={"Cookie": f"{NAME}={ended}"})
        assert body(response) == {"data": {}, "new": True}
    lines = [r.getMessage() for r in caplog.records if "over or ended" in r.getMessage()]
    assert len(lines) == 1, lines
    clock.advance(61)
    await browser.get("/read", headers={"Cookie": f"{NAME}={ended}"})
    lines = [r.getMessage() for r in caplog.records if "over or ended" in r.getMessage()]
    assert len(lines) == 2 and "199 more like it were not logged" in lines[1], lines
    assert_no_cookie_in(lines, [f"{NAME}={ended}"])
