"""Fixtures of the REST source tests: the fake API on a random loopback port, and sources over it
whose host check is the service's own (single-user rules: loopback allowed, metadata refused)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servicetsunami.connectors.rest.config import RestConfig
from servicetsunami.connectors.rest.source import RestSource
from servicetsunami.security.ssrf import check_source_host
from tests.fakes.rest_api import FakeApi


def vet(host: str, port: int) -> list[str]:
    return check_source_host(host, port, multi_tenant=False)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi().running() as fake:
        yield fake


@pytest.fixture
def rest(api: FakeApi) -> Iterator[Callable[..., RestSource]]:
    """``rest(resources=[...], **settings)``: a source over the fake API, closed afterwards."""
    opened: list[RestSource] = []

    def make(**settings: Any) -> RestSource:
        config = RestConfig.model_validate({"base_url": api.base_url, "backoff_seconds": 0, **settings})
        source = RestSource(config, vet=vet)
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()
