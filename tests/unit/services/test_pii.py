"""PII recognition, by column content and by column name."""

from __future__ import annotations

import pytest

from servicetsunami.services.governance import pii


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["ann@example.com", "bob@x.org", "c@d.io"], "email"),
        (["+1 415 555 0101", "(212) 555-0199", "+49 30 123456"], "phone"),
        (["123-45-6789", "987-65-4321", "111-22-3333"], "national_id"),
        (["Ann Smith", "Bob Jones", "Cem Kaya", "Dee Lu"], "name"),
        (["north", "south", "east"], None),
        (["New York", "New York", "New York", "New York", "Paris Nord"], None),
        (["12", "13", "14"], None),
    ],
)
def test_pii_is_recognised_by_content(values: list[str], kind: str | None) -> None:
    assert pii.kind_by_content(values) == kind


def test_pii_is_recognised_by_column_name() -> None:
    assert pii.kind_by_name("customer_email") == "email"
    assert pii.kind_by_name("last_name") == "name"
    assert pii.kind_by_name("date_of_birth") == "birth_date"
    assert pii.kind_by_name("amount") is None
