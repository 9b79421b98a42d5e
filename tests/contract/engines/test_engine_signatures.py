"""Every engine declares every public method of the Engine contract exactly as the contract does,
so a caller written against the contract works on any engine (keyword names, positional-only
arguments and defaults included)."""

from __future__ import annotations

import servicetsunami.engines
from servicetsunami.engines.base import Engine
from tests.contract.signatures import implementations, mismatches


def test_the_engines_found_are_the_ones_the_contract_suite_runs() -> None:
    names = {cls.__name__ for cls in implementations(Engine, servicetsunami.engines)}
    assert names == {"LocalEngine", "DatabricksEngine", "MirroredEngine"}


def test_every_engine_has_the_contracts_signatures() -> None:
    found = [m for cls in implementations(Engine, servicetsunami.engines) for m in mismatches(Engine, cls)]
    assert found == []
