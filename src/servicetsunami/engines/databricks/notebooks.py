"""Notebooks in the Databricks workspace tree, through the Workspace API: import as SOURCE (folders
made first, the notebook replaced), export as SOURCE, list a folder, delete. Notebooks travel as
Databricks source text, the format the workspace stores and runs as written."""

from __future__ import annotations

import base64
import posixpath

from servicetsunami.engines.databricks.workspace import Workspace
from servicetsunami.errors import InvalidInput

_LANGUAGES = ("python", "sql", "scala", "r")


class DatabricksNotebooks:
    """Workspace notebook operations of :class:`~servicetsunami.engines.databricks.engine.DatabricksEngine`."""

    ws: Workspace

    def put_workspace_notebook(self, path: str, source: str, /, *, language: str) -> None:
        from databricks.sdk.service.workspace import ImportFormat, Language

        if language not in _LANGUAGES:
            raise InvalidInput(f"a workspace notebook is one of {', '.join(_LANGUAGES)}, not {language!r}")
        target = _absolute(path)
        content = base64.b64encode(source.encode("utf-8")).decode("ascii")
        with self.ws.translated(f"storing notebook {target} in the workspace"):
            self.ws.client.workspace.mkdirs(posixpath.dirname(target))
            self.ws.client.workspace.import_(
                target,
                content=content,
                format=ImportFormat.SOURCE,
                language=Language(language.upper()),
                overwrite=True,
            )

    def get_workspace_notebook(self, path: str, /) -> tuple[str, str]:
        from databricks.sdk.service.workspace import ExportFormat

        target = _absolute(path)
        with self.ws.translated(f"reading notebook {target} from the workspace"):
            status = self.ws.client.workspace.get_status(target)
            if status.object_type is None or status.object_type.value != "NOTEBOOK":
                raise InvalidInput(f"{target} is not a notebook in the workspace")
            exported = self.ws.client.workspace.export(target, format=ExportFormat.SOURCE)
        text = base64.b64decode(exported.content or "").decode("utf-8")
        return text, status.language.value.lower() if status.language is not None else "python"

    def list_workspace(self, folder: str, /) -> list[tuple[str, str]]:
        target = _absolute(folder)
        with self.ws.translated(f"listing workspace folder {target}"):
            return [
                (str(o.path), o.object_type.value if o.object_type is not None else "UNKNOWN")
                for o in self.ws.client.workspace.list(target)
            ]

    def delete_workspace_object(self, path: str, /, *, recursive: bool = False) -> None:
        target = _absolute(path)
        with self.ws.translated(f"deleting {target} from the workspace"):
            self.ws.client.workspace.delete(target, recursive=recursive)


def _absolute(path: str) -> str:
    if not path.startswith("/") or any(p in (".", "..") for p in path.split("/")):
        raise InvalidInput(f"a workspace path is absolute, without '.' or '..': {path!r}")
    return path.rstrip("/") or "/"
