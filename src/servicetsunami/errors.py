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
    │   └── BadFile                   bad_file            422    an uploaded file cannot be ingested
    ├── AuthError                     unauthenticated     401    no or bad credentials
    ├── PermissionDenied              permission_denied   403    authenticated, but the role may not
    ├── NotFound                      not_found           404    table, tenant, key, version ... missing
    ├── Conflict                      conflict            409    already exists / concurrent change
    ├── Cancelled                     cancelled           409    the work was stopped before it ended
    │   └── SyncCancelled             cancelled           409    a sync run; its table keeps its last commit
    ├── NotSupported                  not_supported       501    this engine or source lacks the capability
    ├── LimitExceeded                 limit_exceeded      413    a size or time limit was reached
    │   ├── BodyTooLarge              limit_exceeded      413    a REST request body passed its limit
    │   ├── QueryTimeout              query_timeout       408
    │   └── RateLimited               rate_limited        429    too many requests; ``retry_after`` seconds
    ├── EngineError                   engine_error        502    the lakehouse failed
    │   └── StoreError                store_error         503    the system store failed
    │       └── SecretError           secret_error        500    a stored secret or the master keys unusable
    ├── SourceError                   source_error        502    a source failed: unreachable, refused ...
    ├── CodeFailed                    code_failed         422    tenant code raised; the message names the cell
    ├── SandboxUnavailable            sandbox_unavailable 503    code cannot run: the sandbox cannot start
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


class QueryRefused(InvalidInput):
    code = "query_refused"


class SqlSyntaxError(InvalidInput):
    code = "sql_syntax_error"


class BadFile(InvalidInput):
    code = "bad_file"
    http_status = 422  # the request is well formed; the file inside it is not


class AuthError(TsunamiError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(TsunamiError):
    code = "permission_denied"
    http_status = 403


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


class LimitExceeded(TsunamiError):
    code = "limit_exceeded"
    http_status = 413


class BodyTooLarge(LimitExceeded):
    """A REST request body passed its limit while it streamed in (clients see ``limit_exceeded``)."""


class QueryTimeout(LimitExceeded):
    code = "query_timeout"
    http_status = 408


class RateLimited(LimitExceeded):
    code = "rate_limited"
    http_status = 429
    transient = True  # after ``retry_after`` seconds

    def __init__(self, message: str, /, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = max(1, int(retry_after))


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


class SigningKeyError(TsunamiError):
    """The token signing key is missing or unsafe; the service refuses to start."""

    code = "signing_key_error"
