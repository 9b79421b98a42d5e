"""How well ``suggest_query`` answers without a model, on an evaluation set over the sample tables.

Each question of ``questions.toml`` is asked with no model available. An answer is right when its
SQL returns the reference SQL's rows (each reference row's values found in one answer row, column
names aside), or when it says it cannot answer a question the tables cannot answer. "Cannot answer"
to an answerable question is not right and not wrong; SQL with other rows is wrong.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.llm.chain import Chain
from servicetsunami.services.ai import tools
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal
from tests.differential.local import local_lakehouse

CASES: list[dict[str, Any]] = tomllib.loads((Path(__file__).parent / "questions.toml").read_text())["case"]
MIN_RIGHT = 0.75  # share of the set answered right
MAX_WRONG = 0  # SQL that answers something else is worse than no SQL


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Principal]]:
    with local_lakehouse(tmp_path_factory.mktemp("ai_eval") / "home") as pair:
        yield pair


def _values(row: list[Any]) -> list[str]:
    return sorted(json.dumps(v if not isinstance(v, float) else round(v, 6), sort_keys=True) for v in row)


def same_rows(reference: list[list[Any]], answer: list[list[Any]]) -> bool:
    """Every reference row's values are among one answer row's values, row counts equal."""
    if len(reference) != len(answer):
        return False
    left = [_values(r) for r in answer]
    for row in reference:
        want = _values(row)
        match = next((i for i, got in enumerate(left) if all(got.count(v) >= want.count(v) for v in want)), None)
        if match is None:
            return False
        left.pop(match)
    return True


def grade(svc: Services, principal: Principal, case: dict[str, Any]) -> tuple[str, str]:
    answer = tools.suggest_query(svc, principal, case["question"], chain=Chain([]))
    assert answer.answered_by == "deterministic"
    if answer.sql is None:
        assert answer.cannot_answer and "TSUNAMI_AI__PROVIDER" in answer.cannot_answer
        return ("right" if case.get("cannot") else "cannot"), answer.cannot_answer
    if case.get("cannot"):
        return "wrong", answer.sql
    reference = query_sql(svc, principal, case["sql"]).rows
    got = query_sql(svc, principal, answer.sql).rows
    return ("right" if same_rows(reference, got) else "wrong"), answer.sql


def test_the_deterministic_path_answers_most_questions_and_none_wrongly(
    lakehouse: tuple[Services, Principal], capsys: pytest.CaptureFixture[str]
) -> None:
    grades = {"right": 0, "cannot": 0, "wrong": 0}
    lines = []
    for case in CASES:
        verdict, detail = grade(*lakehouse, case)
        grades[verdict] += 1
        lines.append(f"{verdict:6} {case['question']!r}: {detail}")
    with capsys.disabled():
        print(f"\nsuggest_query without a model: {grades} of {len(CASES)}")
    assert grades["wrong"] <= MAX_WRONG, "\n".join(line for line in lines if line.startswith("wrong"))
    assert grades["right"] >= MIN_RIGHT * len(CASES), "\n".join(lines)


def test_rows_match_by_values_whatever_the_column_names() -> None:
    assert same_rows([["a", 1]], [[1, "a", "extra"]])
    assert not same_rows([["a", 1]], [["a", 2]])
    assert not same_rows([["a", 1]], [["a", 1], ["b", 2]])
