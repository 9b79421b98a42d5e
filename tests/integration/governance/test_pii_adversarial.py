"""mask_pii against an analyst who tries to get personal data out anyway.

The tables are never profiled: columns are flagged when they are written. Every form below must
come back masked; the columns that hold no personal data must come back as they are.
"""

from __future__ import annotations

import base64
import re

import pytest

from servicetsunami.errors import InvalidInput, QueryTimeout
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii, profiling
from servicetsunami.services.ingestion import uploads
from servicetsunami.services.transforms import gold, silver
from servicetsunami.tenancy import Principal

# Neutral column names: only the content says "e-mail" and "person name".
PEOPLE = (
    b"id,contact,who,city,score\n"
    b"1,ann@example.com,Ann Smith,Paris,3\n"
    b"2,bob@example.org,Bob Jones,Paris,4\n"
    b"3,cem@example.net,Cem Kaya,Rome,5\n"
    b"4,dee@example.com,Dee Lu,Paris,5\n"
)
ORDERS = b"order_id,person_id,amount,label\n10,1,7.5,blue\n11,2,3.0,red\n12,1,9.0,blue\n"
_PEOPLE_ROWS = [line.split(",") for line in PEOPLE.decode().splitlines()[1:]]
_EMAILS = [row[1] for row in _PEOPLE_ROWS]
_NAMES = [row[2] for row in _PEOPLE_ROWS]
# every raw value, and the obvious disguises of it
RAW = {
    *_EMAILS,
    *_NAMES,
    *(v[::-1] for v in _EMAILS + _NAMES),
    *(e.split("@")[0] for e in _EMAILS),
    *(e.replace("@", " at ") for e in _EMAILS),
}

LEAKS = [
    "SELECT concat(contact, '!') FROM people",
    "SELECT replace(contact, '@', ' at ') FROM people",
    "SELECT split(contact, '@')[0] FROM people",
    "SELECT array(contact) FROM people",
    "SELECT to_json(named_struct('e', contact)) FROM people",
    "SELECT concat_ws(',', collect_list(contact)) FROM people",
    "SELECT hex(contact) FROM people",
    "SELECT reverse(contact) FROM people",
    "SELECT lower(who) FROM people",
    "SELECT substr(contact, 1, 3) AS x FROM people",
    "SELECT x FROM people LATERAL VIEW explode(array(reverse(contact))) t AS x",
    "SELECT explode(array(contact, who)) AS x FROM people",
    "SELECT city FROM people UNION ALL SELECT contact FROM people",
    "SELECT city FROM people UNION SELECT reverse(who) FROM people",
    "SELECT contact FROM people INTERSECT SELECT contact FROM people",
    "WITH a AS (SELECT contact AS c FROM people) SELECT upper(c) FROM a",
    "WITH a AS (SELECT contact AS c FROM people), b AS (SELECT c AS d FROM a) SELECT d FROM b",
    "SELECT z FROM (SELECT reverse(contact) AS z FROM people) AS q",
    "SELECT (SELECT max(contact) FROM people) AS m",
    "SELECT max(who) OVER (PARTITION BY city) AS w FROM people",
    "SELECT first_value(contact) OVER (ORDER BY id) AS w FROM people",
    "SELECT CASE WHEN id > 0 THEN contact ELSE 'x' END AS c FROM people",
    "SELECT coalesce(NULL, who) AS c FROM people",
    "SELECT s.e FROM (SELECT named_struct('e', contact) AS s FROM people)",
    "SELECT * FROM people",
    "SELECT p.* FROM people AS p",
    "SELECT p.contact AS k, o.amount FROM people AS p JOIN orders AS o ON p.id = o.person_id",
    "SELECT o.label, p.who FROM orders o LEFT JOIN people p ON p.id = o.person_id",
    "SELECT transform(array(contact), v -> upper(v)) AS t FROM people",
    "SELECT min(contact) AS a, max(who) AS b FROM people GROUP BY city",
    "SELECT base64(cast(contact AS BINARY)) AS b FROM people",
    "SELECT cast(contact AS STRING) || '' AS b FROM people",
    "SELECT translate(contact, 'a', 'b') AS t FROM people",
    "SELECT string_agg(who, ';') AS t FROM people",
    "SELECT * FROM people PIVOT (max(contact) FOR city IN ('Paris', 'Rome'))",
    "SELECT * FROM people UNPIVOT (v FOR k IN (contact, who))",
    "SELECT * EXCEPT (id) FROM people",
    "SELECT (SELECT p.contact) AS c FROM people p",
    "SELECT id, (SELECT first(contact) FROM people p2 WHERE p2.id = p1.id) AS c FROM people p1",
    "SELECT * FROM (VALUES (1)) v(a), LATERAL (SELECT contact FROM people)",
    "SELECT map_from_arrays(array(id), array(contact)) AS m FROM people",
    "SELECT aggregate(array(contact), '', (acc, x) -> concat(acc, x)) AS a FROM people",
    "SELECT filter(array(who), x -> true) AS f FROM people",
    "SELECT t.* FROM people LATERAL VIEW OUTER explode(array(contact)) t",
    "SELECT a.* FROM (SELECT contact FROM people) AS a(x)",
    "WITH t(x) AS (SELECT contact FROM people) SELECT x FROM t",
    "SELECT contact FROM people GROUP BY ALL",
    "SELECT regexp_extract(contact, '(.*)@', 1) AS r FROM people",
    "SELECT * FROM people p1 JOIN people p2 USING (id)",
    "SELECT contact AS id, who AS city FROM people",
    "SELECT x FROM (SELECT contact AS x, id FROM people UNION ALL SELECT city, id FROM people) WHERE id > 0",
    "SELECT max_by(contact, id) AS m FROM people",
    "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY contact) AS p FROM people",
    "SELECT try_cast(contact AS STRING) AS c FROM people",
    "SELECT contact FROM people QUALIFY row_number() OVER (ORDER BY id) = 1",
    "SELECT `c`.`contact` FROM people AS c",
]


