"""Source kinds by name: what a connection of each kind stores, and how it becomes a Source.

A kind is one :class:`SourceKind` in :data:`SOURCE_KINDS`:

- ``config``: its settings as a pydantic model, validated when the connection is stored and again
  when it is opened; the fields named in ``secrets`` are stored encrypted, the others in clear;
- ``endpoint``: the host and port the source will connect to, which the service vets against
  server-side request forgery (:mod:`servicetsunami.security.ssrf`) before anything connects;
- ``factory``: builds the :class:`~servicetsunami.connectors.base.Source` from the validated config
  (secrets decrypted, in memory only) and a :class:`SourceContext` the service fills in. Factories
  import their drivers when called, so a kind costs nothing until a connection of it is opened.

A new kind is its package under ``connectors/`` and one
entry here; the services that store, test, discover and sync connections need no change.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from servicetsunami.connectors.base import Source
from servicetsunami.connectors.files.config import FilesConfig
from servicetsunami.connectors.mysql.config import MySQLConfig
from servicetsunami.connectors.postgres.config import PostgresConfig
from servicetsunami.connectors.rest.config import RestConfig
from servicetsunami.connectors.salesforce.config import SalesforceConfig
from servicetsunami.connectors.sheets.config import GoogleUrls, SheetsConfig
from servicetsunami.errors import InvalidInput, NotSupported

if TYPE_CHECKING:
    from servicetsunami.connectors.files.limits import StructureLimits
    from servicetsunami.connectors.files.source import FileStager

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def _no_host_check(host: str, port: int) -> list[str]:
    raise NotSupported("this source reaches hosts named at run time, and no host check is available here")


def _no_volume(path: str) -> Path:
    raise NotSupported("this source reads files of a volume, and none is available here")


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a factory may use besides the connection's config; the service that opens it fills it in."""

    hostaddr: str | None = None  # the address that passed the host check: connect to it, not the name again
    threads: int = 0  # DuckDB threads for sources that read through DuckDB (0: its default)
    volume_file: Callable[[str], Path] = field(default=_no_volume)  # a file of the tenant's landing volume
    # Files: the structural limits checked before a reader opens a file, and the bounded place
    # (a limited child process) that writes a file's rows as Parquet; None: checks off, in process.
    file_limits: StructureLimits | None = None
    file_stager: FileStager | None = None
    # the host check for hosts met while reading (next URLs, redirects, token endpoints): their addresses
    vet_host: Callable[[str, int], list[str]] = field(default=_no_host_check)
    google: GoogleUrls = field(default_factory=GoogleUrls)  # where Google's APIs are (the operator's setting)


@functools.cache
def _schema(config: type[BaseModel], secrets: tuple[str, ...]) -> dict[str, Any]:
    schema = config.model_json_schema()
    for name in secrets:
        prop = schema.get("properties", {}).get(name)
        if isinstance(prop, dict):
            prop["writeOnly"] = True
    return schema


@dataclass(frozen=True, slots=True)
class SourceKind(Generic[ConfigT]):
    name: str
    config: type[ConfigT]
    factory: Callable[[ConfigT, SourceContext], Source]
    secrets: tuple[str, ...] = ()
    endpoint: Callable[[ConfigT], tuple[str, int] | None] = lambda _config: None
    description: str = ""

    def config_schema(self) -> dict[str, Any]:
        """The JSON schema of the kind's settings, secrets included and marked ``writeOnly`` (a copy
        of one made once per kind: pydantic takes about 15 ms to make each)."""
        return copy.deepcopy(_schema(self.config, tuple(self.secrets)))

    def parse(self, data: Mapping[str, Any], secrets: Mapping[str, str] | None = None) -> ConfigT:
        """The config from its stored (or given) fields and its decrypted secrets;
        :class:`~servicetsunami.errors.InvalidInput` naming each field that is wrong."""
        values = {**data, **{k: SecretStr(v) for k, v in (secrets or {}).items()}}
        try:
            return self.config.model_validate(values)
        except ValidationError as exc:
            raise InvalidInput(_validation_message(exc)) from None

    def public(self, config: ConfigT) -> dict[str, Any]:
        """Everything but the secrets: what is stored in clear and shown."""
        return config.model_dump(mode="json", exclude=set(self.secrets))

    def secret_values(self, config: ConfigT) -> dict[str, str]:
        """The secrets that are set, in clear, for encryption; never logged or returned."""
        values = {name: getattr(config, name) for name in self.secrets}
        return {
            name: value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            for name, value in values.items()
            if value is not None
        }


