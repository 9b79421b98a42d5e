"""The one exception tree of ServiceTsunami.

Every error the service raises on purpose derives from :class:`TsunamiError`. Its class carries what
the front doors need, so none of them keeps a table of its own:

- ``code``: stable, sent to the client (REST problem document, MCP error, CLI message);
- ``http_status``: the REST status; a 4xx also makes MCP report the call as the caller's fault;
- ``transient``: whether a retry may help, by default for the class; one raise may say otherwise
  (``EngineError("...", transient=True)``). Ask an instance with :attr:`TsunamiError.is_transient`.

The message is written for the person (or agent) who sent the request and never contains secrets.

::

    class                             code                HTTP   meaning
    TsunamiError                      error               500
    ├── InvalidInput                  invalid_input       400    the request itself is wrong
    │   ├── InvalidIdentifier         invalid_identifier  400    a catalog/schema/table/column name
    │   ├── QueryRefused              query_refused       400    the SQL guard said no (reason inside)
    │   ├── SqlSyntaxError            sql_syntax_error    400    the SQL does not parse as Databricks SQL
    │   ├── InvalidJob                invalid_job         400    a job definition: cycle, unknown task, cron...
    │   ├── InvalidConfig             invalid_config      400    the configuration file: YAML, a secret in it
    │   └── BadFile                   bad_file            422    an uploaded file cannot be ingested
    ├── AuthError                     unauthenticated     401    no or bad credentials
    ├── PermissionDenied              permission_denied   403    authenticated, but the role may not
    │   ├── PathNotAllowed            path_not_allowed    403    a path= file outside what the mode allows
    │   └── ToolNotEnabled            tool_not_enabled    403    an MCP tool outside the server's or key's tool set
    ├── NotFound                      not_found           404    table, tenant, key, version ... missing
    ├── Conflict                      conflict            409    already exists / concurrent change
    ├── Cancelled                     cancelled           409    the work was stopped before it ended
    │   └── SyncCancelled             cancelled           409    a sync run; its table keeps its last commit
    ├── NotSupported                  not_supported       501    this engine or source lacks the capability
    │   └── TaskKindUnavailable       task_kind_unavailable 501  a declared task kind cannot run here yet
    ├── LimitExceeded                 limit_exceeded      413    a size or time limit was reached
    │   ├── BodyTooLarge              limit_exceeded      413    a REST request body passed its limit
    │   ├── FileLimitExceeded         file_limit_exceeded 413    a file's shape or its parse passed a limit
    │   ├── QueryTimeout              query_timeout       408
    │   └── RateLimited               rate_limited        429    too many requests; ``retry_after`` seconds
    ├── EngineError                   engine_error        502    the lakehouse failed
    │   └── StoreError                store_error         503    the system store failed
    │       └── SecretError           secret_error        500    a stored secret or the master keys unusable
    ├── SourceError                   source_error        502    a source failed: unreachable, refused ...
    ├── ServerUnreachable             server_unreachable  502    the CLI's --server did not answer
    ├── JobRunFailed                  job_run_failed      500    a job run ended with tasks that did not succeed
    ├── TaskFailed                    task_failed         500    a run a task started (a sync, a job run) failed
    ├── CodeFailed                    code_failed         422    tenant code raised; the message names the cell
    ├── SandboxUnavailable            sandbox_unavailable 503    code cannot run: the sandbox cannot start
    ├── EmbeddingUnavailable          embedding_unavailable 502  the embedding provider failed or is not set up
    ├── ModelUnavailable              model_unavailable   503    an agent has no model, or its model failed
    └── SigningKeyError               signing_key_error   500    the token signing key is missing or unsafe

Only :class:`RateLimited` is transient as a class; engine, store and source errors say so per raise
(a lost connection is, a refused login is not). A test walks every subclass against this drawing.

Drivers' exceptions (DuckDB, delta-rs, SQLAlchemy, the Databricks SDK, source drivers) are translated
at the adapter boundary with ``raise ... from exc``; they never reach a front door untranslated.
The few exceptions outside this tree are signals private to one adapter or port (the LLM chain's
"try the next path", a Delta log the engine's own reader cannot follow), caught or translated in
the module that raises them.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TsunamiError(Exception):
    """Root of every error ServiceTsunami raises on purpose."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    transient: ClassVar[bool] = False

    def __init__(self, message: str, /, *, transient: bool | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self._transient = transient

    def __str__(self) -> str:
        return self.message

    @property
    def is_transient(self) -> bool:
        """Whether a retry may help: what this raise said, else the class's default."""
        return type(self).transient if self._transient is None else self._transient

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(TsunamiError):
    code = "invalid_input"
    http_status = 400


class InvalidIdentifier(InvalidInput):
    code = "invalid_identifier"


class InvalidConfig(InvalidInput):
    code = "invalid_config"


class QueryRefused(InvalidInput):
    code = "query_refused"


class SqlSyntaxError(InvalidInput):
    code = "sql_syntax_error"


class InvalidJob(InvalidInput):
    """A job definition that cannot run: a cycle, an unknown dependency or kind, an invalid schedule."""

    code = "invalid_job"


class BadFile(InvalidInput):
    code = "bad_file"
    http_status = 422  # the request is well formed; the file inside it is not


class AuthError(TsunamiError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(TsunamiError):
    code = "permission_denied"
    http_status = 403


class PathNotAllowed(PermissionDenied):
    code = "path_not_allowed"


class ToolNotEnabled(PermissionDenied):
    """A tool this server or this API key does not offer (tool sets: ``servicetsunami.toolsets``)."""

    code = "tool_not_enabled"


class NotFound(TsunamiError):
    code = "not_found"
    http_status = 404


class Conflict(TsunamiError):
    code = "conflict"
    http_status = 409


class Cancelled(TsunamiError):
    """Someone stopped the work before it ended (raised inside a run's work when its run was canceled
    or timed out); what was committed before stays."""

    code = "cancelled"
    http_status = 409  # the resource's state (cancelled) conflicts with finishing the request


class SyncCancelled(Cancelled):
    """A sync run was cancelled between batches; the bronze table keeps its last committed version."""


class NotSupported(TsunamiError):
    """A capability this engine, source or launcher does not have (declared as data, not guessed)."""

    code = "not_supported"
    http_status = 501


class TaskKindUnavailable(NotSupported):
    """A task kind the job may declare but that this installation cannot run yet (notebook, python)."""

    code = "task_kind_unavailable"


class LimitExceeded(TsunamiError):
    code = "limit_exceeded"
    http_status = 413


class BodyTooLarge(LimitExceeded):
    """A REST request body passed its limit while it streamed in (clients see ``limit_exceeded``)."""


class FileLimitExceeded(LimitExceeded):
    """An uploaded file passed a structural limit (nesting depth, columns, line length, unpacked size,
    sheets, cells) or its parse passed its time or memory limit. ``details["limit"]`` names the setting."""

    code = "file_limit_exceeded"


class QueryTimeout(LimitExceeded):
    code = "query_timeout"
    http_status = 408


class RateLimited(LimitExceeded):
    code = "rate_limited"
    http_status = 429
    transient = True  # after ``retry_after`` seconds

    def __init__(self, message: str, /, *, retry_after: int, **details: Any) -> None:
        wait = max(1, int(retry_after))
        super().__init__(message, retry_after=wait, **details)  # in details too: MCP errors carry them
        self.retry_after = wait


class EngineError(TsunamiError):
    """The lakehouse engine failed; the raise says whether it is ``transient``."""

    code = "engine_error"
    http_status = 502  # an engine (DuckDB, delta-rs, a Databricks workspace) is our upstream


class StoreError(EngineError):
    """The system store (SQLite or PostgreSQL) failed; unavailable-and-retry is ``transient``."""

    code = "store_error"
    http_status = 503


class SecretError(StoreError):
    """A stored secret cannot be encrypted or decrypted, or the keys are missing or unsafe."""

    code = "secret_error"
    # Not 503: the keys are wrong, and waiting will not fix them.
    http_status = 500


class SourceError(TsunamiError):
    """The source failed (unreachable, refused, timed out, a query error); the raise says whether
    it is ``transient``. Not an :class:`EngineError`: the lakehouse is fine, and a run that fails
    on its source must not be taken for one that failed on its target."""

    code = "source_error"
    http_status = 502  # like the engine, an upstream the service reads on the caller's behalf


class ServerUnreachable(TsunamiError):
    """``tsunami --server URL`` could not reach the server (refused, timed out, a bad address)."""

    code = "server_unreachable"
    http_status = 502
    transient = True


class JobRunFailed(TsunamiError):
    """A job run ended with at least one task failed, timed out, canceled or skipped for that reason.
    Recorded as the run's error; the task runs hold each task's own error."""

    code = "job_run_failed"


class TaskFailed(TsunamiError):
    """A run that a task started and waited for (a sync, another job's run) did not succeed; the
    details name that run and its own error code."""

    code = "task_failed"


class CodeFailed(TsunamiError):
    """Tenant code (a notebook cell, a command) raised an error; the message names the cell and the
    error, and the executed notebook keeps the traceback."""

    code = "code_failed"
    http_status = 422


class SandboxUnavailable(TsunamiError):
    """Tenant code cannot run because its sandbox cannot start (bubblewrap missing or refused);
    the message says why. Security fails closed: the code does not run outside it."""

    code = "sandbox_unavailable"
    http_status = 503


class EmbeddingUnavailable(TsunamiError):
    """Texts could not be embedded: the configured embedding provider (an OpenAI-compatible URL, a
    Databricks serving endpoint) is not set up, unreachable or answered in a wrong shape."""

    code = "embedding_unavailable"
    http_status = 502  # an upstream the service calls on the caller's behalf


class ModelUnavailable(TsunamiError):
    """An agent or endpoint cannot reach a model: none is configured (MCP sampling needs a connected
    client, which a deployed agent does not have), or the configured one refused or did not answer."""

    code = "model_unavailable"
    http_status = 503


class SigningKeyError(TsunamiError):
    """The token signing key is missing or unsafe; the service refuses to start."""

    code = "signing_key_error"


def invalid_arguments(problems: list[Any], /, *, what: str, known: list[str] | None = None) -> InvalidInput:
    """An :class:`InvalidInput` for pydantic's ``errors(include_url=False)`` about ``what`` (a tool's
    arguments, a request body), in plain words: each argument, what is wrong with it and what it was
    given, never pydantic's internals or links. ``known`` lists the valid names, for an unexpected one."""
    said: list[str] = []
    listed: list[dict[str, Any]] = []
    for problem in problems:
        where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("body", "query", "form"))
        kind = str(problem.get("type", ""))
        given = problem.get("input")
        if kind.startswith("missing"):
            text = "is required"
        elif kind in ("unexpected_keyword_argument", "extra_forbidden"):
            text = "is not an argument" + (f" (the arguments are: {', '.join(known)})" if known else "")
        else:
            text = str(problem.get("msg", "is not valid"))
            text = text.replace("Input should be", "must be").replace("Value error, ", "")
            text += f" (got {_shown(given)})"
        said.append(f"{where or 'the input'} {text}")
        listed.append({"argument": where, "problem": kind})
    return InvalidInput(f"invalid {what}: " + "; ".join(said), errors=listed)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
