"""The fake's Workspace API 2.0 for notebooks and files: ``import`` (a notebook in SOURCE with a
language, or JUPYTER; a file in RAW; AUTO: a notebook when the content starts like a notebook source,
else a file), ``export``, ``list``, ``get-status``, ``mkdirs``, ``delete`` (``recursive`` for a
folder). ``/Workspace/Shared/x`` and ``/Shared/x`` name the same object; :func:`lookup` finds one for
the other fakes (the jobs' ``sql_task.file`` and ``notebook_task``). Shapes follow the SDK's
``ObjectInfo`` and ``ExportResponse``; state lives in
``WorkspaceState.compute`` beside the clusters (``compute_of(state).objects``).

Notebooks are kept as the text they were imported as, with their language; a SOURCE export of a
notebook imported as SOURCE returns the same text. Converting between SOURCE and JUPYTER is not done
here (the fake answers ``400 INVALID_PARAMETER_VALUE`` for an export in another format than the
import's)."""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.databricks.compute import Handler, WorkspaceObject, compute_of
from tests.fakes.databricks.state import WorkspaceState

MAX_CONTENT = 10 * 1024 * 1024  # the import limit the API documents


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _norm(path: object) -> str | None:
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    return posixpath.normpath(path).removeprefix("/Workspace") or "/"


def lookup(state: WorkspaceState, path: str) -> WorkspaceObject | None:
    """The notebook or file at ``path`` (with or without ``/Workspace``), or None."""
    normal = _norm(path)
    objects = compute_of(state).objects
    with state.lock:
        return objects.get(normal) if normal is not None else None


def _missing(path: object) -> JSONResponse:
    return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")


def _info(path: str, obj: WorkspaceObject | None) -> dict[str, Any]:
    if obj is None:
        return {"path": path, "object_type": "DIRECTORY", "object_id": abs(hash(path)) % 10**12}
    info: dict[str, Any] = {"path": path, "object_type": obj.object_type}
    if obj.language:
        info["language"] = obj.language
    return info | {
        "object_id": obj.object_id,
        "created_at": obj.created_at,
        "modified_at": obj.modified_at,
        "size": len(obj.content),
    }


def _is_dir(objects: dict[str, WorkspaceObject | None], path: str) -> bool:
    return path == "/" or (path in objects and objects[path] is None)


def import_(state: WorkspaceState, request: Request, body: bytes) -> Response:
    req = json.loads(body or b"{}")
    path = _norm(req.get("path"))
    if path is None:
        return _error(400, "INVALID_PARAMETER_VALUE", "Path must be absolute")
    fmt = req.get("format", "SOURCE")
    if fmt not in ("SOURCE", "JUPYTER", "AUTO", "RAW"):
        return _error(400, "INVALID_PARAMETER_VALUE", f"The fake imports SOURCE, JUPYTER, AUTO and RAW only, not {fmt}")
    if fmt == "SOURCE" and req.get("language") not in ("PYTHON", "SQL", "SCALA", "R"):
        return _error(400, "INVALID_PARAMETER_VALUE", "A single notebook in SOURCE format needs its language")
    try:
        content = base64.b64decode(str(req.get("content", "")), validate=True)
    except binascii.Error:
        return _error(400, "INVALID_PARAMETER_VALUE", "content is not base64")
    notebook_source = content.lstrip().startswith((b"# Databricks notebook", b"-- Databricks notebook"))
    object_type = "FILE" if fmt == "RAW" or (fmt == "AUTO" and not notebook_source) else "NOTEBOOK"
    if fmt == "AUTO" and object_type == "NOTEBOOK":
        fmt, language = "SOURCE", "SQL" if content.lstrip().startswith(b"--") else "PYTHON"
        path = posixpath.splitext(path)[0]
    else:
        language = str(req.get("language") or "PYTHON") if object_type == "NOTEBOOK" else ""
    if len(content) > MAX_CONTENT:
        return _error(400, "MAX_NOTEBOOK_SIZE_EXCEEDED", "File size imported is too large")
    objects = compute_of(state).objects
    with state.lock:
        parent = posixpath.dirname(path)
        if not _is_dir(objects, parent):
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder ({parent}) does not exist.")
        existing = objects.get(path, ...)
        if existing is None:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"{path} is a directory")
        if existing is not ... and not req.get("overwrite"):
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
        stored = "RAW" if object_type == "FILE" else fmt
        objects[path] = WorkspaceObject.make(content, stored, language, existing, object_type)
    return JSONResponse({})


