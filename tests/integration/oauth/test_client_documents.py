"""Client ID metadata documents: a client whose client_id is an https URL is read from there (through
the SSRF guard, bounded) instead of registering; a document that does not describe itself, is too
big, or sits where the guard refuses to go is not a client."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from servicetsunami.services.container import Services
from servicetsunami.services.identity import oauth_documents
from tests.integration.api.support import make_user
from tests.integration.live_server import live_server
from tests.integration.oauth.support import REDIRECT_URI, MemoryStorage, Person, Pkce, authorization_url, oauth_client


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextlib.contextmanager
def document_server(tmp_path: Path, documents: dict[str, bytes]) -> Iterator[str]:
    """An https server on localhost answering ``documents`` by path; yields its base URL."""
    cert, key = _certificate(tmp_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def trusting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder whose certificate the server trusts (SSL_CERT_FILE, read by httpx)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    return tmp_path


def document(client_id: str, **fields: object) -> bytes:
    body = {"client_id": client_id, "client_name": "Doc client", "redirect_uris": [REDIRECT_URI], **fields}
    return json.dumps(body).encode()


async def test_a_client_named_by_its_metadata_document_signs_in_without_registering(
    services: Services, trusting: Path
) -> None:
    documents: dict[str, bytes] = {}
    with document_server(trusting, documents) as docs, live_server(services) as base:
        client_id = f"{docs}/client.json"
        documents["/client.json"] = document(client_id, token_endpoint_auth_method="none")
        email, password = make_user(services, "acme", role="engineer")
        person = Person(base, email, password)
        storage = MemoryStorage()
        try:
            auth = oauth_client(base, person, storage, client_metadata_url=client_id, token_endpoint_auth_method="none")
            async with Client(StreamableHttpTransport(f"{base}/mcp", auth=auth)) as client:
                result = await client.call_tool("metrics", {})
        finally:
            person.close()
    assert storage.client is not None and storage.client.client_id == client_id
    assert result.structured_content is not None and result.structured_content["tenant"] == "acme"
    assert "Doc client" in person.consent_pages[0]


@pytest.mark.parametrize(
    "body",
    [
        document("https://localhost/another.json"),  # names another client
        document("{self}", redirect_uris=["http://evil.example/cb"]),  # a redirect URI registration refuses
        document("{self}", token_endpoint_auth_method="client_secret_post"),  # a shared secret
        document("{self}", software_id="x" * 6000),  # larger than auth.oauth_client_document_bytes
        b"not json",
    ],
)
def test_a_metadata_document_that_does_not_describe_a_usable_client_is_refused(
    services: Services, trusting: Path, body: bytes
) -> None:
    documents: dict[str, bytes] = {}
    with document_server(trusting, documents) as docs, live_server(services) as base:
        client_id = f"{docs}/client.json"
        documents["/client.json"] = body.replace(b"{self}", client_id.encode())
        answer = httpx.get(base + authorization_url(client_id, Pkce.new()), timeout=20)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"  # no such client


def test_a_metadata_document_at_an_address_the_ssrf_guard_refuses_is_not_fetched(services: Services) -> None:
    client_id = "https://169.254.169.254/latest/client.json"  # the cloud metadata service
    assert oauth_documents.is_document_client_id(client_id)
    with live_server(services) as base:
        answer = httpx.get(base + authorization_url(client_id, Pkce.new()), timeout=20)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
