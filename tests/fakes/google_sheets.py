"""A local fake of Google Sheets API v4 and Google's OAuth token endpoint: real HTTP on a loopback port.

- ``POST /token``: the JWT bearer grant; the assertion's RS256 signature is checked against the public
  key of the service account it names (:meth:`FakeSheets.service_account` makes one), and its ``aud``
  must be this endpoint;
- ``GET /v4/spreadsheets/{id}``: properties and sheets; with ``includeGridData=true`` and ``ranges``,
  the cells of that range with ``effectiveValue`` and ``effectiveFormat.numberFormat.type``;
- ``GET /v4/spreadsheets/{id}/values/{range}`` and ``/values:batchGet?ranges=...``: values as the API
  gives them with ``valueRenderOption=UNFORMATTED_VALUE`` and ``dateTimeRenderOption=SERIAL_NUMBER``
  (dates and times as serial numbers from 1899-12-30; trailing empty rows and cells dropped);
- ``GET /spreadsheets/d/{id}/export?format=csv&gid=N``: the CSV export of a public spreadsheet (a
  private one answers Google's sign-in page: HTML with status 200).

The API wants a token issued here for an account the spreadsheet is shared with (401 / 403
otherwise). :meth:`FakeSheets.fail` answers a path's next requests with a status and Retry-After.
Cells are Python values: ``datetime``, ``date`` and ``time`` carry the DATE_TIME, DATE and TIME formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EPOCH = dt.datetime(1899, 12, 30)
_CELLS = re.compile(r"^([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?$")


@dataclass
class Sheet:
    title: str
    gid: int
    rows: list[list[Any]]


@dataclass
class Spreadsheet:
    title: str
    sheets: list[Sheet]
    time_zone: str = "Etc/UTC"
    shared_with: set[str] = field(default_factory=set)
    public: bool = False


@dataclass
class FakeState:
    spreadsheets: dict[str, Spreadsheet] = field(default_factory=dict)
    accounts: dict[str, Any] = field(default_factory=dict)  # client_email -> public key
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> client_email
    faults: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    seen_authorization: list[str | None] = field(default_factory=list)


class FakeSheets:
    def __init__(self) -> None:
        self.state = FakeState()
        self.base_url = ""

    # -- set up -------------------------------------------------------------------------------

    def service_account(self, email: str = "reader@project.iam.gserviceaccount.com") -> str:
        """A new service account's JSON key (text), its public key known to the token endpoint."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.state.accounts[email] = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "project",
                "private_key_id": secrets.token_hex(8),
                "private_key": pem,
                "client_email": email,
                "token_uri": "http://169.254.169.254/token",  # never used: the operator's setting wins
            }
        )

    def add(self, spreadsheet_id: str, sheets: dict[str, list[list[Any]]], **options: Any) -> Spreadsheet:
        made = Spreadsheet(
            title=options.pop("title", "Book"),
            sheets=[Sheet(title, gid, rows) for gid, (title, rows) in enumerate(sheets.items())],
            **options,
        )
        self.state.spreadsheets[spreadsheet_id] = made
        return made

    def fail(self, path: str, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        self.state.faults.setdefault(path, []).extend([(status, retry_after)] * times)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    # -- the app ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/v4/spreadsheets/{sid}/values:batchGet", self._batch_get),
                Route("/v4/spreadsheets/{sid}/values/{rng:path}", self._values_get),
                Route("/v4/spreadsheets/{sid}", self._get),
                Route("/spreadsheets/d/{sid}/export", self._export),
            ]
        )

    def _fault(self, request: Request) -> Response | None:
        self.state.requests.append(request.url.path)
        for prefix, queued in self.state.faults.items():
            if request.url.path.startswith(prefix) and queued:
                status, retry_after = queued.pop(0)
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                return JSONResponse({"error": {"code": status}}, status_code=status, headers=headers)
        return None

    async def _token(self, request: Request) -> Response:
        if (fault := self._fault(request)) is not None:
            return fault
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        assertion = str(form.get("assertion") or "")
        try:
            email = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
            public = self.state.accounts[email]
            claims = jwt.decode(assertion, public, algorithms=["RS256"], audience=self.token_url)
        except (jwt.PyJWTError, KeyError):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if "spreadsheets" not in str(claims.get("scope")):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        self.state.assertions.append(claims)
        token = "ya29." + secrets.token_urlsafe(16)
        self.state.tokens[token] = str(email)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _authorize(self, request: Request, sid: str) -> tuple[Spreadsheet | None, Response | None]:
        if (fault := self._fault(request)) is not None:
            return None, fault
        header = request.headers.get("authorization")
        self.state.seen_authorization.append(header)
        email = self.state.tokens.get((header or "").removeprefix("Bearer "))
        if email is None:
            return None, JSONResponse({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status_code=401)
        book = self.state.spreadsheets.get(sid)
        if book is None:
            return None, JSONResponse({"error": {"code": 404, "status": "NOT_FOUND"}}, status_code=404)
        if email not in book.shared_with:
            return None, JSONResponse({"error": {"code": 403, "status": "PERMISSION_DENIED"}}, status_code=403)
        return book, None

    async def _get(self, request: Request) -> Response:
        book, refused = self._authorize(request, request.path_params["sid"])
        if refused is not None or book is None:
            return refused or Response(status_code=500)
        body: dict[str, Any] = {
            "spreadsheetId": request.path_params["sid"],
            "properties": {"title": book.title, "timeZone": book.time_zone},
            "sheets": [
                {
                    "properties": {
                        "sheetId": s.gid,
                        "title": s.title,
                        "gridProperties": {"rowCount": max(len(s.rows), 1000), "columnCount": 26},
                    }
                }
                for s in book.sheets
            ],
        }
        if request.query_params.get("includeGridData") == "true":
            grids = []
            for rng in request.query_params.getlist("ranges"):
                sheet, rows = _cut(book, rng)
                if sheet is None:
                    return JSONResponse({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status_code=400)
                data = {"rowData": [{"values": [_grid_cell(v) for v in row]} for row in rows]}
                grids.append({"properties": {"title": sheet.title}, "data": [data]})
            body["sheets"] = grids
        return JSONResponse(body)

    async def _values_get(self, request: Request) -> Response:
        book, refused = self._authorize(request, request.path_params["sid"])
        if refused is not None or book is None:
            return refused or Response(status_code=500)
        found = _value_range(book, request.path_params["rng"])
        if found is None:
            return JSONResponse({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status_code=400)
        return JSONResponse(found)

    async def _batch_get(self, request: Request) -> Response:
        book, refused = self._authorize(request, request.path_params["sid"])
        if refused is not None or book is None:
            return refused or Response(status_code=500)
        ranges = []
        for rng in request.query_params.getlist("ranges"):
            found = _value_range(book, rng)
            if found is None:
                return JSONResponse({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status_code=400)
            ranges.append(found)
        return JSONResponse({"spreadsheetId": request.path_params["sid"], "valueRanges": ranges})

    async def _export(self, request: Request) -> Response:
        if (fault := self._fault(request)) is not None:
            return fault
        book = self.state.spreadsheets.get(request.path_params["sid"])
        if book is None or not book.public:
            return Response("<html><body>Sign in</body></html>", media_type="text/html")
        gid = int(request.query_params.get("gid", "0"))
        sheet = next((s for s in book.sheets if s.gid == gid), None)
        if sheet is None:
            return Response("not found", status_code=404)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in sheet.rows:
            writer.writerow([_formatted(v) for v in row])
        return Response(out.getvalue(), media_type="text/csv")

    @contextmanager
    def running(self) -> Iterator[FakeSheets]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(self.app(), log_level="warning", lifespan="off", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the fake Sheets API did not start")
            time.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            sock.close()


def _column(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def _cut(book: Spreadsheet, rng: str) -> tuple[Sheet | None, list[list[Any]]]:
    """The sheet of an A1 range and its cells, trailing empty rows and cells dropped."""
    sheet_part, bang, cells = rng.rpartition("!")
    if not bang:
        sheet_part, cells = rng, ""
    title = sheet_part[1:-1].replace("''", "'") if sheet_part.startswith("'") else sheet_part
    sheet = next((s for s in book.sheets if s.title == title), None)
    if sheet is None:
        return None, []
    c1, r1, c2, r2 = ("", "", "", "")
    if cells:
        match = _CELLS.match(cells)
        if match is None:
            return None, []
        c1, r1, c2, r2 = (g or "" for g in match.groups())
        if match.group(3) is None:
            c2, r2 = c1, r1
    first_row = int(r1) - 1 if r1 else 0
    last_row = int(r2) if r2 else len(sheet.rows)
    first_col = _column(c1) if c1 else 0
    last_col = _column(c2) + 1 if c2 else None
    rows = [row[first_col:last_col] for row in sheet.rows[first_row:last_row]]
    rows = [_trim(row) for row in rows]
    while rows and not rows[-1]:
        rows.pop()
    return sheet, rows


def _trim(row: list[Any]) -> list[Any]:
    row = list(row)
    while row and row[-1] in (None, ""):
        row.pop()
    return ["" if v is None else v for v in row]


def _value_range(book: Spreadsheet, rng: str) -> dict[str, Any] | None:
    sheet, rows = _cut(book, rng)
    if sheet is None:
        return None
    found: dict[str, Any] = {"range": rng, "majorDimension": "ROWS"}
    if rows:
        found["values"] = [[_unformatted(v) for v in row] for row in rows]
    return found


def _serial(value: dt.datetime | dt.date | dt.time) -> float:
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=None) - EPOCH) / dt.timedelta(days=1)
    if isinstance(value, dt.date):
        return float((value - EPOCH.date()).days)
    return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400


def _unformatted(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return _serial(value)
    return value


def _number_format(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return "DATE_TIME"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, dt.time):
        return "TIME"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "NUMBER"
    return None


def _grid_cell(value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, bool):
        effective: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, str):
        effective = {"stringValue": value}
    else:
        effective = {"numberValue": _unformatted(value)}
    cell: dict[str, Any] = {"effectiveValue": effective}
    if (kind := _number_format(value)) is not None:
        cell["effectiveFormat"] = {"numberFormat": {"type": kind}}
    return cell


def _formatted(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return str(value)
