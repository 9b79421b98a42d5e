"""Hard-coded secrets in notebook text: key-shaped literals (the service's own keys and tokens, as
:func:`servicetsunami.logs.redact` recognises them, and common cloud and API key formats), URLs with
a password, and literals assigned to names that say they hold a secret. Findings never repeat the
secret."""

from __future__ import annotations

import re

from servicetsunami.logs import redact

_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Databricks token", re.compile(r"\bdapi[0-9a-f]{32}(?:-\d)?\b")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("API key", re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    # Bounded repeats: a long run of letters must not make this quadratic.
    ("password in a URL", re.compile(r"\b[a-z][a-z0-9+.\-]{0,19}://[^/\s:@]{1,256}:[^/\s@]{3,256}@[^\s/]", re.I)),
)
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|secret|token|api_?key|apikey|access_?key|private_?key|client_?secret"
    r"|credentials?|auth)$",
    re.I,
)
# Values that are plainly not a secret: empty, placeholders, environment lookups written as text.
_NOT_A_SECRET = re.compile(
    r"^(?:|\s+|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|x+|\*+|changeme|none|null|todo|your[_\- ].*)$", re.I
)


def secret_kind(value: str, /) -> str | None:
    """What kind of secret ``value`` holds, or None."""
    if len(value) > 100_000:
        value = value[:100_000]
    if redact(value) != value:
        return "service key or token"
    for kind, pattern in _KINDS:
        if pattern.search(value):
            return kind
    return None


def is_secret_assignment(name: str, value: str, /) -> bool:
    """True when a literal ``value`` is given to a name that says it holds a secret."""
    camel = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    if not _SECRET_NAME.search(camel):
        return False
    return len(value) >= 4 and not _NOT_A_SECRET.match(value.strip())
