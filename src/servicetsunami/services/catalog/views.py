"""Gold views on an engine without views of its own: a view is a stored definition (a guarded
SELECT), and a query that names it gets the definition in its place as a subquery.

Only names in ``gold`` that are not Delta tables are looked up in the store, so queries over tables
pay nothing. Views over views expand in turn, up to :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sqlglot import exp

from servicetsunami.errors import InvalidInput
from servicetsunami.sql import GuardedQuery, TableReference, guard_query
from servicetsunami.sql.qualify import table_reference, walk_tables
from servicetsunami.store.repositories import transforms as transforms_repo
from servicetsunami.tenancy import Principal, TableRef

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

MAX_DEPTH = 8


def view_definitions(svc: Services, principal: Principal, refs: list[TableRef]) -> dict[TableRef, str]:
    """The stored SQL of those ``refs`` that are gold views."""
    candidates = [r for r in refs if r.schema == "gold" and not svc.engine.table_exists(r)]
    if not candidates:
        return {}
    found = {}
    with svc.store.session() as session:
        for ref in candidates:
            row = transforms_repo.find_transform(session, f"gold.{ref.name}", tenant_id=principal.tenant_id)
            if row is not None and row.materialize == "view":
                found[ref] = row.sql
    return found


def expand_views(svc: Services, principal: Principal, query: GuardedQuery, /, *, depth: int = 0) -> GuardedQuery:
    """``query`` with every gold view it names replaced by the view's definition."""
    views = view_definitions(svc, principal, [t.table for t in query.tables])
    if not views:
        return query
    if depth >= MAX_DEPTH:
        raise InvalidInput(f"views nest more than {MAX_DEPTH} deep; materialize one of them as a table")
    tree = query.statement.copy()
    for table, is_cte in list(walk_tables(tree)):
        if is_cte or not table.args.get("catalog"):
            continue
        ref = table_reference(table)
        if ref.table not in views:
            continue
        if ref.version is not None or ref.timestamp is not None:
            raise InvalidInput(f"gold.{ref.table.name} is a view: it has no versions to travel to")
        inner = expand_views(svc, principal, guard_query(views[ref.table], catalog=principal.catalog), depth=depth + 1)
        alias = table.args.get("alias")
        name = alias.name if isinstance(alias, exp.TableAlias) and alias.name else ref.table.name
        table.replace(exp.Subquery(this=inner.statement.copy(), alias=exp.TableAlias(this=exp.to_identifier(name))))
    tables: list[TableReference] = []
    for table, is_cte in walk_tables(tree):
        if not is_cte and table.args.get("catalog"):
            found = table_reference(table)
            if found not in tables:
                tables.append(found)
    return dataclasses.replace(query, statement=tree, tables=tuple(tables))
