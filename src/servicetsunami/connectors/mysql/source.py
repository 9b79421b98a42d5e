"""The MySQL / MariaDB source.

Checks, discovery and cursor bounds use PyMySQL (precise error codes, ``information_schema``). Rows
are read by one server-side ``SELECT`` that carries the cursor range, so the server uses its index on
the cursor column, and DuckDB casts them to their landing types and writes them out:

- over a plain connection (``ssl_mode`` disabled, or preferred and the server offers no TLS) the
  ``SELECT`` is streamed by ConnectorX (Rust, MySQL's binary protocol straight into Arrow batches),
  which reads as fast as the ``mysql`` client and 2.5x faster than ``mysql_scanner``
  (``benchmarks/README.md``);
- over TLS, DuckDB's ``mysql_scanner`` extension (loaded from its pip package, never downloaded)
  reads it with ``ssl_mode``'s exact MySQL meaning, certificate and host name checks included.

Every common type lands exactly:

- integers keep their value (unsigned ones widen: ``int unsigned`` to BIGINT, ``bigint unsigned`` to
  DECIMAL(20,0)); ``tinyint(1)`` stays an integer (it may hold 2), ``bit(1)`` is a boolean and wider
  ``bit(n)`` an unsigned integer;
- ``decimal(p,s)`` up to 38 digits is a decimal, beyond that its exact text; ``float`` and ``double``
  stay binary floats;
- text, ``enum``, ``set`` and ``json`` are strings, binaries are bytes;
- ``date`` and ``datetime`` are a date and a timestamp without time zone; ``timestamp`` is an instant
  (both connections use the session time zone ``+00:00``, so what the server stores in UTC arrives
  as UTC whatever the server's own zone); ``time`` (which spans -838:59:59 to 838:59:59, beyond a
  time of day) is its text; ``year`` an integer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import logging
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import connectorx
import duckdb
import pyarrow as pa
import pymysql
import pymysql.cursors

from servicetsunami.connectors.base import (
    CheckResult,
    ReadRequest,
    SourceCapabilities,
    SourceColumn,
    StreamInfo,
)
from servicetsunami.connectors.database import DatabaseSource
from servicetsunami.connectors.duckdb_support import (
    ident,
    lit,
    load_packaged_extension,
    packaged_extensions_connection,
    sql_literal,
    storable_cast,
)
from servicetsunami.connectors.mysql.config import MySQLConfig
from servicetsunami.errors import InvalidInput, SourceError

logger = logging.getLogger(__name__)

_CURSOR_TYPES = ("timestamp", "datetime", "date", "int", "bigint", "smallint", "mediumint", "decimal")
_CURSOR_NAMES = re.compile(r"(updated|modified|changed|last_?update|ts$|timestamp|version|_at$)", re.I)
_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set"}
_SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon"}
_BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
# What each MySQL type lands as in DuckDB (and Delta): unsigned integers one size wider
_LANDING = {
    "tinyint": ("TINYINT", "SMALLINT"),
    "smallint": ("SMALLINT", "INTEGER"),
    "mediumint": ("INTEGER", "BIGINT"),
    "int": ("INTEGER", "BIGINT"),
    "bigint": ("BIGINT", "DECIMAL(20,0)"),
}
_PLAIN_LANDING = {"float": "FLOAT", "double": "DOUBLE", "date": "DATE", "datetime": "TIMESTAMP", "year": "INTEGER"}
_ROWS = "mysql_rows"  # the name ConnectorX's stream is registered under in DuckDB
_BATCH_ROWS = 65_536  # rows per Arrow batch from ConnectorX: its memory stays about 100 MB at 5M rows

# MySQL client and server error codes: (code, problem, advice)
_CODES: dict[int, tuple[str, str]] = {
    1045: ("auth", "the user name or password is wrong (or the user may not connect from this address)"),
    1044: ("permission", "the user may not use that database; GRANT SELECT on it"),
    1049: ("database", "that database does not exist on the server; check its name"),
    1130: ("access", "the server does not allow this user to connect from this address; ask its admin"),
    1142: ("permission", "the user lacks SELECT on a table; GRANT SELECT"),
    2026: ("ssl", "the TLS handshake failed; check ssl_mode and the server's certificate"),
}


def redact(text: str, secret: str | None = None) -> str:
    """Remove passwords a driver put into a message (as typed, and as a connection URL spells them)."""
    if secret:
        text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return re.sub(r"(passw(?:or)?d\s*[=:]\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.I)


def diagnose(exc: BaseException, secret: str | None = None) -> tuple[str, str]:
    """A short problem code and what to do about it."""
    code = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
    if isinstance(code, int) and code in _CODES:
        return _CODES[code]
    text = redact(str(exc), secret)
    lowered = text.lower()
    if "name or service not known" in lowered or "errno -2" in lowered or "errno -3" in lowered:
        return "dns", "the host name does not resolve; check the spelling, or use the server's IP address"
    if "refused" in lowered:
        return "refused", "nothing accepts connections on that host and port; check the port and that the server runs"
    if "timed out" in lowered or "timeout" in lowered:
        return "timeout", "the server did not answer in time; a firewall may be dropping the connection"
    if "access denied" in lowered:
        return "auth", "the user name or password is wrong (or the user may not connect from this address)"
    if "unknown database" in lowered:
        return "database", "that database does not exist on the server; check its name"
    if "ssl" in lowered or "tls" in lowered:
        return "ssl", "the TLS handshake failed; check ssl_mode and the server's certificate"
    return "error", f"the connection failed: {text.splitlines()[0][:200] if text else type(exc).__name__}"


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    data_type: str  # information_schema's DATA_TYPE: int, bit, decimal, timestamp, ...
    column_type: str  # its COLUMN_TYPE: int(10) unsigned, bit(10), decimal(30,10), ...
    nullable: bool
    precision: int | None
    scale: int | None = None


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MySQLSource(DatabaseSource["pymysql.connections.Connection[Any]"]):
    kind: ClassVar[str] = "mysql"
    capabilities: ClassVar[SourceCapabilities] = SourceCapabilities(incremental=True, stage_parquet=True)

    def __init__(self, config: MySQLConfig, *, hostaddr: str | None = None, threads: int = 0) -> None:
        super().__init__(threads=threads)
        self.config = config
        # verify_identity checks the certificate against the name, so it connects by name
        self._address = config.host if config.ssl_mode == "verify_identity" else (hostaddr or config.host)
        self._password = config.password.get_secret_value() if config.password else ""
        # whether the control connection got TLS: None until it opened (ssl_mode preferred decides it)
        self._encrypted: bool | None = False if config.ssl_mode == "disabled" else None

    # -- check and discover -------------------------------------------------------------------

    def check(self) -> CheckResult:
        started = time.perf_counter()
        try:
            conn = self._open_control()
        except SourceError as exc:
            problem, advice = exc.details.get("problem", "error"), exc.details.get("advice", exc.message)
            return CheckResult(False, _ms(started), problem=str(problem), diagnosis=str(advice))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
                version = str(row[0]) if row else ""
                missing = self._missing_databases(cur)
        except pymysql.err.MySQLError as exc:
            problem, advice = diagnose(exc, self._password)
            return CheckResult(False, _ms(started), problem=problem, diagnosis=advice)
        finally:
            conn.close()
        server = f"{'MariaDB' if 'mariadb' in version.lower() else 'MySQL'} {version.split('-')[0]}"
        if missing:
            return CheckResult(
                False,
                _ms(started),
                server,
                problem="permission",
                diagnosis=f"connected, but database(s) {', '.join(missing)} are missing or not visible to the user; "
                "check the names and GRANT SELECT on them",
            )
        return CheckResult(True, _ms(started), server)

    def _missing_databases(self, cur: pymysql.cursors.Cursor) -> list[str]:
        wanted = self.config.offered()
        cur.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ("
            + ", ".join(["%s"] * len(wanted))
            + ")",
            wanted,
        )
        seen = {row[0] for row in cur.fetchall()}
        return [name for name in wanted if name not in seen]

    def discover(self, *, schema: str | None = None) -> list[StreamInfo]:
        databases = self.config.offered()
        if schema is not None:
            if schema not in databases:
                raise InvalidInput(f"database {schema!r} is not offered by this connection; it offers {databases}")
            databases = [schema]
        return self._streams(databases)

    def stream(self, name: str, /) -> StreamInfo:
        database, table = self._split(name)
        found = self._streams([database], table=table)
        if not found:
            raise InvalidInput(f"the mysql source has no table {database}.{table} (or the user cannot see it)")
        return found[0]

    def _split(self, name: str) -> tuple[str, str]:
        database, _, table = name.rpartition(".")
        database = database or self.config.database
        if database not in self.config.offered() or not table:
            raise InvalidInput(
                f"the mysql source has no stream {name!r}; streams are named database.table, "
                f"in {', '.join(self.config.offered())}"
            )
        return database, table

    def _streams(self, databases: list[str], *, table: str | None = None) -> list[StreamInfo]:
        columns = self._columns(databases, table=table)
        where = "t.table_schema IN (" + ", ".join(["%s"] * len(databases)) + ")"
        params: list[Any] = list(databases)
        if table is not None:
            where += " AND t.table_name = %s"
            params.append(table)
        with self._connect() as cur:
            cur.execute(
                "SELECT t.table_schema, t.table_name, t.table_type, t.table_rows, t.data_length "
                f"FROM information_schema.tables t WHERE {where} ORDER BY t.table_schema, t.table_name",
                params,
            )
            tables = cur.fetchall()
            cur.execute(
                "SELECT k.table_schema, k.table_name, k.column_name FROM information_schema.key_column_usage k "
                f"WHERE k.constraint_name = 'PRIMARY' AND {where.replace('t.', 'k.')} "
                "ORDER BY k.table_schema, k.table_name, k.ordinal_position",
                params,
            )
            keys: dict[tuple[str, str], list[str]] = {}
            for db, name, column in cur.fetchall():
                keys.setdefault((db, name), []).append(column)
        streams = []
        for db, name, table_type, rows, size in tables:
            cols = columns.get((db, name), [])
            key = keys.get((db, name), [])
            public = [SourceColumn(c.name, c.column_type, c.nullable) for c in cols]
            streams.append(
                StreamInfo(
                    name=f"{db}.{name}",
                    kind="view" if table_type == "VIEW" else "table",
                    columns=public,
                    primary_key=key,
                    row_estimate=int(rows) if rows is not None else None,
                    size_bytes=int(size) if size is not None else None,
                    cursor_candidates=_cursor_candidates(cols, key),
                )
            )
        return streams

    def _columns(self, databases: list[str], *, table: str | None = None) -> dict[tuple[str, str], list[_Column]]:
        where = "table_schema IN (" + ", ".join(["%s"] * len(databases)) + ")"
        params: list[Any] = list(databases)
        if table is not None:
            where += " AND table_name = %s"
            params.append(table)
        with self._connect() as cur:
            cur.execute(
                "SELECT table_schema, table_name, column_name, data_type, column_type, is_nullable, "
                "numeric_precision, numeric_scale "
                f"FROM information_schema.columns WHERE {where} ORDER BY table_schema, table_name, ordinal_position",
                params,
            )
            found: dict[tuple[str, str], list[_Column]] = {}
            for db, name, column, data_type, column_type, nullable, precision, scale in cur.fetchall():
                found.setdefault((db, name), []).append(
                    _Column(
                        column,
                        str(data_type).lower(),
                        str(column_type).lower(),
                        nullable == "YES",
                        int(precision) if precision is not None else None,
                        int(scale) if scale is not None else None,
                    )
                )
        return found

    # -- reading ------------------------------------------------------------------------------

    def cursor_bound(self, request: ReadRequest, /, *, rows: int) -> Any:
        if not request.cursor_column:
            raise InvalidInput("an incremental read needs a cursor column")
        database, table = self._split(request.stream)
        column = self._cursor_column(database, table, request.cursor_column)
        col = _quote(column.name)
        where, params = f"{col} IS NOT NULL", []
        if request.cursor_after is not None:
            where, params = f"{col} > %s", [_param(request.cursor_after)]
        with self._connect() as cur:
            # The max of the first ``rows`` values is the rows-th value, or the newest when fewer remain.
            cur.execute(
                f"SELECT max({col}) FROM (SELECT {col} FROM {_quote(database)}.{_quote(table)} "
                f"WHERE {where} ORDER BY {col} LIMIT %s) AS batch",
                [*params, max(rows, 1)],
            )
            row = cur.fetchone()
        value = row[0] if row else None
        if isinstance(value, dt.datetime) and column.data_type == "timestamp":
            value = value.replace(tzinfo=dt.UTC)  # the session's zone is +00:00
        return value

    def _cursor_column(self, database: str, table: str, name: str) -> _Column:
        columns = self._columns([database], table=table).get((database, table))
        if not columns:
            raise InvalidInput(f"the mysql source has no table {database}.{table} (or the user cannot see it)")
        found = next((c for c in columns if c.name == name), None)
        if found is None:
            raise InvalidInput(f"cursor column {name!r} is not a column of {database}.{table}")
        return found

    def read(self, request: ReadRequest, /) -> pa.RecordBatchReader:
        try:
            select = self._select(request)
            return self._duckdb().execute(select).to_arrow_reader(100_000)
        except duckdb.Error as exc:
            raise self._translate(exc, request.stream) from exc

    def stage_parquet(self, request: ReadRequest, directory: Path, /) -> None:
        try:
            select = self._select(request)
            self._duckdb().execute(
                f"COPY ({select}) TO {lit(str(directory))} "
                "(FORMAT parquet, COMPRESSION snappy, FILE_SIZE_BYTES '64MB', OVERWRITE_OR_IGNORE true)"
            )
        except duckdb.Error as exc:
            raise self._translate(exc, request.stream) from exc

    def progress(self) -> float | None:
        con = self._duck
        if con is None:
            return None
        try:
            value = con.query_progress()
        except duckdb.Error:
            return None
        return value if value >= 0 else None

    def prepare(self) -> None:
        """Opens the PyMySQL connection, then DuckDB with mysql_scanner and the source attached, in a
        thread, while the run looks up its table's last commit."""
        super().prepare()

    # -- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[pymysql.cursors.Cursor]:
        """A cursor of the source's one PyMySQL connection, opened on first use and again after it
        broke; one caller at a time."""
        with self._control_guard:
            if self._control is None or not self._control.open:
                self._take_failed_ahead()
                self._control = self._open_control()
            try:
                with self._control.cursor() as cur:
                    yield cur
            except pymysql.err.OperationalError as exc:
                code = exc.args[0] if exc.args else None
                if code in (2006, 2013, 2055):  # gone away, lost: reconnect next time
                    with contextlib.suppress(Exception):
                        self._control.close()
                    self._control = None
                    _, advice = diagnose(exc, self._password)
                    raise SourceError(
                        f"lost the connection to {self.config.redacted()}: {advice}", transient=True
                    ) from None
                raise self._query_error(exc) from None
            except pymysql.err.MySQLError as exc:
                raise self._query_error(exc) from None

    def _query_error(self, exc: pymysql.err.MySQLError) -> SourceError:
        problem, advice = diagnose(exc, self._password)
        if problem == "error":
            text = redact(str(exc.args[1] if len(exc.args) > 1 else exc), self._password)
            return SourceError(f"the mysql server refused a query: {text[:300]}")
        return SourceError(f"the mysql server refused a query: {advice}")

    def _open_control(self) -> pymysql.connections.Connection[Any]:
        kwargs: dict[str, Any] = {}
        mode = self.config.ssl_mode
        if mode == "disabled":
            kwargs["ssl_disabled"] = True
        else:
            context = ssl.create_default_context()
            if mode in ("preferred", "required"):
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            elif mode == "verify_ca":
                context.check_hostname = False
            kwargs["ssl"] = context
        try:
            try:
                conn = self._pymysql(**kwargs)
            except pymysql.err.OperationalError as exc:
                # preferred: TLS when the server offers it (PyMySQL has no such mode of its own)
                if mode != "preferred" or "support" not in str(exc):
                    raise
                conn = self._pymysql(ssl_disabled=True)
        except pymysql.err.MySQLError as exc:
            problem, advice = diagnose(exc, self._password)
            raise SourceError(
                f"cannot connect to {self.config.redacted()}: {advice}",
                transient=problem in ("refused", "timeout"),
                problem=problem,
                advice=advice,
            ) from None
        if mode != "disabled":
            with conn.cursor() as cur:
                cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                row = cur.fetchone()
            encrypted = bool(row and row[1])
            if not encrypted and mode != "preferred":
                conn.close()
                advice = f"the server does not offer TLS but ssl_mode is {mode}; use ssl_mode=preferred or enable TLS"
                raise SourceError(f"cannot connect to {self.config.redacted()}: {advice}", problem="ssl", advice=advice)
            self._encrypted = encrypted
        return conn

    def _pymysql(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=self._address,
            port=self.config.port,
            user=self.config.user,
            password=self._password,
            database=self.config.database,
            connect_timeout=self.config.connect_timeout,
            read_timeout=None,
            charset="utf8mb4",
            init_command="SET time_zone = '+00:00'",
            autocommit=True,
            **kwargs,
        )

    def _plain(self) -> bool:
        """Whether the connection is known to carry no TLS, so ConnectorX reads the rows."""
        return self._encrypted is False

    def _open_duckdb(self) -> duckdb.DuckDBPyConnection:
        """DuckDB, with mysql_scanner and the source attached as ``src`` unless the connection is
        known to be plain (ConnectorX reads those); the caller holds ``_guard``."""
        con = packaged_extensions_connection()
        con.execute("SET TimeZone = 'UTC'")
        if self._threads:
            con.execute(f"SET threads = {int(self._threads)}")
        if self._plain():
            con.execute("SET lock_configuration = true")
            self._duck = con
            return con
        load_packaged_extension(con, "mysql_scanner")
        # Exact types (module docstring); no server-side buffering or time limit on long bulk reads.
        con.execute("SET mysql_tinyint1_as_boolean = false")
        con.execute("SET mysql_session_time_zone = '+00:00'")
        con.execute("SET mysql_sql_buffer_result = false")
        con.execute("SET mysql_query_timeout_enabled = false")
        options: dict[str, str | int] = {
            "HOST": self._address,
            "PORT": self.config.port,
            "USER": self.config.user,
            "PASSWORD": self._password,
            "DATABASE": self.config.database,
            "SSL_MODE": self.config.ssl_mode,
        }
        spelled = ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {lit(v)}" for k, v in options.items())
        try:
            con.execute(f"CREATE TEMPORARY SECRET source_login (TYPE mysql, {spelled})")
            con.execute("ATTACH '' AS src (TYPE mysql, SECRET source_login, READ_ONLY)")
        except duckdb.Error as exc:
            con.close()
            _, advice = diagnose(exc, self._password)
            raise SourceError(f"cannot connect to {self.config.redacted()}: {advice}") from None
        con.execute("SET lock_configuration = true")
        self._duck = con
        return con

    def _select(self, request: ReadRequest) -> str:
        """DuckDB SQL reading the requested rows, exactly typed and Delta-storable."""
        database, table = self._split(request.stream)
        columns = self._columns([database], table=table).get((database, table))
        if not columns:
            raise InvalidInput(f"the mysql source has no table {database}.{table} (or the user cannot see it)")
        by_name = {c.name: c for c in columns}
        filters = []
        if request.cursor_column:
            cursor = by_name.get(request.cursor_column)
            if cursor is None:
                raise InvalidInput(f"cursor column {request.cursor_column!r} is not a column of {database}.{table}")
            col = _quote(cursor.name)
            if request.cursor_after is not None:
                filters.append(f"{col} > {_mysql_literal(request.cursor_after)}")
            if request.cursor_upto is not None:
                filters.append(f"{col} <= {_mysql_literal(request.cursor_upto)}")
        extras = [f"{sql_literal(v)} AS {ident(k)}" for k, v in request.extra_columns.items()]
        if self._plain():  # known once the control connection opened, which _columns did
            return self._plain_select(database, table, columns, filters, extras)
        parts = [_server_expression(c) for c in columns]
        query = f"SELECT {', '.join(parts)} FROM {_quote(database)}.{_quote(table)}"
        if filters:
            query += " WHERE " + " AND ".join(filters)
        con = self._duckdb()
        described = con.execute(
            f"DESCRIBE SELECT * FROM mysql_query('src', {lit(query + (' AND' if filters else ' WHERE') + ' 1 = 0')})"
        ).fetchall()
        outer = []
        for name, duck_type, *_ in described:
            column = by_name.get(name)
            outer.append(_duck_expression(name, str(duck_type), column))
        return f"SELECT {', '.join(outer + extras)} FROM mysql_query('src', {lit(query)})"

    def _plain_select(
        self, database: str, table: str, columns: list[_Column], filters: list[str], extras: list[str]
    ) -> str:
        """DuckDB SQL over the rows ConnectorX streams, registered on the DuckDB connection."""
        query = f"SELECT {', '.join(_plain_expression(c) for c in columns)} FROM {_quote(database)}.{_quote(table)}"
        if filters:
            query += " WHERE " + " AND ".join(filters)
        rows = _exact_decimals(self._stream(query, f"{database}.{table}"), columns)
        con = self._duckdb()
        con.register(_ROWS, rows)
        outer = [_landing_expression(c, field.type) for c, field in zip(columns, rows.schema, strict=True)]
        return f"SELECT {', '.join(outer + extras)} FROM {_ROWS}"

    def _stream(self, query: str, stream: str) -> pa.RecordBatchReader:
        """The rows of ``query`` as Arrow batches, read by ConnectorX over a plain connection to the
        vetted address (never a local socket), in the session zone ``+00:00``."""
        host = f"[{self._address}]" if ":" in self._address else self._address
        login = f"{quote(self.config.user, safe='')}:{quote(self._password, safe='')}"
        url = (
            f"mysql://{login}@{host}:{self.config.port}/{quote(self.config.database, safe='')}"
            f"?ssl-mode=disabled&prefer_socket=false&tcp_connect_timeout_ms={self.config.connect_timeout * 1000}"
        )
        try:
            return connectorx.read_sql(
                url,
                query,
                return_type="arrow_stream",
                batch_size=_BATCH_ROWS,
                pre_execution_query=["SET time_zone = '+00:00'"],
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a Rust panic arrives as a BaseException (PanicException)
            raise self._translate(exc, stream) from None

    def _translate(self, exc: BaseException, stream: str) -> SourceError:
        """A failed read (DuckDB's, or ConnectorX's) as a SourceError without the password."""
        if isinstance(exc, duckdb.InterruptException):
            return SourceError(f"reading {stream} was cancelled")
        text = redact(str(exc), self._password).strip()
        code, advice = diagnose(exc, self._password)
        if code != "error":
            return SourceError(f"reading {stream} failed: {advice}", transient=code in ("refused", "timeout"))
        first = text.splitlines()[0] if text else type(exc).__name__
        return SourceError(f"reading {stream} failed: {first[:300]}", transient=True)


def _server_expression(column: _Column) -> str:
    """The column as the MySQL ``SELECT`` returns it (module docstring)."""
    q = _quote(column.name)
    width = re.match(r"bit\((\d+)\)", column.column_type)
    if column.data_type == "bit" and width and int(width.group(1)) > 1:
        return f"CAST({q} AS UNSIGNED) AS {q}"
    if column.data_type == "decimal" and (column.precision or 0) > 38:
        return f"CAST({q} AS CHAR) AS {q}"
    if column.data_type in _SPATIAL:
        return f"ST_AsBinary({q}) AS {q}"
    return q


def _plain_expression(column: _Column) -> str:
    """The column as the MySQL ``SELECT`` streamed by ConnectorX returns it: what it reads natively
    as is, the rest as text (or, for bits, an unsigned integer) that DuckDB casts back exactly."""
    q = _quote(column.name)
    kind = column.data_type
    if kind == "bit":
        return f"CAST({q} AS UNSIGNED) AS {q}"
    if kind in _SPATIAL:
        return f"ST_AsBinary({q}) AS {q}"
    if kind == "decimal":
        # ConnectorX carries decimals as decimal128(38, 10) through a 28-digit decimal: wider ones as text
        scale, precision = column.scale or 0, column.precision or 0
        return q if scale <= 10 and precision - scale <= 18 else f"CAST({q} AS CHAR) AS {q}"
    if kind in _LANDING or kind in _PLAIN_LANDING or kind in _BINARY_TYPES or kind == "timestamp":
        return q
    if kind in _TEXT_TYPES and kind != "json":
        return q
    return f"CAST({q} AS CHAR) AS {q}"  # time (beyond a time of day), json, and types ConnectorX lacks


def _exact_decimals(rows: pa.RecordBatchReader, columns: list[_Column]) -> pa.RecordBatchReader:
    """The stream with each decimal ConnectorX carried as decimal128(38, 10) back at its column's own
    precision and scale, batch by batch, by Arrow: DuckDB's cast of a DECIMAL(38,10) to a narrower
    one costs 3 s per million values, Arrow's 0.06 s (a safe cast: it fails rather than round)."""
    fields = list(rows.schema)
    for i, (column, field) in enumerate(zip(columns, fields, strict=True)):
        if pa.types.is_decimal(field.type) and column.data_type == "decimal" and (column.precision or 0) <= 38:
            fields[i] = field.with_type(pa.decimal128(column.precision or 10, column.scale or 0))
    schema = pa.schema(fields)
    if schema.equals(rows.schema):
        return rows
    return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in rows))


