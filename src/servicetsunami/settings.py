"""Settings: one pydantic-settings model, environment prefix ``TSUNAMI_``, every field described.

Settings are built once in an entry point (``Settings()``) and passed in; nothing reads them from an
import-time global. Nested models use ``__`` in the environment (``TSUNAMI_QUERY__MAX_ROWS=500``).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from servicetsunami.config_file import YamlConfigSource


class QuerySettings(BaseModel):
    """Caps on what one query may return or spend. Callers may lower them, never raise them."""

    max_rows: int = Field(1000, ge=1, description="Most rows a query returns; more are cut with truncated=true.")
    max_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Most bytes of Arrow data a query returns before it is cut."
    )
    timeout_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "A statement that answers a caller (a query, a transform's preview, a gold view's check, a "
            "profile, the AI tools' checks) running longer is interrupted (query_timeout)."
        ),
    )
    write_timeout_seconds: float = Field(
        600.0,
        gt=0,
        description=(
            "A statement that builds a table (silver transform, gold table create or refresh) running "
            "longer is interrupted (query_timeout) and writes nothing."
        ),
    )
    threads: int = Field(0, ge=0, description="DuckDB threads for queries; 0 means one per core.")
    memory_limit: str = Field(
        "2GB",
        description=(
            "DuckDB memory limit of each tenant catalog's database (local engine), e.g. '4GB'; empty means "
            "DuckDB's own (80% of the machine, per database). Sorts, joins and aggregates past it spill "
            "to _spill in the lakehouse folder; a statement that still needs more fails with limit_exceeded."
        ),
    )
    result_cache_mb: int = Field(
        64,
        ge=0,
        description=(
            "Memory per worker for results of repeated queries (local engine). A query is answered from "
            "it only when its text, caps and the exact table files it reads are the same and it calls "
            "no rand(), now(), uuid() or the like; 0 turns it off."
        ),
    )


class IngestSettings(BaseModel):
    """How uploaded files are read."""

    max_upload_bytes: int = Field(1024**3, ge=1, description="Largest file accepted by upload_file (decoded size).")
    batch_rows: int = Field(122_880, ge=1024, description="Rows per Arrow batch streamed to the table writer.")
    # Structural limits, checked before a parser sees the file (connectors/files/limits.py).
    max_json_depth: int = Field(64, ge=1, description="Deepest nesting of arrays and objects in a JSON file.")
    max_csv_columns: int = Field(4096, ge=1, description="Most columns (fields of the first line) of a CSV file.")
    max_line_bytes: int = Field(
        1024 * 1024, ge=1024, description="Longest line of a CSV file, in bytes (quoted line breaks included)."
    )
    max_xlsx_sheets: int = Field(64, ge=1, description="Most sheets in an Excel workbook.")
    max_xlsx_uncompressed_bytes: int = Field(
        512 * 1024 * 1024, ge=1024 * 1024, description="Largest size of an Excel workbook once unpacked."
    )
    max_xlsx_compression_ratio: float = Field(
        100.0, ge=2, description="Largest unpacked/packed ratio of a workbook part over 1 MiB (zip bombs)."
    )
    max_xlsx_cells: int = Field(20_000_000, ge=1, description="Most cells in all sheets of an Excel workbook.")
    # The parse itself runs in a child process with these limits (a crash or a runaway costs one request).
    parse_timeout_seconds: float = Field(
        900, gt=0, description="Wall-clock limit of reading one file (the child process is killed past it)."
    )
    parse_cpu_seconds: int = Field(1800, ge=1, description="CPU-time limit of the process that reads one file.")
    parse_memory_bytes: int = Field(
        4 * 1024**3,
        ge=256 * 1024**2,
        description="Address-space limit of the process that reads one file; "
        "DuckDB inside gets all but 1 GiB (at least half) as memory_limit.",
    )
    parse_threads: int = Field(0, ge=0, description="DuckDB threads of the process that reads one file; 0: all cores.")
    sweep_after_seconds: float = Field(
        60,
        ge=0,
        description="Leftovers of interrupted uploads (temporary files, stage folders, empty landing folders) "
        "untouched for this long are removed when the server starts.",
    )
    path_folder: str = Field(
        "",
        description=(
            "Multi-tenant mode: path= uploads (stdio MCP server, CLI) read only regular files under this "
            "folder, '{tenant}' standing for the caller's tenant slug (e.g. /srv/tsunami-drops/{tenant}), "
            "never inside the service's home or lakehouse; empty refuses every path= (path_not_allowed). "
            "Single-user mode reads any file the OS user can."
        ),
    )


class McpSettings(BaseModel):
    """The MCP door."""

    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra Origin values accepted on /mcp besides the server's own host (browsers send one).",
    )


class SyncSettings(BaseModel):
    """How syncs from sources into bronze tables run."""

    batch_rows: int = Field(
        1_000_000, ge=1, description="Rows per incremental commit: a killed sync resumes from the last commit."
    )
    lookback_seconds: float = Field(
        0,
        ge=0,
        description="Incremental merge syncs re-read this many seconds before the saved cursor, to catch rows "
        "that committed late in the source; the merge makes the overlap harmless. Append syncs never re-read "
        "(they would duplicate rows).",
    )
    wait_seconds: float = Field(
        20, ge=0, description="How long a sync tool call waits for the run to finish before returning its id to poll."
    )
    max_parallel: int = Field(4, ge=1, description="Most syncs running at once in one process.")
    merge_timeout_seconds: float = Field(
        1800.0,
        gt=0,
        description=(
            "A merge of one sync batch into its table (upsert on the primary key) running longer is stopped "
            "(query_timeout) and commits nothing; the sync fails and resumes from its last commit when run again."
        ),
    )
    google_api_url: str = Field(
        "https://sheets.googleapis.com",
        description="Google Sheets API v4 base URL (the operator's; connections cannot change it).",
    )
    google_token_url: str = Field(
        "https://oauth2.googleapis.com/token",
        description="Google OAuth 2.0 token endpoint for service accounts (a key's own token_uri is ignored).",
    )
    google_docs_url: str = Field(
        "https://docs.google.com", description="Where public Google Sheets are exported as CSV."
    )


class RunsSettings(BaseModel):
    """How this process claims, watches and sweeps runs (syncs, mirror replays, ...): DESIGN.md section 9."""

    max_parallel: int = Field(8, ge=1, description="Most runs executing at once in one process (all kinds).")
    poll_seconds: float = Field(
        1.0, gt=0, description="How often an idle worker looks for runs queued by other processes."
    )
    heartbeat_seconds: float = Field(2.0, gt=0, description="How often a worker marks its running runs alive.")
    stale_after_seconds: float = Field(
        15.0,
        gt=0,
        description="A running run whose heartbeat is older than this is failed, or re-queued when its kind is safe "
        "to run again (its process was killed). Keep it several heartbeats long.",
    )
    sweep_seconds: float = Field(5.0, gt=0, description="How often a worker sweeps for runs whose process died.")


class JobsSettings(BaseModel):
    """Jobs (pipelines): how their task runs share the machine and how schedules fire (DESIGN.md section 10)."""

    max_parallel_tasks: int = Field(
        4, ge=1, description="Most task runs of one tenant running at once, over all of its job runs."
    )
    tick_seconds: float = Field(
        1.0, gt=0, description="How often every worker looks for scheduled jobs whose next tick has come."
    )
    misfire_grace_seconds: float = Field(
        60.0,
        gt=0,
        description="A tick found later than this after its time (the service was down) is skipped, unless "
        "the job's schedule says catch_up.",
    )
    catch_up_limit: int = Field(100, ge=1, description="Most missed ticks one catch-up queues for one job.")


class AISettings(BaseModel):
    """The AI-assisted tools: MCP sampling first, then this provider, then deterministic answers."""

    sampling: bool = Field(True, description="Ask the MCP client's own model (sampling) when the client offers it.")
    provider: Literal["none", "anthropic", "openai"] = Field(
        "none",
        description="LLM provider used when sampling is not available: anthropic (Messages API) or openai (any "
        "OpenAI-compatible endpoint, Databricks Foundation Model APIs included).",
    )
    model: str = Field("", description="Model name for the provider, e.g. claude-sonnet-4-5 or databricks-meta-llama.")
    api_key: SecretStr | None = Field(None, description="The provider's API key (or a Databricks token).")
    base_url: str = Field(
        "",
        description="Provider endpoint; empty = the vendor's public API. Databricks: https://<workspace>/serving-endpoints.",
    )
    timeout_seconds: float = Field(60.0, gt=0, description="Give up on one provider call after this long.")
    max_tokens: int = Field(1024, ge=64, description="Most tokens one answer may use.")


class DatabricksSettings(BaseModel):
    """The Databricks engine (``TSUNAMI_ENGINE=databricks``) and the mirror (``TSUNAMI_MIRROR=databricks``).

    Environment: ``TSUNAMI_DATABRICKS__HOST``, ``TSUNAMI_DATABRICKS__TOKEN`` ... Auth is a personal
    access token, or OAuth machine-to-machine with ``client_id`` and ``client_secret``.
    """

    host: str = Field("", description="Workspace URL, e.g. https://adb-123.4.azuredatabricks.net.")
    token: SecretStr | None = Field(None, description="Personal access token (leave empty for OAuth M2M).")
    client_id: str = Field("", description="OAuth M2M: the service principal's application (client) id.")
    client_secret: SecretStr | None = Field(None, description="OAuth M2M: the service principal's secret.")
    warehouse_id: str = Field(
        "", description="SQL warehouse for statements. Empty: a running one, else the smallest is started."
    )
    warehouse_start_timeout_seconds: float = Field(
        600, gt=0, description="How long to wait for a starting warehouse to be running before giving up."
    )
    storage_location: str = Field(
        "",
        description="Managed storage root for new tenant catalogs (each gets <location>/<catalog>); "
        "empty uses the metastore's default.",
    )
    tenant_principal: str = Field(
        "",
        description="Group or service principal granted use of its tenant catalog, on that catalog only; "
        "'{catalog}' is replaced by the catalog name (e.g. 'tsunami-{catalog}'). Empty: no grants.",
    )
    wait_timeout_seconds: int = Field(
        10, ge=0, le=50, description="How long a statement request waits for its result before polling (0 or 5-50)."
    )
    http_timeout_seconds: int = Field(60, ge=1, description="Timeout of one HTTP request to the workspace.")
    retry_timeout_seconds: int = Field(
        300,
        ge=1,
        description="How long throttled (429), unavailable (503) or lost (timed out, reset) requests are retried.",
    )
    file_rows: int = Field(1_000_000, ge=1, description="Rows per Parquet file uploaded to the landing volume.")
    workspace_folder: str = Field(
        "/Shared/servicetsunami",
        pattern=r"^/[^.]*$",
        description="Workspace folder notebooks are published to, one sub-folder per tenant catalog "
        "(<folder>/<catalog>/<notebook path>).",
    )
    cluster_id: str = Field(
        "",
        description="All-purpose cluster that execution contexts run on when create_context names none. "
        "Empty: create_context must name one.",
    )
    cluster_start_timeout_seconds: float = Field(
        1200, gt=0, description="How long create_context with start_cluster waits for the cluster to be running."
    )


class MirrorSettings(BaseModel):
    """The outbox worker that replays local writes to the mirror (``TSUNAMI_MIRROR``)."""

    backoff_seconds: float = Field(5, gt=0, description="First wait before retrying a failed mirror job.")
    max_backoff_seconds: float = Field(600, gt=0, description="Longest wait between retries of one job.")
    max_attempts: int = Field(
        10, ge=1, description="Attempts before a job is marked failed (then `tsunami mirror retry` replays it)."
    )
    poll_seconds: float = Field(2, gt=0, description="How often the worker looks for due jobs.")


class AuthSettings(BaseModel):
    """How people log in: passwords, access JWTs and refresh tokens, login rate limits."""

    jwt_secret: SecretStr | None = Field(
        None,
        description="Key that signs access tokens (HS256), at least 32 characters. Unset: the key file "
        "<home>/jwt.key, created with mode 0600 on first start in single-user mode; multi-tenant mode "
        "refuses to start without a strong key.",
    )
    issuer: str = Field("servicetsunami", min_length=1, description="The 'iss' of issued tokens, checked on use.")
    audience: str = Field(
        "servicetsunami-api", min_length=1, description="The 'aud' of issued tokens; REST and /mcp accept only it."
    )
    access_token_seconds: int = Field(900, ge=60, le=86_400, description="Lifetime of an access token.")
    refresh_token_seconds: int = Field(
        14 * 86_400, ge=300, description="Lifetime of a refresh token; each use replaces it with a new one."
    )
    login_rate_limit: str = Field(
        "10/minute", description="Login attempts for one account from one client address, in 'N/period' form."
    )
    login_client_rate_limit: str = Field(
        "100/minute", description="Login attempts from one client address, whatever the accounts, 'N/period'."
    )
    login_account_rate_limit: str = Field(
        "100/minute",
        description="Login attempts for one account from all addresses together, 'N/period': a ceiling "
        "that only a guess spread over many addresses reaches (one address is held by the limits above).",
    )
    login_backoff_after: int = Field(
        3,
        ge=1,
        description="Wrong passwords in a row for one account from one address before each further try "
        "must wait: 1 s, then twice as long after each failure.",
    )
    login_backoff_max_seconds: float = Field(
        900, gt=0, description="Longest backoff wait; a success or this long without failures starts over."
    )
    oauth_enabled: bool = Field(
        True,
        description="Be the OAuth 2.1 authorization server of /mcp, so MCP clients (Claude and others) sign "
        "in with a browser: /authorize, /token, /register, /revoke and their metadata. False: /mcp takes "
        "API keys and access tokens only.",
    )
    oauth_code_seconds: int = Field(
        60, ge=10, le=600, description="Lifetime of an OAuth authorization code (used once, at /token)."
    )
    oauth_refresh_token_seconds: int = Field(
        30 * 86_400,
        ge=300,
        description="Lifetime of an OAuth refresh token given to an MCP client; each use replaces it.",
    )
    oauth_register_rate_limit: str = Field(
        "20/hour", description="OAuth client registrations (POST /register) from one client address, 'N/period'."
    )
    oauth_client_document_bytes: int = Field(
        5 * 1024,
        ge=512,
        le=64 * 1024,
        description="Largest client ID metadata document fetched (a client_id that is an https URL).",
    )


class ApiSettings(BaseModel):
    """The REST door: request sizes and per-caller rate limits."""

    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body on /api/v1 other than dataset uploads."
    )
    query_rate_limit: str = Field(
        "600/minute",
        description="Queries per principal (POST /query, dataset previews and queries, MCP query_sql), 'N/period'.",
    )
    upload_dir: Path | None = Field(
        None, description="Where uploads are streamed before ingestion. Empty means <home>/tmp/uploads."
    )


class ServeSettings(BaseModel):
    """The HTTP server of `tsunami serve`."""

    keep_alive_seconds: int = Field(
        75,
        ge=1,
        description=(
            "How long an idle keep-alive connection stays open. Longer than clients' own idle expiry "
            "(httpx 5 s, aiohttp 15 s, most proxies 60 s) so a client never reuses a connection the "
            "server is closing at that moment."
        ),
    )
    shutdown_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "On SIGTERM, how long requests still running may take to finish; then they are canceled and "
            "every statement still running is interrupted, so no worker outlives the server."
        ),
    )
    worker_healthcheck_seconds: int = Field(
        60,
        ge=1,
        description=(
            "With several workers, how long a worker may take to answer the server's health check "
            "before it is killed and started again. Loading the app takes a worker a few seconds, "
            "longer on a busy machine: a short limit killed workers still loading, over and over."
        ),
    )
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description=(
            "Worker processes answering HTTP; 0 means one per CPU core, at most 4. They share the store, "
            "the lakehouse, the sync locks and the rate-limit counts; each has its own caches."
        ),
    )
    threads: int = Field(
        8,
        ge=1,
        le=256,
        description=(
            "Threads per worker for blocking work (store, engine). More let more slow calls overlap; "
            "each extra one also competes for Python's interpreter lock with the rest."
        ),
    )

    @property
    def resolved_workers(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 4))


class SandboxSettings(BaseModel):
    """Where tenant code (notebooks, execution contexts) runs: bubblewrap with no network, a read-only
    root, only its own folder writable, a separate uid and resource limits (DESIGN.md section 11)."""

    unsandboxed: bool = Field(
        False,
        description="Single-user mode only: run code without bubblewrap when the sandbox cannot start "
        "(the code then runs with the service's rights). Multi-tenant mode always refuses instead.",
    )
    uid: int = Field(
        65534,
        ge=1,
        description="The unprivileged uid (and gid) tenant code runs as when the service runs as root; "
        "otherwise code keeps the service's uid inside a user namespace.",
    )
    memory_mb: int = Field(2048, ge=64, description="Address space limit of a kernel (RLIMIT_AS), in MB.")
    cpu_seconds: int = Field(3600, ge=1, description="CPU time limit of a kernel (RLIMIT_CPU), in seconds.")
    processes: int = Field(
        256, ge=8, description="Most processes and threads of the sandbox uid at once (RLIMIT_NPROC)."
    )
    file_mb: int = Field(1024, ge=1, description="Largest file tenant code may write (RLIMIT_FSIZE), in MB.")
    start_seconds: float = Field(60.0, gt=0, description="How long a kernel may take to start.")
    interrupt_grace_seconds: float = Field(
        5.0, gt=0, description="After an interrupt (cancel, timeout), how long before the kernel is killed."
    )
    notebook_timeout_seconds: float = Field(
        3600.0, gt=0, description="Default time limit of a notebook run (a run may ask for less)."
    )
    max_parallel: int = Field(2, ge=1, description="Most notebook runs executing at once in one process.")
    max_contexts_per_tenant: int = Field(
        4, ge=1, description="Most live command execution contexts (kernels) a tenant may have at once."
    )
    context_idle_seconds: float = Field(
        1800.0, gt=0, description="A command execution context unused for this long is destroyed."
    )


class VectorSettings(BaseModel):
    """Embeddings, vector indexes and their search."""

    embedding_model: str = Field(
        "wordllama",
        description="Default embedding model of new indexes: 'wordllama' (offline, shipped with the package), "
        "'openai' (the OpenAI-compatible endpoint below) or 'databricks:<serving endpoint>'.",
    )
    openai_base_url: str = Field(
        "https://api.openai.com/v1", description="Base URL of an OpenAI-compatible API; POST <url>/embeddings."
    )
    openai_model: str = Field("text-embedding-3-small", description="Model name sent to the OpenAI-compatible API.")
    openai_api_key: SecretStr | None = Field(None, description="Key of the OpenAI-compatible API (a bearer token).")
    batch_size: int = Field(256, ge=1, le=4096, description="Texts sent to a remote embedding provider in one call.")
    timeout_seconds: float = Field(60.0, gt=0, description="Give up on one call to an embedding provider after this.")
    cache_entries: int = Field(
        50_000, ge=0, description="Embeddings of texts kept in memory by content hash (per model); 0 turns it off."
    )
    hnsw_threshold: int = Field(
        50_000,
        ge=1,
        description="Indexes with at least this many rows are searched through an HNSW graph (usearch); "
        "smaller ones exactly (DuckDB array_cosine_distance).",
    )
    max_results: int = Field(100, ge=1, description="Most rows one search returns (k is cut to it, truncated=true).")
    sync_check_seconds: float = Field(
        10.0, gt=0, description="How often indexes with sync_mode 'continuous' check their source table's version."
    )
    build_timeout_seconds: float = Field(
        3600.0, gt=0, description="An index build or sync run is stopped after this long."
    )
    databricks_endpoint: str | None = Field(
        None,
        description="On the Databricks engine, the Vector Search endpoint (created when missing) that holds new "
        "indexes as Delta Sync indexes, searched by the workspace; unset: index tables in Unity Catalog searched "
        "in this process.",
    )
    databricks_embedding_endpoint: str = Field(
        "databricks-gte-large-en",
        description="Serving endpoint that embeds the text of workspace Vector Search indexes whose model is not "
        "'databricks:<endpoint>'.",
    )
    hybrid_rrf_k: int = Field(
        10,
        ge=1,
        le=1000,
        description="Hybrid search: the rank constant of reciprocal rank fusion (a row at rank r of one side "
        "scores weight / (k + r)); smaller lets a top rank of one side outweigh middling ranks on both.",
    )
    hybrid_text_weight: float = Field(
        1.0, gt=0, le=100, description="Hybrid search: weight of the BM25 ranking against the vector ranking's 1."
    )
    hybrid_candidates: int = Field(
        20,
        ge=1,
        le=10_000,
        description="Hybrid search: rows each side (vectors, BM25) puts forward for fusion (at least k).",
    )


class ServingSettings(BaseModel):
    """Agents, serving endpoints and chat: the bounds of one agent invocation, and endpoint limits."""

    max_steps: int = Field(
        8, ge=1, le=100, description="Most model calls in one agent invocation (tool rounds + answer)."
    )
    max_tokens: int = Field(
        32_000, ge=256, description="Most tokens (prompt + completion, all steps) one agent invocation may spend."
    )
    timeout_seconds: float = Field(120.0, gt=0, description="Wall-clock limit of one agent invocation, tools included.")
    tool_max_rows: int = Field(50, ge=1, description="Most rows a SQL or vector tool hands the model in one call.")
    tool_result_chars: int = Field(
        16_000, ge=1000, description="Longest tool result (JSON text) given to the model; longer ones are cut."
    )
    rate_limit: str = Field(
        "600/minute", description="Default requests per endpoint and caller (tenant + subject), like '600/minute'."
    )
    deploy_wait_seconds: float = Field(
        30.0, ge=0, description="How long deploy_agent waits for the deployment run before answering with it."
    )
    workspace_ready_seconds: float = Field(
        1200.0,
        gt=0,
        description="On Databricks: how long a deployment run waits for a Model Serving endpoint to be READY.",
    )
    history_messages: int = Field(
        40, ge=2, description="Most earlier messages of a chat conversation sent to the model with a new one."
    )


class ToolsSettings(BaseModel):
    """Which MCP tools this server offers (``tools/list`` and calls). A preset's tools plus ``enabled``,
    minus ``disabled``; with neither a preset nor ``enabled``, every tool. A role or an API key's own
    tool set may narrow it further, never widen it."""

    enabled: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Tool names offered (comma-separated or a JSON list); empty: the preset's, or all.",
    )
    disabled: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Tool names never offered, whatever the preset or enabled say."
    )
    preset: str = Field(
        "", description="A named tool set: minimal, analyst, engineer or admin (every tool). Empty: none."
    )

    @field_validator("enabled", "disabled", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return _split_list(value)


class RateLimitsSettings(BaseModel):
    """Per-principal rate limits of MCP tools and REST routes ('N/period', e.g. '100/minute'),
    counted across every worker process. ``api.query_rate_limit`` still covers queries on both doors."""

    default: str = Field(
        "", description="Limit of every MCP tool without its own entry, counted per tool; empty: none."
    )
    tools: dict[str, str] = Field(
        default_factory=dict, description='Tool name -> limit, e.g. {"export_notebook": "10/minute"}.'
    )
    routes: dict[str, str] = Field(
        default_factory=dict,
        description="REST route (its template like 'GET /api/v1/runs/{run_id}', or its operation id) -> limit.",
    )


class CacheSettings(BaseModel):
    """Time-limited caches of workspace listings, per tenant and role; a write empties them at once."""

    enabled: bool = Field(True, description="Remember workspace listings for their TTL.")
    ttl: dict[str, int] = Field(
        default_factory=lambda: {"jobs": 300, "notebooks": 180, "warehouses": 600, "clusters": 600},
        description="Seconds a listing is remembered, by kind (jobs, notebooks, warehouses, clusters).",
    )


class StatementsSettings(BaseModel):
    """Long statements (execute_dbsql, /api/v1/statements): how long their results are kept."""

    keep_seconds: float = Field(
        3600, gt=0, description="A finished statement's result is kept this long, then removed (CLOSED)."
    )
    chunk_rows: int = Field(1000, ge=1, description="Rows per result chunk (get_statement chunk_index).")
    max_wait_seconds: int = Field(
        50, ge=0, le=50, description="Longest wait_seconds a submit may ask (the Statement Execution API's 50)."
    )


class MetricsSettings(BaseModel):
    """Prometheus metrics at ``/metrics``."""

    enabled: bool = Field(True, description="Serve /metrics. Off: it answers 404.")
    token: SecretStr | None = Field(
        None,
        description="Bearer token a scraper on another host must send. /metrics is open to loopback "
        "clients only; without a token every other client is refused (403).",
    )


class CorsSettings(BaseModel):
    """Cross-origin requests from browsers (Starlette's CORSMiddleware); off by default."""

    enabled: bool = Field(False, description="Answer CORS preflights and add CORS headers for the origins below.")
    origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed, e.g. https://console.example.com; '*' allows any (then without credentials).",
    )
    allow_credentials: bool = Field(
        False, description="Let browsers send cookies and Authorization headers cross-origin (not with '*')."
    )
    max_age_seconds: int = Field(600, ge=0, description="How long browsers may remember a preflight answer.")


