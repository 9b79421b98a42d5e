"""A worker in a process of its own, for the tests that kill it with SIGKILL.

Usage: ``python worker_child.py HOME DATABASE_URL``. It opens the service on that home and store
(short heartbeats), registers the test kinds, starts its launcher and waits; the run it executes
prints ``running <id>`` when it starts (see support.py).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from servicetsunami.services.container import Services
from servicetsunami.services.runs import service as runs
from tests.integration.runs.support import settings_for


def main() -> None:
    home, database_url = Path(sys.argv[1]), sys.argv[2]
    svc = Services.open(settings_for(home, database_url))
    runs.ensure_worker(svc)
    print("ready", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
