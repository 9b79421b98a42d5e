"""The Salesforce source against the local fake org: objects and their describe as streams, every
field type landing as its Arrow type, nextRecordsUrl paging, queryAll for deletes, incremental reads
on SystemModstamp, both OAuth2 flows, and the problems a person can act on."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable

import pyarrow as pa
import pytest

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.registry import source_kind
from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.connectors.salesforce.source import SalesforceSource
from servicetsunami.errors import InvalidInput, PermissionDenied, SourceError
from tests.fakes.salesforce import CLIENT, REFRESH, FakeSalesforce
from tests.integration.salesforce.conftest import START, account

Make = Callable[..., SalesforceSource]


def test_discover_lists_the_queryable_objects_with_their_fields_key_and_cursor(salesforce: Make) -> None:
    streams = {s.name: s for s in salesforce().discover()}
    assert set(streams) == {"Account", "Contact"}  # ApexLog is not queryable
    accounts = streams["Account"]
    assert accounts.primary_key == ["Id"] and accounts.cursor_candidates == ["SystemModstamp", "CreatedDate"]
    assert "Logo" not in [c.name for c in accounts.columns]  # base64 is read one record at a time
    assert [s.name for s in salesforce(objects=["Contact"]).discover()] == ["Contact"]


def test_every_field_type_lands_as_its_arrow_type(salesforce: Make) -> None:
    table = salesforce().read(ReadRequest("Account")).read_all()
    types = {f.name: f.type for f in table.schema}
    assert types["Revenue"] == pa.decimal128(18, 2) and types["Employees"] == pa.int64()
    assert types["SystemModstamp"] == pa.timestamp("us", "UTC") and types["Founded"] == pa.date32()
    assert types["OpensAt"] == pa.string() and types["IsDeleted"] == pa.bool_()  # Delta has no time type
    assert pa.types.is_struct(types["BillingAddress"]) and pa.types.is_struct(types["Where"])
    first = sorted(table.to_pylist(), key=lambda r: r["Employees"])[0]
    assert first["Revenue"] == decimal.Decimal("1000.10") and first["Share"] == 12.5
    assert first["Founded"] == dt.date(1999, 12, 31) and first["OpensAt"] == "08:30:00"
    assert first["SystemModstamp"] == START + dt.timedelta(minutes=1)
    assert first["BillingAddress"]["city"] == "Paris" and first["BillingAddress"]["postalCode"] is None
    assert first["Where"] == {"latitude": 48.85, "longitude": 2.35}
    assert first["Description"] == "line 1\nline 2" and table.num_rows == 30


def test_compound_fields_land_as_json_text_when_asked(salesforce: Make) -> None:
    row = salesforce(compound="json").read(ReadRequest("Account")).read_all().to_pylist()[0]
    assert json.loads(row["Where"]) == {"latitude": 48.85, "longitude": 2.35}


def test_pages_are_followed_by_next_records_url_and_each_is_a_batch(org: FakeSalesforce, salesforce: Make) -> None:
    org.state.page_size = 4
    batches = list(salesforce().read(ReadRequest("Account")))
    assert [b.num_rows for b in batches] == [4] * 7 + [2]
    assert sum(1 for p in org.state.requests if "/query/" in p) == 7


def test_deleted_records_land_only_with_include_deleted(org: FakeSalesforce, salesforce: Make) -> None:
    org.state.objects["Account"].records.append(account(99, IsDeleted=True))
    assert salesforce().read(ReadRequest("Account")).read_all().num_rows == 30
    everything = salesforce(include_deleted=True).read(ReadRequest("Account")).read_all().to_pylist()
    assert [r["Name"] for r in everything if r["IsDeleted"]] == ["Account 99"]
    assert any("/queryAll" in p for p in org.state.requests)


def test_incremental_reads_filter_and_order_on_system_modstamp(org: FakeSalesforce, salesforce: Make) -> None:
    source = salesforce()
    after = START + dt.timedelta(minutes=10)
    window = ReadRequest("Account", cursor_column="SystemModstamp", cursor_after=after)
    upper = source.cursor_bound(window, rows=5)
    assert upper == START + dt.timedelta(minutes=15)
    rows = source.read(
        ReadRequest("Account", cursor_column="SystemModstamp", cursor_after=after, cursor_upto=upper)
    ).read_all()
    assert rows["Employees"].to_pylist() == [110, 120, 130, 140, 150]
    assert "SystemModstamp > 2024-04-01T09:10:00Z" in org.state.queries[-1]
    last = START + dt.timedelta(minutes=30)
    assert (
        source.cursor_bound(ReadRequest("Account", cursor_column="SystemModstamp", cursor_after=last), rows=5) is None
    )
    with pytest.raises(InvalidInput):
        source.read(ReadRequest("Account", cursor_column="Nope", cursor_after=1))
    with pytest.raises(InvalidInput):
        source.read(ReadRequest("Account", cursor_column="BillingAddress", cursor_after="x"))


def test_a_refresh_token_signs_in_and_an_expired_session_is_renewed_once(org: FakeSalesforce, salesforce: Make) -> None:
    source = salesforce(auth="refresh_token", client_secret=None, refresh_token=REFRESH)
    assert source.check().ok
    org.state.tokens.clear()  # the session expired
    assert source.read(ReadRequest("Contact")).read_all().num_rows == 1
    assert org.state.grants == ["refresh_token", "refresh_token"]


def test_wrong_credentials_are_an_auth_problem(salesforce: Make) -> None:
    result = salesforce(client_secret=CLIENT[1] + "x").check()
    assert (result.ok, result.problem) == (False, "auth")


def test_an_unknown_object_is_invalid_input_and_a_spent_api_limit_is_transient(
    org: FakeSalesforce, salesforce: Make
) -> None:
    source = salesforce()
    with pytest.raises(InvalidInput):
        source.stream("Nothing__c")
    with pytest.raises(InvalidInput):
        source.stream("Bad name")
    org.state.objects["Account"].fields.append({"name": "Ghost", "type": "string"})
    source.stream("Account")
    del org.state.objects["Account"].fields[-1]  # described with a field the query now refuses
    with pytest.raises(SourceError) as refused:
        source.read(ReadRequest("Account"))
    assert refused.value.details["problem"] == "query"
    org.fail("/services/data/v62.0/query", 403, code="REQUEST_LIMIT_EXCEEDED")
    with pytest.raises(SourceError) as limited:
        salesforce().read(ReadRequest("Contact"))
    assert limited.value.details["problem"] == "rate_limited" and limited.value.is_transient


def test_a_rate_limited_request_is_retried(org: FakeSalesforce, salesforce: Make) -> None:
    org.fail("/services/data/v62.0/query", 503, times=2, retry_after="0")
    assert salesforce().read(ReadRequest("Contact")).read_all().num_rows == 1


def test_the_org_host_is_vetted_on_every_request(org: FakeSalesforce) -> None:
    config = SalesforceConfig(instance_url=org.base_url, client_id=CLIENT[0], client_secret=CLIENT[1], max_retries=0)

    def refuse(host: str, port: int) -> list[str]:
        raise PermissionDenied("refused")

    source = SalesforceSource(config, vet=refuse)
    try:
        with pytest.raises(PermissionDenied):
            source.discover()
    finally:
        source.close()
    assert not org.state.requests


def test_settings_name_what_is_wrong_without_repeating_secrets() -> None:
    kind = source_kind("salesforce")
    with pytest.raises(InvalidInput) as caught:
        kind.parse({"instance_url": "https://acme.my.salesforce.com/path", "client_id": "c"}, {"client_secret": "S3CR"})
    assert "instance_url" in caught.value.message and "S3CR" not in caught.value.message
    with pytest.raises(InvalidInput):
        kind.parse({"instance_url": "https://acme.my.salesforce.com", "client_id": "c", "auth": "refresh_token"})
    with pytest.raises(InvalidInput):
        kind.parse(
            {"instance_url": "https://a.my.salesforce.com", "client_id": "c", "objects": ["a b"]},
            {"client_secret": "s"},
        )
    parsed = kind.parse(
        {"instance_url": "https://acme.my.salesforce.com/", "client_id": "c", "api_version": "v61.0"},
        {"client_secret": "s"},
    )
    assert parsed.api("/sobjects") == "https://acme.my.salesforce.com/services/data/v61.0/sobjects"
    assert kind.endpoint(parsed) == ("acme.my.salesforce.com", 443)
