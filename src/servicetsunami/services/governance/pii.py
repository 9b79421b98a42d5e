"""Personal data: recognise it by content (and by column name), and mask it when the tenant asks.

Kinds: ``email``, ``phone``, ``national_id`` (US SSN, UK NI number, IBAN-like and other id shapes),
``name`` (person names: two or three capitalised words), ``address``, ``birth_date`` (names only);
``derived`` for a column written from personal data, ``untraced`` for a column written by a query
whose lineage could not be proven.

Columns are flagged (kept per table in the system store, so every worker and the next start see
them) whenever a table is written (:func:`flag_table`: uploads, sync batches, silver and gold
builds), by a profile (:func:`remember_flags`), and at the first query of a table not yet checked.
Flags are sticky: a later write adds flags, never removes them. A sample is flagged by content when
a fifth of its text looks like e-mails or national ids, or most of it like phones or names.

The tenant setting ``mask_pii`` (off by default) masks, in every result and preview, each output
column that is computed from a flagged column through any expression, generator, aggregate, set
operation or subquery (:mod:`servicetsunami.sql.columns`), each column whose lineage cannot be
proven (it fails closed), and each column whose own values or name look like personal data.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlglot import exp

from servicetsunami.errors import InvalidInput, TsunamiError
from servicetsunami.services.models import QueryResult
from servicetsunami.sql import GuardedQuery, guard_query
from servicetsunami.sql.columns import SourceColumn, output_sources
from servicetsunami.store.repositories import pii_flags as flags_repo
from servicetsunami.store.repositories import tenants as tenants_repo
from servicetsunami.tenancy import Principal, TableRef

if TYPE_CHECKING:
    from servicetsunami.engines.base import TableDetail
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

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
#: At write time the stronger shapes flag a column when this share of its sample has them.
_FLAG_SHARE = {"email": 0.2, "national_id": 0.2}
#: Rows sampled from a table when it is written or first queried.
SAMPLE_ROWS = 1000
#: Values of a result column whose content is checked (evenly spread over the rows).
_RESULT_SAMPLE = 500
_NESTED = ("ARRAY", "STRUCT", "MAP", "VARIANT")


def kind_by_name(column: str, /) -> str | None:
    name = column.lower()
    for kind, pattern in _NAME_HINTS:
        if pattern.search(name):
            return kind
    return None


def kind_by_content(values: Iterable[Any], /, *, flagging: bool = False) -> str | None:
    """The PII kind most (80%) of the non-empty text values share, else None.

    ``flagging``: the looser shares of :data:`_FLAG_SHARE` (a column partly made of e-mails is
    personal data), and text inside lists and structs counts too."""
    texts = [t.strip() for t in _texts(values, nested=flagging) if t.strip()]
    for kind, pattern in (("email", _EMAIL), ("national_id", _NATIONAL_ID), ("phone", _PHONE), ("name", _PERSON)):
        if len(texts) < (1 if flagging and kind in _FLAG_SHARE else 3):
            continue  # a lone capitalised pair or number says little; a lone e-mail says enough
        share = sum(1 for t in texts if pattern.fullmatch(t)) / len(texts)
        if share >= (_FLAG_SHARE.get(kind, _MIN_SHARE) if flagging else _MIN_SHARE):
            if (
                kind == "phone"
                and sum(1 for t in texts if sum(ch.isdigit() for ch in t) >= 7) / len(texts) < _MIN_SHARE
            ):
                continue
            if kind == "name" and len(set(texts)) < len(texts) * 0.5:
                continue  # few distinct capitalised words are categories ("New York"), not people
            return kind
    return None


def _texts(values: Iterable[Any], *, nested: bool) -> Iterable[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif nested and isinstance(value, dict):
            yield from _texts(value.values(), nested=True)
        elif nested and isinstance(value, list | tuple):
            yield from _texts(value, nested=True)


def remember_flags(svc: Services, principal: Principal, table: str, flags: dict[str, str], /) -> dict[str, str]:
    """Add the PII columns found in ``table`` (``schema.table``) to its flags; returns them all.

    Kept in the system store, so every worker process, and the next start, masks them too. A
    table checked and found clean is recorded with no flags (it is not checked again at query time)."""
    found = {c: k for c, k in flags.items() if k}
    entry = _entry(svc, principal, table)
    if entry is not None and not entry[1] and all(entry[0].get(c) == k for c, k in found.items()):
        return dict(entry[0])
    with svc.store.session(write_lock=True) as session:
        return flags_repo.merge_flags(session, principal.tenant_id, table, found)


def forget_flags(svc: Services, principal: Principal, table: str, /) -> None:
    """Drop a dropped table's flags (a new table of the same name is checked afresh)."""
    if _entry(svc, principal, table) is None:
        return
    with svc.store.session(write_lock=True) as session:
        flags_repo.drop_flags(session, principal.tenant_id, table)


