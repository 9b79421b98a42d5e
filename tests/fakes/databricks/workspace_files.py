"""The part of the Workspace API that SQL file tasks need: ``mkdirs``, ``import`` (a file or a notebook
in SOURCE format), ``get-status`` and ``export``. Objects are kept in ``WorkspaceState.workspace_files``;
paths are read with or without the ``/Workspace`` prefix (both name the same object)."""

from __future__ import annotations

import base64
import json
import posixpath
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.databricks.state import WorkspaceState

_LANGUAGES = {".sql": "SQL", ".py": "PYTHON", ".scala": "SCALA", ".r": "R"}


@dataclass
class WorkspaceObject:
    path: str
    object_type: str  # DIRECTORY, FILE, NOTEBOOK
    content: bytes = b""
    language: str | None = None
    modified_at: int = 0

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "object_type": self.object_type, "object_id": abs(hash(self.path))}
        if self.language:
            out["language"] = self.language
        if self.object_type != "DIRECTORY":
            out |= {"size": len(self.content), "modified_at": self.modified_at}
        return out


def normal(path: str) -> str:
    """The one spelling of a workspace path (``/Workspace/Shared/x`` and ``/Shared/x`` are the same)."""
    path = posixpath.normpath("/" + path.strip().lstrip("/"))
    return path.removeprefix("/Workspace") or "/"


def lookup(state: WorkspaceState, path: str) -> WorkspaceObject | None:
    with state.lock:
        return state.workspace_files.get(normal(path))


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def routes(handler: Any) -> list[Route]:
    def mkdirs(state: WorkspaceState, request: Request, body: bytes) -> Response:
        path = normal(json.loads(body)["path"])
        with state.lock:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                folder = "/" + "/".join(parts[:i])
                found = state.workspace_files.get(folder)
                if found is not None and found.object_type != "DIRECTORY":
                    return _error(400, "RESOURCE_ALREADY_EXISTS", f"{folder} exists and is not a directory")
                state.workspace_files.setdefault(folder, WorkspaceObject(folder, "DIRECTORY"))
        return JSONResponse({})

    def import_(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        path = normal(req["path"])
        fmt = req.get("format", "SOURCE")
        language = req.get("language")
        if fmt not in ("AUTO", "SOURCE", "RAW"):
            return _error(400, "INVALID_PARAMETER_VALUE", f"the fake imports AUTO, SOURCE and RAW only, not {fmt}")
        if fmt == "SOURCE" and not language:
            return _error(
                400, "INVALID_PARAMETER_VALUE", "To import a single file as SOURCE, you must set the language"
            )
        content = base64.b64decode(req.get("content") or "")
        # AUTO: a file unless it starts like a notebook source; SOURCE with a language: a notebook.
        notebook = fmt == "SOURCE" or (
            fmt == "AUTO" and content.lstrip().startswith((b"# Databricks notebook", b"-- Databricks notebook"))
        )
        ext = posixpath.splitext(path)[1].lower()
        if notebook and ext in _LANGUAGES:
            path = path[: -len(ext)]
        with state.lock:
            parent = state.workspace_files.get(posixpath.dirname(path))
            if parent is None or parent.object_type != "DIRECTORY":
                return _error(
                    404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder ({posixpath.dirname(path)}) does not exist."
                )
            if path in state.workspace_files and not req.get("overwrite"):
                return _error(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
            state.workspace_files[path] = WorkspaceObject(
                path,
                "NOTEBOOK" if notebook else "FILE",
                content,
                language or (_LANGUAGES.get(ext) if notebook else None),
                int(time.time() * 1000),
            )
        return JSONResponse({})

    def get_status(state: WorkspaceState, request: Request, body: bytes) -> Response:
        path = request.query_params.get("path", "")
        found = lookup(state, path)
        if found is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        return JSONResponse(found.status())

    def export(state: WorkspaceState, request: Request, body: bytes) -> Response:
        path = request.query_params.get("path", "")
        found = lookup(state, path)
        if found is None or found.object_type == "DIRECTORY":
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        if request.query_params.get("direct_download") == "true":
            return Response(found.content)
        return JSONResponse({"content": base64.b64encode(found.content).decode(), "file_type": found.language or ""})

    return [
        Route("/api/2.0/workspace/mkdirs", handler(mkdirs), methods=["POST"]),
        Route("/api/2.0/workspace/import", handler(import_), methods=["POST"]),
        Route("/api/2.0/workspace/get-status", handler(get_status)),
        Route("/api/2.0/workspace/export", handler(export)),
    ]
