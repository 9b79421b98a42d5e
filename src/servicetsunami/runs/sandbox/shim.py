"""The kernel's Databricks environment: ``spark``, ``dbutils``, ``display`` and the cell magics.

Imported by every sandboxed kernel at start (:data:`~.kernels.SHIM_LINE`). Nothing here touches
files or the network: every read and write is a request over the unix socket named by
``TSUNAMI_BRIDGE`` to the service, which answers with the rights of the run's principal (the SQL
guard, tenancy, caps, PII masking).

``spark.sql`` and ``spark.table`` return lazy DataFrames: each method wraps the SQL of its parent
(``filter`` adds a WHERE around it, ``groupBy().agg`` a GROUP BY ...), and only ``count``,
``collect``, ``toPandas``, ``show``, ``display`` and ``write`` send a statement. Column arguments
are SQL expressions written as text (``df.filter("amount > 10")``, ``df.select("region", "amount * 2
AS double")``).
"""

from __future__ import annotations

import html
import io
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from servicetsunami.runs.sandbox.wire import BridgeClient

TABLE_MIME = "application/vnd.servicetsunami.table+json"
EXIT_MIME = "application/vnd.servicetsunami.exit+json"
VEGA_MIME = "application/vnd.vegalite.v5+json"
DISPLAY_ROWS = 1000
_MAGICS = ("md", "md-sandbox", "sql", "python", "scala", "r", "sh", "fs", "run", "pip", "conda")