def remembered_flags(svc: Services, principal: Principal, table: str, /) -> dict[str, str]:
    entry = _entry(svc, principal, table)
    return dict(entry[0]) if entry is not None else {}


def _entry(svc: Services, principal: Principal, table: str) -> tuple[dict[str, str], bool] | None:
    """A table's flags and whether its last check failed (None: never checked), read once per
    change of the store (every masked query asks). Shared between callers: never change it."""

    def read() -> tuple[dict[str, str], bool] | None:
        with svc.store.session() as session:
            return flags_repo.flags_of(session, principal.tenant_id, table)

    return svc.store.reads.get(("pii_flags", principal.tenant_id, table), read)


def flag_written(
    svc: Services,
    principal: Principal,
    ref: TableRef,
    /,
    *,
    columns: Iterable[str],
    written_by: GuardedQuery | None = None,
    detail: TableDetail | None = None,
) -> None:
    """:func:`flag_table` after a write that has committed: when the check itself fails (a timeout,
    a lost engine), the write still stands and the table is left to be checked at its next read,
    or, written by a query whose lineage is now unknown, every column of it is flagged ``untraced``.
    ``detail``: the description of the version just written, when the caller has it."""
    try:
        flag_table(svc, principal, ref, written_by=written_by, detail=detail)
    except TsunamiError as exc:
        table = f"{ref.schema}.{ref.name}"
        logger.warning("the personal-data check of %s failed (%s); it is made again at its next read", table, exc.code)
        if written_by is not None:
            remember_flags(svc, principal, table, dict.fromkeys(columns, "untraced"))
            return
        with svc.store.session(write_lock=True) as session:
            flags_repo.mark_pending(session, principal.tenant_id, table)


def flag_table(
    svc: Services,
    principal: Principal,
    ref: TableRef,
    /,
    *,
    written_by: GuardedQuery | None = None,
    detail: TableDetail | None = None,
) -> dict[str, str]:
    """Flag the personal data of a table just written (or not yet checked); returns all its flags.

    A sample of :data:`SAMPLE_ROWS` rows is classified by content, every column by name, and when
    ``written_by`` (the query that wrote it) is given, each column computed from a flagged column,
    or whose lineage cannot be proven, is flagged too. ``detail``: the table's description when the
    caller has it (on Databricks, describing a table takes four statements on the warehouse)."""
    if detail is None:
        detail = svc.engine.describe(ref)
    table = f"{ref.schema}.{ref.name}"
    flags: dict[str, str] = {}
    for column in detail.columns:
        if not column.name.startswith("_") and (kind := kind_by_name(column.name)):
            flags[column.name] = kind
    sampled = [c.name for c in detail.columns if _holds_text(c.type)]
    if sampled:
        source = exp.table_(exp.to_identifier(ref.name), db=exp.to_identifier(ref.schema))
        if (detail.rows or 0) > SAMPLE_ROWS:  # spread over the table, not its first file only
            percent = max(0.01, round(100 * SAMPLE_ROWS / (detail.rows or 1), 2))
            source.set("sample", exp.TableSample(percent=exp.Literal.number(min(100, percent * 2))))
        statement = (
            exp.select(*[exp.column(exp.to_identifier(n, quoted=True)) for n in sampled])
            .from_(source)
            .limit(SAMPLE_ROWS)
        )
        guarded = guard_query(statement.sql(dialect="databricks"), catalog=principal.catalog)
        result = svc.engine.query(
            guarded,
            max_rows=SAMPLE_ROWS,
            max_bytes=svc.settings.query.max_bytes,
            timeout_seconds=svc.settings.query.timeout_seconds,
        )
        for name, values in zip(sampled, (c.to_pylist() for c in result.table.columns), strict=True):
            if kind := kind_by_content(values, flagging=True):
                flags[name] = kind
    if written_by is not None:
        names = [c.name for c in detail.columns]
        for name, sources in zip(names, _sources(svc, principal, written_by, len(names)), strict=True):
            if sources is None:
                flags.setdefault(name, "untraced")
            elif kind := _flagged_kind(svc, principal, sources):
                flags.setdefault(name, kind if kind in _KINDS else "derived")
    return remember_flags(svc, principal, table, flags)


_KINDS = frozenset({"email", "phone", "national_id", "name", "address", "birth_date"})


def _holds_text(type_name: str) -> bool:
    upper = type_name.upper()
    return upper.startswith(("STRING", "VARCHAR", "CHAR", *_NESTED))


