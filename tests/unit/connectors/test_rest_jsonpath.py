"""The JSONPath subset of REST record selectors: members, indexes, wildcards, quoted names, and the
difference between one list found (its elements are the records) and several values found."""

from __future__ import annotations

import json

import pytest

from servicetsunami.connectors.rest import jsonpath

BODY = {"data": {"items": [{"id": 1}, {"id": 2}], "odd key": [{"id": 3}]}, "meta": {"next": "n", "total": 2}}


@pytest.mark.parametrize(
    ("path", "records"),
    [
        ("$", [BODY]),
        ("$.data.items", [{"id": 1}, {"id": 2}]),
        ("data.items", [{"id": 1}, {"id": 2}]),
        ("$.data.items[*]", [{"id": 1}, {"id": 2}]),
        ("$.data.items[1]", [{"id": 2}]),
        ("$.data['odd key']", [{"id": 3}]),
        ("$.data.items[*].id", [1, 2]),
        ("$.data.*", [[{"id": 1}, {"id": 2}], [{"id": 3}]]),
        ("$.nowhere", []),
        ("$.data.items[9]", []),
    ],
)
def test_a_selector_finds_the_records_at_its_path(path: str, records: list[object]) -> None:
    assert jsonpath.records(BODY, jsonpath.parse(path)) == records


def test_first_is_the_first_value_or_none() -> None:
    assert jsonpath.first(BODY, jsonpath.parse("$.meta.next")) == "n"
    assert jsonpath.first(BODY, jsonpath.parse("$.meta.missing")) is None


@pytest.mark.parametrize("path", ["$$", "$.a..b", "$.a[", "$[x]", "a b"])
def test_what_the_subset_does_not_read_is_refused(path: str) -> None:
    with pytest.raises(ValueError):
        jsonpath.parse(path)


PAGE = (
    b'{"data": {"items": [{"id": 1, "tags": [\r\n"a", "b"]},\n  {"id": 2,\n "note": "x\\ny \xc3\xa9"}]}, '
    b'"meta": {"total": 2}}'
)


def test_a_page_is_parsed_as_json_loads_parses_it_with_the_text_of_its_records() -> None:
    body, texts = jsonpath.load_selecting(PAGE, jsonpath.parse("$.data.items"))
    assert body == json.loads(PAGE)
    assert texts is not None and json.loads(f"[{texts}]") == body["data"]["items"]


def test_an_empty_list_of_records_has_an_empty_text() -> None:
    body, texts = jsonpath.load_selecting(b'{"data": [ ]}', jsonpath.parse("$.data"))
    assert body == {"data": []} and texts is not None and not texts.strip()


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (b'{"data": [1, 2]}', "$.data"),  # elements that are not objects: no texts
        (b'{"data": {"id": 1}}', "$.data"),  # one object, not a list
        (b'[{"id": 1}]', "$"),  # a selector that is not a path of member names
        (b'{"data": [{"id": 1}]}', "$.data[*]"),
        (b'{"meta": {}}', "$.data"),
    ],
)
def test_a_page_whose_records_are_not_a_list_of_objects_at_a_member_path_has_no_texts(
    document: bytes, path: str
) -> None:
    body, texts = jsonpath.load_selecting(document, jsonpath.parse(path))
    assert body == json.loads(document) and texts is None


def test_a_repeated_member_counts_its_last_value_as_json_loads_does() -> None:
    document = b'{"data": [{"id": 1}], "data": [{"id": 2}, {"id": 3}]}'
    body, texts = jsonpath.load_selecting(document, jsonpath.parse("$.data"))
    assert body == {"data": [{"id": 2}, {"id": 3}]} and texts == '{"id": 2}, {"id": 3}'
    body, texts = jsonpath.load_selecting(b'{"data": [{"id": 1}], "data": null}', jsonpath.parse("$.data"))
    assert body == {"data": None} and texts is None


@pytest.mark.parametrize(
    "document", [b'{"data": [{"id": 1}] x', b'{"data": [{"id": 1},]}', b"", b'{"data": [{"id": 1}]} {}']
)
def test_a_page_that_is_not_json_is_refused_as_json_loads_refuses_it(document: bytes) -> None:
    with pytest.raises(ValueError):
        jsonpath.load_selecting(document, jsonpath.parse("$.data"))
