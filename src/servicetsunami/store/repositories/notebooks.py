"""Notebooks (a path per tenant, versions of their content) and the executed notebooks of their runs
(see the package docstring for the conventions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicetsunami.errors import Conflict, InvalidInput, NotFound
from servicetsunami.store.models import NOTEBOOK_LANGUAGES, Notebook, NotebookRunOutput, NotebookVersion, utcnow
from servicetsunami.store.repositories._keyset import bytewise, keyset


def create_notebook(
    session: Session, /, *, tenant_id: str, path: str, language: str, content: str, created_by: str
) -> Notebook:
    """A new notebook at ``path`` with its first version; :class:`Conflict` when the path is taken."""
    if language not in NOTEBOOK_LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(NOTEBOOK_LANGUAGES)}")
    try:
        with session.begin_nested():
            notebook = Notebook(tenant_id=tenant_id, path=path, language=language, version=1, created_by=created_by)
            session.add(notebook)
            session.flush()
            session.add(NotebookVersion(notebook_id=notebook.id, version=1, content=content, created_by=created_by))
            session.flush()
    except IntegrityError:
        raise Conflict(f"a notebook already exists at {path}") from None
    return notebook


def get_notebook(session: Session, notebook_id: str, /, *, tenant_id: str) -> Notebook:
    notebook = session.scalar(select(Notebook).where(Notebook.id == notebook_id, Notebook.tenant_id == tenant_id))
    if notebook is None:
        raise NotFound("notebook not found")
    return notebook


def find_by_path(session: Session, path: str, /, *, tenant_id: str) -> Notebook | None:
    return session.scalar(select(Notebook).where(Notebook.tenant_id == tenant_id, Notebook.path == path))


def content(session: Session, notebook: Notebook, /, *, version: int | None = None) -> str:
    """The Jupyter JSON of ``version`` (None: the newest)."""
    wanted = notebook.version if version is None else version
    text = session.scalar(
        select(NotebookVersion.content).where(
            NotebookVersion.notebook_id == notebook.id, NotebookVersion.version == wanted
        )
    )
    if text is None:
        raise NotFound(f"notebook version {wanted} not found")
    return text


def save_version(
    session: Session,
    notebook: Notebook,
    /,
    *,
    content: str,
    saved_by: str,
    expected_version: int | None = None,
    path: str | None = None,
) -> Notebook:
    """Store ``content`` as the next version (and move the notebook to ``path``). With
    ``expected_version``, a notebook saved meanwhile by someone else is a :class:`Conflict`."""
    if expected_version is not None and notebook.version != expected_version:
        raise Conflict(f"the notebook is at version {notebook.version}, not {expected_version}; reload it")
    nxt = notebook.version + 1
    try:
        with session.begin_nested():
            session.add(NotebookVersion(notebook_id=notebook.id, version=nxt, content=content, created_by=saved_by))
            if path is not None:
                notebook.path = path
            notebook.version = nxt
            notebook.updated_at = utcnow()
            session.flush()
    except IntegrityError:
        raise Conflict("the notebook was saved meanwhile, or the new path is taken; reload it") from None
    return notebook


def list_notebooks(
    session: Session,
    /,
    *,
    tenant_id: str,
    folder: str = "/",
    after: tuple[str] | None = None,
    limit: int | None = None,
) -> list[Notebook]:
    """The tenant's notebooks under ``folder`` (at any depth), by path."""
    stmt = select(Notebook).where(Notebook.tenant_id == tenant_id)
    if folder != "/":
        prefix = folder.rstrip("/") + "/"
        stmt = stmt.where(func.substr(Notebook.path, 1, len(prefix)) == prefix)
    return list(session.scalars(keyset(stmt, [bytewise(Notebook.path)], after=after, limit=limit)))


def versions(session: Session, notebook: Notebook, /) -> list[tuple[int, str, datetime]]:
    """Every version of the notebook, newest first: (version, saved by, when)."""
    rows = session.execute(
        select(NotebookVersion.version, NotebookVersion.created_by, NotebookVersion.created_at)
        .where(NotebookVersion.notebook_id == notebook.id)
        .order_by(NotebookVersion.version.desc())
    )
    return [(v, by, at) for v, by, at in rows]


def delete_notebook(session: Session, notebook_id: str, /, *, tenant_id: str) -> None:
    notebook = get_notebook(session, notebook_id, tenant_id=tenant_id)
    session.execute(delete(NotebookVersion).where(NotebookVersion.notebook_id == notebook.id))
    session.delete(notebook)
    session.flush()


def save_run_output(session: Session, run_id: str, /, *, tenant_id: str, content: str) -> None:
    """Keep (or replace) the executed notebook of a run."""
    row = session.get(NotebookRunOutput, run_id)
    if row is None:
        session.add(NotebookRunOutput(run_id=run_id, tenant_id=tenant_id, content=content))
    else:
        row.content = content
    session.flush()


def run_output(session: Session, run_id: str, /, *, tenant_id: str) -> str | None:
    return session.scalar(
        select(NotebookRunOutput.content).where(
            NotebookRunOutput.run_id == run_id, NotebookRunOutput.tenant_id == tenant_id
        )
    )