def _known_flags(svc: Services, principal: Principal, table: TableRef) -> dict[str, str]:
    """A table's flags, checking the table first when it never was (fail closed: a table written
    before flags were kept, or by a path that did not flag it, is still classified)."""
    entry = _entry(svc, principal, f"{table.schema}.{table.name}")
    if entry is not None and not entry[1]:
        return dict(entry[0])
    return flag_table(svc, principal, table)


def _flagged_kind(svc: Services, principal: Principal, sources: frozenset[SourceColumn]) -> str | None:
    by_table: dict[str, dict[str, str]] = {}
    for table, column in sorted(sources):
        if table not in by_table:
            schema, _, name = table.partition(".")
            flags = _known_flags(svc, principal, TableRef(principal.catalog, schema, name))
            by_table[table] = {c.lower(): k for c, k in flags.items()}
        if kind := by_table[table].get(column):
            return kind
    return None


def _sources(
    svc: Services, principal: Principal, query: GuardedQuery, outputs: int
) -> list[frozenset[SourceColumn] | None]:
    """The source columns of each output of ``query`` (None: not proven), with the tables' schemas."""
    schemas: dict[str, dict[str, dict[str, str]]] = {}
    for reference in query.tables:
        ref = reference.table
        detail = svc.engine.describe(ref, version=reference.version, timestamp=reference.timestamp)
        schemas.setdefault(ref.schema, {})[ref.name] = {c.name: c.type for c in detail.columns}
    return output_sources(query.statement, catalog=principal.catalog, schemas=schemas, outputs=outputs)


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
    with svc.store.session(write_lock=True) as session:
        return bool(
            tenants_repo.set_tenant_setting(session, principal.tenant_id, "mask_pii", bool(enabled))["mask_pii"]
        )


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


# DuckDB's errors raised before a statement reads any row: they quote names from the SQL, never data
_BEFORE_DATA = ("Catalog Error:", "Binder Error:", "Parser Error:", "Syntax Error:")


@contextlib.contextmanager
def redacted_errors(svc: Services, principal: Principal, /) -> Iterator[None]:
    """With ``mask_pii`` on, the engine's errors about a statement say no quoted values: a failed
    cast names the value it could not convert (``Could not convert string 'ann@example.com'``), and
    that value may be personal data. The SQL guard's own refusals only quote what the caller wrote."""
    try:
        yield
    except InvalidInput as exc:
        if (
            type(exc) is not InvalidInput
            or exc.message.startswith(_BEFORE_DATA)
            or not mask_pii_enabled(svc, principal)
        ):
            raise
        message = _QUOTED.sub(f"'{MASK}'", exc.message)
        if message == exc.message:
            raise
        raise InvalidInput(f"{message} (values hidden: tenant setting mask_pii)", **exc.details) from None


def redacting(
    function: Callable[Concatenate[Services, Principal, P], R],
) -> Callable[Concatenate[Services, Principal, P], R]:
    """A service function (``svc, principal, ...``) whose engine errors go through :func:`redacted_errors`."""

    @functools.wraps(function)
    def wrapper(svc: Services, principal: Principal, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with redacted_errors(svc, principal):
            return function(svc, principal, *args, **kwargs)

    return wrapper


def mask_result(svc: Services, principal: Principal, result: QueryResult, query: GuardedQuery | None, /) -> QueryResult:
    """``result`` with PII columns masked when the tenant's ``mask_pii`` is on; unchanged otherwise.

    ``query`` is the guarded statement that produced ``result`` (gold views expanded), ``None`` for
    a result read from no table. A column is masked when its lineage reaches a flagged column, when
    its lineage cannot be proven, or when its own name or values look like personal data."""
    if not result.rows or not mask_pii_enabled(svc, principal):
        return result
    names = [c.name for c in result.columns]
    if query is None or query.kind != "select":  # EXPLAIN plans and metadata carry no table values
        sources: list[frozenset[SourceColumn] | None] = [frozenset()] * len(names)
    else:
        sources = _sources(svc, principal, query, len(names))
    masked = set()
    for i, column in enumerate(result.columns):
        found = sources[i]
        step = max(1, len(result.rows) // _RESULT_SAMPLE)  # an even spread keeps the shares
        values = [row[i] for row in result.rows[::step]]
        if (
            found is None  # not proven clean: fail closed
            or _flagged_kind(svc, principal, found)
            or kind_by_name(column.name)
            or kind_by_content(values, flagging=True)
        ):
            masked.add(i)
    if not masked:
        return result
    rows = [[MASK if i in masked and v is not None else v for i, v in enumerate(row)] for row in result.rows]
    hint = (
        result.hint + " " if result.hint else ""
    ) + "columns with personal data are masked (tenant setting mask_pii)"
    return result.model_copy(update={"rows": rows, "hint": hint})