class ServiceError(Exception):
    """The service refused a request (the message says why; ``code`` is its error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code


class NotebookExit(Exception):  # named after what Databricks does, not an error
    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


_client: BridgeClient | None = None


def _call(op: str, payload: bytes = b"", /, **args: Any) -> tuple[dict[str, Any], bytes]:
    global _client
    if _client is None:
        path = os.environ.get("TSUNAMI_BRIDGE")
        if not path:
            raise ServiceError("not_supported", "this kernel has no connection to the lakehouse")
        _client = BridgeClient(path)
    header, data = _client.call(op, payload, **args)
    if not header.get("ok"):
        raise ServiceError(str(header.get("code", "error")), str(header.get("message", "the service refused")))
    return header, data


# -- DataFrames ------------------------------------------------------------------------------------


class Row(tuple):  # type: ignore[type-arg]  # a tuple of any values, like pyspark's Row
    __fields__: tuple[str, ...] = ()

    def __new__(cls, fields: Sequence[str], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row.__fields__ = tuple(fields)
        return row

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self.__fields__.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.__fields__.index(key))
        return tuple.__getitem__(self, key)

    def asDict(self) -> dict[str, Any]:  # pyspark's name
        return dict(zip(self.__fields__, self, strict=True))

    def __repr__(self) -> str:
        return "Row(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.__fields__, self, strict=True)) + ")"


class Result:
    def __init__(self, header: dict[str, Any]) -> None:
        self.columns: list[dict[str, str]] = header["columns"]
        self.rows: list[list[Any]] = header["rows"]
        self.truncated: bool = bool(header.get("truncated"))
        self.hint: str | None = header.get("hint")

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.columns]


def _query(sql: str, *, max_rows: int | None = None) -> Result:
    header, _ = _call("sql", statement=sql, max_rows=max_rows)
    result = Result(header)
    if result.truncated and result.hint:
        print(f"note: {result.hint}")
    return result


def _strip(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


class DataFrame:
    """A lazy query; see the module docstring for the supported methods."""

    def __init__(self, sql: str) -> None:
        self._sql = _strip(sql)

    def _wrap(self, template: str) -> DataFrame:
        return DataFrame(template.format(src=f"({self._sql}) AS _t"))

    @property
    def sql_text(self) -> str:
        return self._sql

    @property
    def columns(self) -> list[str]:
        return _query(f"SELECT * FROM ({self._sql}) AS _t LIMIT 0").names

    @property
    def dtypes(self) -> list[tuple[str, str]]:
        return [(c["name"], c["type"]) for c in _query(f"SELECT * FROM ({self._sql}) AS _t LIMIT 0").columns]

    def filter(self, condition: str) -> DataFrame:
        return self._wrap("SELECT * FROM {src} WHERE " + _expr(condition))

    where = filter

    def select(self, *cols: str | Sequence[str]) -> DataFrame:
        return self._wrap("SELECT " + ", ".join(_exprs(cols)) + " FROM {src}")

    selectExpr = select  # pyspark's name

    def limit(self, n: int) -> DataFrame:
        return self._wrap("SELECT * FROM {src} LIMIT " + str(int(n)))

    def orderBy(self, *cols: str | Sequence[str], ascending: bool = True) -> DataFrame:
        order = "" if ascending else " DESC"
        return self._wrap("SELECT * FROM {src} ORDER BY " + ", ".join(c + order for c in _exprs(cols)))

    sort = orderBy

    def distinct(self) -> DataFrame:
        return self._wrap("SELECT DISTINCT * FROM {src}")

    def withColumn(self, name: str, expression: str) -> DataFrame:
        return self._wrap(f"SELECT *, {_expr(expression)} AS `{_name(name)}` FROM {{src}}")

    def groupBy(self, *cols: str | Sequence[str]) -> GroupedData:
        return GroupedData(self, _exprs(cols))

    groupby = groupBy

    def agg(self, *exprs: str | dict[str, str]) -> DataFrame:
        return GroupedData(self, []).agg(*exprs)

    def count(self) -> int:
        return int(_query(f"SELECT count(*) AS n FROM ({self._sql}) AS _t").rows[0][0])

    def collect(self) -> list[Row]:
        result = _query(self._sql)
        return [Row(result.names, r) for r in result.rows]

    def take(self, n: int) -> list[Row]:
        return self.limit(n).collect()

    def first(self) -> Row | None:
        rows = self.take(1)
        return rows[0] if rows else None

    head = first

    def toPandas(self) -> Any:
        import pandas as pd

        result = _query(self._sql)
        return pd.DataFrame(result.rows, columns=result.names)

    def show(self, n: int = 20, truncate: bool | int = True) -> None:
        result = _query(f"SELECT * FROM ({self._sql}) AS _t LIMIT {int(n) + 1}")
        width = 20 if truncate is True else (int(truncate) if truncate else 0)
        print(_text_table(result.names, result.rows[:n], width=width), end="")
        if len(result.rows) > n:
            print(f"only showing top {n} rows")

    def printSchema(self) -> None:
        print("root")
        for name, kind in self.dtypes:
            print(f" |-- {name}: {kind}")

    @property
    def write(self) -> DataFrameWriter:
        return DataFrameWriter(self)

    def createOrReplaceTempView(self, name: str) -> None:
        _views[_name(name)] = self._sql

    def __repr__(self) -> str:
        try:
            return "DataFrame[" + ", ".join(f"{n}: {t}" for n, t in self.dtypes) + "]"
        except Exception:
            return "DataFrame[...]"


_views: dict[str, str] = {}


class GroupedData:
    def __init__(self, df: DataFrame, keys: list[str]) -> None:
        self._df = df
        self._keys = keys

    def agg(self, *exprs: str | dict[str, str]) -> DataFrame:
        parts: list[str] = []
        for expr in exprs:
            if isinstance(expr, dict):
                parts += [f"{fn}({col}) AS `{fn}({col})`" for col, fn in expr.items()]
            else:
                parts.append(_expr(expr))
        if not parts:
            raise ValueError("agg needs at least one aggregate, like {'amount': 'sum'} or 'sum(amount) AS total'")
        keys = ", ".join(self._keys)
        select = ", ".join([*self._keys, *parts])
        group = f" GROUP BY {keys}" if keys else ""
        return self._df._wrap(f"SELECT {select} FROM {{src}}{group}")

    def count(self) -> DataFrame:
        return self.agg("count(*) AS count")

    def sum(self, *cols: str) -> DataFrame:
        return self.agg(*(f"sum({c}) AS `sum({c})`" for c in cols))

    def avg(self, *cols: str) -> DataFrame:
        return self.agg(*(f"avg({c}) AS `avg({c})`" for c in cols))

    mean = avg

    def min(self, *cols: str) -> DataFrame:
        return self.agg(*(f"min({c}) AS `min({c})`" for c in cols))

    def max(self, *cols: str) -> DataFrame:
        return self.agg(*(f"max({c}) AS `max({c})`" for c in cols))


class DataFrameWriter:
    def __init__(self, df: DataFrame) -> None:
        self._df = df
        self._mode = "error"

    def mode(self, mode: str) -> DataFrameWriter:
        self._mode = mode
        return self

    def format(self, _: str) -> DataFrameWriter:  # tables are Delta whatever is asked
        return self

    def option(self, *_: Any) -> DataFrameWriter:
        return self

    def saveAsTable(self, name: str) -> None:
        header, _ = _call("save_table", name=name, statement=self._df.sql_text, mode=self._mode)
        print(f"wrote {header.get('rows')} rows to {header.get('table')} (version {header.get('version')})")


def _exprs(cols: Iterable[str | Sequence[str]]) -> list[str]:
    out: list[str] = []
    for col in cols:
        if isinstance(col, str):
            out.append(_expr(col))
        else:
            out += [_expr(c) for c in col]
    return out


def _expr(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError("this DataFrame takes SQL expressions as text, like 'amount > 10' or \"region\"")
    return text


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ValueError(f"{name!r} is not a plain name")
    return name


def _with_views(sql: str) -> str:
    if not _views:
        return sql
    ctes = ", ".join(f"`{k}` AS ({v})" for k, v in _views.items())
    return f"WITH {ctes} {sql}" if not sql.lstrip().upper().startswith("WITH ") else sql


class SparkSession:
    """``spark``: the entry point a Databricks notebook expects."""

    def sql(self, statement: str, args: dict[str, Any] | None = None) -> DataFrame:
        if args:
            raise NotImplementedError("spark.sql(args=...) is not supported here; write the values in the SQL")
        return DataFrame(_with_views(_strip(statement)))

    def table(self, name: str) -> DataFrame:
        return DataFrame(f"SELECT * FROM {name}")

    @property
    def read(self) -> SparkSession:
        return self

    def __repr__(self) -> str:
        return "<SparkSession: ServiceTsunami lakehouse>"


# -- dbutils ---------------------------------------------------------------------------------------


class Widgets:
    def __init__(self) -> None:
        self._params: dict[str, str] = {}
        self._defaults: dict[str, str] = {}

    def _set(self, params: dict[str, Any]) -> None:
        self._params.update({str(k): str(v) for k, v in params.items()})

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:
        self._defaults[name] = str(defaultValue)

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self._defaults[name] = str(defaultValue)

    combobox = dropdown

    def multiselect(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:
        self._defaults[name] = str(defaultValue)

    def get(self, name: str) -> str:
        if name in self._params:
            return self._params[name]
        if name in self._defaults:
            return self._defaults[name]
        raise ValueError(f"no widget or parameter named {name!r}")

    getArgument = get

    def getAll(self) -> dict[str, str]:
        return {**self._defaults, **self._params}

    def remove(self, name: str) -> None:
        self._defaults.pop(name, None)

    def removeAll(self) -> None:
        self._defaults.clear()


class FileInfo(tuple):  # type: ignore[type-arg]
    def __new__(cls, path: str, name: str, size: int, modificationTime: int) -> FileInfo:
        return super().__new__(cls, (path, name, size, modificationTime))

    path = property(lambda self: self[0])
    name = property(lambda self: self[1])
    size = property(lambda self: self[2])
    modificationTime = property(lambda self: self[3])

    def __repr__(self) -> str:
        return f"FileInfo(path={self[0]!r}, name={self[1]!r}, size={self[2]}, modificationTime={self[3]})"


class Fs:
    """``dbutils.fs`` over the tenant's volumes (``/Volumes/<catalog>/<schema>/<volume>/...``)."""

    def ls(self, path: str) -> list[FileInfo]:
        header, _ = _call("fs_ls", path=path)
        return [FileInfo(f["path"], f["name"], f["size"], f["modificationTime"]) for f in header["files"]]

    def head(self, file: str, maxBytes: int = 65536) -> str:
        _, data = _call("fs_head", path=file, max_bytes=int(maxBytes))
        return data.decode("utf-8", "replace")

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        _call("fs_put", contents.encode("utf-8"), path=file, overwrite=bool(overwrite))
        return True

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        if recurse:
            raise NotImplementedError("dbutils.fs.cp(recurse=True) is not supported here; copy file by file")
        _call("fs_cp", source=from_, target=to)
        return True

    def rm(self, file: str, recurse: bool = False) -> bool:
        header, _ = _call("fs_rm", path=file, recurse=bool(recurse))
        return bool(header.get("removed"))

    def mkdirs(self, dir: str) -> bool:  # folders exist as soon as a file is in them
        return True


