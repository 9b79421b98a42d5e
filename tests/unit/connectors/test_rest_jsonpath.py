"""The JSONPath subset of REST record selectors: members, indexes, wildcards, quoted names, and the
difference between one list found (its elements are the records) and several values found."""

from __future__ import annotations

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
