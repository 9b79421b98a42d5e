"""Hard-coded secrets: key-shaped literals of the usual kinds (and the service's own keys) are found,
names that say they hold a secret count only with a real-looking literal."""

from __future__ import annotations

import pytest

from servicetsunami.services.bundles.secrets_scan import is_secret_assignment, secret_kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("AKIA" + "A" * 16, "AWS access key"),
        ("dapi" + "0a" * 16, "Databricks token"),
        ("ghp_" + "a" * 36, "GitHub token"),
        ("xoxb-1234567890-abcdef", "Slack token"),
        ("sk-ant-" + "a" * 30, "API key"),
        ("AIza" + "b" * 35, "Google API key"),
        ("-----BEGIN RSA PRIVATE KEY-----", "private key"),
        ("postgresql://app:s3cret@db:5432/x", "password in a URL"),
        ("tsk_abcd1234_" + "x" * 20, "service key or token"),
        ("Authorization: Bearer abc.def.ghi", "service key or token"),
    ],
)
def test_key_shaped_literals_are_recognised_by_kind(text: str, kind: str) -> None:
    assert secret_kind(text) == kind


@pytest.mark.parametrize(
    "text", ["SELECT * FROM bronze.orders", "https://example.com/a/b", "postgresql://db:5432/x", "AKIA-not-a-key", ""]
)
def test_ordinary_text_is_no_secret(text: str) -> None:
    assert secret_kind(text) is None


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("password", "hunter2hunter2", True),
        ("dbPassword", "hunter2hunter2", True),
        ("API_KEY", "abcd1234", True),
        ("client_secret", "abcdefgh", True),
        ("access_token", "ya29.something", True),
        ("password", "", False),
        ("password", "<your password>", False),
        ("password", "changeme", False),
        ("token_url", "https://auth.example.com/token", False),
        ("passwords_file", "/tmp/x", False),
        ("region", "eu-west-1-secret-ish", False),
    ],
)
def test_a_secret_name_counts_only_with_a_real_looking_literal(name: str, value: str, secret: bool) -> None:
    assert is_secret_assignment(name, value) is secret


def test_long_text_without_a_secret_is_read_in_one_pass() -> None:
    assert secret_kind("a" * 100_000) is None
    assert secret_kind("x://" + "b" * 100_000) is None
    assert secret_kind("ab://c:" * 20_000) is None
