"""Notebooks of a tenant: create (from cells, Jupyter or Databricks source), get, update (a new
version each time), list by folder, delete, import and export (Jupyter, source, HTML).

A notebook lives at a workspace path (``/reports/daily``): absolute, ``/``-separated names of
letters, digits, spaces, ``_ . -``; folders are the paths' prefixes. Content is kept as Jupyter
JSON (nbformat 4), one row per version.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from nbformat import NotebookNode
from pydantic import BaseModel, Field

from servicetsunami.errors import InvalidInput, NotFound
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.services.ops import listings
from servicetsunami.store.models import Notebook
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import notebooks as notebooks_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

ExportFormat = Literal["jupyter", "source", "html"]
ImportFormat = Literal["jupyter", "source", "auto"]
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9 _.\-]{0,99}$")
_MAX_DEPTH = 12
KIND_NOTEBOOKS = "notebooks"  # the listing cache's kind (settings cache.ttl.notebooks)


class CellPublic(BaseModel):
    index: int
    cell_type: str = Field(description="code or markdown")
    source: str
    title: str | None = None
    tags: list[str] = Field(default_factory=list)


class NotebookPublic(BaseModel):
    notebook_id: str
    path: str
    language: str = Field(description="python or sql (scala and r are stored, not run)")
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class NotebookDetail(NotebookPublic):
    cells: list[CellPublic]


class NotebookList(BaseModel):
    folder: str
    folders: list[str] = Field(description="Folders directly under this one")
    notebooks: list[NotebookPublic]
    next_cursor: str | None = None


class NotebookExport(BaseModel):
    notebook_id: str
    path: str
    version: int
    format: str
    file_name: str
    media_type: str
    content: str


def check_path(path: str, /) -> str:
    """The normalised workspace path (``/a/b``), or :class:`InvalidInput` with what is wrong."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInput("a notebook path is absolute, like /reports/daily")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise InvalidInput("a notebook path names a notebook, not the root folder")
    if len(parts) > _MAX_DEPTH:
        raise InvalidInput(f"a notebook path has at most {_MAX_DEPTH} levels")
    for part in parts:
        if not _SEGMENT.match(part) or part in (".", ".."):
            raise InvalidInput(
                f"{part!r} is not a valid name in a path: letters, digits, spaces, '_', '.', '-' (up to 100)"
            )
    return "/" + "/".join(parts)


def check_folder(folder: str, /) -> str:
    return "/" if folder.strip() in ("", "/") else check_path(folder)


def public(notebook: Notebook, /) -> NotebookPublic:
    return NotebookPublic(
        notebook_id=notebook.id,
        path=notebook.path,
        language=notebook.language,
        version=notebook.version,
        created_by=notebook.created_by,
        created_at=notebook.created_at,
        updated_at=notebook.updated_at,
    )


def cells_public(nb: NotebookNode, /) -> list[CellPublic]:
    out = []
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {})
        own = meta.get(sf.META, {}) or {}
        out.append(
            CellPublic(
                index=i,
                cell_type=cell.cell_type,
                source=sf._text(cell.source),
                title=own.get("title"),
                tags=list(meta.get("tags", [])),
            )
        )
    return out


def _build(
    *,
    cells: list[dict[str, Any]] | None,
    content: str | None,
    format: ImportFormat,
    language: str | None,
) -> NotebookNode:
    if (cells is None) == (content is None):
        raise InvalidInput("give either cells or content (a Jupyter or Databricks source notebook)")
    if language is not None and language not in sf.LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(sf.LANGUAGES)}")
    if cells is not None:
        return sf.from_cells(cells, language=language or "python")
    assert content is not None
    nb = sf.read_any(content, format=format, language=language)
    if language is not None and format != "source":
        nb.metadata[sf.META]["language"] = language
    return nb


