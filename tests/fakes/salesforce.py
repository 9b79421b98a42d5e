"""A local fake of a Salesforce org's REST API: real HTTP on a loopback port.

- ``POST /services/oauth2/token``: OAuth2 client credentials or refresh token;
- ``GET /services/data/vXX.X/limits``, ``/sobjects``, ``/sobjects/{name}/describe``;
- ``GET /services/data/vXX.X/query?q=`` and ``/queryAll?q=``: a subset of SOQL (``SELECT fields FROM
  object [WHERE field op literal [AND ...]] [ORDER BY field [ASC|DESC]] [LIMIT n]``, literals:
  unquoted datetimes and dates, numbers, quoted strings, null, true, false), paged by
  ``nextRecordsUrl`` (``page_size`` records a page); ``query`` leaves out records with ``IsDeleted``,
  ``queryAll`` keeps them. Datetimes compare to the second, as Salesforce does.

Errors answer Salesforce's shape (``[{"message", "errorCode"}]``): ``INVALID_SESSION_ID`` (401),
``MALFORMED_QUERY`` and ``INVALID_FIELD`` (400), ``NOT_FOUND`` (404). :meth:`FakeSalesforce.fail`
answers a path's next requests with a status and Retry-After.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT = ("sf-client-1", "sf-secret-" + secrets.token_hex(8))
REFRESH = "sf-refresh-" + secrets.token_hex(8)
_SOQL = re.compile(
    r"^SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<where>.+?))?"
    r"(?: ORDER BY (?P<order>\w+)(?: (?P<dir>ASC|DESC))?)?(?: LIMIT (?P<limit>\d+))?$",
    re.IGNORECASE,
)
_COND = re.compile(r"^(\w+) (>=|<=|!=|=|>|<) (.+)$")


@dataclass
class SObject:
    fields: list[dict[str, Any]]
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeState:
    objects: dict[str, SObject] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    page_size: int = 2000
    cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, list[tuple[int, str | None, str]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)


def sf_field(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    """A describe field entry."""
    return {"name": name, "type": kind, "nillable": kind != "id", "label": name, **extra}


def sf_datetime(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class FakeSalesforce:
    def __init__(self) -> None:
        self.state = FakeState()
        self.base_url = ""

    def add(self, name: str, fields: list[dict[str, Any]], records: list[dict[str, Any]] | None = None) -> SObject:
        made = SObject(fields, list(records or []))
        self.state.objects[name] = made
        return made

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        code: str = "SERVER_UNAVAILABLE",
    ) -> None:
        self.state.faults.setdefault(path, []).extend([(status, retry_after, code)] * times)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/services/oauth2/token", self._token, methods=["POST"]),
                Route("/services/data/{v}/limits", self._limits),
                Route("/services/data/{v}/sobjects", self._sobjects),
                Route("/services/data/{v}/sobjects/{name}/describe", self._describe),
                Route("/services/data/{v}/query/{cursor}", self._more),
                Route("/services/data/{v}/queryAll/{cursor}", self._more),
                Route("/services/data/{v}/query", self._query),
                Route("/services/data/{v}/queryAll", self._query),
            ]
        )

    # -- endpoints ----------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        if (fault := self._fault(request)) is not None:
            return fault
        form = await request.form()
        grant = str(form.get("grant_type"))
        ok = False
        if grant == "client_credentials":
            ok = (form.get("client_id"), form.get("client_secret")) == CLIENT
        elif grant == "refresh_token":
            ok = form.get("client_id") == CLIENT[0] and form.get("refresh_token") == REFRESH
        if not ok:
            return JSONResponse({"error": "invalid_grant", "error_description": "authentication failure"}, 400)
        self.state.grants.append(grant)
        token = "00D!" + secrets.token_urlsafe(24)
        self.state.tokens.add(token)
        return JSONResponse({"access_token": token, "instance_url": self.base_url, "token_type": "Bearer"})

    def _fault(self, request: Request) -> Response | None:
        self.state.requests.append(request.url.path)
        for prefix, queued in self.state.faults.items():
            if request.url.path.startswith(prefix) and queued:
                status, retry_after, code = queued.pop(0)
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                return _error(status, code, headers=headers)
        return None

    def _refused(self, request: Request) -> Response | None:
        if (fault := self._fault(request)) is not None:
            return fault
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.state.tokens:
            return _error(401, "INVALID_SESSION_ID")
        return None

    async def _limits(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        return JSONResponse({"DailyApiRequests": {"Max": 15000, "Remaining": 14000}})

    async def _sobjects(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        listed = [{"name": n, "queryable": True, "label": n} for n in self.state.objects]
        listed.append({"name": "ApexLog", "queryable": False, "label": "Apex Log"})
        return JSONResponse({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": listed})

    async def _describe(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        name = request.path_params["name"]
        obj = self.state.objects.get(name)
        if obj is None:
            return _error(404, "NOT_FOUND")
        return JSONResponse({"name": name, "queryable": True, "fields": obj.fields})

    async def _query(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        soql = request.query_params.get("q", "")
        self.state.queries.append(soql)
        everything = request.url.path.endswith("/queryAll")
        try:
            records = self._run(soql, everything=everything)
        except _SoqlError as exc:
            return _error(400, exc.code)
        return self._page(request, records, len(records))

    async def _more(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        cursor = request.path_params["cursor"]
        records = self.state.cursors.pop(cursor.rpartition("-")[0], None)
        if records is None:
            return _error(400, "INVALID_QUERY_LOCATOR")
        return self._page(request, records, int(cursor.rpartition("-")[2]) + len(records))

    def _page(self, request: Request, records: list[dict[str, Any]], total: int) -> Response:
        page, rest = records[: self.state.page_size], records[self.state.page_size :]
        body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": page}
        if rest:
            locator = "01g" + secrets.token_hex(6)
            self.state.cursors[locator] = rest
            kind = "queryAll" if "/queryAll" in request.url.path else "query"
            done = total - len(rest)
            body["nextRecordsUrl"] = f"/services/data/{request.path_params['v']}/{kind}/{locator}-{done}"
        return JSONResponse(body)

    # -- SOQL ---------------------------------------------------------------------------------

    def _run(self, soql: str, *, everything: bool) -> list[dict[str, Any]]:
        match = _SOQL.match(soql.strip())
        if match is None:
            raise _SoqlError("MALFORMED_QUERY")
        obj = self.state.objects.get(match["obj"])
        if obj is None:
            raise _SoqlError("INVALID_TYPE")
        types = {f["name"]: f["type"] for f in obj.fields}
        selected = [f.strip() for f in match["fields"].split(",")]
        conditions = []
        for text in (match["where"] or "").split(" AND ") if match["where"] else []:
            cond = _COND.match(text.strip())
            if cond is None:
                raise _SoqlError("MALFORMED_QUERY")
            conditions.append((cond[1], cond[2], _literal(cond[3])))
        for name in [*selected, *(c[0] for c in conditions), *([match["order"]] if match["order"] else [])]:
            if name not in types:
                raise _SoqlError("INVALID_FIELD")
        rows = [r for r in obj.records if everything or not r.get("IsDeleted")]
        for name, op, literal in conditions:
            rows = [r for r in rows if _compare(_value(r.get(name), types[name]), op, literal)]
        if match["order"]:
            key = match["order"]
            rows.sort(
                key=lambda r: (r.get(key) is None, _value(r.get(key), types[key])), reverse=match["dir"] == "DESC"
            )
        if match["limit"]:
            rows = rows[: int(match["limit"])]
        return [{"attributes": {"type": match["obj"]}, **{f: r.get(f) for f in selected}} for r in rows]

    @contextmanager
    def running(self) -> Iterator[FakeSalesforce]:
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
                raise RuntimeError("the fake Salesforce did not start")
            time.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            sock.close()


class _SoqlError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _error(status: int, code: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse([{"message": code.lower().replace("_", " "), "errorCode": code}], status, headers=headers)


def _literal(text: str) -> Any:
    text = text.strip()
    if text.lower() == "null":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    if re.match(r"^\d{4}-\d\d-\d\dT", text):
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(microsecond=0)
    if re.match(r"^\d{4}-\d\d-\d\d$", text):
        return dt.date.fromisoformat(text)
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise _SoqlError("MALFORMED_QUERY") from None


def _value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(microsecond=0)
    if kind == "date":
        return dt.date.fromisoformat(str(value))
    if kind in ("int", "long", "double", "currency", "percent"):
        return decimal.Decimal(str(value))
    return value


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op == "!=":
        return bool(value != literal)
    if op == "=":
        return bool(value == literal)
    if value is None or literal is None:
        return False
    try:
        return bool({">": value > literal, ">=": value >= literal, "<": value < literal, "<=": value <= literal}[op])
    except TypeError:
        raise _SoqlError("INVALID_QUERY_FILTER_OPERATOR") from None
