"""Pipelines and jobs (DESIGN.md section 10): DAGs of tasks run on the run model.

:mod:`.spec` is the job definition (ours and the earlier API's shape), :mod:`.quartz` the schedules,
:mod:`.kinds` the registry of task kinds and :mod:`.tasks` the built-in ones, :mod:`.jobs` the CRUD
the doors call, :mod:`.runner` the ``job_run`` and ``task_run`` run kinds (the DAG runner, cancel,
repair) and :mod:`.schedules` the ticker that queues scheduled runs.
"""
