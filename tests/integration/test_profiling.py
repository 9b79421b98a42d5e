"""Profiles of real tables: counts, keys, top values and PII found by content."""

from __future__ import annotations

from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.container import Services
from servicetsunami.services.governance import pii, profiling
from servicetsunami.services.ingestion import uploads
from servicetsunami.tenancy import Principal

PEOPLE = (
    b"id,contact,reach,ref,who,city,score\n"
    b"1,ann@example.com,+1 415 555 0101,123-45-6789,Ann Smith,Paris,3\n"
    b"2,bob@example.org,+44 20 7946 0958,987-65-4321,Bob Jones,Paris,\n"
    b"3,cem@example.net,(212) 555-0199,111-22-3333,Cem Kaya,Rome,5\n"
    b"4,dee@example.com,+49 30 123456,222-33-4444,Dee Lu,Paris,5\n"
)


def test_profile_reports_nulls_distincts_ranges_keys_and_top_values(services: Services, acme: Principal) -> None:
    uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=PEOPLE)
    profile = profiling.profile_table(services, acme, "bronze.people")
    by = {c.name: c for c in profile.columns}

    assert profile.rows == 4 and not profile.sampled
    assert profile.likely_keys[0] == "id"
    assert by["score"].nulls == 1 and by["score"].null_share == 0.25
    assert (by["score"].min, by["score"].max) == (3, 5)
    assert by["city"].distinct == 2
    assert by["city"].top_values[0].value == "Paris" and by["city"].top_values[0].count == 3


def test_pii_is_found_by_content_under_neutral_column_names(services: Services, acme: Principal) -> None:
    uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=PEOPLE)
    profile = profiling.profile_table(services, acme, "people")

    assert profile.pii_columns == {"contact": "email", "reach": "phone", "ref": "national_id", "who": "name"}
    assert {c.name: c.pii_evidence for c in profile.columns if c.pii} == dict.fromkeys(profile.pii_columns, "content")


def test_mask_pii_masks_flagged_columns_in_query_results_even_under_an_alias(
    services: Services, acme: Principal
) -> None:
    uploads.upload_file(services, acme, file_name="people.csv", dataset_name="people", content=PEOPLE)
    before = query_sql(services, acme, "SELECT who AS w, city FROM people ORDER BY id")
    assert before.rows[0] == ["Ann Smith", "Paris"]

    pii.set_mask_pii(services, acme, True)
    profile = {c.name: c for c in profiling.profile_table(services, acme, "people").columns}
    assert profile["who"].min == pii.MASK and {t.value for t in profile["who"].top_values} <= {pii.MASK}
    assert profile["city"].top_values[0].value == "Paris"
    masked = query_sql(services, acme, "SELECT contact AS c, who AS w, city FROM people ORDER BY id")
    assert masked.rows[0] == [pii.MASK, pii.MASK, "Paris"]
    assert masked.hint is not None and "mask_pii" in masked.hint

    pii.set_mask_pii(services, acme, False)
    assert query_sql(services, acme, "SELECT contact FROM people ORDER BY id").rows[0] == ["ann@example.com"]


def _profiled_with_masking(services: Services, principal: Principal) -> None:
    uploads.upload_file(services, principal, file_name="people.csv", dataset_name="people", content=PEOPLE)
    pii.set_mask_pii(services, principal, True)
    profiling.profile_table(services, principal, "people")


def test_columns_a_profile_flagged_stay_masked_in_another_process_and_after_a_restart(
    services: Services, acme: Principal
) -> None:
    _profiled_with_masking(services, acme)
    # "w" holds few rows of names: by content alone it would not be masked, the profile's flag does it.
    sql = "SELECT who AS w FROM people WHERE id = 1"
    assert query_sql(services, acme, sql).rows == [[pii.MASK]]

    other = Services.open(services.settings)  # another worker process, or the next start
    try:
        assert query_sql(other, acme, sql).rows == [[pii.MASK]]
    finally:
        other.close()


def test_a_flagged_column_stays_masked_through_ctes_subqueries_and_functions(
    services: Services, acme: Principal
) -> None:
    _profiled_with_masking(services, acme)
    for sql in (
        "WITH x AS (SELECT who AS w, id FROM people) SELECT w AS z FROM x WHERE id = 1",
        "SELECT lower(n) AS q FROM (SELECT who AS n, id FROM people) WHERE id = 1",
    ):
        assert query_sql(services, acme, sql).rows == [[pii.MASK]], sql
    assert query_sql(services, acme, "SELECT city FROM people WHERE id = 1").rows == [["Paris"]]