def create_notebook(
    svc: Services,
    principal: Principal,
    path: str,
    /,
    *,
    cells: list[dict[str, Any]] | None = None,
    content: str | None = None,
    format: ImportFormat = "auto",
    language: str | None = None,
) -> NotebookDetail:
    """A new notebook at ``path`` from ``cells`` or ``content``; a taken path is a ``Conflict``."""
    principal.require(Scope.WRITE)
    path = check_path(path)
    nb = _build(cells=cells, content=content, format=format, language=language)
    with svc.store.session(write_lock=True) as session:
        notebook = notebooks_repo.create_notebook(
            session,
            tenant_id=principal.tenant_id,
            path=path,
            language=sf.notebook_language(nb),
            content=sf.to_ipynb(nb),
            created_by=principal.subject,
        )
        audit_repo.record_audit(
            session, action="notebook.create", subject=principal.subject, tenant_id=principal.tenant_id, target=path
        )
        created = NotebookDetail(**public(notebook).model_dump(), cells=cells_public(nb))
    listings.invalidate(svc, principal.tenant_id, KIND_NOTEBOOKS)  # after the commit
    return created


def load(
    svc: Services, principal: Principal, notebook_id: str, /, *, version: int | None = None
) -> tuple[NotebookPublic, NotebookNode]:
    """The notebook's public facts and its content (at ``version``, else the newest)."""
    principal.require(Scope.READ)
    with svc.store.session() as session:
        notebook = notebooks_repo.get_notebook(session, notebook_id, tenant_id=principal.tenant_id)
        text = notebooks_repo.content(session, notebook, version=version)
        facts = public(notebook)
    if version is not None:
        facts.version = version
    return facts, sf.from_ipynb(text)


def resolve(svc: Services, principal: Principal, ref: str, /) -> str:
    """A notebook id from an id or a workspace path."""
    principal.require(Scope.READ)
    if not ref.startswith("/"):
        return ref
    with svc.store.session() as session:
        notebook = notebooks_repo.find_by_path(session, check_path(ref), tenant_id=principal.tenant_id)
        if notebook is None:
            raise NotFound(f"no notebook at {ref}")
        return notebook.id


def get_notebook(
    svc: Services, principal: Principal, notebook_id: str, /, *, version: int | None = None
) -> NotebookDetail:
    facts, nb = load(svc, principal, resolve(svc, principal, notebook_id), version=version)
    return NotebookDetail(**facts.model_dump(), cells=cells_public(nb))


def update_notebook(
    svc: Services,
    principal: Principal,
    notebook_id: str,
    /,
    *,
    cells: list[dict[str, Any]] | None = None,
    content: str | None = None,
    format: ImportFormat = "auto",
    language: str | None = None,
    path: str | None = None,
    expected_version: int | None = None,
) -> NotebookDetail:
    """Save new content (a new version) and/or move the notebook to ``path``."""
    principal.require(Scope.WRITE)
    notebook_id = resolve(svc, principal, notebook_id)
    new_path = check_path(path) if path is not None else None
    with svc.store.session(write_lock=True) as session:
        notebook = notebooks_repo.get_notebook(session, notebook_id, tenant_id=principal.tenant_id)
        if cells is None and content is None:
            if new_path is None:
                raise InvalidInput("nothing to update: give cells, content or a new path")
            nb = sf.from_ipynb(notebooks_repo.content(session, notebook))
        else:
            nb = _build(cells=cells, content=content, format=format, language=language or notebook.language)
        notebook.language = sf.notebook_language(nb)
        notebooks_repo.save_version(
            session,
            notebook,
            content=sf.to_ipynb(nb),
            saved_by=principal.subject,
            expected_version=expected_version,
            path=new_path,
        )
        audit_repo.record_audit(
            session,
            action="notebook.update",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=notebook.path,
            meta={"version": notebook.version},
        )
        updated = NotebookDetail(**public(notebook).model_dump(), cells=cells_public(nb))
    listings.invalidate(svc, principal.tenant_id, KIND_NOTEBOOKS)
    return updated