def _landing_type(column: _Column) -> str:
    """The DuckDB type a column lands as (module docstring)."""
    kind = column.data_type
    if kind in _LANDING:
        signed, unsigned = _LANDING[kind]
        return unsigned if "unsigned" in column.column_type else signed
    if kind in _PLAIN_LANDING:
        return _PLAIN_LANDING[kind]
    if kind == "bit":
        width = re.match(r"bit\((\d+)\)", column.column_type)
        bits = int(width.group(1)) if width else 1
        return "BOOLEAN" if bits == 1 else "BIGINT" if bits < 64 else "DECIMAL(20,0)"
    if kind == "decimal" and (column.precision or 0) <= 38:
        return f"DECIMAL({column.precision or 10},{column.scale or 0})"
    if kind == "timestamp":
        return "TIMESTAMPTZ"  # the session's zone is +00:00: the value is the UTC instant
    if kind in _BINARY_TYPES or kind in _SPATIAL:
        return "BLOB"
    return "VARCHAR"


def _landing_expression(column: _Column, arrived: pa.DataType) -> str:
    q = ident(column.name)
    target = _landing_type(column)
    value = q
    if target == "VARCHAR" and (pa.types.is_binary(arrived) or pa.types.is_large_binary(arrived)):
        value = f"decode({q})"  # text ConnectorX did not recognise as UTF-8 (a binary collation)
    return f"CAST({value} AS {target}) AS {q}"


