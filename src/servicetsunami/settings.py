"""Settings: one pydantic-settings model, environment prefix ``TSUNAMI_``, every field described.

Settings are built once in an entry point (``Settings()``) and passed in; nothing reads them from an
import-time global. Nested models use ``__`` in the environment (``TSUNAMI_QUERY__MAX_ROWS=500``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class QuerySettings(BaseModel):
    """Caps on what one query may return or spend. Callers may lower them, never raise them."""

    max_rows: int = Field(1000, ge=1, description="Most rows a query returns; more are cut with truncated=true.")
    max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Most bytes of Arrow data a query returns before it is cut."
    )
    timeout_seconds: float = Field(60.0, gt=0, description="A query running longer is interrupted.")
    threads: int = Field(0, ge=0, description="DuckDB threads for queries; 0 means one per core.")
    memory_limit: str = Field("", description="DuckDB memory limit for queries (e.g. '4GB'); empty = DuckDB's.")


class IngestSettings(BaseModel):
    """How uploaded files are read."""

    max_upload_bytes: int = Field(1024**3, ge=1, description="Largest file accepted by upload_file (decoded size).")
    batch_rows: int = Field(122_880, ge=1024, description="Rows per Arrow batch streamed to the table writer.")


class McpSettings(BaseModel):
    """The MCP door."""

    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra Origin values accepted on /mcp besides the server's own host (browsers send one).",
    )


class Settings(BaseSettings):
    """Every knob of the service. Environment variables start with ``TSUNAMI_``."""

    model_config = SettingsConfigDict(env_prefix="TSUNAMI_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    home: Path = Field(Path(".tsunami"), description="Data folder: system store, lakehouse, keys.")
    database_url: str = Field("", description="System store URL (SQLAlchemy). Empty means SQLite at <home>/tsunami.db.")
    engine: Literal["local"] = Field("local", description="Lakehouse engine.")
    lakehouse_root: Path | None = Field(
        None, description="Where the local engine keeps catalogs. Empty means <home>/lakehouse."
    )
    catalog_prefix: str = Field(
        "tenant_", pattern=r"^[a-z][a-z0-9_]{0,20}$", description="Prefix of every tenant catalog name."
    )
    default_tenant: str = Field("default", description="Slug of the tenant created on first start in embedded mode.")
    host: str = Field("127.0.0.1", description="Address `tsunami serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `tsunami serve` listens on.")
    public_url: str = Field("", description="URL clients use to reach the server; empty = http://host:port.")
    api_key: str = Field("", description="API key used by `tsunami mcp` (stdio) and the CLI to pick the principal.")
    log_level: str = Field("INFO", description="Python logging level for entry points.")
    query: QuerySettings = Field(default_factory=QuerySettings, description="Query caps.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="File ingestion.")
    mcp: McpSettings = Field(default_factory=McpSettings, description="MCP door.")

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_lakehouse_root(self) -> Path:
        root = self.lakehouse_root or (self.resolved_home / "lakehouse")
        return root.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / 'tsunami.db'}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
