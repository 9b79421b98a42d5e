"""Log lines carry the tenant and request id, and never an API key."""

from __future__ import annotations

import io
import logging

from servicetsunami import logs


def test_api_keys_and_bearer_tokens_are_masked_and_context_is_added() -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", stream=stream)
    token = logs.tenant.set("acme")
    try:
        logging.getLogger("servicetsunami.test").info(
            "auth with %s and header Bearer abc.def.ghi", "tsk_0123abcd_SECRETsecretSECRET"
        )
    finally:
        logs.tenant.reset(token)
        logging.getLogger().handlers.clear()
    line = stream.getvalue()
    assert "SECRETsecretSECRET" not in line and "abc.def.ghi" not in line
    assert "[tenant=acme req=-]" in line
