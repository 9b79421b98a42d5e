"""The process that reads one untrusted file: ``python -m servicetsunami.connectors.files.child <dir>``.

It reads ``<dir>/request.json`` (the file, how to read it, where to write), writes the rows as
Parquet files into the request's ``output_dir`` with :class:`FileReader`, and answers in
``<dir>/result.json``: ``{"columns": [[name, original], ...], "sheets": [...]}`` or
``{"error": {"type": ..., "message": ..., "details": {...}}}`` for an error of the service's own
tree. Anything else (a parser crash, a kill at a limit) leaves no result: the parent tells the
caller from the exit status. The parent sets the process's resource limits; DuckDB's
``memory_limit`` (all but 1 GiB of the address space, at least half) keeps a large but legitimate
file spilling instead of failing.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from datetime import datetime
from typing import Any

from servicetsunami.errors import BadFile, FileLimitExceeded, InvalidInput, TsunamiError

REQUEST, RESULT = "request.json", "result.json"


def read_file(request: dict[str, Any]) -> dict[str, Any]:
    from servicetsunami.connectors.files.reader import FileOptions, FileReader

    extra = dict(request["extra"])
    for key in request.get("datetime_keys", []):
        extra[key] = datetime.fromisoformat(extra[key])
    with FileReader(
        pathlib.Path(request["path"]),
        file_name=request["file_name"],
        options=FileOptions(**request["options"]),
        batch_rows=int(request["batch_rows"]),
        output_dir=pathlib.Path(request["output_dir"]),
        full_sample=bool(request["full_sample"]),
        memory_limit_bytes=request.get("memory_limit_bytes"),
        threads=request.get("threads"),
        max_line_bytes=request.get("max_line_bytes"),
    ) as reader:
        sheets = reader.sheets()
        columns = reader.copy_to_parquet(extra=extra)
    return {"columns": [list(pair) for pair in columns], "sheets": sheets}


def _answer(folder: pathlib.Path, payload: dict[str, Any]) -> None:
    tmp = folder / (RESULT + ".tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, folder / RESULT)


# How DuckDB words running out of the child's address space (the soak saw each of them).
_OUT_OF_MEMORY = ("out of memory", "failed to allocate", "allocation failure")


def main(argv: list[str]) -> int:
    folder = pathlib.Path(argv[1])
    request = json.loads((folder / REQUEST).read_text(encoding="utf-8"))
    try:
        _answer(folder, read_file(request))
    except (BadFile, FileLimitExceeded, InvalidInput) as exc:
        if any(marker in exc.message.lower() for marker in _OUT_OF_MEMORY):
            _answer(folder, {"error": {"type": "MemoryError", "message": "", "details": {}}})
            return 0
        _answer(folder, {"error": {"type": type(exc).__name__, "message": exc.message, "details": exc.details}})
    except MemoryError:
        _answer(folder, {"error": {"type": "MemoryError", "message": "", "details": {}}})
    except TsunamiError as exc:
        _answer(folder, {"error": {"type": "BadFile", "message": exc.message, "details": {}}})
    except OSError as exc:
        _answer(folder, {"error": {"type": "OSError", "message": exc.strerror or type(exc).__name__, "details": {}}})
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main(sys.argv))
