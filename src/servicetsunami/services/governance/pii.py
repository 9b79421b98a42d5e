"""Personal data: recognise it by content (and by column name), and mask it when the tenant asks.

Kinds: ``email``, ``phone``, ``national_id`` (US SSN, UK NI number, IBAN-like and other id shapes),
``name`` (person names: two or three capitalised words), ``address``, ``birth_date`` (names only).

The tenant setting ``mask_pii`` (off by default) masks, in every query result and preview, the
columns whose values look like PII, and the columns a profile of a table they read flagged
(:func:`remember_flags`), so an alias does not unmask them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage

from servicetsunami.services.models import QueryResult
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MASK = "***"
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?\(?[0-9][0-9 ().-]{6,}[0-9]$")
_NATIONAL_ID = re.compile(
    r"^(?:\d{3}-\d{2}-\d{4}|[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]|[A-Z]{2}\d{2}[A-Z0-9]{11,30})$"
)
_PERSON = re.compile(r"^[A-Z][a-z'-]+(?: [A-Z][a-z'.-]*){1,2}$")
_NAME_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"(^|_)e?mail(_|$)|email")),
    ("phone", re.compile(r"phone|mobile|(^|_)tel(_|$)|fax")),
    ("national_id", re.compile(r"ssn|national_id|passport|tax_id|(^|_)nin(_|$)|social_security")),
    ("name", re.compile(r"(^|_)(first|last|full|given|family|sur|customer|contact|person)_?name$")),
    ("address", re.compile(r"address|street|(^|_)zip(_|$)|postcode|postal")),
    ("birth_date", re.compile(r"birth|(^|_)dob(_|$)")),
)
_MIN_SHARE = 0.8

_FLAGS_KEY = "pii_flags"  # tenant setting: schema.table -> column -> kind, written by profile_table


def kind_by_name(column: str, /) -> str | None:
    name = column.lower()
    for kind, pattern in _NAME_HINTS:
        if pattern.search(name):
            return kind
    return None


def kind_by_content(values: Iterable[Any], /) -> str | None:
    """The PII kind most (80%) of the non-empty text values share, else None."""
    texts = [str(v).strip() for v in values if isinstance(v, str) and v.strip()]
    if len(texts) < 3:
        return None
    for kind, pattern in (("email", _EMAIL), ("national_id", _NATIONAL_ID), ("phone", _PHONE), ("name", _PERSON)):
        share = sum(1 for t in texts if pattern.fullmatch(t)) / len(texts)
        if share >= _MIN_SHARE:
            if (
                kind == "phone"
                and sum(1 for t in texts if sum(ch.isdigit() for ch in t) >= 7) / len(texts) < _MIN_SHARE
            ):
                continue
            if kind == "name" and len(set(texts)) < len(texts) * 0.5:
                continue  # few distinct capitalised words are categories ("New York"), not people
            return kind
    return None


def remember_flags(svc: Services, principal: Principal, table: str, flags: dict[str, str], /) -> None:
    """Record the PII columns a profile found in ``table`` (``schema.table``) for masking.

    Kept in the tenant's settings, so every worker process, and the next start, masks them too."""
    with svc.store.session(write_lock=True) as session:
        known = dict(tenants_repo.tenant_settings(session, principal.tenant_id).get(_FLAGS_KEY) or {})
        if known.get(table, {}) == flags:
            return
        if flags:
            known[table] = dict(flags)
        else:
            known.pop(table, None)
        tenants_repo.set_tenant_setting(session, principal.tenant_id, _FLAGS_KEY, known)


def remembered_flags(svc: Services, principal: Principal, table: str, /) -> dict[str, str]:
    return dict((_settings(svc, principal).get(_FLAGS_KEY) or {}).get(table) or {})


def mask_pii_enabled(svc: Services, principal: Principal, /) -> bool:
    return bool(_settings(svc, principal).get("mask_pii", False))


def _settings(svc: Services, principal: Principal) -> dict[str, Any]:
    """The tenant's settings, read once per change of the store (every query asks)."""

    def read() -> dict[str, Any]:
        with svc.store.session() as session:
            return tenants_repo.tenant_settings(session, principal.tenant_id)

    return svc.store.reads.get(("tenant_settings", principal.tenant_id), read)


def set_mask_pii(svc: Services, principal: Principal, enabled: bool, /) -> bool:
    """Turn masking on or off for the caller's tenant (admins only)."""
    from servicetsunami.tenancy import Scope

    principal.require(Scope.MANAGE)
    with svc.store.session() as session:
        return bool(
            tenants_repo.set_tenant_setting(session, principal.tenant_id, "mask_pii", bool(enabled))["mask_pii"]
        )


def mask_result(
    svc: Services,
    principal: Principal,
    result: QueryResult,
    tables: list[str],
    /,
    *,
    statement: exp.Expr | None = None,
) -> QueryResult:
    """``result`` with PII columns masked when the tenant's ``mask_pii`` is on; unchanged otherwise.

    A column is masked when its values look like PII, its name says so, or it is, or is computed
    from, a column a profile of ``tables`` flagged (``statement``, the query's AST, tells which
    columns each output column reads, through aliases, CTEs and subqueries)."""
    if not result.rows or not mask_pii_enabled(svc, principal):
        return result
    flagged = {c.lower() for t in tables for c in remembered_flags(svc, principal, t)}
    names = [c.name for c in result.columns]
    sources = _output_sources(statement, names) if statement is not None and flagged else None
    masked = []
    for i, column in enumerate(result.columns):
        values = [row[i] for row in result.rows]
        from_flagged = column.name.lower() in flagged or (sources is not None and bool(sources[i] & flagged))
        if from_flagged or kind_by_name(column.name) or kind_by_content(values):
            masked.append(i)
    if not masked:
        return result
    rows = [[MASK if i in masked and v is not None else v for i, v in enumerate(row)] for row in result.rows]
    hint = (
        result.hint + " " if result.hint else ""
    ) + "columns with personal data are masked (tenant setting mask_pii)"
    return result.model_copy(update={"rows": rows, "hint": hint})


def _output_sources(statement: exp.Expr, names: list[str]) -> list[set[str]] | None:
    """For each output column, the names of the source columns it is computed from, traced through
    CTEs, subqueries and unions by sqlglot's lineage; None when the query cannot be traced (``*``
    without a schema: then the output names are the source names anyway)."""
    try:
        nodes = lineage(None, statement, {}, dialect="databricks")
    except (SqlglotError, ValueError, KeyError):
        return None
    by_name = {str(name).lower(): node for name, node in nodes.items()}
    out: list[set[str]] = []
    for name in names:
        node = by_name.get(name.lower())
        leaves = [n for n in node.walk() if not n.downstream] if node is not None else []
        out.append({n.name.rsplit(".", 1)[-1].lower() for n in leaves})
    return out
