"""Multipart uploads streamed to a file on disk as they arrive (never whole in memory), parsed
with python-multipart. One file part (``file``) and a few small text fields are accepted.

A body the parser cannot read, or one that ends before its closing boundary (a cut-off upload), is
:class:`~servicetsunami.errors.InvalidInput`; part headers or fields past their limits (a file name
of thousands of characters, say) are :class:`~servicetsunami.errors.LimitExceeded`."""

from __future__ import annotations

import os
import pathlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from servicetsunami.errors import InvalidInput, LimitExceeded

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
MAX_FILE_NAME = 255  # characters, as most file systems allow
FILE_FIELD = "file"


@dataclass
class ReceivedUpload:
    """The file part as a path on disk (the caller removes it) and the text fields."""

    path: pathlib.Path | None = None
    file_name: str | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def receive_upload(content_type: str, stream: AsyncIterator[bytes], *, folder: pathlib.Path) -> ReceivedUpload:
    """Parse a ``multipart/form-data`` body; the file part is written under ``folder``."""
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput("send the file as multipart/form-data with a 'file' part (curl -F file=@sales.csv)")
    folder.mkdir(parents=True, exist_ok=True)
    state = _State(folder)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": state.on_part_begin,
            "on_header_field": state.on_header_field,
            "on_header_value": state.on_header_value,
            "on_header_end": state.on_header_end,
            "on_headers_finished": state.on_headers_finished,
            "on_part_data": state.on_part_data,
            "on_part_end": state.on_part_end,
            "on_end": state.on_end,
        },
    )
    try:
        async for chunk in stream:
            _write(parser, chunk)
            if state.pending:
                data, state.pending = b"".join(state.pending), []
                await anyio.to_thread.run_sync(state.write_file, data)
        parser.finalize()
        if not state.ended:
            raise InvalidInput("the multipart body ended before its closing boundary; send the whole form again")
        if state.pending:
            await anyio.to_thread.run_sync(state.write_file, b"".join(state.pending))
    except BaseException:
        state.close()
        state.upload.discard()
        raise
    state.close()
    if state.upload.path is None:
        raise InvalidInput("the form has no 'file' part; send it with curl -F file=@sales.csv")
    return state.upload


def _write(parser: MultipartParser, chunk: bytes) -> None:
    try:
        parser.write(chunk)
    except ParseError as exc:
        if "header" in str(exc).lower() and "exceeded" in str(exc).lower():
            raise LimitExceeded(
                f"a form part has too many or too long headers (at most {parser.max_header_count} of "
                f"{parser.max_header_size} bytes each); is its file name that long?"
            ) from exc
        raise InvalidInput(
            f"the multipart body is malformed ({exc}); send the file with curl -F file=@sales.csv"
        ) from exc


class _State:
    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        self.upload = ReceivedUpload()
        self.pending: list[bytes] = []
        self._handle: int | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._data = bytearray()
        self.ended = False

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._is_file, self._data = b"", "", False, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise InvalidInput("every form part needs a name")
        self._name = name.decode("utf-8", "replace")
        if self._name == FILE_FIELD:
            if self.upload.path is not None:
                raise InvalidInput("send one file per upload")
            raw = options.get(b"filename")
            if not raw:
                raise InvalidInput("the 'file' part needs a file name (curl -F file=@sales.csv sets it)")
            file_name = pathlib.PurePath(raw.decode("utf-8", "replace").replace("\\", "/")).name
            if len(file_name) > MAX_FILE_NAME:
                raise LimitExceeded(f"the file name is longer than {MAX_FILE_NAME} characters; rename the file")
            self.upload.file_name = file_name
            suffix = pathlib.PurePath(file_name).suffix[:16]
            self.upload.path = self.folder / f"upload-{secrets.token_hex(8)}{suffix}"
            self._handle = os.open(self.upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._is_file = True
        elif len(self.upload.fields) >= MAX_FIELDS:
            raise InvalidInput(f"too many form fields (at most {MAX_FIELDS})")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.pending.append(bytes(data[start:end]))
            return
        self._data.extend(data[start:end])
        if len(self._data) > MAX_FIELD_BYTES:
            raise LimitExceeded(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if not self._is_file:
            self.upload.fields[self._name] = self._data.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def write_file(self, data: bytes) -> None:
        assert self._handle is not None
        view = memoryview(data)
        while view:
            written = os.write(self._handle, view)
            view = view[written:]
        self.upload.size += len(data)

    def close(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