def import_notebook(
    svc: Services,
    principal: Principal,
    path: str,
    content: str,
    /,
    *,
    format: ImportFormat = "auto",
    language: str | None = None,
    overwrite: bool = False,
) -> NotebookDetail:
    """Import a Jupyter or Databricks source notebook at ``path``; with ``overwrite`` an existing
    notebook there gets it as a new version (otherwise that is a ``Conflict``)."""
    principal.require(Scope.WRITE)
    path = check_path(path)
    if overwrite:
        with svc.store.session() as session:
            existing = notebooks_repo.find_by_path(session, path, tenant_id=principal.tenant_id)
            existing_id = existing.id if existing is not None else None
        if existing_id is not None:
            return update_notebook(svc, principal, existing_id, content=content, format=format, language=language)
    return create_notebook(svc, principal, path, content=content, format=format, language=language)


def export_notebook(
    svc: Services,
    principal: Principal,
    notebook_id: str,
    /,
    *,
    format: ExportFormat = "source",
    version: int | None = None,
) -> NotebookExport:
    if format not in ("jupyter", "source", "html"):
        raise InvalidInput("format must be 'jupyter', 'source' or 'html'")
    facts, nb = load(svc, principal, resolve(svc, principal, notebook_id), version=version)
    return export_node(facts, nb, format=format)


def export_node(facts: NotebookPublic, nb: NotebookNode, /, *, format: ExportFormat) -> NotebookExport:
    name = facts.path.rsplit("/", 1)[-1]
    if format == "jupyter":
        text, file_name, media = sf.to_ipynb(nb), f"{name}.ipynb", "application/x-ipynb+json"
    elif format == "source":
        text = sf.to_source(nb)
        file_name, media = f"{name}{sf.extension(sf.notebook_language(nb))}", "text/plain"
    else:
        text, file_name, media = sf.to_html(nb, title=facts.path), f"{name}.html", "text/html"
    return NotebookExport(
        notebook_id=facts.notebook_id,
        path=facts.path,
        version=facts.version,
        format=format,
        file_name=file_name,
        media_type=media,
        content=text,
    )


def list_notebooks(
    svc: Services,
    principal: Principal,
    /,
    *,
    folder: str = "/",
    after: str | None = None,
    limit: int = 100,
) -> NotebookList:
    """The notebooks under ``folder`` (at any depth, by path) and the folders directly below it;
    ``after`` is the last path of the previous page (``next_cursor``)."""
    principal.require(Scope.READ)
    folder = check_folder(folder)
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit is between 1 and 1000")
    return listings.cached(
        svc, KIND_NOTEBOOKS, principal, (folder, after, limit), lambda: _list(svc, principal, folder, after, limit)
    )


def _list(svc: Services, principal: Principal, folder: str, after: str | None, limit: int) -> NotebookList:
    with svc.store.session() as session:
        rows = notebooks_repo.list_notebooks(
            session,
            tenant_id=principal.tenant_id,
            folder=folder,
            after=(after,) if after else None,
            limit=limit,
        )
        page = [public(n) for n in rows[:limit]]
        every = notebooks_repo.list_notebooks(session, tenant_id=principal.tenant_id, folder=folder)
        depth = 0 if folder == "/" else folder.count("/")
        below = [n.path.split("/")[1 : depth + 2] for n in every if n.path.count("/") > depth + 1]
        folders = sorted({"/" + "/".join(parts) for parts in below})
    return NotebookList(
        folder=folder,
        folders=folders,
        notebooks=page,
        next_cursor=page[-1].path if len(rows) > limit else None,
    )


def delete_notebook(svc: Services, principal: Principal, notebook_id: str, /) -> None:
    principal.require(Scope.WRITE)
    notebook_id = resolve(svc, principal, notebook_id)
    with svc.store.session(write_lock=True) as session:
        notebook = notebooks_repo.get_notebook(session, notebook_id, tenant_id=principal.tenant_id)
        path = notebook.path
        notebooks_repo.delete_notebook(session, notebook_id, tenant_id=principal.tenant_id)
        audit_repo.record_audit(
            session, action="notebook.delete", subject=principal.subject, tenant_id=principal.tenant_id, target=path
        )
    listings.invalidate(svc, principal.tenant_id, KIND_NOTEBOOKS)
