"""Console fixtures: the real ASGI app, and people of two tenants who sign in through its form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from servicetsunami.api.app import create_app
from servicetsunami.services.container import Services
from tests.integration.api.support import make_user

_SIGNIN_TOKEN = re.compile(r'name="signin_token" value="([^"]+)"')
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services=services), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, *, email: str = "", password: str = "", api_key: str = "") -> None:
    form = client.get("/signin")
    token = _SIGNIN_TOKEN.search(form.text)
    assert token is not None, form.text
    answer = client.post(
        "/signin",
        data={"signin_token": token.group(1), "email": email, "password": password, "api_key": api_key, "next": "/"},
    )
    assert answer.status_code == 303, answer.text


def sign_in_as(client: TestClient, services: Services, slug: str, *, role: str = "admin") -> None:
    email, password = make_user(services, slug, role=role)
    sign_in(client, email=email, password=password)


def csrf_of(page_html: str) -> str:
    found = _CSRF.search(page_html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)
