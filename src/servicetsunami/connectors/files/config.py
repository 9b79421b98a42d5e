"""Settings of a files connection: one file of the tenant's landing volume and how to read it."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, field_validator

if TYPE_CHECKING:
    from servicetsunami.connectors.files.reader import FileOptions


class FilesConfig(BaseModel):
    path: str = Field(
        min_length=1,
        max_length=1024,
        description="The file, relative to the tenant's landing volume (e.g. 'exports/orders.csv')",
    )
    format: str | None = Field(None, description="csv, tsv, xlsx, parquet, json or ndjson; None: from the extension")
    delimiter: str | None = Field(None, max_length=4, description="CSV only; None: detected")
    header: bool | None = Field(None, description="CSV only: whether the first line names the columns; None: detected")
    encoding: str | None = Field(None, description="utf-8, utf-16 or latin-1; None: detected")
    quote: str | None = Field(None, max_length=1, description="CSV only; None: detected")
    sheet: str | None = Field(
        None, description="Excel only: the sheet the stream named after the file reads; None: every sheet"
    )

    @field_validator("path")
    @classmethod
    def _inside_the_volume(cls, value: str) -> str:
        parts = PurePosixPath(value).parts
        if value.startswith("/") or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            raise ValueError("path must be relative to the landing volume, without '..' or hidden names")
        return value

    def options(self) -> FileOptions:
        from servicetsunami.connectors.files.reader import FileOptions

        return FileOptions(
            format=self.format,
            delimiter=self.delimiter,
            header=self.header,
            encoding=self.encoding,
            quote=self.quote,
            sheet=self.sheet,
        )