class NotebookUtils:
    def exit(self, value: Any) -> None:
        raise NotebookExit(str(value))

    def run(self, path: str, timeout_seconds: int = 0, arguments: dict[str, Any] | None = None) -> str:
        raise NotImplementedError("dbutils.notebook.run is not supported here; use %run ./other to include a notebook")


class DBUtils:
    def __init__(self) -> None:
        self.widgets = Widgets()
        self.fs = Fs()
        self.notebook = NotebookUtils()

    def help(self) -> None:
        print("dbutils.widgets (text, dropdown, get, getAll), dbutils.fs (ls, head, put, cp, rm),")
        print("dbutils.notebook.exit(value)")


# -- display ---------------------------------------------------------------------------------------


def _text_table(names: list[str], rows: list[list[Any]], *, width: int = 20) -> str:
    def cell(v: Any) -> str:
        s = "null" if v is None else str(v)
        return s[: width - 3] + "..." if width and len(s) > width else s

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    line = "+" + "+".join("-" * w for w in widths) + "+\n"
    out = io.StringIO()
    out.write(line + "|" + "|".join(n.rjust(w) for n, w in zip(names, widths, strict=True)) + "|\n" + line)
    for r in cells:
        out.write("|" + "|".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) + "|\n")
    out.write(line)
    return out.getvalue()


