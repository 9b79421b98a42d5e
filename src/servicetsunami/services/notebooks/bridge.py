"""The service's side of a sandbox's socket: what the kernel's ``spark`` and ``dbutils`` may ask,
answered with the rights of the run's principal (never more).

- ``sql``: one statement through :func:`~servicetsunami.services.catalog.query.query_sql` (the
  guard, the tenant's catalog, row and byte caps, PII masking);
- ``save_table``: a SELECT written to ``silver.<t>`` or ``gold.<t>`` of the tenant (the write
  permission is checked; the SELECT is guarded like any query);
- ``fs_*``: files in the tenant's volumes (:mod:`.files`: the tenant's own catalog only, no ``..``);
- ``notebook``: the code cells of another notebook of the tenant, for ``%run``.
"""

from __future__ import annotations

import logging
import posixpath
from typing import TYPE_CHECKING, Any

from servicetsunami.errors import Conflict, InvalidInput, PermissionDenied, TsunamiError
from servicetsunami.services.catalog.query import query_sql
from servicetsunami.services.catalog.views import expand_views
from servicetsunami.services.notebooks import files
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.services.notebooks.notebooks import check_path, load, resolve
from servicetsunami.sql import guard_query
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.tenancy import Principal, Scope, TableRef, check_identifier

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 1024 * 1024
WRITE_MODES = {"error": "create", "errorifexists": "create", "overwrite": "overwrite", "append": "append"}


class Bridge:
    """Requests of one sandbox, bound to ``principal`` and the notebook's folder (for ``%run``)."""

    def __init__(self, svc: Services, principal: Principal, *, folder: str = "/") -> None:
        self._svc = svc
        self._principal = principal
        self._folder = folder

    def __call__(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        op = header.get("op")
        handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
        try:
            if handler is None:
                raise InvalidInput(f"unknown request {op!r}")
            answer, data = handler(header, payload)
        except TsunamiError as exc:
            return {"ok": False, "code": exc.code, "message": exc.message}, b""
        return {"ok": True, **answer}, data

    # -- SQL -------------------------------------------------------------------------------------

    def _op_sql(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        max_rows = header.get("max_rows")
        result = query_sql(self._svc, self._principal, _text(header, "statement"), max_rows=max_rows)
        columns = [{"name": c.name, "type": c.type} for c in result.columns]
        return {"columns": columns, "rows": result.rows, "truncated": result.truncated, "hint": result.hint}, b""

    def _op_save_table(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        principal = self._principal
        principal.require(Scope.WRITE)
        name = _text(header, "name")
        mode = WRITE_MODES.get(str(header.get("mode", "error")).lower())
        ignore = str(header.get("mode", "")).lower() == "ignore"
        if mode is None and not ignore:
            raise InvalidInput("write mode is one of error, errorifexists, overwrite, append, ignore")
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == principal.catalog:
            parts = parts[1:]
        if len(parts) != 2 or parts[0] not in ("silver", "gold"):
            raise PermissionDenied("notebooks save tables into silver or gold only, as silver.<name> or gold.<name>")
        ref = TableRef(principal.catalog, parts[0], check_identifier(parts[1], what="table"))
        exists = self._svc.engine.table_exists(ref)
        if ignore and exists:
            return {"table": f"{ref.schema}.{ref.name}", "rows": 0, "version": None}, b""
        if mode == "create" and exists:
            raise Conflict(f"{ref.schema}.{ref.name} already exists; use .mode('overwrite') or .mode('append')")
        guarded = guard_query(_text(header, "statement"), catalog=principal.catalog)
        if guarded.kind != "select":
            raise InvalidInput("only the result of a SELECT can be saved as a table")
        expanded = expand_views(self._svc, principal, guarded)
        result = self._svc.engine.write_query(
            ref,
            expanded,
            mode="create" if ignore else mode,  # type: ignore[arg-type]  # one of the engine's modes
            description="Saved from a notebook",
            commit_info={"tsunami.operation": "notebook_save_table"},
            timeout_seconds=self._svc.settings.query.write_timeout_seconds,
        )
        with self._svc.store.session() as session:
            audit_repo.record_audit(
                session,
                tenant_id=principal.tenant_id,
                subject=principal.subject,
                action="notebook.save_table",
                target=str(ref),
                meta={"rows": result.rows, "version": result.version, "mode": mode},
            )
        return {"table": f"{ref.schema}.{ref.name}", "rows": result.rows, "version": result.version}, b""

    # -- volumes ---------------------------------------------------------------------------------

    def _op_fs_ls(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        entries = files.list_files(self._svc, self._principal, _text(header, "path"))
        return {"files": [e.model_dump() for e in entries]}, b""

    def _op_fs_head(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        limit = min(int(header.get("max_bytes") or 65536), MAX_HEAD_BYTES)
        return {}, files.read_file(self._svc, self._principal, _text(header, "path"), max_bytes=limit)

    def _op_fs_put(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        path = _text(header, "path")
        written = files.write_file(self._svc, self._principal, path, payload, overwrite=bool(header.get("overwrite")))
        return {"bytes": written}, b""

    def _op_fs_cp(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        files.copy_file(self._svc, self._principal, _text(header, "source"), _text(header, "target"))
        return {}, b""

    def _op_fs_rm(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        path = _text(header, "path")
        removed = files.delete_file(self._svc, self._principal, path, recurse=bool(header.get("recurse")))
        return {"removed": removed}, b""

    # -- %run ------------------------------------------------------------------------------------

    def _op_notebook(self, header: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        target = _text(header, "path")
        path = target if target.startswith("/") else posixpath.normpath(posixpath.join(self._folder, target))
        notebook_id = resolve(self._svc, self._principal, check_path(path))
        _facts, nb = load(self._svc, self._principal, notebook_id)
        language = sf.notebook_language(nb)
        cells = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = sf._text(cell.source)
            if language == "sql" and sf.cell_magic(source) is None and source.strip():
                source = "%sql\n" + source
            cells.append(source)
        return {"cells": cells}, b""


def _text(header: dict[str, Any], key: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key} must be non-empty text")
    return value
