"""The demo in a real browser: headless Chromium driven by Selenium.

The demo app runs on a real port (127.0.0.1, in a background thread) and the
browser visits it as ``http://localhost:PORT``: a Secure, HttpOnly
``__Host-session`` cookie must work there, since browsers treat localhost as
a secure origin.  Only Debian's ``chromium`` and ``chromium-driver`` are used
(``scripts/browser-deps`` installs them): Selenium is given both paths, so
Selenium Manager never downloads anything.

Without them the test is skipped, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil

from demo.app import make_app
from tornado_sessions import MemoryStore, SessionConfig

from .conftest import COOKIE, SECRET
from .serving import ServedFromThread

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15  # seconds, for any one page or element


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    problem = None
    if missing:
        problem = f"{' and '.join(missing)} not found"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            problem = "selenium is not installed (pip install -e '.[test]')"
    if problem is None:
        return
    advice = (
        f"{problem}: run scripts/browser-deps (as root) to install Debian's chromium "
        "and chromium-driver"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{advice} (CI is set: the browser test must not be skipped)")
    pytest.skip(advice)


class DemoServer(ServedFromThread):
    """The demo app served from a thread with its own event loop."""

    def __init__(self) -> None:
        super().__init__("the demo server")
        self.port = 0

    async def serve(self) -> Callable[[], Awaitable[None]]:
        config = SessionConfig(secret=SECRET)
        app = make_app(MemoryStore(), config, debug=False)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)

        async def shut_down() -> None:
            server.stop()
            await server.close_all_connections()

        return shut_down


@pytest.fixture
def demo_url() -> Iterator[str]:
    _require_browser()
    server = DemoServer()
    try:
        server.start()
        yield f"http://localhost:{server.port}"
    finally:
        server.stop()


@contextlib.contextmanager
def chromium(tmp_path: Path, *extra_flags: str) -> Iterator[Any]:
    """Headless Chromium under chromedriver (Debian's two binaries), with
    ``extra_flags`` added to the usual ones.  The caller sets ``SE_OFFLINE``
    (Selenium Manager must never download anything)."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",  # we may run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1024,768",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *extra_flags,
    ):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(service=service, options=options)
    try:
        browser.set_page_load_timeout(WAIT)
        browser.set_script_timeout(WAIT)
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download
    with chromium(tmp_path) as browser:
        yield browser