@pytest.fixture
def masked(services: Services, acme: Principal) -> Principal:
    uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=PEOPLE)
    uploads.upload_file(services, acme, file_name="orders.csv", dataset_name="orders", content=ORDERS)
    pii.set_mask_pii(services, acme, True)
    return acme


def _leaked(values: list[object]) -> set[str]:
    """The raw personal strings found anywhere in ``values`` (nested values rendered as text)."""
    text = " ".join(str(v) for v in values).lower()
    # short values ("ann") count as words only, not inside a run id's hex digits
    found = {raw for raw in RAW if re.search(rf"(?<![0-9a-z]){re.escape(raw.lower())}(?![0-9a-z])", text)}
    encoded = {e.encode().hex() for e in _EMAILS}
    encoded |= {base64.b64encode(e.encode()).decode().lower()[:12] for e in _EMAILS}
    return found | {f"encoded {e}" for e in encoded if e in text}


@pytest.mark.parametrize("sql", LEAKS)
def test_personal_data_comes_back_masked_through_any_expression_on_a_table_never_profiled(
    services: Services, masked: Principal, sql: str
) -> None:
    result = query_sql(services, masked, sql)
    values = [v for row in result.rows for v in row]

    assert result.rows, sql
    assert not _leaked(values), (sql, result.rows)
    assert result.hint is not None and "mask_pii" in result.hint


def test_columns_without_personal_data_stay_unmasked_next_to_masked_ones(services: Services, masked: Principal) -> None:
    result = query_sql(
        services,
        masked,
        "SELECT p.id, p.city, upper(p.city) AS c, p.score + 1 AS s, o.amount, p.contact "
        "FROM people p JOIN orders o ON p.id = o.person_id ORDER BY o.order_id",
    )

    assert result.rows[0] == [1, "Paris", "PARIS", 4, 7.5, pii.MASK]
    assert query_sql(services, masked, "SELECT count(*) AS n, count(DISTINCT city) AS d FROM people").rows == [[4, 2]]
    assert query_sql(services, masked, "SELECT label FROM orders ORDER BY order_id").rows[0] == ["blue"]


def test_a_union_all_that_dilutes_e_mails_below_the_content_threshold_is_still_masked(
    services: Services, masked: Principal
) -> None:
    sql = "SELECT city AS v FROM people UNION ALL SELECT label FROM orders UNION ALL SELECT contact FROM people"
    result = query_sql(services, masked, sql)

    assert {row[0] for row in result.rows} == {pii.MASK}


def test_a_column_whose_lineage_cannot_be_traced_is_masked(services: Services, masked: Principal) -> None:
    # posexplode makes two columns out of one expression: which is which cannot be proven
    result = query_sql(services, masked, "SELECT posexplode(array(city)) FROM people")

    assert result.rows and all(v == pii.MASK for row in result.rows for v in row)


def test_a_gold_table_and_a_gold_view_built_from_personal_data_stay_masked(
    services: Services, masked: Principal
) -> None:
    silver.transform_to_silver(services, masked, "bronze.people")
    gold.create_gold_table(services, masked, "rev", "SELECT id, reverse(contact) AS r, city FROM silver.people")
    gold.create_gold_table(
        services, masked, "rev_view", "SELECT id, lower(who) AS l FROM silver.people", materialize="view"
    )

    table = query_sql(services, masked, "SELECT id, r, city FROM gold.rev ORDER BY id")
    view = query_sql(services, masked, "SELECT id, l FROM gold.rev_view ORDER BY id")

    assert table.rows[0] == [1, pii.MASK, "Paris"]
    assert view.rows[0] == [1, pii.MASK]
    assert pii.remembered_flags(services, masked, "gold.rev")["r"] in ("email", "derived")
    profile = {c.name: c for c in profiling.profile_table(services, masked, "gold.rev").columns}
    assert {t.value for t in profile["r"].top_values} <= {pii.MASK} and profile["r"].min in (None, pii.MASK)
    assert profile["city"].top_values[0].value == "Paris"


