"""HTTP helpers for the Galera tests and figures: a client with its own
connections, and a session cookie sent and read by hand."""

from __future__ import annotations

import tornado.httpclient

NAME = "__Host-session"


def client(connections: int = 20) -> tornado.httpclient.AsyncHTTPClient:
    return tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=connections)


async def fetch(
    http: tornado.httpclient.AsyncHTTPClient,
    url: str,
    cookie: str | None = None,
    timeout: float = 30,
) -> tornado.httpclient.HTTPResponse:
    """GET ``url`` with the session ``cookie`` (if any); never raises for a status."""
    headers = {"Cookie": f"{NAME}={cookie}"} if cookie else {}
    return await http.fetch(url, headers=headers, raise_error=False, request_timeout=timeout)


def cookie_of(response: tornado.httpclient.HTTPResponse) -> str:
    """The session cookie a response set."""
    (line,) = [h for h in response.headers.get_list("Set-Cookie") if h.startswith(NAME)]
    return line.split(";", 1)[0].split("=", 1)[1]
