"""Every code block of the docs and the README, run as a reader would run it.

The blocks are read from the sources (tests/docs_examples.py finds them and
their markers, in the pages and in the docstrings the API page shows);
none is copied here.  What is here: for each example that defines an
application, what a client must see when it uses it over real HTTP (what an
example is ``given`` is in tests/docs_given.py).  The examples that need MySQL run in
tests/mysql/test_docs_examples.py.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import importlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.template
import tornado.testing
import tornado.web

from tests.conftest import Browser, body
from tests.docs_examples import (
    ROOT,
    SECRET,
    all_blocks,
    clean_env,
    env_names,
    examples,
    include_names,
    run_console,
    run_module,
    run_pytest,
    running_program,
)
from tests.docs_given import GIVEN
from tornado_sessions.config import ENV_NAMES
from tornado_sessions.testing import make_session_cookie, read_session

#: The contract suite needs the repository's tests/conftest.py, as its page says.
PYTEST_ARGS = {"contract": ["-p", "tests.conftest"]}

Check = Callable[[dict[str, Any], Path], Awaitable[None]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[name] = function
        return function

    return register


@contextlib.asynccontextmanager
async def serving(app: tornado.web.Application) -> AsyncIterator[Browser]:
    """Serve ``app`` on a free port; a cookie-keeping client for it."""
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield Browser(tornado.httpclient.AsyncHTTPClient(), f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        await server.close_all_connections()


async def counts_up(browser: Browser) -> None:
    """A counter application: 1, then 2 for the same browser, 1 for a new one."""
    assert body(await browser.get("/")) == {"n": 1}
    assert body(await browser.get("/")) == {"n": 2}
    other = Browser(browser.client, browser.base_url)
    assert body(await other.get("/")) == {"n": 1}


@check("index")
@check("mixin-counter")
@check("readme")
@check("config-from-env")
async def _serves_a_counter(ns: dict[str, Any], tmp_path: Path) -> None:
    async with serving(ns["app"]) as browser:
        await counts_up(browser)


@check("app-config")
async def _reads_the_apps_variables(ns: dict[str, Any], tmp_path: Path) -> None:
    assert (ns["PORT"], ns["DEBUG"]) == (9999, True)  # set by the test below


@check("database-config")
async def _reads_no_database_settings(ns: dict[str, Any], tmp_path: Path) -> None:
    from tornado_sessions.config import DatabaseConfig

    # No SESSION_HOST and the like in the test's environment: the defaults.
    assert ns["database"] == DatabaseConfig()
    assert (ns["database"].port, ns["database"].table) == (3306, "sessions")


class _CountingStore:
    """A MemoryStore that counts its reads (made when first asked for)."""

    @staticmethod
    def make() -> Any:
        from tornado_sessions import MemoryStore

        class Counting(MemoryStore):
            reads = 0

            async def get(self, sid: str) -> Any:
                Counting.reads += 1
                return await super().get(sid)

        return Counting()


@check("load-session")
async def _loads_the_session_only_when_asked(ns: dict[str, Any], tmp_path: Path) -> None:
    from tornado_sessions import SessionConfig

    store = _CountingStore.make()
    app = tornado.web.Application(
        [(r"/health", ns["Health"])],
        session_store=store,
        session_config=SessionConfig(secret=SECRET),
    )
    cookie = {"Cookie": await make_session_cookie(app, {"user_id": "alice"})}
    async with serving(app) as browser:
        ok = await browser.get("/health", headers=cookie)
        assert (ok.code, ok.body, type(store).reads) == (200, b"ok", 0)
        assert body(await browser.get("/health?who=1", headers=cookie)) == {"user": "alice"}
        assert type(store).reads == 1


@check("flash-note")
async def _flashes_a_note_once(ns: dict[str, Any], tmp_path: Path) -> None:
    from tornado_sessions import MemoryStore, SessionConfig, SessionMixin

    class Notes(SessionMixin, tornado.web.RequestHandler):
        def get(self) -> None:
            self.write({"flashes": self.session.pop_flashes()})

    app = tornado.web.Application(
        [(r"/notes/save", ns["SaveNote"]), (r"/notes", Notes)],
        session_store=MemoryStore(),
        session_config=SessionConfig(secret=SECRET),
    )
    async with serving(app) as browser:
        saved = await browser.get("/notes/save", method="POST", body="")
        assert (saved.code, saved.headers["Location"]) == (302, "/notes")
        shown = body(await browser.get("/notes"))["flashes"]
        assert shown == [["success", "Your note was saved."]], shown
        assert body(await browser.get("/notes")) == {"flashes": []}


@check("login")
async def _logs_in_and_out(ns: dict[str, Any], tmp_path: Path) -> None:
    from tornado_sessions import MemoryStore, SessionConfig

    app = tornado.web.Application(
        [(r"/login", ns["Login"]), (r"/logout", ns["Logout"])],
        session_store=MemoryStore(),
        session_config=SessionConfig(secret=SECRET),
    )
    async with serving(app) as browser:
        form = {"method": "POST", "body": "username=alice&password=nope"}
        assert (await browser.get("/login", **form)).code == 403
        form["body"] = "username=alice&password=wonderland&remember=on"
        response = await browser.get("/login", **form)
        assert (response.code, response.headers["Location"]) == (302, "/")
        assert "Max-Age=2592000" in response.headers["Set-Cookie"]
        cookie = "; ".join(f"{k}={v}" for k, v in browser.jar.items())
        assert await read_session(app, response) == {"user_id": "alice"}
        response = await browser.get("/logout", method="POST", body="")
        assert response.code == 302
        assert await read_session(app, cookie=cookie) is None


@check("my-sessions")
async def _lists_and_ends_a_users_sessions(ns: dict[str, Any], tmp_path: Path) -> None:
    from tornado_sessions import MemoryStore, SessionConfig

    app = tornado.web.Application(
        [(r"/sessions", ns["MySessions"])],
        session_store=MemoryStore(),
        session_config=SessionConfig(secret=SECRET),
        template_loader=tornado.template.DictLoader(
            {"sessions.html": "{% for s in sessions %}[{{ s.fingerprint }}]{% end %} {{ current }}"}
        ),
    )
    here = await make_session_cookie(app, {"user_id": "alice"})
    elsewhere = await make_session_cookie(app, {"user_id": "alice"})
    async with serving(app) as browser:
        page = (await browser.get("/sessions", headers={"Cookie": here})).body.decode()
        listed = re.findall(r"\[(\w+)\]", page)
        assert len(listed) == 2 and page.split()[-1] in listed
        response = await browser.get("/sessions", method="POST", body="", headers={"Cookie": here})
        assert (response.code, response.headers["Location"]) == (302, "/sessions")
    assert await read_session(app, cookie=elsewhere) is None
    assert await read_session(app, cookie=here) == {"user_id": "alice"}


def _jar(browser: Browser) -> str:
    return "; ".join(f"{k}={v}" for k, v in browser.jar.items())


@check("flask-tornado")
async def _the_flask_side_by_side(ns: dict[str, Any], tmp_path: Path) -> None:
    async with serving(ns["app"]) as browser:
        post = {"method": "POST"}
        wrong = await browser.get("/login", body="username=alice&password=nope", **post)
        assert (wrong.code, wrong.headers["Location"]) == (302, "/login")
        assert body(await browser.get("/")) == {
            "user": None,
            "messages": [["error", "Wrong password."]],
        }
        assert body(await browser.get("/"))["messages"] == []  # shown once
        right = "username=alice&password=wonderland&remember=on"
        response = await browser.get("/login", body=right, **post)
        assert (response.code, response.headers["Location"]) == (302, "/")
        assert "Max-Age=2592000" in response.headers["Set-Cookie"]
        cookie = _jar(browser)
        assert body(await browser.get("/")) == {
            "user": "alice",
            "messages": [["success", "Welcome, alice."]],
        }
        assert (await browser.get("/logout", body="", **post)).code == 302
        assert body(await browser.get("/")) == {"user": None, "messages": []}
    assert await read_session(ns["app"], cookie=cookie) is None


@check("django-tornado")
async def _the_django_side_by_side(ns: dict[str, Any], tmp_path: Path) -> None:
    async with serving(ns["app"]) as browser:
        post = {"method": "POST"}
        response = await browser.get("/login", body="username=bob&password=wonderland", **post)
        assert response.code == 302 and "Max-Age=2592000" not in response.headers["Set-Cookie"]
        assert body(await browser.get("/cart", body="sku=tea", **post)) == {
            "cart": ["tea"],
            "lifetime": None,
        }
        # The append of the request before was saved without being flagged.
        assert body(await browser.get("/cart", body="sku=milk", **post))["cart"] == ["tea", "milk"]
        cookie = _jar(browser)
        assert await read_session(ns["app"], cookie=cookie) == {
            "user_id": "bob",
            "cart": ["tea", "milk"],
        }
        assert (await browser.get("/logout", body="", **post)).code == 302
        assert await read_session(ns["app"], cookie=cookie) is None
        remember = "username=bob&password=wonderland&remember=on"
        assert (await browser.get("/login", body=remember, **post)).code == 302
        assert body(await browser.get("/cart", body="sku=tea", **post))["lifetime"] == 2592000


# -- the tests -------------------------------------------------------------------


def named(kind: str, mysql: bool = False) -> list[str]:
    return [
        name
        for name, block in examples().items()
        if block.kind == kind and ("mysql" in block.flags) == mysql
    ]


def test_every_block_is_marked_and_every_marker_is_sound() -> None:
    blocks = all_blocks()
    problems = [f"{b.where}: {b.problem}" for b in blocks if b.problem]
    assert not problems, "\n".join(problems)
    names = [b.name for b in blocks if b.name]
    assert len(names) == len(set(names)), "example names must be unique"
    for block in blocks:
        for other in block.extends:
            assert other in names, f"{block.where}: extends unknown {other}"
        for given in block.given:
            assert given in GIVEN, f"{block.where}: nothing is given as {given}"
    assert set(CHECKS) <= set(names)
    # Every source is read, and the kinds the docs use are all here.
    assert {b.source.name for b in blocks} >= {"index.rst", "quickstart.rst", "README.md"}
    # The docstrings autodoc shows are read too: classes', methods', functions'.
    in_docstrings = {b.object_id for b in blocks if b.object_id}
    assert {
        "tornado_sessions.SessionMixin",
        "tornado_sessions.SessionMixin.load_session",
        "tornado_sessions.crypto.secret_problem",
    } <= in_docstrings
    assert "doctest" in {b.kind for b in blocks}
    assert len([b for b in blocks if b.name]) >= 30


@pytest.mark.parametrize("name", named("module"))
@pytest.mark.gen_test
async def test_module_example(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the repository's
    for key, value in clean_env(PORT="9999", DEBUG="true").items():
        monkeypatch.setenv(key, value)
    for key in ENV_NAMES.values():
        if key != "SESSION_SECRET":
            monkeypatch.delenv(key, raising=False)
    ns = await run_module(name, GIVEN)
    if name in CHECKS:
        await CHECKS[name](ns, tmp_path)


@pytest.mark.parametrize("name", named("doctest"))
def test_doctest_example(name: str) -> None:
    """A ``>>>`` example runs with the doctest module, in the namespace of
    the module whose docstring shows it (as ``python -m doctest`` would)."""
    block = examples()[name]
    namespace = vars(importlib.import_module(block.module or "tornado_sessions"))
    test = doctest.DocTestParser().get_doctest(
        block.code, dict(namespace), name, block.where, block.line - 1
    )
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    output: list[str] = []
    runner = doctest.DocTestRunner(optionflags=flags)
    result = runner.run(test, out=output.append)
    assert result.attempted >= 1 and result.failed == 0, "".join(output)


@pytest.mark.parametrize("name", named("pytest"))
def test_pytest_example(name: str, tmp_path: Path) -> None:
    env = clean_env(PYTHONPATH=str(ROOT))
    run_pytest(name, tmp_path, GIVEN, env, *PYTEST_ARGS.get(name, []))


@pytest.mark.parametrize("name", named("program"))
@pytest.mark.gen_test(timeout=60)
async def test_program_example(name: str, tmp_path: Path) -> None:
    async with running_program(name, tmp_path, GIVEN, clean_env()) as url:
        browser = Browser(tornado.httpclient.AsyncHTTPClient(), url)
        await counts_up(browser)


@pytest.mark.parametrize("name", named("console"))
def test_console_example(name: str, tmp_path: Path) -> None:
    run_console(name, tmp_path, clean_env())


@pytest.mark.parametrize("name", named("env") + named("env", mysql=True))
def test_env_example_sets_only_variables_the_library_reads(name: str) -> None:
    names = env_names(name)
    assert names and set(names) <= set(ENV_NAMES.values()), names


@pytest.mark.parametrize("name", named("include"))
def test_included_code_is_code_the_suite_runs(name: str) -> None:
    path, pyobject = include_names(name)
    assert path.parent == ROOT / "docs" / "recipes"
    if pyobject is not None:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {getattr(node, "name", None) for node in tree.body}
        assert pyobject in defined, (path, pyobject)
    # tests/recipes imports the file (and so runs the program and its tests).
    imports = "".join(p.read_text() for p in (ROOT / "tests" / "recipes").glob("*.py"))
    assert re.search(rf"^(from|import) {path.stem}\b", imports, re.M), path


@pytest.mark.gen_test
async def test_the_xsrf_meta_tag_renders_and_passes_tornados_check() -> None:
    template = examples()["xsrf-meta"].code

    class Page(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(tornado.template.Template(template).generate(handler=self))

        def post(self) -> None:
            self.write("accepted")

    app = tornado.web.Application([(r"/", Page)], xsrf_cookies=True)
    async with serving(app) as browser:
        page = (await browser.get("/")).body.decode()
        (token,) = re.findall(r'<meta name="xsrf" content="([^"]+)">', page)
        ok = await browser.get("/", method="POST", body="", headers=_cookie(browser, token))
        assert (ok.code, ok.body) == (200, b"accepted")
        bad = await browser.get("/", method="POST", body="", headers=_cookie(browser, "2|x|y|1"))
        assert bad.code == 403


def _cookie(browser: Browser, token: str) -> dict[str, str]:
    jar = "; ".join(f"{k}={v}" for k, v in browser.jar.items())
    return {"Cookie": jar, "X-XSRFToken": token}


@pytest.mark.parametrize(
    "application, template", [("flash-app", "flash-template"), ("ui-app", "ui-template")]
)
@pytest.mark.gen_test
async def test_the_flash_template_shows_a_message_once(
    application: str, template: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    ns = await run_module(application, GIVEN, TEMPLATE=examples()[template].code)
    async with serving(ns["app"]) as browser:
        assert (await browser.get("/flash")).code == 302
        page = (await browser.get("/page")).body.decode()
        assert '<p class="flash success">Saved.</p>' in page
        assert "Saved." not in (await browser.get("/page")).body.decode()


def test_the_templates_are_all_checked() -> None:
    templates = {n for n, b in examples().items() if b.kind == "template"}
    assert templates == {"xsrf-meta", "flash-template", "ui-template"}
