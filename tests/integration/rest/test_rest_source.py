"""The REST source against a local fake API over real sockets: every paginator, every auth kind,
record selectors, rate limits, parent/child resources, incremental cursors, nested JSON, and the
host check on every request, redirects and next URLs included."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from servicetsunami.connectors.base import ReadRequest
from servicetsunami.connectors.rest.config import RestConfig
from servicetsunami.connectors.rest.source import RestSource
from servicetsunami.errors import PermissionDenied, SourceError
from tests.fakes.rest_api import API_KEY, BASIC, CLIENT, TOKEN, FakeApi

Rest = Callable[..., RestSource]
ALL_IDS = list(range(1, 96))


def _ids(source: RestSource, stream: str = "items", **request: Any) -> list[int]:
    rows = source.read(ReadRequest(stream, **request)).read_all().to_pylist()
    return [r["id"] for r in rows]


@pytest.mark.parametrize(
    ("path", "selector", "paginator"),
    [
        ("/pages", "$.data.items", {"type": "page_number", "total_pages_path": "$.total_pages"}),
        ("/pages", "data.items", {"type": "page_number", "page_size_param": "per_page", "page_size": 7}),
        ("/offset", "$.results", {"type": "offset", "limit": 10, "total_path": "$.count"}),
        ("/offset", "$.results", {"type": "offset", "limit": 10}),
        ("/cursor", "$.items", {"type": "cursor", "cursor_path": "$.meta.next_cursor"}),
        ("/next", "$.items", {"type": "next_url", "next_url_path": "$.next"}),
        ("/linked", "$", {"type": "link_header"}),
    ],
)
def test_every_paginator_reads_every_record_exactly_once(
    rest: Rest, path: str, selector: str, paginator: dict[str, Any]
) -> None:
    source = rest(resources=[{"name": "items", "path": path, "record_selector": selector, "paginator": paginator}])
    assert _ids(source) == ALL_IDS


def test_without_a_paginator_one_page_is_read(rest: Rest) -> None:
    source = rest(resources=[{"name": "items", "path": "/pages", "record_selector": "$.data.items"}])
    assert _ids(source) == list(range(1, 11))


@pytest.mark.parametrize(
    ("prefix", "settings"),
    [
        ("/bearer", {"auth": {"type": "bearer"}, "token": TOKEN}),
        ("/key", {"auth": {"type": "api_key", "name": "X-Api-Key"}, "api_key": API_KEY}),
        ("/key", {"auth": {"type": "api_key", "name": "api_key", "location": "query"}, "api_key": API_KEY}),
        ("/basic", {"auth": {"type": "basic", "username": BASIC[0]}, "password": BASIC[1]}),
        (
            "/oauth",
            {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": "{base}/oauth/token",
                    "client_id": CLIENT[0],
                },
                "client_secret": CLIENT[1],
            },
        ),
        (
            "/oauth",
            {
                "auth": {
                    "type": "oauth2_client_credentials",
                    "token_url": "{base}/oauth/token",
                    "client_id": CLIENT[0],
                    "client_auth": "basic",
                },
                "client_secret": CLIENT[1],
            },
        ),
    ],
)
def test_each_auth_kind_is_accepted_and_a_wrong_secret_fails_the_check_as_auth(
    rest: Rest, api: FakeApi, prefix: str, settings: dict[str, Any]
) -> None:
    settings = _with_base(settings, api.base_url)
    resource = {
        "name": "items",
        "path": f"{prefix}/offset",
        "record_selector": "$.results",
        "paginator": {"type": "offset"},
    }
    source = rest(resources=[resource], **settings)
    assert source.check().ok
    assert _ids(source) == ALL_IDS
    secret = next(k for k in ("token", "api_key", "password", "client_secret") if k in settings)
    wrong = rest(resources=[resource], **{**settings, secret: "wrong"})
    result = wrong.check()
    assert not result.ok and result.problem == "auth" and result.diagnosis
    assert "wrong" not in result.diagnosis


def test_an_oauth_token_is_reused_and_fetched_again_when_the_api_rejects_it(rest: Rest, api: FakeApi) -> None:
    auth = {"type": "oauth2_client_credentials", "token_url": f"{api.base_url}/oauth/token", "client_id": CLIENT[0]}
    resource = {
        "name": "items",
        "path": "/oauth/pages",
        "record_selector": "$.data.items",
        "paginator": {"type": "page_number"},
    }
    source = rest(resources=[resource], auth=auth, client_secret=CLIENT[1])
    assert _ids(source) == ALL_IDS
    assert api.state.issued == 1  # one token for eleven pages
    api.state.tokens.clear()  # revoked (or expired) on the server's side
    other = rest(resources=[resource], auth=auth, client_secret=CLIENT[1])
    other._client._token = source._client._token  # a token the API no longer honours
    assert _ids(other) == ALL_IDS
    assert api.state.issued == 2


def test_credentials_go_only_to_the_apis_own_host(rest: Rest, api: FakeApi) -> None:
    source = rest(
        resources=[{"name": "items", "path": "/bearer/pages", "record_selector": "$.data.items"}],
        auth={"type": "bearer"},
        token=TOKEN,
    )
    assert _ids(source) == list(range(1, 11))
    localhost = rest(
        base_url=api.base_url.replace("127.0.0.1", "localhost"),
        resources=[{"name": "items", "path": "/next", "record_selector": "$.items", "paginator": {"type": "next_url"}}],
        auth={"type": "bearer"},
        token=TOKEN,
    )
    api.state.seen_authorization.clear()
    assert _ids(localhost) == ALL_IDS  # the next URLs name 127.0.0.1, another host than localhost
    assert api.state.seen_authorization[0] == f"Bearer {TOKEN}"
    assert all(seen is None for seen in api.state.seen_authorization[1:])


def test_429_and_503_are_retried_after_what_retry_after_says(rest: Rest, api: FakeApi) -> None:
    api.fail("/pages", 429, 503, 429)
    api.fail("/offset", 503, retry_after=None)
    source = rest(
        resources=[
            {
                "name": "items",
                "path": "/pages",
                "record_selector": "$.data.items",
                "paginator": {"type": "page_number"},
            },
            {"name": "more", "path": "/offset", "record_selector": "$.results", "paginator": {"type": "offset"}},
        ]
    )
    assert _ids(source) == ALL_IDS
    assert _ids(source, "more") == ALL_IDS
    assert api.state.requests.count("/pages") == 10 + 3 + 1


def test_a_rate_limit_that_outlasts_the_retries_is_a_transient_source_error(rest: Rest, api: FakeApi) -> None:
    api.fail("/pages", *[429] * 4)
    source = rest(resources=[{"name": "items", "path": "/pages", "record_selector": "$.data.items"}], max_retries=2)
    with pytest.raises(SourceError) as caught:
        source.read(ReadRequest("items"))
    assert caught.value.is_transient and caught.value.details["problem"] == "rate_limited"


def test_a_retry_after_longer_than_allowed_stops_the_read_instead_of_waiting(rest: Rest, api: FakeApi) -> None:
    api.fail("/pages", 429, retry_after="7200")
    source = rest(resources=[{"name": "items", "path": "/pages", "record_selector": "$.data.items"}])
    with pytest.raises(SourceError) as caught:
        source.read(ReadRequest("items"))
    assert caught.value.details["problem"] == "rate_limited"


def test_a_child_resource_is_read_once_per_parent_record_with_the_parents_key(rest: Rest) -> None:
    source = rest(
        resources=[
            {"name": "users", "path": "/users", "primary_key": ["id"]},
            {
                "name": "orders",
                "path": "/users/{user_id}/orders",
                "record_selector": "$.orders",
                "parent": {"resource": "users", "fields": {"user_id": "id"}},
                "primary_key": ["order_id"],
            },
        ]
    )
    rows = source.read(ReadRequest("orders")).read_all().to_pylist()
    assert sorted((r["_parent_user_id"], r["order_id"]) for r in rows) == [
        (u, u * 100 + k) for u in range(1, 5) for k in range(u)
    ]
    info = source.stream("orders")
    assert info.primary_key == ["order_id"] and [c.name for c in info.columns] == [
        "order_id",
        "total",
        "_parent_user_id",
    ]


def test_nested_values_land_as_json_text_or_as_structs_by_the_setting(rest: Rest) -> None:
    resource = {"name": "items", "path": "/pages", "record_selector": "$.data.items"}
    as_json = rest(resources=[resource]).read(ReadRequest("items")).read_all()
    assert as_json.schema.field("owner").type == "string"
    assert json.loads(as_json.column("owner")[0].as_py()) == {"id": 1, "email": "o1@example.com"}
    assert json.loads(as_json.column("tags")[0].as_py()) == ["a", "b"]
    as_struct = rest(resources=[resource], nested="struct").read(ReadRequest("items")).read_all()
    assert as_struct.column("owner")[0].as_py() == {"id": 1, "email": "o1@example.com"}
    assert as_struct.column("tags")[0].as_py() == ["a", "b"]


def test_incremental_reads_send_the_cursor_and_drop_what_the_api_repeats(rest: Rest, api: FakeApi) -> None:
    resource = {
        "name": "events",
        "path": "/events",
        "record_selector": "$.events",
        "paginator": {"type": "page_number"},
        "incremental": {"cursor_field": "updated_at", "param": "since", "start_value": "2024-03-01T00:00:05Z"},
        "primary_key": ["id"],
    }
    source = rest(resources=[resource])
    lower, seen = None, []
    while (upper := source.cursor_bound(_window(lower), rows=10)) is not None:
        seen += [r["id"] for r in source.read(_window(lower, upper)).read_all().to_pylist()]
        lower = upper
        assert len(seen) <= 40, "the bounds stopped advancing"
    assert seen == list(range(5, 41))  # from the start value on, each once
    api.state.events.append({"id": 41, "kind": "e", "updated_at": "2024-03-01T01:00:00Z"})
    later = rest(resources=[resource])
    bound = later.cursor_bound(_window(lower), rows=10)
    assert bound == "2024-03-01T01:00:00Z"
    assert [r["id"] for r in later.read(_window(lower, bound)).read_all().to_pylist()] == [41]
    assert {"since": lower, "page": "1"} in api.state.queries  # the API was asked from the last cursor on


def test_a_next_url_at_the_metadata_address_is_refused(rest: Rest) -> None:
    source = rest(
        resources=[
            {"name": "items", "path": "/evil-next", "record_selector": "$.items", "paginator": {"type": "next_url"}}
        ]
    )
    with pytest.raises(PermissionDenied) as caught:
        source.read(ReadRequest("items"))
    assert caught.value.code == "permission_denied"


def test_a_redirect_to_the_metadata_address_is_refused_and_a_redirect_home_is_followed(rest: Rest) -> None:
    source = rest(
        resources=[
            {"name": "items", "path": "/redirect"},
            {"name": "moved", "path": "/moved", "record_selector": "$.data.items"},
        ]
    )
    with pytest.raises(PermissionDenied):
        source.read(ReadRequest("items"))
    assert _ids(source, "moved") == list(range(1, 11))


def test_unreachable_and_missing_endpoints_fail_the_check_with_a_diagnosis(rest: Rest) -> None:
    missing = rest(resources=[{"name": "items", "path": "/nowhere"}]).check()
    assert not missing.ok and missing.problem == "not_found"
    down = rest(base_url="http://127.0.0.1:1", resources=[{"name": "items", "path": "/x"}], max_retries=0).check()
    assert not down.ok and down.problem == "refused"


@pytest.mark.parametrize(
    "settings",
    [
        {"base_url": "ftp://example.com", "resources": [{"name": "a", "path": "/a"}]},
        {"base_url": "http://u:p@example.com", "resources": [{"name": "a", "path": "/a"}]},
        {"base_url": "http://example.com", "resources": [{"name": "a", "path": "http://elsewhere/a"}]},
        {"base_url": "http://example.com", "resources": [{"name": "a", "path": "/a/{id}"}]},
        {"base_url": "http://example.com", "resources": [{"name": "a", "path": "/a", "record_selector": "$$"}]},
        {"base_url": "http://example.com", "resources": [{"name": "a", "path": "/a"}], "auth": {"type": "bearer"}},
        {
            "base_url": "http://example.com",
            "resources": [{"name": "a", "path": "/a"}],
            "headers": {"Authorization": "x"},
        },
        {
            "base_url": "http://example.com",
            "resources": [
                {"name": "a", "path": "/a/{x}", "parent": {"resource": "b"}},
                {"name": "b", "path": "/b/{y}", "parent": {"resource": "a"}},
            ],
        },
    ],
)
def test_a_config_that_cannot_work_is_refused_when_stored(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RestConfig.model_validate(settings)


def _window(after: Any, upto: Any = None) -> ReadRequest:
    return ReadRequest("events", cursor_column="updated_at", cursor_after=after, cursor_upto=upto)


def _with_base(settings: dict[str, Any], base: str) -> dict[str, Any]:
    auth = settings.get("auth", {})
    if "token_url" in auth:
        settings = {**settings, "auth": {**auth, "token_url": auth["token_url"].replace("{base}", base)}}
    return settings


def test_a_retry_after_given_as_a_date_is_honoured(rest: Rest, api: FakeApi) -> None:
    api.fail("/pages", 503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # long past: retry at once
    source = rest(resources=[{"name": "items", "path": "/pages", "record_selector": "$.data.items"}])
    assert _ids(source) == list(range(1, 11))
    assert api.state.requests.count("/pages") == 2


def test_a_cancelled_source_stops_before_its_next_request(rest: Rest, api: FakeApi) -> None:
    source = rest(resources=[{"name": "items", "path": "/pages", "record_selector": "$.data.items"}])
    source.cancel()
    with pytest.raises(SourceError) as caught:
        source.read(ReadRequest("items"))
    assert "cancelled" in caught.value.message and api.state.requests == []


def test_an_unknown_stream_or_a_schema_is_invalid_input(rest: Rest) -> None:
    from servicetsunami.errors import InvalidInput

    source = rest(resources=[{"name": "items", "path": "/pages", "record_selector": "$.data.items"}])
    with pytest.raises(InvalidInput):
        source.stream("orders")
    with pytest.raises(InvalidInput):
        source.discover(schema="public")
    with pytest.raises(InvalidInput):
        source.cursor_bound(ReadRequest("items"), rows=10)
