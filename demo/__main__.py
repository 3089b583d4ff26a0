"""``python -m demo``: run the demo site on http://localhost:8888/ with autoreload.

Tornado's debug mode is off unless ``--debug`` is given.

Settings come from the environment or ``.env`` in the current directory (see
``.env.example``): ``DEMO_PORT``, ``SESSION_SECRET``, and ``SESSION_HOST`` etc.
to keep sessions in MySQL/MariaDB instead of memory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any, NoReturn

import tornado.httpserver
import tornado.log
import tornado.netutil

from tornado_sessions import ConfigError, MemoryStore, StoreError
from tornado_sessions.config import config

from .app import demo_config, describe_store, make_app, secure_over_http

SECRET_HELP = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"demo: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    try:
        default_port = config("DEMO_PORT", default=8888, cast=int)
    except ValueError:
        fail(f"DEMO_PORT={config('DEMO_PORT')!r} is not a port number", 2)
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="Run the tornado_sessions demo site (autoreload on, debug mode off).",
    )
    parser.add_argument(
        "--port", type=int, default=default_port, help="port to listen on (DEMO_PORT; 8888)"
    )
    parser.add_argument(
        "--host", default="localhost", help="address to listen on (default: localhost)"
    )
    parser.add_argument(
        "--no-reload", action="store_true", help="do not restart when a source file changes"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="Tornado's debug mode (tracebacks in error pages; never expose it); off by default",
    )
    return parser.parse_args(argv)


async def open_store(session_config: Any) -> tuple[Any, str]:
    """Return the store and a one-line description of it for the banner."""
    if not session_config.host:
        store = MemoryStore()
        return store, describe_store(store, session_config)
    where = (
        f"{session_config.user or '?'}@{session_config.host}:{session_config.port}/"
        f"{session_config.database or '?'}, table {session_config.table}"
    )
    try:
        from tornado_sessions import MySQLStore

        store = MySQLStore.from_config(session_config)
    except ImportError as exc:
        fail(f"cannot use MySQL ({where}): {exc}")
    except ConfigError as exc:
        fail(str(exc), 2)
    # A failure to connect ends in one line below; the store's retry warnings
    # on the way there would only repeat it.
    lib_log = logging.getLogger("tornado_sessions")
    level = lib_log.level
    lib_log.setLevel(logging.ERROR)
    try:
        # The store has its own connect timeout (SESSION_DB_TIMEOUT); this is a backstop.
        await asyncio.wait_for(store.open(), timeout=session_config.db_timeout + 30)
    except StoreError as exc:  # its message names host, database, table and error
        fail(f"cannot open the session store: {exc}")
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        fail(f"cannot connect to MySQL/MariaDB at {where}: {detail}")
    finally:
        lib_log.setLevel(level)
    return store, describe_store(store, session_config)


async def serve(args: argparse.Namespace) -> None:
    try:
        session_config, throwaway = demo_config()
    except ConfigError as exc:
        fail(str(exc), 2)
    store, store_text = await open_store(session_config)
    reload = not args.no_reload
    # Debug mode only when asked.  Autoreload (on by default) is separate, and
    # with it templates and static files are re-read on every request.
    app = make_app(
        store,
        session_config,
        debug=args.debug,
        autoreload=reload,
        compiled_template_cache=not reload,
        static_hash_cache=not reload,
    )
    server = tornado.httpserver.HTTPServer(app, xheaders=False)
    try:
        sockets = tornado.netutil.bind_sockets(args.port, args.host)
    except OSError as exc:
        await _close(store)
        fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]  # the real one when --port 0

    every_interface = args.host in ("", "0.0.0.0", "::")
    local = ("localhost", "127.0.0.1", "::1")
    host = "localhost" if every_interface or args.host in local else args.host
    lifetime = "persistent" if session_config.persistent else "browser-session"
    lines = [
        "tornado_sessions demo",
        f"  open:       http://{host}:{port}/",
        f"  store:      {store_text}",
        f"  cookie:     {session_config.cookie_name} (Secure={session_config.secure}, "
        f"{lifetime}, max age {session_config.max_age} s, save uninitialized "
        f"{session_config.save_uninitialized}, resave {session_config.resave})",
        f"  autoreload: {'off' if args.no_reload else 'on (edit a file under demo/ to restart)'}",
        f"  debug:      {'on (never expose it)' if args.debug else 'off (--debug turns it on)'}",
    ]
    if throwaway:
        lines.append(
            "  WARNING:    SESSION_SECRET is not set: using a throwaway secret, so sessions "
            "will not survive a restart. Put one in .env (generate it with: "
            f"{SECRET_HELP})"
        )
    refused = session_config.secure is True and (every_interface or not secure_over_http(args.host))
    if refused:
        where = (
            f"from other machines (http://<this machine's address>:{port}/)"
            if every_interface
            else f"on http://{args.host}:{port}/"
        )
        lines.append(
            "  WARNING:    the session cookie is Secure, and over plain http browsers keep "
            f"Secure cookies only on localhost: {where} they refuse it (and the XSRF "
            "cookie), so the counter stays at 1 and every form fails its XSRF check. "
            f"Open http://localhost:{port}/ on this machine, put https in front, or set "
            "SESSION_COOKIE_SECURE=false (development only)."
        )
    lines.append("  Press Ctrl+C to stop.")
    # The handlers are in place before the banner says Ctrl+C stops it.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("\n".join(lines), flush=True)
    await stop.wait()
    print("demo: stopping", flush=True)
    server.stop()
    await asyncio.wait_for(server.close_all_connections(), timeout=5)
    await _close(store)


async def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        await asyncio.wait_for(close(), timeout=10)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tornado.log.enable_pretty_logging()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
