"""The fake workspace as an ASGI app (Starlette): the REST endpoints the Databricks engine uses, with
request and response shapes from the SDK's dataclasses. State is kept per bearer token."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servicetsunami.engines.types import sql_type
from tests.fakes.databricks import commands, compute, jobs, notebook_runs, sqlexec, vectors, workspace
from tests.fakes.databricks.serving import serving_routes
from tests.fakes.databricks.state import Statement, WorkspaceState

if TYPE_CHECKING:
    from tests.fakes.databricks.server import FakeDatabricks

_TYPE_NAMES = {
    "BIGINT": "LONG",
    "TINYINT": "BYTE",
    "SMALLINT": "SHORT",
    "VOID": "NULL",
    "TIMESTAMP_NTZ": "TIMESTAMP_NTZ",
}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def build_app(fake: FakeDatabricks) -> Starlette:
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-warehouse")

    def state_of(request: Request) -> WorkspaceState | Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:]:
            return error(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type")
        return fake.state(header[7:])

    def handler(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            state = state_of(request)
            if isinstance(state, Response):
                return state
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()
            return await _in_thread(fn, state, request, body)

        return endpoint

    async def _in_thread(fn: Any, state: WorkspaceState, request: Request, body: bytes) -> Response:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(lambda: fn(state, request, body))

    # -- identity -----------------------------------------------------------------------------

    def me(state: WorkspaceState, request: Request, body: bytes) -> Response:
        return JSONResponse(
            {
                "id": "1",
                "userName": "fake@example.com",
                "displayName": "Fake User",
                "active": True,
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            }
        )

    # -- Unity Catalog ------------------------------------------------------------------------

    def create_catalog(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        name = req["name"]
        with state.lock:
            if name in state.catalogs:
                return error(409, "RESOURCE_ALREADY_EXISTS", f"Catalog '{name}' already exists")
            info = {
                "name": name,
                "full_name": name,
                "comment": req.get("comment"),
                "storage_root": req.get("storage_root"),
                "catalog_type": "MANAGED_CATALOG",
                "owner": "fake@example.com",
                "created_at": int(time.time() * 1000),
            }
            state.catalogs[name] = info
        state.engine._layout.catalog_dir(name).mkdir(parents=True, exist_ok=True)
        return JSONResponse(info)

    def get_catalog(state: WorkspaceState, request: Request, body: bytes) -> Response:
        name = request.path_params["name"]
        info = state.catalogs.get(name)
        return JSONResponse(info) if info else error(404, "CATALOG_DOES_NOT_EXIST", f"Catalog '{name}' does not exist.")

    def create_schema(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        catalog, name = req["catalog_name"], req["name"]
        full = f"{catalog}.{name}"
        with state.lock:
            if catalog not in state.catalogs:
                return error(404, "CATALOG_DOES_NOT_EXIST", f"Catalog '{catalog}' does not exist.")
            if full in state.schemas:
                return error(409, "RESOURCE_ALREADY_EXISTS", f"Schema '{full}' already exists")
            info = {"name": name, "catalog_name": catalog, "full_name": full, "owner": "fake@example.com"}
            state.schemas[full] = info
        (state.engine._layout.catalog_dir(catalog) / name).mkdir(parents=True, exist_ok=True)
        return JSONResponse(info)

    def get_schema(state: WorkspaceState, request: Request, body: bytes) -> Response:
        full = request.path_params["full_name"]
        info = state.schemas.get(full)
        return JSONResponse(info) if info else error(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{full}' does not exist.")

    def create_volume(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        catalog, schema, name = req["catalog_name"], req["schema_name"], req["name"]
        full = f"{catalog}.{schema}.{name}"
        with state.lock:
            if f"{catalog}.{schema}" not in state.schemas:
                return error(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{catalog}.{schema}' does not exist.")
            if full in state.volumes:
                return error(409, "RESOURCE_ALREADY_EXISTS", f"Volume '{full}' already exists")
            info = {
                "name": name,
                "catalog_name": catalog,
                "schema_name": schema,
                "full_name": full,
                "volume_type": req.get("volume_type", "MANAGED"),
                "volume_id": uuid.uuid4().hex,
                "storage_location": f"s3://fake-metastore/{catalog}/{schema}/__volumes/{name}",
            }
            state.volumes[full] = info
        state.volume_dir(catalog, schema, name).mkdir(parents=True, exist_ok=True)
        return JSONResponse(info)

    def get_volume(state: WorkspaceState, request: Request, body: bytes) -> Response:
        full = request.path_params["name"]
        info = state.volumes.get(full)
        return JSONResponse(info) if info else error(404, "RESOURCE_DOES_NOT_EXIST", f"Volume '{full}' does not exist.")

    def _table_ref(full: str) -> Any:
        from servicetsunami.tenancy import TableRef

        parts = full.split(".")
        return TableRef(*parts) if len(parts) == 3 else None

    def table_info(state: WorkspaceState, ref: Any, *, columns: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": ref.name,
            "catalog_name": ref.catalog,
            "schema_name": ref.schema,
            "full_name": str(ref),
            "table_type": "MANAGED",
            "data_source_format": "DELTA",
            "owner": "fake@example.com",
        }
        if columns:
            d = state.engine.describe(ref)
            info["columns"] = [
                {
                    "name": c.name,
                    "type_text": c.type.lower(),
                    "type_name": _type_name(c.type),
                    "position": i,
                    "nullable": c.nullable,
                    "comment": c.comment,
                }
                for i, c in enumerate(d.columns)
            ]
            info["comment"] = d.comment
        return info

    def list_tables(state: WorkspaceState, request: Request, body: bytes) -> Response:
        catalog = request.query_params.get("catalog_name", "")
        schema = request.query_params.get("schema_name", "")
        if f"{catalog}.{schema}" not in state.schemas:
            return error(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{catalog}.{schema}' does not exist.")
        omit = request.query_params.get("omit_columns") == "true"
        tables = [table_info(state, d.ref, columns=not omit) for d in state.engine.list_tables(catalog, schema=schema)]
        return JSONResponse({"tables": tables})

    def get_table(state: WorkspaceState, request: Request, body: bytes) -> Response:
        ref = _table_ref(request.path_params["full_name"])
        if ref is None or not state.engine.table_exists(ref):
            return error(404, "TABLE_DOES_NOT_EXIST", f"Table '{request.path_params['full_name']}' does not exist.")
        return JSONResponse(table_info(state, ref, columns=True))

    def table_exists(state: WorkspaceState, request: Request, body: bytes) -> Response:
        ref = _table_ref(request.path_params["full_name"])
        return JSONResponse({"table_exists": bool(ref is not None and state.engine.table_exists(ref))})

    def delete_table(state: WorkspaceState, request: Request, body: bytes) -> Response:
        ref = _table_ref(request.path_params["full_name"])
        if ref is None or not state.engine.table_exists(ref):
            return error(404, "TABLE_DOES_NOT_EXIST", f"Table '{request.path_params['full_name']}' does not exist.")
        state.engine.drop_table(ref)
        with state.lock:
            state.loaded_files.pop(str(ref), None)
        return JSONResponse({})

    def permissions(state: WorkspaceState, request: Request, body: bytes) -> Response:
        key = f"{request.path_params['securable_type']}/{request.path_params['full_name']}"
        with state.lock:
            grants = state.grants.setdefault(key, {})
            if request.method == "PATCH":
                for change in json.loads(body).get("changes", []):
                    privileges = grants.setdefault(change["principal"], set())
                    privileges.update(change.get("add", []))
                    privileges.difference_update(change.get("remove", []))
            out = [{"principal": p, "privileges": sorted(v)} for p, v in sorted(grants.items()) if v]
        return JSONResponse({"privilege_assignments": out})

    # -- Files API ----------------------------------------------------------------------------

    def _local(state: WorkspaceState, path: str) -> Path | Response:
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "Volumes" or any(p in ("", ".", "..") for p in parts):
            return error(400, "INVALID_PARAMETER_VALUE", f"'{path}' is not a path in a volume")
        if f"{parts[1]}.{parts[2]}.{parts[3]}" not in state.volumes:
            return error(404, "NOT_FOUND", f"Volume '{parts[1]}.{parts[2]}.{parts[3]}' does not exist")
        return state.volume_dir(parts[1], parts[2], parts[3]).joinpath(*parts[4:])

    def _file_headers(p: Path) -> dict[str, str]:
        st = p.stat()
        modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC)
        return {
            "content-length": str(st.st_size),
            "content-type": "application/octet-stream",
            "last-modified": format_datetime(modified, usegmt=True),
        }

    def files(state: WorkspaceState, request: Request, body: bytes) -> Response:
        target = _local(state, "/" + request.path_params["path"])
        if isinstance(target, Response):
            return target
        if request.method == "PUT":
            if target.exists() and request.query_params.get("overwrite") != "true":
                return error(409, "ALREADY_EXISTS", "The file being created already exists.")
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            part.write_bytes(body)
            part.replace(target)
            return Response(status_code=204)
        if not target.is_file():
            return error(404, "NOT_FOUND", "The file does not exist.")
        if request.method == "DELETE":
            target.unlink()
            return Response(status_code=204)
        if request.method == "HEAD":
            return Response(status_code=200, headers=_file_headers(target))
        return Response(target.read_bytes(), headers=_file_headers(target))

    def directories(state: WorkspaceState, request: Request, body: bytes) -> Response:
        path = "/" + request.path_params["path"].rstrip("/")
        target = _local(state, path)
        if isinstance(target, Response):
            return target
        if request.method == "PUT":
            target.mkdir(parents=True, exist_ok=True)
            return Response(status_code=204)
        if not target.is_dir():
            return error(404, "NOT_FOUND", "The directory does not exist.")
        if request.method == "HEAD":
            return Response(status_code=200)
        if request.method == "DELETE":
            if any(target.iterdir()):
                return error(409, "DIRECTORY_NOT_EMPTY", "The directory is not empty.")
            target.rmdir()
            return Response(status_code=204)
        contents = []
        for child in sorted(target.iterdir()):
            if child.name.startswith("."):
                continue
            entry: dict[str, Any] = {"path": f"{path}/{child.name}", "name": child.name, "is_directory": child.is_dir()}
            if child.is_file():
                st = child.stat()
                entry |= {"file_size": st.st_size, "last_modified": int(st.st_mtime * 1000)}
            contents.append(entry)
        return JSONResponse({"contents": contents})

    # -- SQL warehouses -----------------------------------------------------------------------

    def list_warehouses(state: WorkspaceState, request: Request, body: bytes) -> Response:
        return JSONResponse({"warehouses": [w.info() for w in state.warehouses.values()]})

    def get_warehouse(state: WorkspaceState, request: Request, body: bytes) -> Response:
        wh = state.warehouses.get(request.path_params["id"])
        if wh is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {request.path_params['id']} does not exist.")
        with state.lock:
            if wh.state == "STARTING":
                wh.polls_until_running -= 1
                if wh.polls_until_running < 0:
                    wh.state = "RUNNING"
        return JSONResponse(wh.info())

    def start_warehouse(state: WorkspaceState, request: Request, body: bytes) -> Response:
        wh = state.warehouses.get(request.path_params["id"])
        if wh is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {request.path_params['id']} does not exist.")
        with state.lock:
            if wh.state in ("STOPPED", "STOPPING"):
                wh.state = "STARTING"
        return JSONResponse({})

    # -- Statement Execution ------------------------------------------------------------------

    def submit(state: WorkspaceState, request: Request, body: bytes) -> Response:
        req = json.loads(body)
        wait = str(req.get("wait_timeout", "10s"))
        seconds = int(wait.rstrip("s")) if wait.endswith("s") and wait[:-1].isdigit() else -1
        if seconds != 0 and not 5 <= seconds <= 50:
            return error(400, "INVALID_PARAMETER_VALUE", "wait_timeout must be 0s or between 5s and 50s")
        disposition = req.get("disposition", "INLINE")
        fmt = req.get("format", "JSON_ARRAY")
        if disposition == "INLINE" and fmt != "JSON_ARRAY":
            return error(400, "INVALID_PARAMETER_VALUE", f"{fmt} is supported only with EXTERNAL_LINKS disposition")
        wh = state.warehouses.get(req.get("warehouse_id", ""))
        if wh is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {req.get('warehouse_id')} does not exist.")
        if wh.state != "RUNNING":
            wh.state = "RUNNING"  # a statement starts a stopped warehouse; the fake starts it at once
        stmt = Statement(
            id=uuid.uuid4().hex,
            sql=req["statement"],
            disposition=disposition,
            format=fmt,
            row_limit=req.get("row_limit"),
            byte_limit=req.get("byte_limit"),
        )
        with state.lock:
            state.statements[stmt.id] = stmt
        pool.submit(run_statement, state, stmt)
        stmt.done.wait(seconds)
        if not stmt.done.is_set() and req.get("on_wait_timeout") == "CANCEL":
            cancel_statement(stmt)
        return JSONResponse(statement_response(state, stmt))

    def run_statement(state: WorkspaceState, stmt: Statement) -> None:
        stmt.state = "RUNNING"
        fake.statements_seen.append(stmt.sql)
        try:
            table, truncated = sqlexec.execute(state, stmt, timeout=fake.statement_timeout)
            if stmt.state == "CANCELED":
                return
            stmt.table, stmt.truncated, stmt.state = table, truncated, "SUCCEEDED"
        except sqlexec.Unsupported as exc:
            fake.invalid_sql.append(str(exc))
            stmt.error = {"error_code": "BAD_REQUEST", "message": f"[PARSE_SYNTAX_ERROR] {exc}"}
            stmt.state = "FAILED"
        except sqlexec.StatementError as exc:
            if stmt.state != "CANCELED":
                stmt.error = {"error_code": exc.code, "message": str(exc)}
                stmt.state = "FAILED"
        except Exception as exc:
            stmt.error = {"error_code": "INTERNAL_ERROR", "message": f"[INTERNAL_ERROR] {type(exc).__name__}: {exc}"}
            stmt.state = "FAILED"
            fake.internal_errors.append(f"{stmt.sql!r}: {type(exc).__name__}: {exc}")
        finally:
            stmt.done.set()

    def cancel_statement(stmt: Statement) -> None:
        if stmt.state in ("PENDING", "RUNNING"):
            stmt.state = "CANCELED"
            if stmt.interrupt is not None:
                stmt.interrupt()

    def get_statement(state: WorkspaceState, request: Request, body: bytes) -> Response:
        stmt = state.statements.get(request.path_params["id"])
        if stmt is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", "statement not found")
        return JSONResponse(statement_response(state, stmt))

    def cancel(state: WorkspaceState, request: Request, body: bytes) -> Response:
        stmt = state.statements.get(request.path_params["id"])
        if stmt is not None:
            cancel_statement(stmt)
        return JSONResponse({})

    def chunk(state: WorkspaceState, request: Request, body: bytes) -> Response:
        stmt = state.statements.get(request.path_params["id"])
        if stmt is None or stmt.table is None:
            return error(404, "RESOURCE_DOES_NOT_EXIST", "statement or result not found")
        index = int(request.path_params["index"])
        if not 0 <= index < _chunk_count(stmt):
            return error(400, "INVALID_PARAMETER_VALUE", f"chunk {index} does not exist")
        return JSONResponse(result_data(stmt, index))

    def statement_response(state: WorkspaceState, stmt: Statement) -> dict[str, Any]:
        out: dict[str, Any] = {"statement_id": stmt.id, "status": {"state": stmt.state}}
        if stmt.error:
            out["status"]["error"] = stmt.error
        if stmt.state == "SUCCEEDED" and stmt.table is not None:
            table = stmt.table
            count = _chunk_count(stmt)
            chunks = []
            for i in range(count):
                part = _slice(stmt, i)
                chunks.append(
                    {
                        "chunk_index": i,
                        "row_offset": i * fake.chunk_rows,
                        "row_count": part.num_rows,
                        "byte_count": part.nbytes,
                    }
                )
            out["manifest"] = {
                "format": stmt.format,
                "schema": {
                    "column_count": table.num_columns,
                    "columns": [
                        {
                            "name": f.name,
                            "position": i,
                            "type_text": sql_type(f.type),
                            "type_name": _type_name(sql_type(f.type)),
                        }
                        for i, f in enumerate(table.schema)
                    ],
                },
                "total_chunk_count": count,
                "total_row_count": table.num_rows,
                "total_byte_count": table.nbytes,
                "chunks": chunks,
                "truncated": stmt.truncated,
            }
            out["result"] = result_data(stmt, 0)
        return out

    def _chunk_count(stmt: Statement) -> int:
        rows = stmt.table.num_rows if stmt.table is not None else 0
        return max(1, -(-rows // fake.chunk_rows))

    def _slice(stmt: Statement, index: int) -> pa.Table:
        assert stmt.table is not None
        return stmt.table.slice(index * fake.chunk_rows, fake.chunk_rows)

    def result_data(stmt: Statement, index: int) -> dict[str, Any]:
        part = _slice(stmt, index)
        data: dict[str, Any] = {"chunk_index": index, "row_offset": index * fake.chunk_rows, "row_count": part.num_rows}
        if index + 1 < _chunk_count(stmt):
            data["next_chunk_index"] = index + 1
            data["next_chunk_internal_link"] = f"/api/2.0/sql/statements/{stmt.id}/result/chunks/{index + 1}"
        if stmt.disposition == "INLINE":
            data["data_array"] = [[_json_value(v) for v in row.values()] for row in part.to_pylist()]
            return data
        link = {k: data[k] for k in data}
        link |= {
            "byte_count": part.nbytes,
            "external_link": f"{fake.url}/fake-storage/results/{stmt.id}/{index}?sig={fake.sign(stmt.id, index)}",
            "expiration": (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)).isoformat(),
        }
        return (
            {k: data[k] for k in ("chunk_index", "row_offset", "row_count")}
            | {"external_links": [link]}
            | ({"next_chunk_index": data["next_chunk_index"]} if "next_chunk_index" in data else {})
        )

    async def storage(request: Request) -> Response:
        """An external link: cloud storage, reached without the workspace's credentials."""
        if "authorization" in request.headers:
            fake.invalid_sql.append("an external link was fetched with an Authorization header")
            return Response("credentials must not be sent to cloud storage", status_code=400)
        statement_id, index = request.path_params["id"], int(request.path_params["index"])
        if request.query_params.get("sig") != fake.sign(statement_id, index):
            return Response("<Error><Code>AccessDenied</Code></Error>", status_code=403)
        stmt = next((s.statements[statement_id] for s in fake.states() if statement_id in s.statements), None)
        if stmt is None or stmt.table is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", status_code=404)
        sink = pa.BufferOutputStream()
        part = _slice(stmt, index)
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_table(part)
        return Response(sink.getvalue().to_pybytes(), media_type="application/vnd.apache.arrow.stream")

    async def host_metadata(request: Request) -> Response:
        return JSONResponse({"oidc_endpoint": f"{fake.url}/oidc", "workspace_id": "1234567890123456"})

    async def oidc_discovery(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": f"{fake.url}/oidc",
                "authorization_endpoint": f"{fake.url}/oidc/v1/authorize",
                "token_endpoint": f"{fake.url}/oidc/v1/token",
            }
        )

    async def oidc_token(request: Request) -> Response:
        """OAuth machine-to-machine: client credentials in a Basic header, a bearer token back."""
        form = dict(await request.form())
        header = request.headers.get("authorization", "")
        try:
            client_id, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            client_id, secret = "", ""
        if form.get("grant_type") != "client_credentials" or fake.oauth_clients.get(client_id) != secret or not secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        token = fake.oauth_token(client_id)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": "all-apis"})

    routes = [
        Route("/oidc/.well-known/oauth-authorization-server", oidc_discovery),
        Route("/oidc/v1/token", oidc_token, methods=["POST"]),
        Route("/.well-known/databricks-config", host_metadata),
        Route("/api/2.0/preview/scim/v2/Me", handler(me)),
        Route("/api/2.1/unity-catalog/catalogs", handler(create_catalog), methods=["POST"]),
        Route("/api/2.1/unity-catalog/catalogs/{name}", handler(get_catalog)),
        Route("/api/2.1/unity-catalog/schemas", handler(create_schema), methods=["POST"]),
        Route("/api/2.1/unity-catalog/schemas/{full_name}", handler(get_schema)),
        Route("/api/2.1/unity-catalog/volumes", handler(create_volume), methods=["POST"]),
        Route("/api/2.1/unity-catalog/volumes/{name}", handler(get_volume)),
        Route("/api/2.1/unity-catalog/tables", handler(list_tables)),
        Route("/api/2.1/unity-catalog/tables/{full_name}/exists", handler(table_exists)),
        Route("/api/2.1/unity-catalog/tables/{full_name}", handler(get_table), methods=["GET"]),
        Route("/api/2.1/unity-catalog/tables/{full_name}", handler(delete_table), methods=["DELETE"]),
        Route(
            "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
            handler(permissions),
            methods=["GET", "PATCH"],
        ),
        Route("/api/2.0/fs/files/{path:path}", handler(files), methods=["GET", "HEAD", "PUT", "DELETE"]),
        Route("/api/2.0/fs/directories/{path:path}", handler(directories), methods=["GET", "HEAD", "PUT", "DELETE"]),
        Route("/api/2.0/sql/warehouses", handler(list_warehouses)),
        Route("/api/2.0/sql/warehouses/{id}", handler(get_warehouse)),
        Route("/api/2.0/sql/warehouses/{id}/start", handler(start_warehouse), methods=["POST"]),
        Route("/api/2.0/sql/statements", handler(submit), methods=["POST"]),
        Route("/api/2.0/sql/statements/{id}", handler(get_statement)),
        Route("/api/2.0/sql/statements/{id}/cancel", handler(cancel), methods=["POST"]),
        Route("/api/2.0/sql/statements/{id}/result/chunks/{index:int}", handler(chunk)),
        Route("/fake-storage/results/{id}/{index:int}", storage),
        *jobs.routes(handler, fake),
        *compute.routes(handler),
        *workspace.routes(handler),
        *notebook_runs.routes(handler, fake),
        *commands.routes(handler, fake),
    ]
    routes += serving_routes(handler, error)
    routes += vectors.routes(handler, error)
    app = Starlette(routes=routes)
    app.state.pool = pool
    return app


def _type_name(type_text: str) -> str:
    base = type_text.split("(")[0].split("<")[0].upper()
    return _TYPE_NAMES.get(base, base)


def _json_value(value: Any) -> str | None:
    """JSON_ARRAY renders every value as a string (nested values as JSON), nulls as null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | decimal.Decimal | int | float):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        if value and isinstance(value[0], tuple) and len(value[0]) == 2:  # an Arrow map
            return json.dumps({str(k): v for k, v in value}, default=str)
        return json.dumps(value, default=str)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


_lock = threading.Lock()
