"""Helpers for the signature checks of the contract suites: every implementation of a contract, and
where its public methods differ from the contract's (parameter names, kinds and defaults)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


def implementations(contract: type[T], package: ModuleType) -> list[type[T]]:
    """Every concrete subclass of ``contract`` defined in ``package`` (all its modules imported)."""
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
    found: list[type[T]] = []
    pending = list(contract.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith(f"{package.__name__}.") and not inspect.isabstract(cls):
            found.append(cls)
    return sorted(set(found), key=lambda c: c.__qualname__)


def mismatches(contract: type[Any], implementation: type[Any]) -> list[str]:
    """``Class.method: <implementation's parameters> != <contract's>`` for each public method of
    the contract that the implementation declares differently."""
    out = []
    for name, method in inspect.getmembers(contract, inspect.isfunction):
        if name.startswith("_"):
            continue
        want = _bare(method)
        got = _bare(getattr(implementation, name))
        if got != want:
            out.append(f"{implementation.__name__}.{name}{got} != {want}")
    return out


def _bare(method: Any) -> inspect.Signature:
    """The signature without annotations: names, kinds and defaults are what callers depend on."""
    signature = inspect.signature(method)
    return signature.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()],
        return_annotation=inspect.Signature.empty,
    )
