"""The registry of task kinds: what a task of each kind needs in its ``config`` and what runs it.

The built-in kinds register in :mod:`.tasks`; another area registers its own kind the same way
(``register(TaskKind("notebook", ...))``) and replaces a declared-only entry. A kind that is declared
but not runnable here (``unavailable`` set) is accepted in job definitions and refused when a run
reaches it, with :class:`~servicetsunami.errors.TaskKindUnavailable`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.pipelines.runner import TaskContext

TaskHandler = Callable[["Services", "TaskContext", BaseModel], "dict[str, Any]"]

_BUILTIN_MODULES = ("servicetsunami.services.pipelines.tasks",)


@dataclass(frozen=True, slots=True)
class TaskKind:
    name: str
    config: type[BaseModel]  # the task's ``config``, validated when the job is saved
    handler: TaskHandler | None = None
    unavailable: str | None = None  # why a run refuses this kind here (declared, not runnable)
    resumable: bool = False  # a task run whose worker died may start again (the work is exactly once)
    # Extra checks at save time (e.g. a SQL statement goes through the guard): config -> None or raise.
    check: Callable[[BaseModel, str], None] | None = None


_KINDS: dict[str, TaskKind] = {}


def register(kind: TaskKind, /) -> TaskKind:
    _KINDS[kind.name] = kind
    return kind


def registered() -> dict[str, TaskKind]:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    return dict(_KINDS)


def get(name: str, /) -> TaskKind | None:
    return registered().get(name)
