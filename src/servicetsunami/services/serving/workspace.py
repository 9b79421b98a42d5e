"""Models served by Databricks Model Serving: an endpoint of kind ``model`` is a workspace serving
endpoint (``served_entities``: a model registered in the tenant's Unity Catalog catalog, or a
Foundation Model of ``system.ai``), created by a run that waits until the workspace reports it
``READY`` (or ``FAILED`` with why). Like an agent's endpoint it is named, listed, read and deleted
with the tenant's other endpoints, and invoked at the same URL: the request is forwarded to the
workspace endpoint as it is, and its answer returned.

The workspace's endpoint namespace is shared by every tenant, so its name there is the tenant's
catalog and the endpoint's name (``<catalog>-<name>``); another tenant's endpoints are never
reached, and a model outside the tenant's catalog is refused. Only the Databricks engine has
Model Serving; elsewhere this answers ``not_supported``.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from servicetsunami.engines.databricks.serving import ModelServing
from servicetsunami.errors import Cancelled, Conflict, InvalidInput, LimitExceeded, NotFound, NotSupported
from servicetsunami.security.ratelimits import parse_rate
from servicetsunami.services.runs import service as runs
from servicetsunami.services.runs.kinds import RunKind, register
from servicetsunami.services.serving.agents import check_name
from servicetsunami.store.repositories import audit as audit_repo
from servicetsunami.store.repositories import serving as serving_repo
from servicetsunami.tenancy import Principal, Scope, check_identifier

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.runs.context import RunContext
    from servicetsunami.services.serving.endpoints import EndpointPublic

KIND = "model"
DEPLOY_KIND = "workspace_endpoint_deploy"
FOUNDATION_CATALOG = "system"
_POLL_SECONDS = 0.5
_WORKSPACE_NAME_MAX = 63


def model_serving(svc: Services, /) -> ModelServing:
    found = getattr(svc.engine, "serving", None)
    if not isinstance(found, ModelServing):
        raise NotSupported("Model Serving endpoints exist on the Databricks engine only; deploy an agent instead")
    return found


def workspace_name(principal: Principal, name: str, /) -> str:
    """The endpoint's name in the workspace (shared by every tenant)."""
    full = f"{principal.catalog}-{name}"
    if len(full) > _WORKSPACE_NAME_MAX:
        raise InvalidInput(
            f"endpoint name {name!r} is too long: with your catalog in front it must fit in {_WORKSPACE_NAME_MAX}"
        )
    return full


def check_entity(principal: Principal, entity_name: str, /) -> str:
    """A Unity Catalog model of the tenant's catalog, or a Foundation Model of ``system.ai``."""
    parts = entity_name.split(".") if isinstance(entity_name, str) else []
    if len(parts) != 3:
        raise InvalidInput("entity_name is a model's full name: <catalog>.<schema>.<model> (or system.ai.<model>)")
    for part in parts:
        check_identifier(part, what="model name part")
    if parts[0] != principal.catalog and parts[:2] != [FOUNDATION_CATALOG, "ai"]:
        raise InvalidInput(f"entity_name must be a model of your catalog {principal.catalog} or of system.ai")
    return entity_name


