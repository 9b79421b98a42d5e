"""The README's masking example, run exactly as printed against a real ``tsunami mcp`` subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from servicetsunami.services.container import Services
from tests.helpers import make_principal
from tests.integration.api.test_readme import readme_block


def test_the_readme_masking_example_prints_what_the_readme_says(services: Services, tmp_path: Path) -> None:
    _, key = make_principal(services, "acme")  # an admin key: uploads and turns masking on
    script = tmp_path / "example.py"
    script.write_text(readme_block("masking example:", "python"), "utf-8")
    run = subprocess.run(
        [sys.executable, str(script)],
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "TSUNAMI_HOME": str(services.settings.resolved_home),
            "TSUNAMI_API_KEY": key,
            "TSUNAMI_LOG_LEVEL": "WARNING",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == readme_block("masking example output", "text").splitlines()
