"""A bundle as untrusted input: files from a dict or a zip within size limits, and YAML read safely.

Limits are checked before anything is parsed: at most :data:`MAX_FILES` files, :data:`MAX_FILE_BYTES`
each and :data:`MAX_TOTAL_BYTES` in all (a zip's members by their declared and their actual unpacked
size, with a bound on the compression ratio); paths are relative, without ``..``. YAML is read with
``yaml.SafeLoader`` (no Python objects) and refuses anchors and aliases, so a small file cannot
expand into a large document; each value keeps its line and column (:class:`Loaded`) so a finding
can point at it, and a key repeated in one mapping is reported instead of silently replaced.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass, field
from typing import Any

import yaml

from servicetsunami.errors import InvalidInput, LimitExceeded

MAX_FILES = 500
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_ZIP_RATIO = 100
MAX_DEPTH = 64


def checked_files(files: Any, /) -> dict[str, str]:
    """``files`` (path -> text) checked: relative paths, within the limits."""
    if not isinstance(files, dict) or not files:
        raise InvalidInput("a bundle is a non-empty map of file paths (relative to its root) to their text")
    if len(files) > MAX_FILES:
        raise LimitExceeded(f"a bundle has at most {MAX_FILES} files, not {len(files)}")
    total = 0
    out: dict[str, str] = {}
    for raw, text in files.items():
        path = clean_path(raw)
        if not isinstance(text, str):
            raise InvalidInput(f"{path}: a bundle file's content is text")
        size = len(text.encode())
        if size > MAX_FILE_BYTES:
            raise LimitExceeded(f"{path} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise LimitExceeded(f"the bundle is larger than {MAX_TOTAL_BYTES // 1024 // 1024} MB")
        out[path] = text
    return out


def clean_path(raw: Any, /) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 500:
        raise InvalidInput("a bundle file path is 1-500 characters")
    path = raw.replace("\\", "/").strip()
    while path.startswith("./"):
        path = path[2:]
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal == ".." or normal.startswith("../") or "\x00" in path:
        raise InvalidInput(f"bundle file paths are relative and stay inside the bundle: {raw!r}")
    return normal


def files_from_zip(data: bytes, /) -> dict[str, str]:
    """The text files of a zip archive (one top folder holding databricks.yml is taken as the root)."""
    if len(data) > MAX_TOTAL_BYTES:
        raise LimitExceeded(f"the archive is larger than {MAX_TOTAL_BYTES // 1024 // 1024} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise InvalidInput(f"the upload is not a zip archive ({exc})") from None
    if len(members) > MAX_FILES:
        raise LimitExceeded(f"a bundle has at most {MAX_FILES} files, not {len(members)}")
    declared = sum(m.file_size for m in members)
    if declared > MAX_TOTAL_BYTES or any(m.file_size > MAX_FILE_BYTES for m in members):
        raise LimitExceeded("the archive unpacks to more than a bundle may hold")
    compressed = sum(m.compress_size for m in members) or 1
    if declared / compressed > MAX_ZIP_RATIO:
        raise LimitExceeded("the archive's compression ratio is too high to be a bundle")
    files: dict[str, str] = {}
    with archive:
        for member in members:
            path = clean_path(member.filename)
            with archive.open(member) as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                raise LimitExceeded(f"{path} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
            try:
                files[path] = raw.decode()
            except UnicodeDecodeError:
                raise InvalidInput(f"{path} is not UTF-8 text") from None
    tops = {p.split("/", 1)[0] for p in files}
    if "databricks.yml" not in files and len(tops) == 1 and all("/" in p for p in files):
        top = tops.pop()
        files = {p[len(top) + 1 :]: t for p, t in files.items()}
    return checked_files(files)


# -- YAML ---------------------------------------------------------------------------------------------


class YamlProblem(Exception):
    """A YAML file that cannot be read: where and why (private to this package)."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass
class Loaded:
    """A YAML document's data, the position of each key path, and keys repeated in one mapping."""

    data: Any
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)  # key path -> (line, column), 1-based
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)

    def mark(self, path: str, /) -> tuple[int | None, int | None]:
        while path:
            if path in self.marks:
                return self.marks[path]
            path = _parent(path)
        return None, None


def load_yaml(text: str, /) -> Loaded:
    """One YAML document read safely (module docstring); :class:`YamlProblem` says where it breaks."""
    loader = yaml.SafeLoader(text)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # a first pass: no alias is ever expanded
            if isinstance(event, yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "anchors and aliases are not accepted in a bundle", event.start_mark
                )
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise YamlProblem(f"{exc.problem or exc.context or 'not valid YAML'}", line, column) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}", None, None) from None
    except RecursionError:
        raise YamlProblem("the document nests too deeply", None, None) from None
    finally:
        loader.dispose()
    loaded = Loaded(data)
    if node is not None:
        _walk(node, "", loaded, 0)
    return loaded


def _walk(node: yaml.Node, path: str, loaded: Loaded, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise YamlProblem("the document nests too deeply", node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                loaded.duplicates.append((child, *position))
            seen.add(key)
            loaded.marks.setdefault(child, position)
            _walk(value_node, child, loaded, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            loaded.marks.setdefault(child, (item.start_mark.line + 1, item.start_mark.column + 1))
            _walk(item, child, loaded, depth + 1)


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rsplit(".", 1)[0] if "." in path else ""
