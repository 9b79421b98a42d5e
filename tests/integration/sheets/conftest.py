"""Fixtures of the Google Sheets source tests: the fake Sheets API and token endpoint on a random
loopback port, a service account shared on its spreadsheets, and sources over them whose host check
is the service's own (single-user rules: loopback allowed, metadata refused)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servicetsunami.connectors.sheets.config import GoogleUrls, SheetsConfig
from servicetsunami.connectors.sheets.source import SheetsSource
from servicetsunami.security.ssrf import check_source_host
from tests.fakes.google_sheets import FakeSheets

EMAIL = "reader@project.iam.gserviceaccount.com"


def vet(host: str, port: int) -> list[str]:
    return check_source_host(host, port, multi_tenant=False)


def urls(fake: FakeSheets) -> GoogleUrls:
    return GoogleUrls(api=fake.base_url, token=fake.token_url, docs=fake.base_url)


@pytest.fixture
def fake() -> Iterator[FakeSheets]:
    with FakeSheets().running() as running:
        yield running


@pytest.fixture
def key(fake: FakeSheets) -> str:
    return fake.service_account(EMAIL)


@pytest.fixture
def sheets(fake: FakeSheets, key: str) -> Iterator[Callable[..., SheetsSource]]:
    """``sheets(spreadsheet_id=..., **settings)``: a source over the fake, closed afterwards."""
    opened: list[SheetsSource] = []

    def make(**settings: Any) -> SheetsSource:
        values: dict[str, Any] = {"backoff_seconds": 0, **settings}
        if values.get("auth", "service_account") == "service_account":
            values.setdefault("service_account_key", key)
        source = SheetsSource(SheetsConfig.model_validate(values), urls=urls(fake), vet=vet)
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()