def _postgres(config: PostgresConfig, context: SourceContext) -> Source:
    from servicetsunami.connectors.postgres.source import PostgresSource

    return PostgresSource(config, hostaddr=context.hostaddr, threads=context.threads)


def _mysql(config: MySQLConfig, context: SourceContext) -> Source:
    from servicetsunami.connectors.mysql.source import MySQLSource

    return MySQLSource(config, hostaddr=context.hostaddr, threads=context.threads)


def _rest(config: RestConfig, context: SourceContext) -> Source:
    from servicetsunami.connectors.rest.source import RestSource

    return RestSource(config, vet=context.vet_host, threads=context.threads)


def _sheets(config: SheetsConfig, context: SourceContext) -> Source:
    from servicetsunami.connectors.sheets.source import SheetsSource

    return SheetsSource(config, urls=context.google, vet=context.vet_host)


def _salesforce(config: SalesforceConfig, context: SourceContext) -> Source:
    from servicetsunami.connectors.salesforce.source import SalesforceSource

    return SalesforceSource(config, vet=context.vet_host)


def _files(config: FilesConfig, context: SourceContext) -> Source:
    from servicetsunami.connectors.files.source import FileSource

    return FileSource(
        context.volume_file(config.path),
        file_name=PurePosixPath(config.path).name,
        options=config.options(),
        limits=context.file_limits,
        stager=context.file_stager,
    )


SOURCE_KINDS: dict[str, SourceKind[Any]] = {
    "postgres": SourceKind(
        "postgres",
        PostgresConfig,
        _postgres,
        secrets=("password",),
        endpoint=lambda c: (c.host, c.port),
        description="A PostgreSQL database: its tables and views, synced in full or incrementally",
    ),
    "mysql": SourceKind(
        "mysql",
        MySQLConfig,
        _mysql,
        secrets=("password",),
        endpoint=lambda c: (c.host, c.port),
        description="A MySQL or MariaDB database: its tables and views, synced in full or incrementally",
    ),
    "rest": SourceKind(
        "rest",
        RestConfig,
        _rest,
        secrets=("token", "password", "api_key", "client_secret"),
        endpoint=lambda c: c.endpoint(),
        description="A REST API described by its resources (paths, auth, pagination, record selector, incremental "
        "cursor, parent/child): one stream per resource",
    ),
    "sheets": SourceKind(
        "sheets",
        SheetsConfig,
        _sheets,
        secrets=("service_account_key",),
        description="A Google Sheets spreadsheet (service account key, or a public sheet's CSV export): a stream per "
        "sheet or A1 range, header row detected, values typed (dates from serial numbers)",
    ),
    "salesforce": SourceKind(
        "salesforce",
        SalesforceConfig,
        _salesforce,
        secrets=("client_secret", "refresh_token"),
        endpoint=lambda c: c.endpoint(),
        description="A Salesforce org through its REST API (OAuth2 client credentials or refresh token): a stream "
        "per object, typed from describe, incremental on SystemModstamp, deletes with queryAll",
    ),
    "files": SourceKind(
        "files",
        FilesConfig,
        _files,
        description="A file of the landing volume (CSV/TSV, Excel, Parquet, JSON, NDJSON): a stream per file or sheet",
    ),
}


def source_kind(name: str, /) -> SourceKind[Any]:
    """The kind called ``name``; :class:`~servicetsunami.errors.NotSupported` for one this server
    does not have."""
    try:
        return SOURCE_KINDS[name]
    except KeyError:
        raise NotSupported(
            f"connections of kind {name!r} are not supported here; known kinds: {', '.join(sorted(SOURCE_KINDS))}"
        ) from None


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False))
