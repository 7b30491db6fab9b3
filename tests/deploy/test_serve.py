"""``footseg serve``: the site's files and nothing else, with the headers that let the page use WASM threads."""

from __future__ import annotations

import gzip
import http.client
import io
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from footseg.cli import main
from footseg.deploy import serve
from footseg.deploy.serve import ISOLATION_HEADERS, SiteServer, running
from footseg.errors import FootsegError

FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "ort.wasm.min.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
    "model.onnx": "application/octet-stream",
    "model.json": "application/json",
    "style.css": "text/css; charset=utf-8",
}
SECRET = "not for the web"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site folder beside a secret file, with a subfolder (never served: a site is flat) and a hidden file."""
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    for name in FILES:
        (root / name).write_text(f"content of {name}")
    (root / "model.json").write_text('{"file": "model.onnx"}')  # the page's config, as export_web writes it
    (root / "sub" / "inner.js").write_text("inner")
    (root / ".hidden").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    return root


@pytest.fixture
def server(site: Path) -> Iterator[SiteServer]:
    with running(SiteServer(site, port=0)) as srv:
        yield srv


def get(server: SiteServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    """One raw request: the path goes out exactly as written (no client-side clean-up of ``..``)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_binds_to_localhost_by_default(site: Path) -> None:
    with SiteServer(site, port=0) as srv:
        assert srv.server_address[0] == "127.0.0.1"
        assert srv.url == f"http://127.0.0.1:{srv.port}/"


def test_serves_files_with_their_mime_types_and_isolation_headers(server: SiteServer) -> None:
    for name, mime in FILES.items():
        status, headers, body = get(server, f"/{name}")
        assert status == 200 and body == (server.root / name).read_bytes()
        assert headers["Content-Type"] == mime, name
        assert headers["Server"] == "footseg", name  # not the Python version
        for key, value in ISOLATION_HEADERS.items():
            assert headers[key] == value
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, body = get(server, "/")
    assert status == 200 and body == b"content of index.html"
    status, _, body = get(server, "/index.html?v=2")
    assert status == 200 and body == b"content of index.html"


