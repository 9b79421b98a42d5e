"""What every contract suite shares: capabilities as data, and refusals checked, never skipped.

A suite runs each test against every implementation of its contract (engines, sources, ...) and
gives a fixture ``capabilities``: the capabilities of the implementation under test (a dataclass of
booleans). A test that needs some declares them as data::

    @pytest.mark.requires("merge")
    def test_merge_upserts_on_keys(engine): ...

Against an implementation that has them, the test runs as it is. Against one that lacks any, it
runs too, and must fail in the one expected way (ibis's backends/conftest.py turns its notimpl
marks into strict xfails the same way):

- ``requires(...)``: the call refuses with :class:`~servicetsunami.errors.NotSupported`. Any other
  error is a failure, and so is a pass (strict): an implementation that declares a capability
  missing yet performs it must say so in its capabilities.
- ``requires(..., refuses=False)``: the call cannot be refused because it does not depend on the
  capability alone (a description that would carry column comments): the test must fail (a strict
  xfail), and a pass means the declaration is out of date.

Nothing is skipped inside a test body because a capability is missing.
"""

from __future__ import annotations

import pytest

from servicetsunami.errors import NotSupported


@pytest.fixture(autouse=True)
def _refusal_of_what_is_lacking(request: pytest.FixtureRequest) -> None:
    marks = list(request.node.iter_markers("requires"))
    if not marks:
        return
    have = request.getfixturevalue("capabilities")
    lacking: list[tuple[str, bool]] = []
    for mark in marks:
        for name in mark.args:
            if not hasattr(have, name):
                pytest.fail(f"requires({name!r}): {type(have).__name__} has no such capability", pytrace=False)
            if not getattr(have, name):
                lacking.append((name, mark.kwargs.get("refuses", True)))
    if not lacking:
        return
    names = ", ".join(name for name, _ in lacking)
    if all(refuses for _, refuses in lacking):
        request.applymarker(
            pytest.mark.xfail(raises=NotSupported, strict=True, reason=f"lacks {names}: must refuse with NotSupported")
        )
    else:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"lacks {names}: must not pass"))
