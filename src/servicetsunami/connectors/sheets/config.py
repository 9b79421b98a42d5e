"""Google Sheets connection settings: which spreadsheet, how to reach it, which ranges are streams.

Two ways in:

- ``service_account`` (default): the Sheets API v4 with a service account's JSON key (the secret
  ``service_account_key``, stored encrypted, never returned); share the spreadsheet with the
  account's ``client_email``. Every sheet is a stream, or each of ``ranges`` when given.
- ``public``: a spreadsheet anyone with the link can view, or one published to the web, read as the
  CSV export of each sheet in ``sheets`` (by its ``gid``, the number after ``#gid=`` in its URL).

Where Google is (the API, the token endpoint, the CSV export host) is the operator's setting
(:class:`GoogleUrls`, from ``TSUNAMI_SYNC__GOOGLE_*``), never the connection's: the key's own
``token_uri`` is ignored, so a tenant cannot send the signed assertion, or the service, elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

_ID = re.compile(r"^[A-Za-z0-9_-]{10,200}$")
_URL_ID = re.compile(r"/spreadsheets/d/(?:e/)?([A-Za-z0-9_-]{10,200})")
_STREAM = re.compile(r"^[^\x00-\x1f]{1,100}$")


@dataclass(frozen=True, slots=True)
class GoogleUrls:
    """Where Google's services are; tests point these at a local fake."""

    api: str = "https://sheets.googleapis.com"
    token: str = "https://oauth2.googleapis.com/token"
    docs: str = "https://docs.google.com"


class SheetRange(BaseModel):
    name: str = Field(description="The stream's name")
    range: str = Field(
        min_length=1, max_length=300, description="A1 range with its sheet, e.g. Sales!B3:F or 'Q1 sales'!A:D"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STREAM.match(value):
            raise ValueError("must be 1-100 printable characters")
        return value


class PublicSheet(BaseModel):
    name: str = Field("Sheet1", description="The stream's name")
    gid: int = Field(0, ge=0, description="The sheet's id: the number after #gid= in its URL (0: the first sheet)")


class SheetsConfig(BaseModel):
    spreadsheet_id: str = Field(
        description="The spreadsheet's id, or its URL (https://docs.google.com/spreadsheets/d/...)"
    )
    auth: Literal["service_account", "public"] = Field(
        "service_account",
        description="service_account: the Sheets API with service_account_key; public: the CSV export of a sheet "
        "anyone with the link can view (or published to the web)",
    )
    service_account_key: SecretStr | None = Field(
        None, description="The service account's JSON key (text); stored encrypted, never returned"
    )
    ranges: list[SheetRange] = Field(
        default_factory=list,
        max_length=200,
        description="service_account: streams as A1 ranges instead of one per sheet",
    )
    sheets: list[PublicSheet] = Field(
        default_factory=lambda: [PublicSheet()],
        min_length=1,
        max_length=200,
        description="public: the sheets to export, by gid",
    )
    header_row: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Row of the column names within each range (1 = its first row); 0: none (columns A, B, ...); "
        "unset: the first row of text cells that data follows",
    )
    sample_rows: int = Field(200, ge=1, le=10_000, description="Rows sampled for column types and number formats")
    timeout_seconds: float = Field(60, gt=0, le=600, description="Per request")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a 429, 502, 503, 504 or a dropped connection")
    backoff_seconds: float = Field(1.0, ge=0, le=60, description="First wait between retries, doubling each time")

    @field_validator("spreadsheet_id")
    @classmethod
    def _id(cls, value: str) -> str:
        value = value.strip()
        found = _URL_ID.search(value)
        if found:
            value = found.group(1)
        if not _ID.match(value):
            raise ValueError("must be a spreadsheet id (letters, digits, - and _) or its docs.google.com URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SheetsConfig:
        if self.auth == "service_account":
            if self.service_account_key is None:
                raise ValueError("auth service_account needs the secret service_account_key (the JSON key)")
            _check_key(self.service_account_key.get_secret_value())
        names = [r.name for r in self.ranges] if self.auth == "service_account" else [s.name for s in self.sheets]
        if len(set(names)) != len(names):
            raise ValueError("stream names must be unique")
        return self

    def key(self) -> dict[str, str]:
        """The service account key's fields (only with a key; validated at construction)."""
        assert self.service_account_key is not None
        data: dict[str, str] = json.loads(self.service_account_key.get_secret_value())
        return data

    def redacted(self) -> str:
        return f"sheets:{self.spreadsheet_id} ({self.auth})"


def _check_key(text: str) -> None:
    """A message that never repeats the key."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("service_account_key must be the JSON key file's text") from None
    if not isinstance(data, dict):
        raise ValueError("service_account_key must be the JSON key file's text")
    missing = [f for f in ("client_email", "private_key") if not isinstance(data.get(f), str) or not data.get(f)]
    if missing:
        raise ValueError(f"service_account_key lacks {', '.join(missing)}; download a JSON key of a service account")
