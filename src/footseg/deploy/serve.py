"""``footseg serve``: the web page of ``footseg export --format web`` over HTTP(S), for a browser or a phone.

Only the files directly in the site's flat folder are served: no directory listings, nothing in a subfolder or
hidden, no path that leaves the folder (``..``, encoded or not, and symlinks pointing out of it are refused alike
with 404), GET and HEAD only. Every response carries ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp`` (and CORP same-origin on the site's own files): together they make the
page cross-origin isolated, the condition under which browsers hand out SharedArrayBuffer, which ONNX Runtime Web's
threads need.

By default the server listens on 127.0.0.1 only. ``--lan`` listens on the machine's LAN address instead, over HTTPS
(browsers give a page the camera only in a secure context: HTTPS, or localhost) with a self-signed certificate made
on the spot, and prints the URL as a QR code for the phone to scan; the phone's browser asks once to accept the
certificate.
"""

from __future__ import annotations

import datetime
import gzip
import http.server
import io
import ipaddress
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from footseg.errors import FootsegError

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 8000
INDEX = "index.html"
SITE_MARKER = "model.json"  # what makes a folder a site from footseg export --format web
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming refuses anything else
    ".onnx": "application/octet-stream",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# A UDP connect sends no packet: it only asks the kernel which local address would route there. A documentation
# address (TEST-NET-1, RFC 5737) is used so that nothing could be reached even if a packet were sent.
_ROUTE_PROBE = ("192.0.2.1", 9)


# Text and binaries that shrink (WASM, JavaScript, the model); images and already-compressed files would not.
COMPRESSIBLE = {".wasm", ".mjs", ".js", ".html", ".css", ".json", ".onnx", ".tflite", ".txt"}


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (``gzip;q=0`` refuses it)."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


class SiteHandler(http.server.BaseHTTPRequestHandler):
    """Serves the regular files under ``server.root`` and nothing else."""

    server: SiteServer
    server_version = "footseg"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds an idle keep-alive connection keeps its thread

    def version_string(self) -> str:
        return self.server_version  # the Server header: not the Python version (nor a space where it was left out)

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        path = self.server.resolve(self.path)
        if path is None:
            self._send_error(404, "not found")
            return
        try:
            stat = path.stat()
        except OSError:
            self._send_error(404, "not found")
            return
        compressible = path.suffix.lower() in COMPRESSIBLE
        gzipped = compressible and accepts_gzip(self.headers.get("Accept-Encoding", ""))
        # One version of the file in one coding: a reload asks with it and gets 304 and no body where the file is the
        # same (the 14 MB runtime and the model are most of a page's 4.5 MB on the wire; no-cache alone sent them all)
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}{"-gz" if gzipped else ""}"'
        if etag in (tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")):
            self.send_response(304)
            self._validators(etag, compressible)
            self.end_headers()
            return
        try:
            with path.open("rb") as f:
                data = f.read()
        except OSError:
            self._send_error(404, "not found")
            return
        self.send_response(200)
        self.send_header("Content-Type", MIME_TYPES.get(path.suffix.lower(), "application/octet-stream"))
        if gzipped:
            data = self.server.gzipped(path, data)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self._validators(etag, compressible)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _validators(self, etag: str, compressible: bool) -> None:
        if compressible:
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("ETag", etag)
        # A phone keeps the page between exports; no-cache makes it ask again, each time, with the ETag.
        self.send_header("Cache-Control", "no-cache")

    def _send_error(self, code: int, message: str) -> None:
        data = f"{code} {message}\n".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The base class answers bad request lines and unknown methods with an HTML page naming the server; a plain
        # line says as much. Headers still carry the isolation policy (end_headers below).
        self.close_connection = True
        self._send_error(code, message or "error")

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        if self.server.log is not None:
            self.server.log.write(f"{self.address_string()} {format % args}\n")


class SiteServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer for one site folder; ``url`` is where a browser finds it."""

    daemon_threads = True

    def __init__(self, root: str | Path, host: str = LOCALHOST, port: int = DEFAULT_PORT,
                 tls: ssl.SSLContext | None = None, log: TextIO | None = None):
        root = Path(root)
        if not root.is_dir():
            raise FootsegError("not a folder to serve", root)
        self.root = root.resolve()
        self.log = log
        self._gzip_cache: dict[tuple[Path, int, int], bytes] = {}
        self._gzip_lock = threading.Lock()
        self.tls = tls
        try:
            super().__init__((host, port), SiteHandler)
        except OSError as exc:
            raise FootsegError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another --port") from exc

    def gzipped(self, path: Path, data: bytes) -> bytes:
        """``data`` (the file at ``path``) gzip-compressed, once per version of the file: the 14 MB WASM runtime is
        3.7 MB on the wire, which is most of what a phone downloads before its first mask."""
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._gzip_lock:
            if key not in self._gzip_cache:
                self._gzip_cache[key] = gzip.compress(data, compresslevel=6, mtime=0)
            return self._gzip_cache[key]

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def resolve(self, request_path: str) -> Path | None:
        """The file a request path names directly in ``root``, or None: outside it or below it, a folder, a dotfile
        or missing."""
        path = urllib.parse.urlsplit(request_path).path
        if not path.startswith("/"):
            return None
        try:
            parts = urllib.parse.unquote(path, errors="strict").split("/")[1:]
        except UnicodeDecodeError:
            return None
        if parts == [""]:
            parts = [INDEX]
        # Refused before touching the disk: traversal, empty segments ("//", a trailing "/": folders are not
        # listed), hidden files (the export's staging folders), and bytes no file name here has.
        if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        if len(parts) != 1:  # a site is one flat folder (footseg web, the peer page): nothing below it is served
            return None
        candidate = self.root.joinpath(*parts)
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        # A symlink may point anywhere; only what ends up inside the folder is served.
        if real.parent != self.root or not real.is_file():
            return None
        return real

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The TLS handshake runs here, on the connection's own thread: a client that stalls in it (or a phone that
        # has not yet accepted the certificate) holds up nobody else.
        request.settimeout(SiteHandler.timeout)
        with self.tls.wrap_socket(request, server_side=True) as secure:
            super().finish_request(secure, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        # A phone dropping a connection or refusing the self-signed certificate is routine, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def lan_address() -> str:
    """This machine's address on its local network (the one its default route leaves from), else 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(_ROUTE_PROBE)
            address = probe.getsockname()[0]
        except OSError:  # no route at all: no network to serve on
            return LOCALHOST
    return address if address and address != "0.0.0.0" else LOCALHOST


def self_signed_certificate(host: str, days: int = 30) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for ``host`` (an IP address or a name) and localhost, valid ``days``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"footseg serve {host}")])
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOCALHOST))]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a phone's clock may run a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def tls_context(host: str) -> ssl.SSLContext:
    """A server-side TLS context with a fresh self-signed certificate for ``host``."""
    cert, key = self_signed_certificate(host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads certificates only from files; they live for the moment it takes to read them, readable by us alone.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        context.load_cert_chain(cert_file, key_file)
    return context


def qr_text(data: str) -> str:
    """``data`` as a QR code drawn with text blocks, for a terminal (two modules per character cell)."""
    import qrcode

    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)  # light modules drawn: reads as dark-on-light in a dark terminal
    return out.getvalue()


