"""Notebooks and the Databricks workspace (engines with ``workspace_notebooks``): ``publish`` puts a
notebook's newest version into the workspace as Databricks source, at
``<databricks.workspace_folder>/<catalog>/<notebook path>``; ``pull`` reads that copy back (edited in
the workspace, say) and saves it as the notebook's next version. A tenant only ever reaches its own
catalog's folder: the workspace path is made here from the principal, never taken from the caller.
Other engines answer ``not_supported``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from servicetsunami.errors import NotSupported
from servicetsunami.services.notebooks import notebooks
from servicetsunami.services.notebooks import source_format as sf
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services


class WorkspaceCopy(BaseModel):
    notebook_id: str
    path: str
    version: int = Field(description="The notebook version published, or the one saved from the workspace")
    workspace_path: str = Field(description="Where the notebook is in the Databricks workspace")


def workspace_path(svc: Services, principal: Principal, path: str, /) -> str:
    """The workspace path of the tenant's notebook ``path``."""
    return f"{svc.settings.databricks.workspace_folder.rstrip('/')}/{principal.catalog}{notebooks.check_path(path)}"


def _require(svc: Services) -> None:
    if not svc.engine.capabilities.workspace_notebooks:
        raise NotSupported(
            f"the {svc.engine.kind} engine has no workspace to publish notebooks to; export them instead"
        )


def publish_notebook(svc: Services, principal: Principal, notebook: str, /) -> WorkspaceCopy:
    """Put the notebook's newest version into the workspace (replacing the copy there)."""
    principal.require(Scope.WRITE)
    _require(svc)
    facts, nb = notebooks.load(svc, principal, notebooks.resolve(svc, principal, notebook))
    target = workspace_path(svc, principal, facts.path)
    svc.engine.put_workspace_notebook(target, sf.to_source(nb), language=sf.notebook_language(nb))
    with svc.store.session() as session:
        audit_repo.record_audit(
            session,
            action="notebook.publish",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=facts.path,
            meta={"version": facts.version, "workspace_path": target},
        )
    return WorkspaceCopy(notebook_id=facts.notebook_id, path=facts.path, version=facts.version, workspace_path=target)


def pull_notebook(svc: Services, principal: Principal, notebook: str, /) -> WorkspaceCopy:
    """Save the workspace copy of the notebook as its next version."""
    principal.require(Scope.WRITE)
    _require(svc)
    notebook_id = notebooks.resolve(svc, principal, notebook)
    facts, _ = notebooks.load(svc, principal, notebook_id)
    source = workspace_path(svc, principal, facts.path)
    text, language = svc.engine.get_workspace_notebook(source)
    saved = notebooks.update_notebook(svc, principal, notebook_id, content=text, format="source", language=language)
    return WorkspaceCopy(notebook_id=saved.notebook_id, path=saved.path, version=saved.version, workspace_path=source)
