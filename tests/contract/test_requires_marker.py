"""The ``requires`` marker of the contract suites (tests/contract/conftest.py), run on a small
suite of its own: a lacking capability is a check that the call refuses, never a skip."""

from __future__ import annotations

import pytest

SUITE = """
from dataclasses import dataclass

import pytest

from servicetsunami.errors import NotSupported
from tests.contract.conftest import _refusal_of_what_is_lacking


@dataclass(frozen=True)
class Capabilities:
    merge: bool = False
    comments: bool = False
    volumes: bool = True


@pytest.fixture
def capabilities():
    return Capabilities()


@pytest.mark.requires("merge")
def test_refused():
    raise NotSupported("merge is not available here")


@pytest.mark.requires("merge")
def test_refused_with_another_error():
    raise ValueError("merge went wrong")


@pytest.mark.requires("merge")
def test_performed_although_declared_missing():
    pass


@pytest.mark.requires("comments", refuses=False)
def test_cannot_be_refused():
    assert False, "the comment is not there"


@pytest.mark.requires("comments", refuses=False)
def test_cannot_be_refused_but_passes():
    pass


@pytest.mark.requires("volumes")
def test_has_it():
    pass


@pytest.mark.requires("volumes")
def test_has_it_and_fails():
    raise NotSupported("volumes declared but refused")


@pytest.mark.requires("voluems")
def test_misspelt():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "markers =\n    requires: a capability the test needs\n"
    )
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def outcomes(suite: pytest.Pytester, selection: str) -> dict[str, int]:
    result = suite.runpytest_inprocess("-p", "no:cacheprovider", "-k", selection)
    return {k: v for k, v in result.parseoutcomes().items() if k in ("passed", "failed", "xfailed", "errors")}


def test_a_lacking_capability_passes_the_check_only_when_the_call_refuses_with_not_supported(
    suite: pytest.Pytester,
) -> None:
    assert outcomes(suite, "test_refused and not another") == {"xfailed": 1}
    assert outcomes(suite, "test_refused_with_another_error") == {"failed": 1}
    assert outcomes(suite, "test_performed_although_declared_missing") == {"failed": 1}


def test_a_capability_that_cannot_be_refused_must_make_the_test_fail(suite: pytest.Pytester) -> None:
    assert outcomes(suite, "test_cannot_be_refused and not passes") == {"xfailed": 1}
    assert outcomes(suite, "test_cannot_be_refused_but_passes") == {"failed": 1}


def test_an_implementation_with_the_capability_runs_the_test_as_it_is(suite: pytest.Pytester) -> None:
    assert outcomes(suite, "test_has_it and not fails") == {"passed": 1}
    assert outcomes(suite, "test_has_it_and_fails") == {"failed": 1}


def test_a_misspelt_capability_is_an_error_never_a_pass(suite: pytest.Pytester) -> None:
    assert outcomes(suite, "test_misspelt") == {"errors": 1}