def test_login_notes_logout_in_a_real_browser(demo_url: str, driver: Any) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT)

    def text_of(element_id: str) -> str:
        return str(wait.until(EC.visibility_of_element_located((By.ID, element_id))).text)

    def replaced(element: Any) -> Callable[[Any], bool]:
        """Like EC.staleness_of, but also for chromedriver's other way of
        saying it (156 sometimes reports a node of the old page as "does not
        belong to the document" instead of a stale element)."""

        def check(_: Any) -> bool:
            try:
                element.is_enabled()
            except StaleElementReferenceException:
                return True
            except WebDriverException as exc:
                if "does not belong to the document" in str(exc):
                    return True
                raise
            return False

        return check

    def click_and_load(element_id: str) -> None:
        """Click, then wait for the next page to replace this one."""
        page = driver.find_element(By.TAG_NAME, "html")
        wait.until(EC.element_to_be_clickable((By.ID, element_id))).click()
        wait.until(replaced(page))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def session_cookie() -> dict[str, Any]:
        cookies = {c["name"]: c for c in driver.get_cookies()}
        assert COOKIE in cookies, f"no {COOKIE} cookie; the browser has {sorted(cookies)}"
        return cookies[COOKIE]

    def flashes() -> list[str]:
        return [str(p.text) for p in driver.find_elements(By.CSS_SELECTOR, "#flashes p.flash")]

    def screenshot(name: str) -> None:
        """Kept for a human to look at: $TORNADO_SESSIONS_SCREENSHOTS/name.png."""
        folder = os.environ.get("TORNADO_SESSIONS_SCREENSHOTS")
        if folder:
            driver.save_screenshot(os.path.join(folder, f"{name}.png"))

    def notes() -> list[str]:
        return [str(li.text) for li in driver.find_elements(By.CSS_SELECTOR, "li.note")]

    def add_note(note: str) -> None:
        field = wait.until(EC.visibility_of_element_located((By.ID, "note")))
        field.send_keys(note)
        click_and_load("add-note")

    # 1. First visit: a session is made and counted, and the page says what
    # the demo shows, on which store, and where its code is.
    driver.get(f"{demo_url}/")
    assert text_of("visits") == "1"
    assert text_of("user") == "Not signed in"
    about = text_of("about")
    assert "What this demo shows" in about and "regenerate()" in about
    assert text_of("store").startswith("Sessions are kept in MemoryStore")
    assert "demo/app.py" in text_of("code")
    assert driver.find_elements(By.ID, "secure-hint") == []  # localhost keeps Secure cookies

    # The Secure, HttpOnly __Host- cookie is kept on http://localhost ...
    cookie = session_cookie()
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == "localhost"  # host-only: no Domain attribute
    assert COOKIE not in driver.execute_script("return document.cookie")  # HttpOnly
    first_value = cookie["value"]

    # ... and sent back: reloading counts on in the same session.
    driver.refresh()
    assert text_of("visits") == "2"

    # 2. Log in: the session gets a new id (a new cookie) and keeps its data.
    click_and_load("nav-login")
    wait.until(EC.visibility_of_element_located((By.ID, "username"))).send_keys("Alice")
    click_and_load("login")
    assert driver.current_url == f"{demo_url}/"
    assert text_of("user") == "Signed in as Alice"
    assert text_of("visits") == "3"
    # A one-time message, carried across the redirect by the session.
    assert flashes() == ["Welcome, Alice."]
    screenshot("flash-after-login")
    logged_in_value = session_cookie()["value"]
    assert logged_in_value != first_value

    # 3. Add two notes; each POST redirects back to the list.
    click_and_load("nav-notes")
    assert text_of("no-notes") == "No notes yet."
    add_note("first note")
    assert notes() == ["first note"]
    assert flashes() == ["Note saved."]
    add_note("second <note> & more")
    assert notes() == ["first note", "second <note> & more"]  # escaped, shown as typed

    # 4. Reload: the notes are in the session on the server, not in the page;
    # the message was shown once.
    driver.refresh()
    wait.until(EC.visibility_of_element_located((By.ID, "notes")))
    assert flashes() == []
    assert notes() == ["first note", "second <note> & more"]
    assert text_of("user") == "Signed in as Alice"

    # 5. My session: the data as JSON, the fingerprint, never the id or cookie.
    click_and_load("nav-session")
    data = json.loads(text_of("data"))
    assert data == {
        "notes": ["first note", "second <note> & more"],
        "user_id": "alice",
        "username": "Alice",
        "visits": 3,
    }
    assert len(text_of("fingerprint")) == 12
    assert logged_in_value not in driver.page_source
    assert text_of("expires").endswith(" UTC")

    # 6. Log out (a POST form with the XSRF token): the session is destroyed.
    click_and_load("logout")
    assert driver.current_url == f"{demo_url}/"
    assert text_of("user") == "Not signed in"
    assert text_of("visits") == "1"  # a fresh session, counted from one
    assert session_cookie()["value"] not in (first_value, logged_in_value)
    assert flashes() == ["You are signed out."]

    # 7. The notes went with it.
    click_and_load("nav-notes")
    assert text_of("no-notes") == "No notes yet."
    assert notes() == []
    assert driver.find_elements(By.ID, "logout") == []

    # 8. A page that needs a login sends the browser to it, and back after.
    driver.get(f"{demo_url}/sessions")
    assert driver.current_url == f"{demo_url}/login?next=%2Fsessions"
    wait.until(EC.visibility_of_element_located((By.ID, "username"))).send_keys("Bob")
    click_and_load("login")
    assert driver.current_url == f"{demo_url}/sessions"
    assert text_of("user") == "Signed in as Bob"
    wait.until(EC.visibility_of_element_located((By.ID, "sessions")))
