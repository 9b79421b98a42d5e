"""Every source declares every public method of the Source contract exactly as the contract does,
so the sync runner and the services work on any source (keyword names, positional-only arguments
and defaults included)."""

from __future__ import annotations

import servicetsunami.connectors
from servicetsunami.connectors.base import Source
from servicetsunami.connectors.registry import SOURCE_KINDS
from tests.contract.signatures import implementations, mismatches
from tests.fakes.arrow_source import ArrowSource


def test_the_sources_found_include_every_registered_kind() -> None:
    kinds = {cls.kind for cls in implementations(Source, servicetsunami.connectors)}
    assert kinds == set(SOURCE_KINDS)


def test_every_source_and_the_test_fake_have_the_contracts_signatures() -> None:
    classes = [*implementations(Source, servicetsunami.connectors), ArrowSource]
    assert [m for cls in classes for m in mismatches(Source, cls)] == []