class AuditSettings(BaseModel):
    """The audit log of writes and admin actions (``GET /api/v1/audit``)."""

    enabled: bool = Field(
        True, description="Record every write call (MCP tools that are not read-only, REST calls other than GET)."
    )


class WebhooksSettings(BaseModel):
    """Webhook notifications of run state changes: where they may go, how they are retried."""

    allow_http: bool = Field(
        False,
        description="Multi-tenant mode: also accept http:// webhook URLs (https only otherwise). Single-user "
        "mode always accepts both.",
    )
    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs (comma-separated or a JSON list) whose private addresses webhooks may reach in "
        "multi-tenant mode, e.g. '10.20.0.0/16'. Link-local and cloud metadata addresses stay refused.",
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Give up on one delivery attempt after this long.")
    max_attempts: int = Field(
        8, ge=1, le=50, description="Attempts of one delivery (network errors, 5xx, 429 are retried) before it fails."
    )
    backoff_seconds: float = Field(
        10.0, gt=0, description="Wait before the second attempt; doubled after each (with jitter: 50-100% of it)."
    )
    max_backoff_seconds: float = Field(
        3600.0, gt=0, description="Longest wait between two attempts, a Retry-After the receiver sends included."
    )
    poll_seconds: float = Field(1.0, gt=0, description="How often each worker looks for deliveries that are due.")
    max_parallel: int = Field(4, ge=1, le=64, description="Deliveries one worker sends at once.")
    max_per_tenant: int = Field(25, ge=1, description="Most webhook subscriptions one tenant may have.")
    keep_days: float = Field(
        30.0, gt=0, description="Deliveries that ended (succeeded or failed) are removed from the log after this long."
    )

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        return _cidrs(value)


