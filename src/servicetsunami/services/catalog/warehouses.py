"""SQL warehouses of the configured engine: list, get, start. On Databricks these are the workspace's
SQL warehouses; the embedded engine describes itself as the one warehouse, always running."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from servicetsunami.engines.base import WarehouseInfo
from servicetsunami.errors import InvalidInput
from servicetsunami.services.models import Warehouse
from servicetsunami.services.ops import listings
from servicetsunami.tenancy import Principal, Scope

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

KIND = "warehouses"  # the listing cache's kind (settings cache.ttl.warehouses)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def list_warehouses(svc: Services, principal: Principal) -> list[Warehouse]:
    """The engine's warehouses; remembered per tenant for ``cache.ttl.warehouses`` (a workspace call
    on Databricks), forgotten by every tenant when a warehouse is started through the service."""
    principal.require(Scope.READ)
    return listings.cached(svc, KIND, principal, (), lambda: [_view(w) for w in svc.engine.list_warehouses()])


def get_warehouse(svc: Services, principal: Principal, warehouse_id: str, /) -> Warehouse:
    principal.require(Scope.READ)
    return _view(svc.engine.get_warehouse(_checked(warehouse_id)))


def start_warehouse(svc: Services, principal: Principal, warehouse_id: str, /) -> Warehouse:
    """Ask the warehouse to start; returns at once with its state (poll get_warehouse until RUNNING)."""
    principal.require(Scope.MANAGE)
    started = _view(svc.engine.start_warehouse(_checked(warehouse_id)))
    listings.invalidate(svc, listings.EVERY_TENANT, KIND)  # the workspace's warehouses: every tenant sees them
    return started


def _checked(warehouse_id: object) -> str:
    if not isinstance(warehouse_id, str) or not _ID.fullmatch(warehouse_id):
        raise InvalidInput("warehouse id must be 1-64 letters, digits, '-' or '_'; list_warehouses shows the ids")
    return warehouse_id


def _view(w: WarehouseInfo) -> Warehouse:
    return Warehouse(id=w.id, name=w.name, state=w.state, size=w.size, engine=w.kind, detail=w.detail)
