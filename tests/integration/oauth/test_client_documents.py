"""Client ID metadata documents: a client whose client_id is an https URL is read from there (through
the SSRF guard, bounded) instead of registering; a document that does not describe itself, is too
big, or sits where the guard refuses to go is not a client, and the answer says which OAuth error
it is (invalid_client: no document to read; invalid_client_metadata: a document, but not a usable
client) and what is wrong, in words that give away nothing of the server."""

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
from urllib.parse import urlsplit

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
from tests.integration.api.test_readme import free_port
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


def refusal(answer: httpx.Response, services: Services, *, client_id: str) -> str:
    """The OAuth error of a refused authorization request, once its description is checked to be
    something to act on: present, and without the server's paths or internals (the address the
    document's host resolved to among them)."""
    assert answer.status_code == 400, answer.text
    body = answer.json()
    description = body["error_description"]
    assert description and "not found" not in description
    internals = [str(services.settings.resolved_home), "Traceback", "Error:"]
    named = urlsplit(client_id)
    if named.hostname == "localhost":
        internals.append(f"127.0.0.1:{named.port}")
    for internal in internals:
        assert internal not in description
    return str(body["error"])


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (document("https://localhost/another.json"), "invalid_client_metadata"),  # names another client
        (document("{self}", redirect_uris=["http://evil.example/cb"]), "invalid_client_metadata"),
        (document("{self}", token_endpoint_auth_method="client_secret_post"), "invalid_client_metadata"),
        (document("{self}", software_id="x" * 6000), "invalid_client_metadata"),  # over the size limit
        (document("{self}", redirect_uris="not a list"), "invalid_client_metadata"),
        (b"not json", "invalid_client_metadata"),
    ],
)
def test_a_metadata_document_that_does_not_describe_a_usable_client_is_refused_saying_why(
    services: Services, trusting: Path, body: bytes, error: str
) -> None:
    documents: dict[str, bytes] = {}
    with document_server(trusting, documents) as docs, live_server(services) as base:
        client_id = f"{docs}/client.json"
        documents["/client.json"] = body.replace(b"{self}", client_id.encode())
        answer = httpx.get(base + authorization_url(client_id, Pkce.new()), timeout=20)
    assert refusal(answer, services, client_id=client_id) == error


def test_a_metadata_document_that_is_not_there_is_refused_as_an_unknown_client(
    services: Services, trusting: Path
) -> None:
    with document_server(trusting, {}) as docs, live_server(services) as base:
        client_id = f"{docs}/missing.json"
        answer = httpx.get(base + authorization_url(client_id, Pkce.new()), timeout=20)
    assert refusal(answer, services, client_id=client_id) == "invalid_client"


def test_a_metadata_document_on_a_server_that_does_not_answer_is_refused_as_an_unknown_client(
    services: Services,
) -> None:
    with live_server(services) as base:
        client_id = f"https://localhost:{free_port()}/client.json"
        answer = httpx.get(base + authorization_url(client_id, Pkce.new()), timeout=20)
    assert refusal(answer, services, client_id=client_id) == "invalid_client"


def test_a_metadata_document_at_an_address_the_ssrf_guard_refuses_is_not_fetched(services: Services) -> None:
    client_id = "https://169.254.169.254/latest/client.json"  # the cloud metadata service
    assert oauth_documents.is_document_client_id(client_id)
    with live_server(services) as base:
        answer = httpx.get(base + authorization_url(client_id, Pkce.new()), timeout=20)
    assert refusal(answer, services, client_id=client_id) == "invalid_client"


def test_the_token_endpoint_refuses_a_client_whose_document_is_refused_saying_why(
    services: Services, trusting: Path
) -> None:
    with document_server(trusting, {}) as docs, live_server(services) as base:
        form = {"grant_type": "refresh_token", "refresh_token": "tso_x", "client_id": f"{docs}/missing.json"}
        answer = httpx.post(f"{base}/token", data=form, timeout=20)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.json()["error_description"] not in ("Invalid client_id", "")