class Settings(BaseSettings):
    """Every knob of the service. Environment variables start with ``TSUNAMI_``."""

    model_config = SettingsConfigDict(env_prefix="TSUNAMI_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    home: Path = Field(Path(".tsunami"), description="Data folder: system store, lakehouse, keys.")
    database_url: str = Field("", description="System store URL (SQLAlchemy). Empty means SQLite at <home>/tsunami.db.")
    engine: Literal["local", "databricks"] = Field("local", description="Lakehouse engine.")
    lakehouse_root: Path | None = Field(
        None, description="Where the local engine keeps catalogs. Empty means <home>/lakehouse."
    )
    deletion_vectors: bool = Field(
        True,
        description="Local merges mark replaced rows in Delta deletion vectors (as Databricks does by default) "
        "instead of rewriting the files that held them. Turn off for other readers of the tables that cannot "
        "read deletion vectors; a table's own delta.enableDeletionVectors=false is honoured either way.",
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
    log_format: Literal["text", "json"] = Field(
        "text",
        description="'json': one JSON object per line, with request id, tenant, principal, tool or route, "
        "duration and outcome of each request; 'text': readable lines.",
    )
    query: QuerySettings = Field(default_factory=QuerySettings, description="Query caps.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="File ingestion.")
    mcp: McpSettings = Field(default_factory=McpSettings, description="MCP door.")
    master_key: SecretStr | None = Field(
        None,
        description="Keys that encrypt stored credentials: 'kid:base64key' entries (32 random bytes each) "
        "separated by commas, the FIRST one active and the others kept to decrypt older secrets; a bare "
        "base64 key means kid 'k1'. Unset: the key file <home>/master.key (created on first start in "
        "single-user mode).",
    )
    multi_tenant: bool = Field(
        False,
        description="Serve several tenants. Off (the default) is single-user embedded mode: sources on "
        "private and loopback addresses are allowed and the key file is created on first start.",
    )
    source_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs (comma-separated or a JSON list) whose private addresses sources may use in "
        "multi-tenant mode, e.g. '10.20.0.0/16'. Link-local and cloud metadata addresses stay refused.",
    )
    sync: SyncSettings = Field(default_factory=SyncSettings, description="Syncs from sources.")
    runs: RunsSettings = Field(default_factory=RunsSettings, description="Runs: claiming, heartbeats, sweeps.")
    jobs: JobsSettings = Field(default_factory=JobsSettings, description="Jobs: task concurrency, schedules.")
    ai: AISettings = Field(default_factory=AISettings, description="AI-assisted tools (LLM paths).")
    databricks: DatabricksSettings = Field(default_factory=DatabricksSettings, description="Databricks workspace.")
    mirror: Literal["", "databricks"] = Field(
        "", description="With engine 'local': copy every bronze/silver/gold write to this engine through the outbox."
    )
    mirror_worker: MirrorSettings = Field(default_factory=MirrorSettings, description="Outbox worker of the mirror.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Logins, access and refresh tokens.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="REST limits.")
    serve: ServeSettings = Field(default_factory=ServeSettings, description="The HTTP server of `tsunami serve`.")
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings, description="Where tenant code runs.")
    vectors: VectorSettings = Field(default_factory=VectorSettings, description="Embeddings and vector indexes.")
    serving: ServingSettings = Field(
        default_factory=ServingSettings, description="Agents, serving endpoints and chat: bounds and limits."
    )
    tools: ToolsSettings = Field(default_factory=ToolsSettings, description="MCP tools offered (tool sets).")
    rate_limits: RateLimitsSettings = Field(
        default_factory=RateLimitsSettings, description="Per-tool and per-route rate limits."
    )
    cache: CacheSettings = Field(default_factory=CacheSettings, description="Caches of workspace listings.")
    statements: StatementsSettings = Field(
        default_factory=StatementsSettings, description="Long statements: result chunks and how long they are kept."
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Prometheus metrics.")
    cors: CorsSettings = Field(default_factory=CorsSettings, description="Cross-origin requests (browsers).")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="The audit log.")
    webhooks: WebhooksSettings = Field(
        default_factory=WebhooksSettings, description="Webhook notifications of run state changes."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Code, then the environment, then tsunami.yaml (config_file.py), then the defaults.
        home = getattr(init_settings, "init_kwargs", {}).get("home")
        return init_settings, env_settings, dotenv_settings, YamlConfigSource(settings_cls, home), file_secret_settings

    @field_validator("source_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("source_allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        return _cidrs(value)

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


def _cidrs(value: list[str]) -> list[str]:
    """``value`` if each entry is a network in CIDR form; else a ValueError naming the first that is not."""
    for cidr in value:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"{cidr!r} is not a network in CIDR form (like 10.20.0.0/16)") from None
    return value


def _split_list(value: Any) -> Any:
    """A list setting from the environment: a JSON list, or names separated by commas."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


# Environment names that start with TSUNAMI_ but are read by something other than Settings; README.md
# (Configuration) lists them. Any other TSUNAMI_ name that is not a setting is reported at start.
OTHER_ENVIRONMENT_NAMES: dict[str, str] = {
    "TSUNAMI_URL": "URL of a running server for scripts; the README's walk-through reads it",
    "TSUNAMI_CONFIG": "the configuration file (default <home>/tsunami.yaml)",
    "TSUNAMI_TEST_POSTGRES_URL": "the PostgreSQL database of the test suite",
    "TSUNAMI_TEST_MYSQL_URL": "the MySQL/MariaDB database of the test suite",
}


def setting_environment_names(model: type[BaseModel] = Settings, prefix: str = "TSUNAMI_") -> set[str]:
    """Every environment name that sets a field: ``TSUNAMI_PORT``, ``TSUNAMI_QUERY`` (a whole nested
    model as JSON) and ``TSUNAMI_QUERY__MAX_ROWS``."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        names.add(name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= setting_environment_names(field.annotation, name + "__")
    return names


def unknown_environment_names(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The ``TSUNAMI_*`` names in ``environ`` that nothing reads, each with the closest known name (or
    None). Names are compared without case, as Settings reads them."""
    known = setting_environment_names() | set(OTHER_ENVIRONMENT_NAMES)
    unknown: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith("TSUNAMI_") and upper not in known:
            unknown.append((name, _closest_name(upper, known)))
    return unknown


def _closest_name(name: str, known: set[str]) -> str | None:
    # Compared without the common prefix, which would make every name look close. A known name ending
    # in the same last part wins: TSUNAMI_SERVE__PORT means TSUNAMI_PORT, though TSUNAMI_SERVE__WORKERS
    # shares more letters with it.
    def rest(full: str) -> str:
        return full.removeprefix("TSUNAMI_")

    leaf = rest(name).rsplit("__", 1)[-1]
    same_leaf = [k for k in known if rest(k).rsplit("__", 1)[-1] == leaf]
    by_rest = {rest(k): k for k in (same_leaf or known)}
    close = difflib.get_close_matches(rest(name), sorted(by_rest), n=1, cutoff=0 if same_leaf else 0.6)
    return by_rest[close[0]] if close else None