def test_compressible_files_go_gzipped_to_browsers_that_accept_it(site: Path, server: SiteServer) -> None:
    wasm = bytes(range(256)) * 4096  # 1 MiB that compresses, like the WASM runtime
    (site / "runtime.wasm").write_bytes(wasm)
    status, headers, body = get(server, "/runtime.wasm", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == wasm and int(headers["Content-Length"]) == len(body) < len(wasm) // 10
    for refusing in ("identity", "gzip;q=0", ""):
        _, headers, body = get(server, "/runtime.wasm", headers={"Accept-Encoding": refusing} if refusing else None)
        assert "Content-Encoding" not in headers and body == wasm, refusing
    (site / "photo.png").write_bytes(wasm)  # already-compressed types go as they are
    _, headers, _ = get(server, "/photo.png", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers


def test_a_reload_of_an_unchanged_file_gets_304_and_no_body(site: Path, server: SiteServer) -> None:
    wasm = bytes(range(256)) * 4096
    (site / "runtime.wasm").write_bytes(wasm)
    gz = {"Accept-Encoding": "gzip"}
    status, headers, body = get(server, "/runtime.wasm", headers=gz)
    etag = headers["ETag"]
    assert status == 200 and gzip.decompress(body) == wasm and headers["Cache-Control"] == "no-cache"
    status, again, body = get(server, "/runtime.wasm", headers={**gz, "If-None-Match": etag})
    assert (status, body, again["ETag"], again["Vary"]) == (304, b"", etag, "Accept-Encoding")
    assert again["Cross-Origin-Embedder-Policy"] == "require-corp"  # a 304 keeps the page isolated
    # the plain bytes are another representation: their tag is not the gzipped one's
    status, plain, body = get(server, "/runtime.wasm", headers={"If-None-Match": etag})
    assert status == 200 and body == wasm and plain["ETag"] != etag
    (site / "runtime.wasm").write_bytes(wasm[::-1])  # exported again: a new file, sent whole
    status, headers, body = get(server, "/runtime.wasm", headers={**gz, "If-None-Match": etag})
    assert status == 200 and gzip.decompress(body) == wasm[::-1] and headers["ETag"] != etag


def test_head_has_headers_and_no_body(server: SiteServer) -> None:
    status, headers, body = get(server, "/model.onnx", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len("content of model.onnx"))


@pytest.mark.parametrize("path", [
    "/sub/", "/sub", "/sub/inner.js", "/sub//inner.js", "/missing.js", "/.hidden", "/sub/../.hidden",
    "/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt", "/..%5csecret.txt", "/%2E%2E/secret.txt",
    "/index.html%00.js", "/%ff", "/sub/./inner.js", "*",
])
def test_refuses_listings_traversal_and_hidden_files(server: SiteServer, path: str) -> None:
    status, headers, body = get(server, path)
    assert status == 404, path
    assert SECRET.encode() not in body and b"inner" not in body
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"  # errors too: no uncovered response


def test_symlinks_out_of_the_site_are_refused(site: Path, server: SiteServer) -> None:
    (site / "out.txt").symlink_to(site.parent / "secret.txt")
    (site / "outdir").symlink_to(site.parent)
    (site / "alias.js").symlink_to(site / "app.js")
    assert get(server, "/out.txt")[0] == 404
    assert get(server, "/outdir/secret.txt")[0] == 404
    assert get(server, "/alias.js")[:1] == (200,)  # a link that stays inside is just another name


def test_only_get_and_head(server: SiteServer) -> None:
    status, headers, _ = get(server, "/index.html", method="POST")
    assert status == 501 and headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_not_a_folder_and_busy_port_are_one_line_errors(site: Path, tmp_path: Path) -> None:
    with pytest.raises(FootsegError, match="not a folder"):
        SiteServer(tmp_path / "nothing", port=0)
    with SiteServer(site, port=0) as first, pytest.raises(FootsegError, match="try another --port"):
        SiteServer(site, port=first.port)


def test_https_with_a_self_signed_certificate(site: Path) -> None:
    context = serve.tls_context("127.0.0.1")
    with running(SiteServer(site, port=0, tls=context)) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        # Self-signed: a phone asks its user to accept it once; this client accepts it unseen, then checks its names.
        client = ssl.create_default_context()
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=10, context=client)
        conn.request("GET", "/index.html")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"content of index.html"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        peer = conn.sock.getpeercert(binary_form=True)
        conn.close()
    from cryptography import x509

    served = x509.load_der_x509_certificate(peer)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_certificate_for_a_host_name() -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(serve.self_signed_certificate("phone-host.local")[0])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "phone-host.local" in names.get_values_for_type(x509.DNSName)


class _Probe:
    """A UDP socket whose route lookup gives ``address``, or fails when it is None."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    def __call__(self, *args: object) -> _Probe:
        return self

    def __enter__(self) -> _Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def connect(self, target: object) -> None:
        if self.address is None:
            raise OSError("Network is unreachable")

    def getsockname(self) -> tuple[str, int]:
        return self.address or "", 0


@pytest.mark.parametrize(("routed", "want"), [("192.168.1.23", "192.168.1.23"), (None, "127.0.0.1"),
                                              ("0.0.0.0", "127.0.0.1")])
def test_lan_address_is_the_routed_one_else_localhost(monkeypatch: pytest.MonkeyPatch, routed: str | None,
                                                      want: str) -> None:
    monkeypatch.setattr(serve.socket, "socket", _Probe(routed))
    assert serve.lan_address() == want


def test_qr_text_is_a_square_of_blocks() -> None:
    lines = serve.qr_text("https://192.0.2.10:8000/").splitlines()
    assert len(lines) >= 10 and len({len(line) for line in lines}) == 1
    assert any(ch in "".join(lines) for ch in "█▀▄")


def test_serve_lan_prints_the_https_url_and_a_qr_code(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SiteServer, "serve_forever", lambda self, *a, **k: None)
    out = io.StringIO()
    # Bound to 127.0.0.1 here: a test sends nothing to the machine's LAN address.
    serve.serve(site, port=0, lan=True, host="127.0.0.1", out=out)
    text = out.getvalue()
    assert "https://127.0.0.1:" in text and "certificate" in text and "█" in text


def test_serve_lan_without_a_network_says_so(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "lan_address", lambda: "127.0.0.1")
    with pytest.raises(FootsegError, match="no LAN address"):
        serve.serve(site, port=0, lan=True, out=io.StringIO())


def test_cli_serve_a_site_folder(site: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def stop(self: SiteServer, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl+C: how a user stops the server

    monkeypatch.setattr(SiteServer, "serve_forever", stop)
    assert main(["serve", str(site), "--port", "0"]) == 0
    out = capsys.readouterr()
    assert "http://127.0.0.1:" in out.out and "stopped" in out.err


def test_a_web_page_that_is_no_footseg_site_is_named_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "index.html").write_text("<p>my own page</p>")
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert capsys.readouterr().err == (f"footseg: error: {tmp_path}: not a footseg web site (no model.json) nor a "
                                       "model: serve a folder made by `footseg export MODEL --format web --out DIR`, "
                                       "or a model\n")


@pytest.mark.parametrize("broken", ["config", "model"])
def test_a_broken_site_is_refused_not_served(site: Path, broken: str, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def served(self: SiteServer, *args: object, **kwargs: object) -> None:
        raise AssertionError("served a broken site")  # rather than blocking the test run forever

    monkeypatch.setattr(SiteServer, "serve_forever", served)
    if broken == "config":
        (site / "model.json").write_text("{bad")
    else:
        (site / "model.onnx").unlink()
    assert main(["serve", str(site), "--port", "0"]) == 2  # refused before a server starts
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("unreadable web page config" if broken == "config" else "model is missing") in err


def test_cli_serve_bad_port_is_a_usage_error(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SiteServer(site, port=0) as busy:
        assert main(["serve", str(site), "--port", str(busy.port)]) == 2
    assert "try another --port" in capsys.readouterr().err
    assert os.path.isdir(site)
