"""The differential corpus: Databricks SQL queries, the oracle's recorded answers, and how two
answers are compared.

``corpus/<topic>.sql`` holds one statement per line (``--`` lines are comments); the statement's
text is its identity. ``golden/<topic>.json`` holds what Apache Spark answered for each statement
(``make oracle`` writes it). An answer is either a result (column names, Databricks type names and
rows as JSON values) or an error (Spark's error class). Rows are compared in order only when the
statement ends in ``ORDER BY``; floating-point values agree to 9 significant digits.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

HERE = Path(__file__).parent
CORPUS_DIR = HERE / "corpus"
GOLDEN_DIR = HERE / "golden"
DEVIATIONS_FILE = HERE / "deviations.toml"


@dataclass(frozen=True)
class Query:
    topic: str
    sql: str


def load_corpus() -> list[Query]:
    queries = []
    for path in sorted(CORPUS_DIR.glob("*.sql")):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text and not text.startswith("--"):
                queries.append(Query(path.stem, text))
    return queries


def load_golden() -> dict[str, dict[str, Any]]:
    """Statement text -> the oracle's answer, over every topic."""
    answers: dict[str, dict[str, Any]] = {}
    for path in sorted(GOLDEN_DIR.glob("*.json")):
        for answer in json.loads(path.read_text(encoding="utf-8"))["answers"]:
            answers[answer["sql"]] = answer
    return answers


@dataclass(frozen=True)
class Deviation:
    key: str
    reason: str
    queries: tuple[str, ...]


def load_deviations() -> list[Deviation]:
    data = tomllib.loads(DEVIATIONS_FILE.read_text(encoding="utf-8"))
    return [Deviation(key, entry["reason"], tuple(entry["queries"])) for key, entry in data.items()]


def is_ordered(sql: str) -> bool:
    """Whether the statement's own result is ordered (a top-level ORDER BY)."""
    tree = sqlglot.parse_one(sql, read="databricks")
    return isinstance(tree, exp.Query) and tree.args.get("order") is not None


def difference(expected: dict[str, Any], actual: dict[str, Any], *, ordered: bool) -> str | None:
    """Why two answers differ, or None when they mean the same."""
    if "error" in expected or "error" in actual:
        if "error" in expected and "error" in actual:
            return None
        if "error" in expected:
            return f"Spark fails with {expected['error']}, the local engine answers {_short(actual['rows'])}"
        return f"Spark answers {_short(expected['rows'])}, the local engine fails with {actual['error']}"
    want_names = [c[0] for c in expected["columns"]]
    got_names = [c[0] for c in actual["columns"]]
    if want_names != got_names:
        return f"column names {got_names} instead of {want_names}"
    want_types = [_type(c[1]) for c in expected["columns"]]
    got_types = [_type(c[1]) for c in actual["columns"]]
    if want_types != got_types:
        return f"column types {got_types} instead of {want_types}"
    want, got = expected["rows"], actual["rows"]
    if not ordered:
        want, got = sorted(want, key=_sort_key), sorted(got, key=_sort_key)
    if len(want) != len(got) or not all(_same(w, g) for w, g in zip(want, got, strict=True)):
        return f"rows {_short(got)} instead of {_short(want)}"
    return None


def _type(name: str) -> str:
    return name.upper().replace(" ", "")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if (
            not isinstance(a, int | float)
            or not isinstance(b, int | float)
            or isinstance(a, bool)
            or isinstance(b, bool)
        ):
            return False
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _sort_key(row: Any) -> str:
    return json.dumps(_rounded(row), sort_keys=True, default=str)


def _short(rows: Any) -> str:
    text = json.dumps(rows, default=str)
    return text if len(text) <= 300 else text[:297] + "..."
