"""Logging: tenant and request id travel in context variables and appear on every line; anything
shaped like an API key is masked before a record is written. Handlers are configured only by entry
points (:func:`configure_logging`)."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import TextIO

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")

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


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [tenant=%(tenant)s req=%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migration chatter on every start
