"""Logging: tenant and request id travel in context variables and appear on every line; anything
shaped like an API key is masked before a record is written. Handlers are configured only by entry
points (:func:`configure_logging`): readable lines, or one JSON object per line (``log_format=json``)
with the record's context and the fields a door's request line adds (:func:`request_line`)."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any, TextIO

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")
# The authenticated caller of the current request, set where the door resolves it: tenant_id,
# tenant (slug), subject, role. Read by the doors' request lines, metrics and audit hooks.
caller: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("caller", default=None)

# Fields a request line may carry (``logger.info(..., extra=request_fields(...))``).
REQUEST_FIELDS = ("door", "principal", "operation", "duration_ms", "outcome", "status")

access_logger = logging.getLogger("servicetsunami.access")

_SECRET_RE = re.compile(
    r"tsk_[A-Za-z0-9]+_[A-Za-z0-9_\-]+|tsr_[A-Za-z0-9_\-]{16,}|(?i:bearer\s+)[A-Za-z0-9._\-]+"
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"  # refresh tokens and JWTs too
)


def redact(text: str) -> str:
    return _SECRET_RE.sub(lambda m: m.group(0)[:8] + "…[redacted]", text)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.tenant = tenant.get()
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact(str(record.msg))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, tenant, the request
    line's fields when present, and the exception's text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "tenant": getattr(record, "tenant", "-"),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def identify(*, tenant_id: str, tenant_slug: str, subject: str, role: str) -> None:
    """Record the authenticated caller of the current request (for log lines, request lines and the
    audit hook). A door's middleware that put a holder in :data:`caller` sees it filled in place,
    even when the principal was resolved in a copy of its context."""
    tenant.set(tenant_slug)
    who = {"tenant_id": tenant_id, "tenant": tenant_slug, "subject": subject, "role": role}
    holder = caller.get()
    if holder is None:
        caller.set(who)
    else:
        holder.update(who)


def request_line(door: str, operation: str, *, duration_ms: float, outcome: str, status: int | None = None) -> None:
    """One line per request (a REST call, an MCP tool call) on ``servicetsunami.access``: who, what,
    how long, how it ended. Skipped cheaply when that logger is not enabled for INFO."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    who = caller.get()
    principal = who["subject"] if who else "-"
    fields: dict[str, Any] = {
        "door": door,
        "principal": principal,
        "operation": operation,
        "duration_ms": round(duration_ms, 2),
        "outcome": outcome,
    }
    if status is not None:
        fields["status"] = status
    access_logger.info("%s %s %s %.1f ms", door, operation, outcome, duration_ms, extra=fields)


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [tenant=%(tenant)s req=%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter on every start
    # Request lines are structured data for JSON logs; readable logs have uvicorn's access lines.
    access_logger.setLevel(logging.NOTSET if json_lines else logging.WARNING)
    # JSON logs: our request line replaces uvicorn's access line (one line per request, not two).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING if json_lines else logging.NOTSET)
