"""A TLS-terminating reverse proxy on loopback, as nginx or a load balancer
would stand in front of an application: https outside, plain http to the
application, with ``X-Forwarded-Proto: https`` and ``X-Forwarded-For``.

`make_certificate` writes a self-signed certificate (made with
``cryptography``) for the names the tests use; `TLSProxy` serves https with
it and forwards every request, its ``Host`` header kept, to one backend
port.  Both run on the caller's event loop.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import tornado.httpclient
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

#: The names the certificate covers.
NAMES = ("shop.test", "localhost")
ADDRESSES = ("127.0.0.1",)

# Headers of one connection, which a proxy never passes on.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for `NAMES` and `ADDRESSES` and its
    key into ``directory``; return (certificate, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in NAMES] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "proxy-cert.pem", directory / "proxy-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Forward(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, proxy: TLSProxy) -> None:
        self.proxy = proxy

    def check_xsrf_cookie(self) -> None:  # the backend's business
        pass

    async def _forward(self) -> None:
        request = self.request
        headers = tornado.httputil.HTTPHeaders()
        for name, value in request.headers.get_all():
            if name.lower() not in _HOP and not name.lower().startswith("x-forwarded-"):
                headers.add(name, value)
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-For"] = request.remote_ip or "127.0.0.1"
        self.proxy.forwarded += 1
        response = await self.proxy.client.fetch(
            tornado.httpclient.HTTPRequest(
                f"http://127.0.0.1:{self.proxy.backend_port}{request.uri}",
                method=request.method or "GET",
                headers=headers,
                body=request.body if request.method in ("POST", "PUT", "PATCH") else None,
                follow_redirects=False,
                decompress_response=False,
                request_timeout=10,
                allow_nonstandard_methods=True,
            ),
            raise_error=False,
        )
        if response.code == 599:  # the backend did not answer
            self.set_status(502)
            self.finish(f"bad gateway: {response.error}")
            return
        self.set_status(response.code, response.reason)
        self._headers = tornado.httputil.HTTPHeaders()
        for name, value in response.headers.get_all():
            if name.lower() not in _HOP:
                self.add_header(name, value)
        if response.body and request.method != "HEAD":
            self.write(response.body)

    get = head = post = put = patch = delete = options = _forward


class TLSProxy:
    """https on 127.0.0.1 (a free port), forwarding to ``backend_port``."""

    def __init__(self, backend_port: int, certificate: tuple[Path, Path]) -> None:
        self.backend_port = backend_port
        self.certificate = certificate
        self.port = 0
        self.forwarded = 0
        self.client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        self._server: tornado.httpserver.HTTPServer | None = None

    def start(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, self.certificate))
        app = tornado.web.Application([(r".*", _Forward, {"proxy": self})])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app, ssl_options=context)
        self._server.add_sockets(sockets)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
        self.client.close()


class Backend:
    """An application served on 127.0.0.1 (a free port), with ``xheaders``
    as given: what the proxy forwards to."""

    def __init__(self, app: tornado.web.Application, *, xheaders: bool) -> None:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = tornado.httpserver.HTTPServer(app, xheaders=xheaders)
        self.server.add_sockets(sockets)

    async def stop(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()