@contextmanager
def site_for(target: str | Path | None) -> Iterator[Path]:
    """The site folder to serve: ``target`` itself when it is one, else a site built for the model ``target``
    names (None: the default model) in a temporary folder, removed afterwards."""
    if target is not None and Path(target).is_dir() and (Path(target) / SITE_MARKER).is_file():
        site = Path(target)
        # What the page reads first: a site whose model.json or model is gone or broken is refused, not served.
        try:
            meta = json.loads((site / SITE_MARKER).read_text())
            model = site / str(meta["file"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FootsegError(f"unreadable web page config ({type(exc).__name__}): export the site again",
                               site / SITE_MARKER) from exc
        if not model.is_file():
            raise FootsegError("the site's model is missing: export the site again", model)
        yield site
        return
    if target is not None and (Path(target) / "index.html").is_file():  # a page, but no footseg site: not a model
        raise FootsegError(f"not a footseg web site (no {SITE_MARKER}) nor a model: serve a folder made by `footseg "
                           "export MODEL --format web --out DIR`, or a model", target)
    from footseg.deploy.web import export_web

    with tempfile.TemporaryDirectory(prefix="footseg-web-") as tmp:
        yield export_web(target, Path(tmp) / "site")


@contextmanager
def running(server: SiteServer) -> Iterator[SiteServer]:
    """``server`` answering requests on a background thread while the block runs (tests, scripts)."""
    # A short poll interval: shutdown() waits up to one interval, and tests start and stop many servers.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="footseg-serve",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(target: str | Path | None = None, port: int = DEFAULT_PORT, lan: bool = False, host: str | None = None,
          out: TextIO | None = None) -> None:
    """Serve the site (a folder from ``footseg export --format web``, or one built for a MODEL) until interrupted.

    ``host`` overrides the address to listen on (default: 127.0.0.1, or the LAN address with ``lan``).
    """
    out = out or sys.stdout
    with site_for(target) as site:
        bind = host or (lan_address() if lan else LOCALHOST)
        if lan and host is None and bind == LOCALHOST:
            raise FootsegError("found no LAN address (is this machine on a network?); serving to a phone needs one")
        tls = tls_context(bind) if lan else None
        log = sys.stderr if os.environ.get("FOOTSEG_SERVE_LOG") else None  # one line per request, when debugging
        server = SiteServer(site, bind, port, tls=tls, log=log)
        with server:
            print(f"serving {site} at {server.url}  (Ctrl+C stops)", file=out)
            if lan:
                print("open it on a phone on the same network (scan the code); accept its self-signed certificate "
                      "(a new one each time footseg serve --lan starts):", file=out)
                print(qr_text(server.url), file=out)
            out.flush()
            server.serve_forever()
