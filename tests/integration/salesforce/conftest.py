"""Fixtures of the Salesforce source tests: the fake org on a random loopback port with an Account
object of every field type, and sources over it whose host check is the service's own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.connectors.salesforce.source import SalesforceSource
from servicetsunami.security.ssrf import check_source_host
from tests.fakes.salesforce import CLIENT, FakeSalesforce, sf_datetime, sf_field

START = dt.datetime(2024, 4, 1, 9, 0, tzinfo=dt.UTC)
ACCOUNT_FIELDS = [
    sf_field("Id", "id"),
    sf_field("IsDeleted", "boolean"),
    sf_field("Name", "string"),
    sf_field("Type", "picklist"),
    sf_field("OwnerId", "reference"),
    sf_field("Employees", "int"),
    sf_field("Revenue", "currency", precision=18, scale=2),
    sf_field("Share", "percent", precision=5, scale=2),
    sf_field("Rating", "double", precision=18, scale=4),
    sf_field("Founded", "date"),
    sf_field("OpensAt", "time"),
    sf_field("Description", "textarea"),
    sf_field("BillingAddress", "address"),
    sf_field("Where", "location"),
    sf_field("Logo", "base64"),
    sf_field("SystemModstamp", "datetime"),
    sf_field("CreatedDate", "datetime"),
]


def vet(host: str, port: int) -> list[str]:
    return check_source_host(host, port, multi_tenant=False)


def account(i: int, *, minutes: int | None = None, **changes: Any) -> dict[str, Any]:
    stamp = START + dt.timedelta(minutes=i if minutes is None else minutes)
    return {
        "Id": f"001{i:015d}",
        "IsDeleted": False,
        "Name": f"Account {i}",
        "Type": "Customer",
        "OwnerId": "005000000000001AAA",
        "Employees": i * 10,
        "Revenue": i * 1000.1,
        "Share": 12.5,
        "Rating": 0.1 + i,
        "Founded": "1999-12-31",
        "OpensAt": "08:30:00.000Z",
        "Description": "line 1\nline 2",
        "BillingAddress": {"street": "1 Main St", "city": "Paris", "country": "France", "latitude": 48.85},
        "Where": {"latitude": 48.85, "longitude": 2.35},
        "Logo": "/services/data/v62.0/sobjects/Account/x/Logo",
        "SystemModstamp": sf_datetime(stamp),
        "CreatedDate": sf_datetime(START),
        **changes,
    }


@pytest.fixture
def org() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce()
    fake.add("Account", ACCOUNT_FIELDS, [account(i) for i in range(1, 31)])
    fake.add("Contact", [sf_field("Id", "id"), sf_field("LastName", "string")], [{"Id": "003A", "LastName": "Doe"}])
    with fake.running():
        yield fake


@pytest.fixture
def salesforce(org: FakeSalesforce) -> Iterator[Callable[..., SalesforceSource]]:
    """``salesforce(**settings)``: a source over the fake org, closed afterwards."""
    opened: list[SalesforceSource] = []

    def make(**settings: Any) -> SalesforceSource:
        values = {
            "instance_url": org.base_url,
            "client_id": CLIENT[0],
            "client_secret": CLIENT[1],
            "backoff_seconds": 0,
            **settings,
        }
        source = SalesforceSource(SalesforceConfig.model_validate(values), vet=vet)
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()