def deploy_workspace_model(
    svc: Services,
    principal: Principal,
    name: str,
    /,
    *,
    entity_name: str,
    entity_version: str | None = None,
    workload_size: str = "Small",
    rate_limit: str | None = None,
    wait_seconds: float | None = None,
) -> EndpointPublic:
    """Create endpoint ``name`` serving ``entity_name`` on the workspace's Model Serving; a run waits
    for it to be READY (or FAILED with why). Answers after a bounded wait."""
    from servicetsunami.services.serving.endpoints import WORKLOAD_SIZES, get_endpoint

    principal.require(Scope.WRITE)
    check_name(name, what="endpoint name")
    model_serving(svc)
    remote = workspace_name(principal, name)
    check_entity(principal, entity_name)
    if entity_version is not None and (not isinstance(entity_version, str) or not entity_version.isdigit()):
        raise InvalidInput("entity_version is a model version number, like '3'")
    if workload_size not in WORKLOAD_SIZES:
        raise InvalidInput(f"workload_size must be one of {', '.join(WORKLOAD_SIZES)}")
    limit = rate_limit or svc.settings.serving.rate_limit
    parse_rate(limit)
    config = {
        "workspace_endpoint": remote,
        "entity_name": entity_name,
        "entity_version": entity_version,
        "workload_size": workload_size,
    }
    with svc.store.session(write_lock=True) as session:
        try:
            serving_repo.get_endpoint(session, name, tenant_id=principal.tenant_id)
        except NotFound:
            pass
        else:
            raise Conflict(f"endpoint {name!r} exists; delete it first or choose another name")
        endpoint = serving_repo.create_endpoint(
            session,
            tenant_id=principal.tenant_id,
            name=name,
            kind=KIND,
            agent_id=None,
            config=config,
            rate_limit=limit,
            created_by=principal.subject,
        )
        endpoint_id = endpoint.id
        audit_repo.record_audit(
            session,
            action="endpoint.deploy",
            subject=principal.subject,
            tenant_id=principal.tenant_id,
            target=name,
            meta={"entity_name": entity_name, "entity_version": entity_version},
        )
    run_id = runs.submit(svc, principal, DEPLOY_KIND, params={"endpoint_id": endpoint_id}, resource_id=endpoint_id)
    with svc.store.session() as session:  # the run may have ended already: its state stays
        serving_repo.set_endpoint_run(session, endpoint_id, run_id)
    wait = svc.settings.serving.deploy_wait_seconds if wait_seconds is None else wait_seconds
    runs.wait_for_run(svc, principal, run_id, timeout=wait)
    return get_endpoint(svc, principal, name)


def _deploy(svc: Services, ctx: RunContext) -> dict[str, Any]:
    endpoint_id = str(ctx.params["endpoint_id"])
    with svc.store.session() as session:
        endpoint = serving_repo.get_endpoint(session, endpoint_id, tenant_id=ctx.principal.tenant_id)
        config = dict(endpoint.config)
    remote = str(config["workspace_endpoint"])
    try:
        serving = model_serving(svc)
        try:
            serving.get(remote)
        except NotFound:
            ctx.progress(message=f"creating the workspace endpoint {remote}", force=True)
            serving.create(
                remote,
                entity_name=str(config["entity_name"]),
                entity_version=config.get("entity_version"),
                workload_size=str(config.get("workload_size") or "Small"),
            )
        else:
            raise Conflict(f"the workspace already has an endpoint {remote}; delete it there or choose another name")
        deadline = time.monotonic() + svc.settings.serving.workspace_ready_seconds
        while not serving.ready(remote):
            if ctx.cancelled:
                raise Cancelled("the deployment was canceled while the workspace endpoint was starting")
            if time.monotonic() > deadline:
                raise LimitExceeded(f"the workspace endpoint {remote} was not READY in time; see it in the workspace")
            ctx.progress(message=f"waiting for {remote} to be READY")
            time.sleep(_POLL_SECONDS)
    except Exception as exc:
        message = getattr(exc, "message", None) or "the workspace endpoint could not be deployed"
        with svc.store.session() as session:
            serving_repo.set_endpoint_state(session, endpoint_id, state="FAILED", error=message)
        raise
    with svc.store.session() as session:
        serving_repo.set_endpoint_state(session, endpoint_id, state="READY")
    return {"endpoint": endpoint.name, "workspace_endpoint": remote, "state": "READY"}


register(RunKind(DEPLOY_KIND, _deploy))


def delete_remote(svc: Services, config: dict[str, Any], /) -> None:
    """Delete the workspace endpoint behind a ``model`` endpoint (already gone is fine)."""
    with contextlib.suppress(NotFound):
        model_serving(svc).delete(str(config["workspace_endpoint"]))


def invoke_remote(svc: Services, config: dict[str, Any], body: dict[str, Any], /) -> dict[str, Any]:
    """Forward a request to the workspace endpoint; its answer."""
    return model_serving(svc).query(str(config["workspace_endpoint"]), body)
