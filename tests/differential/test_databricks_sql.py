"""Databricks SQL means the same on the local engine as on Apache Spark, the oracle.

Every statement of the corpus (``corpus/*.sql``) runs through the service's query path over the
sample tables, and its answer (column names, types, rows; or an error) is compared with what Spark
answered (``golden/*.json``, written by ``make oracle``). A statement either answers the same or is
listed in ``deviations.toml`` with the reason, and README's table of known deviations says the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servicetsunami.services.container import Services
from servicetsunami.tenancy import Principal
from tests.differential.corpus import Query, difference, is_ordered, load_corpus, load_deviations, load_golden
from tests.differential.local import local_answer, local_lakehouse

README = Path(__file__).parents[2] / "README.md"
CORPUS = load_corpus()
GOLDEN = load_golden()
DEVIATIONS = load_deviations()
DEVIATING = {sql: deviation.key for deviation in DEVIATIONS for sql in deviation.queries}


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Principal]]:
    with local_lakehouse(tmp_path_factory.mktemp("differential") / "home") as pair:
        yield pair


def test_the_corpus_holds_at_least_500_distinct_statements() -> None:
    texts = [q.sql for q in CORPUS]
    assert len(texts) >= 500
    assert len(set(texts)) == len(texts), [t for t in texts if texts.count(t) > 1]


def test_every_statement_has_the_oracles_answer_recorded() -> None:
    missing = [q.sql for q in CORPUS if q.sql not in GOLDEN]
    stale = sorted(set(GOLDEN) - {q.sql for q in CORPUS})
    assert not missing, f"run `make oracle`: no golden answer for {missing[:5]}"
    assert not stale, f"run `make oracle`: golden answers for statements no longer in the corpus: {stale[:5]}"


def test_every_listed_deviation_is_a_statement_of_the_corpus() -> None:
    unknown = sorted(set(DEVIATING) - {q.sql for q in CORPUS})
    assert not unknown


@pytest.mark.parametrize("query", CORPUS, ids=[f"{q.topic}-{i}" for i, q in enumerate(CORPUS)])
def test_the_local_engine_answers_as_databricks_or_the_deviation_is_listed(
    query: Query, lakehouse: tuple[Services, Principal]
) -> None:
    expected: dict[str, Any] = GOLDEN[query.sql]
    actual = local_answer(*lakehouse, query.sql)
    why = difference(expected, actual, ordered=is_ordered(query.sql))
    if query.sql in DEVIATING:
        assert why is not None, f"answers as Spark now: remove it from deviation {DEVIATING[query.sql]!r}"
    else:
        assert why is None, why


def _readme_deviations() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Databricks SQL on the local engine", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z0-9_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def test_the_readme_table_of_deviations_agrees_with_the_list() -> None:
    assert _readme_deviations() == {d.key: d.reason for d in DEVIATIONS}
