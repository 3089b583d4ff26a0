"""What the docs' examples are ``given``: code run before an example, for
the names it uses and does not define (tests/docs_examples.py explains
``given``).  Each stands in for what the page around the example, or the
module whose docstring shows it, already has."""

#: What an example's ``given`` names stand for: code run before it.
GIVEN = {
    # What a docstring's example takes from the module it is written in.
    "imports": """
import tornado.web
from tornado_sessions import MemoryStore, MySQLStore, SessionConfig, SessionMixin
from tornado_sessions.config import DatabaseConfig
""",
    "BaseHandler": """
import tornado.web
from tornado_sessions import SessionMixin

class BaseHandler(SessionMixin, tornado.web.RequestHandler):
    pass
""",
    "handlers": """
import tornado.web
from tornado_sessions import SessionMixin

class _Counter(SessionMixin, tornado.web.RequestHandler):
    async def get(self):
        self.session["n"] = self.session.get("n", 0) + 1
        self.write({"n": self.session["n"]})

handlers = [(r"/", _Counter)]
""",
    "Counter": """
import tornado.web
from tornado_sessions import SessionMixin

class Counter(SessionMixin, tornado.web.RequestHandler):
    async def get(self):
        self.session["n"] = self.session.get("n", 0) + 1
        self.write({"n": self.session["n"]})
""",
    "store": """
from tornado_sessions import MemoryStore
store = MemoryStore()
""",
    "config": """
from tornado_sessions import SessionConfig
config = SessionConfig.from_env()
""",
    "check_password": """
import types

async def check_password(username, password):
    return types.SimpleNamespace(id=username) if password == "wonderland" else None
""",
    # A page that flashes a message and one that shows the template under test.
    "routes": """
import tornado.template
import tornado.web
from tornado_sessions import SessionMixin

class _Flash(SessionMixin, tornado.web.RequestHandler):
    def get(self):
        self.session.flash("Saved.", "success")
        self.redirect("/page")

class _Page(SessionMixin, tornado.web.RequestHandler):
    def get(self):  # as render() does, with the ui_methods in the namespace
        page = tornado.template.Template(TEMPLATE)
        self.finish(page.generate(**self.get_template_namespace()))

routes = [(r"/flash", _Flash), (r"/page", _Page)]
""",
    "my_ui_methods": """
import tornado.web
import tornado_sessions.ui

my_ui_methods = {"shout": lambda handler, text: text.upper()}
""",
    "MyStore": """
from tornado_sessions import MemoryStore

class MyStore(MemoryStore):  # stands in for the reader's store
    pass
""",
}
