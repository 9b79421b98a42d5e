"""A service whose sandbox has small limits, so escape attempts hit them quickly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servicetsunami.services.container import Services
from servicetsunami.settings import SandboxSettings, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    sandbox = SandboxSettings(memory_mb=1024, cpu_seconds=30, processes=64, file_mb=20, interrupt_grace_seconds=2)
    return Settings(home=tmp_path / "home", sandbox=sandbox, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services.open(settings)
    try:
        yield svc
    finally:
        svc.close()
