"""Agents, serving endpoints and chat (DESIGN.md section 12): :mod:`.agents` (definitions, CRUD),
:mod:`.tools` (what an agent may call, as its caller), :mod:`.loop` (one bounded invocation),
:mod:`.wire` (Databricks' request and answer shapes), :mod:`.endpoints` (deploy as a run, invoke,
usage), :mod:`.workspace` (Databricks Model Serving endpoints), :mod:`.streaming` (events for the async
doors), :mod:`.chat` (conversations)."""
