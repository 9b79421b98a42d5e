"""Which TSUNAMI_ environment names are known: every settings field path, and the few read elsewhere."""

from __future__ import annotations

from servicetsunami.settings import OTHER_ENVIRONMENT_NAMES, setting_environment_names, unknown_environment_names


def test_every_field_path_is_a_known_name_nested_ones_with_double_underscores() -> None:
    names = setting_environment_names()
    assert {"TSUNAMI_PORT", "TSUNAMI_QUERY", "TSUNAMI_QUERY__MAX_ROWS", "TSUNAMI_SERVE__WORKERS"} <= names


def test_known_names_are_not_reported_whatever_their_case() -> None:
    environ = {"TSUNAMI_PORT": "1", "tsunami_home": "x", **dict.fromkeys(OTHER_ENVIRONMENT_NAMES, "x"), "PATH": "/bin"}
    assert unknown_environment_names(environ) == []


def test_an_unknown_name_comes_with_the_known_name_it_most_likely_meant() -> None:
    environ = dict.fromkeys(
        ["TSUNAMI_SERVE__PORT", "TSUNAMI_QUERY__MAX_ROW", "TSUNAMI_JWT_SECRET", "TSUNAMI_DATABRICK__HOST"], "x"
    )
    assert dict(unknown_environment_names(environ)) == {
        "TSUNAMI_SERVE__PORT": "TSUNAMI_PORT",
        "TSUNAMI_QUERY__MAX_ROW": "TSUNAMI_QUERY__MAX_ROWS",
        "TSUNAMI_JWT_SECRET": "TSUNAMI_AUTH__JWT_SECRET",
        "TSUNAMI_DATABRICK__HOST": "TSUNAMI_DATABRICKS__HOST",
    }


def test_an_unknown_name_like_no_known_one_comes_without_a_guess() -> None:
    assert unknown_environment_names({"TSUNAMI_FOO": "x"}) == [("TSUNAMI_FOO", None)]