def test_a_preview_and_a_dataset_read_are_masked_the_same_way(services: Services, masked: Principal) -> None:
    from servicetsunami.services.catalog import datasets

    preview = silver.preview_transform(services, masked, "bronze.people", transformations={"rename": {"who": "w"}})
    by_name = {c.name: i for i, c in enumerate(preview.preview.columns)}

    assert {row[by_name["w"]] for row in preview.preview.rows} == {pii.MASK}
    assert {row[by_name["contact"]] for row in preview.preview.rows} == {pii.MASK}
    assert {row[by_name["city"]] for row in preview.preview.rows} == {"Paris", "Rome"}
    people = next(d.id for d in datasets.list_datasets(services, masked) if d.name == "people")
    for read in (
        datasets.preview_dataset(services, masked, people),
        datasets.query_dataset(services, masked, people, sql="SELECT reverse(contact) FROM people"),
    ):
        assert read.rows and not _leaked([v for row in read.rows for v in row])


def test_flags_from_a_write_survive_in_another_process(services: Services, masked: Principal) -> None:
    other = Services.open(services.settings)
    try:
        assert query_sql(other, masked, "SELECT reverse(who) FROM people WHERE id = 1").rows == [[pii.MASK]]
    finally:
        other.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT cast(contact AS INT) FROM people",
        "SELECT to_date(who) FROM people",
        "SELECT cast(contact AS DOUBLE) + 1 AS x FROM people",
    ],
)
def test_an_error_about_a_value_does_not_show_the_value(services: Services, masked: Principal, sql: str) -> None:
    with pytest.raises(InvalidInput) as failed:
        query_sql(services, masked, sql)

    assert failed.value.code == "invalid_input"
    assert not _leaked([failed.value.message]), failed.value.message


def test_errors_of_transforms_and_gold_builds_do_not_show_values_either(services: Services, masked: Principal) -> None:
    silver.transform_to_silver(services, masked, "bronze.people")
    with pytest.raises(InvalidInput) as gold_failed:
        gold.create_gold_table(services, masked, "bad", "SELECT cast(contact AS INT) AS n FROM silver.people")
    with pytest.raises(InvalidInput) as cast_failed:
        fail_cast = {"cast": {"contact": {"type": "INT", "on_error": "fail"}}}
        silver.transform_to_silver(services, masked, "bronze.people", transformations=fail_cast)

    for error in (gold_failed.value, cast_failed.value):
        assert not _leaked([error.message, str(error.details)]), error.message


def test_an_error_found_before_any_row_is_read_keeps_its_names(services: Services, masked: Principal) -> None:
    with pytest.raises(InvalidInput) as failed:
        query_sql(services, masked, "SELECT no_such_function(contact) FROM people")
    assert "no_such_function" in failed.value.message


def test_errors_show_values_when_masking_is_off(services: Services, masked: Principal) -> None:
    pii.set_mask_pii(services, masked, False)
    with pytest.raises(InvalidInput) as failed:
        query_sql(services, masked, "SELECT cast(contact AS INT) FROM people")
    assert "ann@example.com" in failed.value.message


def test_when_the_check_after_a_write_fails_the_write_stands_and_the_next_read_checks_again(
    services: Services, acme: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timed_out(*_: object, **__: object) -> dict[str, str]:
        raise QueryTimeout("the sample ran longer than its time limit")

    with monkeypatch.context() as patched:
        patched.setattr(pii, "flag_table", timed_out)
        uploaded = uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=PEOPLE)
    pii.set_mask_pii(services, acme, True)

    assert uploaded.rows == 4
    assert query_sql(services, acme, "SELECT reverse(contact), city FROM people WHERE id = 1").rows == [
        [pii.MASK, "Paris"]
    ]


def test_when_the_check_after_a_gold_build_fails_every_column_of_it_is_flagged(
    services: Services, masked: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    silver.transform_to_silver(services, masked, "bronze.people")

    def timed_out(*_: object, **__: object) -> dict[str, str]:
        raise QueryTimeout("the sample ran longer than its time limit")

    with monkeypatch.context() as patched:
        patched.setattr(pii, "flag_table", timed_out)
        sql = "SELECT city, count(*) AS n FROM silver.people GROUP BY city"
        gold.create_gold_table(services, masked, "cities", sql)

    assert pii.remembered_flags(services, masked, "gold.cities") == {"city": "untraced", "n": "untraced"}
    assert query_sql(services, masked, "SELECT city FROM gold.cities").rows[0] == [pii.MASK]
