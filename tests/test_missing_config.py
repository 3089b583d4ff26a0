"""An application without a ``session_config`` setting: the config is read
from the environment once per application, and a failure to read it is
logged once, with the fix, never as one traceback per request.

Every test runs through a real server; the environment is the test's own
(no ``SESSION_*`` variable but those it sets, no ``.env``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import tornado.web

from tests.conftest import ROUTES, SECRET, Browser, body
from tornado_sessions import MemoryStore, appconfig


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tornado.web.Application:
    monkeypatch.chdir(tmp_path)  # no .env here
    return tornado.web.Application(ROUTES, session_store=MemoryStore())  # no session_config


def session_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tornado_sessions"]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


@pytest.mark.gen_test
async def test_the_environments_config_is_read_once_and_sessions_work(
    browser: Browser, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_MAX_AGE", "600")
    caplog.set_level(logging.INFO, "tornado_sessions")
    for n in (1, 2, 3):
        response = await browser.get("/counter")
        assert response.code == 200
        assert body(response) == {"n": n}
        if n == 1:
            assert "Max-Age=600" in response.headers["Set-Cookie"]  # the environment's
    (line,) = session_lines(caplog)  # one line for the application, not one per request
    assert line.levelno == logging.INFO
    assert "no session_config setting" in line.getMessage()
    assert "session_config=SessionConfig.from_env()" in line.getMessage()
    # Read once: a change of the environment after the first request is not seen.
    monkeypatch.setenv("SESSION_MAX_AGE", "60")
    response = await Browser(browser.client, browser.base_url).get("/counter")
    assert body(response) == {"n": 1}
    assert "Max-Age=600" in response.headers["Set-Cookie"]


@pytest.mark.gen_test
async def test_a_config_that_cannot_be_read_is_logged_once_with_the_fix(
    browser: Browser, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    caplog.set_level(logging.INFO)
    for _ in range(4):
        response = await browser.get("/counter")
        assert response.code == 500
        assert "Set-Cookie" not in response.headers
    (line,) = session_lines(caplog)  # the three later requests are counted, not logged
    assert line.levelno == logging.ERROR
    text = line.getMessage()
    assert "SESSION_SECRET" in text and "is not set" in text
    assert "secrets.token_urlsafe(48)" in text  # how to make one
    assert "session_config=SessionConfig.from_env()" in text  # how to fail at startup
    assert tracebacks(caplog) == []  # no traceback per request (nor at all)


@pytest.mark.gen_test
async def test_a_bad_value_in_the_environment_names_the_variable(
    browser: Browser, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_MAX_AGE", "a month")
    caplog.set_level(logging.INFO)
    assert (await browser.get("/counter")).code == 500
    assert (await browser.get("/read")).code == 500
    (line,) = session_lines(caplog)
    assert "SESSION_MAX_AGE='a month' is not a whole number" in line.getMessage()
    assert tracebacks(caplog) == []


@pytest.mark.gen_test
async def test_the_reminder_comes_back_once_a_minute_with_the_count(
    browser: Browser, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    monkeypatch.setattr(appconfig, "REMINDER_INTERVAL", 0.2)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert (await browser.get("/counter")).code == 500
    await asyncio.sleep(0.25)
    assert (await browser.get("/counter")).code == 500
    first, reminder = session_lines(caplog)
    assert "Answering 500" in reminder.getMessage()
    assert "2 more like it were not logged" in reminder.getMessage()
    assert "session_config=SessionConfig.from_env()" in reminder.getMessage()
