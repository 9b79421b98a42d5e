"""The one exception tree of ServiceTsunami.

Every error the service raises on purpose derives from :class:`TsunamiError` and carries a stable
``code`` that front doors map to a status (REST), an MCP tool error, or a CLI exit code. The message
is written for the person (or agent) who sent the request and never contains secrets.

::

    TsunamiError                      code
    ├── InvalidInput                  invalid_input          the request itself is wrong
    │   ├── InvalidIdentifier         invalid_identifier     a catalog/schema/table/column name
    │   ├── QueryRefused              query_refused          the SQL guard said no (reason inside)
    │   ├── SqlSyntaxError            sql_syntax_error       the SQL does not parse as Databricks SQL
    │   └── BadFile                   bad_file               an uploaded file cannot be ingested
    ├── AuthError                     unauthenticated        no or bad credentials
    ├── PermissionDenied              permission_denied      authenticated, but the role may not
    ├── NotFound                      not_found              table, tenant, key, version ... missing
    ├── Conflict                      conflict               already exists / concurrent change
    ├── NotSupported                  not_supported          this engine or source lacks the capability
    ├── Cancelled                     cancelled              a run was stopped on request (or timed out)
    ├── LimitExceeded                 limit_exceeded         a size or time limit was reached
    │   ├── QueryTimeout              query_timeout
    │   └── RateLimited               rate_limited           too many requests; ``retry_after`` seconds
    └── EngineError                   engine_error           the lakehouse failed; ``transient`` says
        └── StoreError                store_error            whether a retry may help

Drivers' exceptions (DuckDB, delta-rs, SQLAlchemy) are translated at the adapter boundary with
``raise ... from exc``; they never reach a front door untranslated.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TsunamiError(Exception):
    """Root of every error ServiceTsunami raises on purpose."""

    code: ClassVar[str] = "error"
    transient: ClassVar[bool] = False

    def __init__(self, message: str, /, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(TsunamiError):
    code = "invalid_input"


class InvalidIdentifier(InvalidInput):
    code = "invalid_identifier"


class QueryRefused(InvalidInput):
    code = "query_refused"


class SqlSyntaxError(InvalidInput):
    code = "sql_syntax_error"


class BadFile(InvalidInput):
    code = "bad_file"


class AuthError(TsunamiError):
    code = "unauthenticated"


class PermissionDenied(TsunamiError):
    code = "permission_denied"


class NotFound(TsunamiError):
    code = "not_found"


class Conflict(TsunamiError):
    code = "conflict"


class NotSupported(TsunamiError):
    """A capability this engine, source or launcher does not have (declared as data, not guessed)."""

    code = "not_supported"


class Cancelled(TsunamiError):
    """Raised inside a run's work when its run was canceled; the run ends ``canceled``."""

    code = "cancelled"


class LimitExceeded(TsunamiError):
    code = "limit_exceeded"


class QueryTimeout(LimitExceeded):
    code = "query_timeout"


class RateLimited(LimitExceeded):
    code = "rate_limited"

    def __init__(self, message: str, /, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = max(1, int(retry_after))


class EngineError(TsunamiError):
    code = "engine_error"

    def __init__(self, message: str, /, *, transient: bool = False, **details: Any) -> None:
        super().__init__(message, **details)
        self.is_transient = transient


class StoreError(EngineError):
    code = "store_error"
