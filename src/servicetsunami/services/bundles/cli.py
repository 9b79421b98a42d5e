"""The Databricks CLI as a second opinion: ``databricks bundle validate -o json`` in a temporary copy.

Only when a ``databricks`` executable is on PATH. It runs with a timeout, in a folder of its own, with
an environment holding only ``PATH`` and that folder as ``HOME`` (none of this service's settings or
keys). The CLI resolves what only a workspace knows (lookups, the current user, permissions, the
deployed state), so without workspace credentials it may stop early: its errors and warnings
become findings with ``source: databricks_cli`` either way.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from servicetsunami.services.bundles.models import Finding

TIMEOUT_SECONDS = 60.0
_MAX_OUTPUT = 64 * 1024


def executable() -> str | None:
    return shutil.which("databricks")


@functools.cache
def _version(path: str) -> str | None:
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, env=_env(Path(tempfile.gettempdir()))
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0][:100] if done.returncode == 0 and text else None


def version() -> str | None:
    """The installed CLI's version line, or None when there is none (or it does not answer)."""
    path = executable()
    return _version(path) if path else None


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "DATABRICKS_CLI_DO_NOT_TRACK": "1"}


def validate(files: dict[str, str], /) -> list[Finding]:
    """The CLI's findings on ``files`` (written to a temporary folder, removed afterwards)."""
    path = executable()
    if path is None:
        return []
    with tempfile.TemporaryDirectory(prefix="bundle-") as folder:
        root = Path(folder) / "bundle"
        for name, text in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        try:
            done = subprocess.run(
                [path, "bundle", "validate", "-o", "json"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                env=_env(Path(folder)),
            )
        except subprocess.TimeoutExpired:
            return [_finding(f"databricks bundle validate did not finish in {TIMEOUT_SECONDS:.0f} s", "warning")]
        except OSError as exc:
            return [_finding(f"databricks bundle validate could not start: {exc.strerror}", "warning")]
        return parse_output(done.returncode, done.stdout[:_MAX_OUTPUT], done.stderr[:_MAX_OUTPUT], folder)


def parse_output(returncode: int, stdout: str, stderr: str, folder: str = "", /) -> list[Finding]:
    """Findings from the CLI's answer: its diagnostics lines (``Error:``, ``Warning:``) on stderr."""
    findings: list[Finding] = []
    for line in stderr.splitlines():
        text = line.strip().replace(folder, "")
        for prefix, severity in (("Error:", "error"), ("Warning:", "warning")):
            if text.startswith(prefix):
                findings.append(_finding(text[len(prefix) :].strip(), severity))
    if returncode != 0 and not findings:
        last = next((s.strip() for s in reversed(stderr.splitlines()) if s.strip()), "")
        findings.append(_finding(f"databricks bundle validate failed: {last.replace(folder, '')[:500]}", "error"))
    if returncode == 0 and stdout.strip():
        try:
            json.loads(stdout)
        except ValueError:
            findings.append(_finding("databricks bundle validate answered something other than JSON", "warning"))
    return findings


def _finding(message: str, severity: Any) -> Finding:
    return Finding(
        file="databricks.yml", code="databricks_cli", severity=severity, message=message, source="databricks_cli"
    )