def _duck_expression(name: str, duck_type: str, column: _Column | None) -> str:
    """The column as it lands: text that arrived as bytes decoded, timestamps made instants, the rest
    cast to what Delta stores."""
    q = ident(name)
    if column is not None and column.data_type in _TEXT_TYPES and duck_type.upper() == "BLOB":
        return f"decode({q}) AS {q}"
    if column is not None and column.data_type == "timestamp":
        return f"CAST({q} AS TIMESTAMPTZ) AS {q}"
    target = storable_cast(duck_type)
    return f"CAST({q} AS {target}) AS {q}" if target else q


def _param(value: Any) -> Any:
    """A cursor value as PyMySQL sends it: instants as UTC wall time (the session's zone)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _mysql_literal(value: Any) -> str:
    """A MySQL literal for a cursor value, safe whatever the server's sql_mode."""
    value = _param(value)
    if isinstance(value, bool):
        raise InvalidInput("a boolean column cannot be a cursor")
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    return f"CONVERT(X'{str(value).encode().hex()}' USING utf8mb4)"


def _cursor_candidates(columns: list[_Column], key: list[str]) -> list[str]:
    typed = [c for c in columns if c.data_type in _CURSOR_TYPES]
    named = [c.name for c in typed if _CURSOR_NAMES.search(c.name)]
    stamps = [c.name for c in typed if c.data_type in ("timestamp", "datetime", "date") and c.name not in named]
    keys = [k for k in key if any(c.name == k and c.data_type in ("int", "bigint", "mediumint") for c in columns)]
    return named + stamps + keys


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
