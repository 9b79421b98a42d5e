"""The Jobs API 2.2 and the workspace files its SQL tasks name, through ``databricks-sdk``.

The job pipelines service compiles a job into Jobs API JSON (:mod:`servicetsunami.services.pipelines.remote`)
and hands it here; this module speaks only in those JSON shapes (the SDK dataclasses' ``as_dict`` /
``from_dict``), so nothing above it imports the SDK. Every call goes through the workspace's one
``_translate_error``.

A run started with an ``idempotency_token`` is started at most once for that token: a worker that
died after ``run_now`` and a second worker that calls it again get the same run.
"""

from __future__ import annotations

import base64
import posixpath
from typing import Any

from servicetsunami.engines.databricks.workspace import Workspace


class DatabricksJobs:
    """The Jobs API of one workspace (the engine's client)."""

    def __init__(self, ws: Workspace, /) -> None:
        self.ws = ws

    # -- workspace files ------------------------------------------------------------------------

    def put_file(self, path: str, text: str, /) -> None:
        """Write a workspace file (its folder made first), replacing what was there."""
        from databricks.sdk.service.workspace import ImportFormat

        c = self.ws.client
        with self.ws.translated(f"writing workspace file {path}"):
            c.workspace.mkdirs(posixpath.dirname(path))
            c.workspace.import_(
                path,
                content=base64.b64encode(text.encode()).decode(),
                format=ImportFormat.AUTO,
                overwrite=True,
            )

    # -- jobs -----------------------------------------------------------------------------------

    def create(self, settings: dict[str, Any], /) -> int:
        from databricks.sdk.service.jobs import JobSettings

        s = JobSettings.from_dict(settings)
        with self.ws.translated(f"creating job {s.name}"):
            response = self.ws.client.jobs.create(
                name=s.name,
                tasks=s.tasks,
                schedule=s.schedule,
                parameters=s.parameters,
                max_concurrent_runs=s.max_concurrent_runs,
                timeout_seconds=s.timeout_seconds,
                tags=s.tags,
                description=s.description,
            )
        return int(response.job_id or 0)

    def reset(self, job_id: int, settings: dict[str, Any], /) -> None:
        from databricks.sdk.service.jobs import JobSettings

        with self.ws.translated(f"updating job {job_id}"):
            self.ws.client.jobs.reset(job_id, JobSettings.from_dict(settings))

    def delete(self, job_id: int, /) -> None:
        from databricks.sdk.errors import NotFound as SdkNotFound

        with self.ws.translated(f"deleting job {job_id}"):
            try:
                self.ws.client.jobs.delete(job_id)
            except SdkNotFound:
                return  # deleted already

    # -- runs -----------------------------------------------------------------------------------

    def run_now(self, job_id: int, /, *, parameters: dict[str, str], idempotency_token: str) -> int:
        with self.ws.translated(f"starting a run of job {job_id}"):
            waiter = self.ws.client.jobs.run_now(
                job_id, job_parameters=parameters or None, idempotency_token=idempotency_token
            )
        response: Any = waiter.response  # RunNowResponse (the SDK annotates it as ``any``)
        return int(response.run_id or 0)

    def get_run(self, run_id: int, /) -> dict[str, Any]:
        """The run with every task (pages of 100 tasks followed)."""
        c = self.ws.client
        with self.ws.translated(f"reading run {run_id}"):
            page = c.jobs.get_run(run_id)
            out = page.as_dict()
            tasks = [t.as_dict() for t in page.tasks or []]
            while page.next_page_token:
                page = c.jobs.get_run(run_id, page_token=page.next_page_token)
                tasks.extend(t.as_dict() for t in page.tasks or [])
        out["tasks"] = tasks
        out.pop("next_page_token", None)
        return out

    def cancel_run(self, run_id: int, /) -> None:
        with self.ws.translated(f"canceling run {run_id}"):
            self.ws.client.jobs.cancel_run(run_id)

    def repair_run(self, run_id: int, /, *, tasks: list[str], latest_repair_id: int | None) -> int:
        with self.ws.translated(f"repairing run {run_id}"):
            waiter = self.ws.client.jobs.repair_run(
                run_id, rerun_tasks=tasks, rerun_dependent_tasks=True, latest_repair_id=latest_repair_id
            )
        response: Any = waiter.response  # RepairRunResponse
        return int(response.repair_id or 0)

    # -- one-time notebook runs -----------------------------------------------------------------

    def submit_notebook(
        self, path: str, /, *, parameters: dict[str, str], run_name: str, idempotency_token: str
    ) -> int:
        """Submit a one-time run of the workspace notebook ``path`` (runs submit, one ``notebook_task``
        with ``base_parameters``); the same ``idempotency_token`` gives the same run."""
        from databricks.sdk.service.jobs import NotebookTask, Source, SubmitTask

        task = SubmitTask(
            task_key="notebook",
            notebook_task=NotebookTask(notebook_path=path, base_parameters=parameters, source=Source.WORKSPACE),
        )
        with self.ws.translated(f"submitting a run of notebook {path}"):
            waiter = self.ws.client.jobs.submit(run_name=run_name, tasks=[task], idempotency_token=idempotency_token)
        response: Any = waiter.response  # SubmitRunResponse
        return int(response.run_id or 0)

    def run_output(self, task_run_id: int, /) -> dict[str, Any]:
        """A task run's output (runs get-output): ``notebook_output.result`` is the notebook's exit value,
        ``error`` what stopped it."""
        with self.ws.translated(f"reading the output of run {task_run_id}"):
            return self.ws.client.jobs.get_run_output(task_run_id).as_dict()