def export(state: WorkspaceState, request: Request, body: bytes) -> Response:
    path = _norm(request.query_params.get("path"))
    fmt = request.query_params.get("format", "SOURCE")
    objects = compute_of(state).objects
    with state.lock:
        obj = objects.get(path or "", ...)
    if path is None or obj is ...:
        return _missing(request.query_params.get("path"))
    if obj is None:
        return _error(400, "INVALID_PARAMETER_VALUE", "The fake exports notebooks and files, not directories")
    if obj.object_type == "FILE":
        return JSONResponse({"content": base64.b64encode(obj.content).decode(), "file_type": ""})
    if fmt != obj.format:
        return _error(400, "INVALID_PARAMETER_VALUE", f"The fake exports this notebook as {obj.format} only")
    file_type = {"PYTHON": "py", "SQL": "sql", "SCALA": "scala", "R": "r"}[obj.language] if fmt == "SOURCE" else "ipynb"
    return JSONResponse({"content": base64.b64encode(obj.content).decode(), "file_type": file_type})


def get_status(state: WorkspaceState, request: Request, body: bytes) -> Response:
    path = _norm(request.query_params.get("path"))
    objects = compute_of(state).objects
    with state.lock:
        if path is None or (path != "/" and path not in objects):
            return _missing(request.query_params.get("path"))
        return JSONResponse(_info(path, objects.get(path)))


def list_(state: WorkspaceState, request: Request, body: bytes) -> Response:
    path = _norm(request.query_params.get("path"))
    objects = compute_of(state).objects
    with state.lock:
        if path is None or not _is_dir(objects, path):
            return _missing(request.query_params.get("path"))
        inside = [_info(p, o) for p, o in sorted(objects.items()) if posixpath.dirname(p) == path and p != path]
    return JSONResponse({"objects": inside} if inside else {})


def mkdirs(state: WorkspaceState, request: Request, body: bytes) -> Response:
    path = _norm(json.loads(body or b"{}").get("path"))
    if path is None:
        return _error(400, "INVALID_PARAMETER_VALUE", "Path must be absolute")
    objects = compute_of(state).objects
    with state.lock:
        folder = path
        while folder != "/":
            if objects.get(folder) is not None:
                return _error(400, "RESOURCE_ALREADY_EXISTS", f"{folder} exists and is not a directory")
            folder = posixpath.dirname(folder)
        folder = path
        while folder != "/":
            objects[folder] = None
            folder = posixpath.dirname(folder)
    return JSONResponse({})


def delete(state: WorkspaceState, request: Request, body: bytes) -> Response:
    req = json.loads(body or b"{}")
    path = _norm(req.get("path"))
    objects = compute_of(state).objects
    with state.lock:
        if path is None or path not in objects:
            return _missing(req.get("path"))
        below = [p for p in objects if p.startswith(path.rstrip("/") + "/")]
        if below and not req.get("recursive"):
            return _error(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty")
        for p in [*below, path]:
            del objects[p]
    return JSONResponse({})


def routes(handler: Callable[[Handler], Any]) -> list[Route]:
    """The Workspace API endpoints, each wrapped by the app's ``handler`` (token -> workspace state)."""
    return [
        Route("/api/2.0/workspace/import", handler(import_), methods=["POST"]),
        Route("/api/2.0/workspace/export", handler(export)),
        Route("/api/2.0/workspace/get-status", handler(get_status)),
        Route("/api/2.0/workspace/list", handler(list_)),
        Route("/api/2.0/workspace/mkdirs", handler(mkdirs), methods=["POST"]),
        Route("/api/2.0/workspace/delete", handler(delete), methods=["POST"]),
    ]