def _table_bundle(names: list[str], types: list[str], rows: list[list[Any]], truncated: bool) -> dict[str, Any]:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    bundle: dict[str, Any] = {
        TABLE_MIME: {"columns": names, "types": types, "rows": rows, "truncated": truncated},
        "text/plain": _text_table(names, rows[:50]),
        "text/html": f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
    }
    chart = _chart(names, types, rows)
    if chart is not None:
        bundle[VEGA_MIME] = chart
    return bundle


_NUMERIC = ("INT", "BIGINT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL")


def _chart(names: list[str], types: list[str], rows: list[list[Any]]) -> dict[str, Any] | None:
    """A bar chart when the result is a label and a number (up to 50 rows): one fits there."""
    if len(names) != 2 or not rows or len(rows) > 50:
        return None
    label, value = types
    if label.upper().startswith(_NUMERIC) or not value.upper().startswith(_NUMERIC):
        return None
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [dict(zip(names, r, strict=True)) for r in rows]},
        "mark": "bar",
        "encoding": {
            "x": {"field": names[0], "type": "nominal"},
            "y": {"field": names[1], "type": "quantitative"},
        },
    }


def display(obj: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(obj, DataFrame):
        result = _query(f"SELECT * FROM ({obj.sql_text}) AS _t LIMIT {DISPLAY_ROWS + 1}")
        rows = result.rows[:DISPLAY_ROWS]
        bundle = _table_bundle(result.names, [c["type"] for c in result.columns], rows, len(result.rows) > DISPLAY_ROWS)
        ipy_display(bundle, raw=True)
        return
    if type(obj).__name__ == "DataFrame" and hasattr(obj, "to_dict"):  # pandas
        frame = obj.head(DISPLAY_ROWS)
        rows = json.loads(frame.to_json(orient="values", date_format="iso"))
        types = ["DOUBLE" if str(t).startswith(("int", "float")) else "STRING" for t in frame.dtypes]
        ipy_display(_table_bundle([str(c) for c in frame.columns], types, rows, len(obj) > DISPLAY_ROWS), raw=True)
        return
    ipy_display(obj, *args, **kwargs)


# -- cells -----------------------------------------------------------------------------------------


def run_cell_magic(magic: str, body: str) -> Any:
    """What a ``%magic`` cell does (the input transformer turns such a cell into a call of this)."""
    if magic in ("md", "md-sandbox"):
        ipy_display(_ipython_display().Markdown(body))
        return None
    if magic == "sql":
        statements = [s for s in _split_sql(body) if s.strip()]
        df = None
        for statement in statements:
            df = spark.sql(statement)
        if df is not None:
            display(df)
        return None
    if magic == "python":
        ip = _ipython()
        exec(compile(_python(ip, body), "<%python cell>", "exec"), ip.user_ns)
        return None
    if magic == "fs":
        return _fs_magic(body)
    if magic == "run":
        _run_notebook(body.strip())
        return None
    if magic == "sh":
        import subprocess

        done = subprocess.run(["/bin/sh", "-c", body], capture_output=True, text=True, check=False)
        print(done.stdout, end="")
        if done.returncode:
            raise RuntimeError(f"%sh exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        return None
    if magic in ("pip", "conda"):
        raise NotImplementedError(
            f"%{magic} is not available: the sandbox has no network; the kernel's packages are fixed"
        )
    raise NotImplementedError(f"%{magic} cells are not supported here (Python and SQL run)")


def _split_sql(body: str) -> list[str]:
    try:
        from sqlglot.tokenizer_core import TokenType
        from sqlglot.tokens import Tokenizer

        tokens = Tokenizer(dialect="databricks").tokenize(body)
    except Exception:
        return [body]
    parts, start = [], 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            parts.append(body[start : token.start])
            start = token.end + 1
    parts.append(body[start:])
    return parts


def _fs_magic(body: str) -> Any:
    words = body.split()
    if not words:
        raise ValueError("%fs needs a command: ls, head, cp, rm, put")
    cmd, args = words[0], words[1:]
    if cmd == "ls":
        files = dbutils.fs.ls(args[0] if args else "/Volumes")
        display_rows = [[f.path, f.name, f.size, f.modificationTime] for f in files]
        types = ["STRING", "STRING", "BIGINT", "BIGINT"]
        ipy_display(_table_bundle(["path", "name", "size", "modificationTime"], types, display_rows, False), raw=True)
        return None
    if cmd == "head":
        print(dbutils.fs.head(args[0]))
        return None
    if cmd == "rm":
        return dbutils.fs.rm(args[-1], recurse="-r" in args)
    if cmd == "cp":
        return dbutils.fs.cp(args[0], args[1])
    raise NotImplementedError(f"%fs {cmd} is not supported here (ls, head, cp, rm)")


def _run_notebook(target: str) -> None:
    if not target:
        raise ValueError("%run needs a notebook path, like %run ./helpers")
    header, _ = _call("notebook", path=target.split()[0])
    ip = _ipython()
    for source in header["cells"]:  # SQL cells come marked with %sql
        exec(compile(_python(ip, source), f"<%run {target}>", "exec"), ip.user_ns)


def _python(ip: Any, source: str) -> str:
    """``source`` as Python (its magics turned into calls), whatever the notebook's language."""
    global _language
    saved, _language = _language, "python"
    try:
        return str(ip.transform_cell(source))
    finally:
        _language = saved


def _transform(lines: list[str]) -> list[str]:
    if not lines:
        return lines
    first = lines[0].rstrip("\n")
    magic = None
    if first.startswith("%") and not first.startswith("%%"):
        name = first[1:].split(None, 1)[0] if first[1:].strip() else ""
        if name in _MAGICS:
            magic = name
    elif first.startswith("%%sql"):
        magic = "sql"
    if magic is None:
        if _language == "sql" and "".join(lines).strip():
            return [f"__tsunami_cell__({'sql'!r}, {''.join(lines)!r})\n"]
        return lines
    text = "".join(lines)
    head, _, rest = text.partition("\n")
    inline = head.lstrip("%").split(None, 1)[1] if len(head.lstrip("%").split(None, 1)) > 1 else ""
    body = (inline + ("\n" if inline and rest else "") + rest) if inline else rest
    return [f"__tsunami_cell__({magic!r}, {body!r})\n"]


def ipy_display(obj: Any, *args: Any, **kwargs: Any) -> None:
    _ipython_display().display(obj, *args, **kwargs)


def _ipython_display() -> Any:
    import IPython.display

    return IPython.display


def _ipython() -> Any:
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None:
        raise RuntimeError("not inside IPython")
    return ip


def _on_exit(shell: Any, etype: Any, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    exit_value = value.value if isinstance(value, NotebookExit) else str(value)
    ipy_display({EXIT_MIME: {"value": exit_value}, "text/plain": f"Notebook exited: {exit_value}"}, raw=True)


spark = SparkSession()
dbutils = DBUtils()
_language = "python"


def install() -> None:
    """Put ``spark``, ``dbutils``, ``display`` and the magics into the kernel's namespace."""
    global _language
    ip = _ipython()
    _language = os.environ.get("TSUNAMI_NOTEBOOK_LANGUAGE", "python")
    params = os.environ.get("TSUNAMI_PARAMETERS")
    if params:
        dbutils.widgets._set(json.loads(params))
    ip.user_ns.update(
        {
            "spark": spark,
            "dbutils": dbutils,
            "display": display,
            "getArgument": dbutils.widgets.get,
            "__tsunami_cell__": run_cell_magic,
        }
    )
    ip.input_transformers_cleanup.append(_transform)
    ip.set_custom_exc((NotebookExit,), _on_exit)
