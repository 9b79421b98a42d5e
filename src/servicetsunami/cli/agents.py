"""``tsunami agents``: create and list agents, deploy one to a serving endpoint, invoke an endpoint."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from servicetsunami.cli.common import console, key_principal, open_services

app = typer.Typer(help="Agents: create, list, deploy to a serving endpoint, invoke.", no_args_is_help=True)


@app.command("create")
def agents_create(
    name: Annotated[str, typer.Argument(help="Letters, digits, '_' and '-'")],
    instructions: Annotated[str | None, typer.Option(help="The system prompt")] = None,
    model: Annotated[str | None, typer.Option(help="'default', a model name, or 'endpoint:<name>'")] = None,
    tool: Annotated[list[str] | None, typer.Option("--tool", help="query_sql, list_tables, describe_table")] = None,
    vector_index: Annotated[list[str] | None, typer.Option("--vector-index", help="An index it may search")] = None,
) -> None:
    """Create an agent (default: every SQL tool, the configured model)."""
    from servicetsunami.services.serving import agents

    with open_services() as svc:
        made = agents.create_agent(
            svc,
            key_principal(svc),
            name,
            instructions=instructions,
            model=model,
            tools=tool,
            vector_indexes=vector_index,
        )
    console.print_json(made.model_dump_json())


@app.command("list")
def agents_list() -> None:
    """Your agents and the endpoints serving them."""
    from servicetsunami.services.serving import agents, endpoints

    with open_services() as svc:
        principal = key_principal(svc)
        found = agents.list_agents(svc, principal).agents
        served = endpoints.list_endpoints(svc, principal).endpoints
    table = Table("agent", "model", "tools", "version", "endpoints")
    for a in found:
        names = ", ".join(f"{e.name} ({e.state})" for e in served if e.agent == a.name)
        table.add_row(a.name, a.model, ", ".join(a.tools + a.vector_indexes), str(a.version), names)
    console.print(table)


@app.command("deploy")
def agents_deploy(
    agent: Annotated[str, typer.Argument(help="The agent's name")],
    endpoint: Annotated[str, typer.Option(help="The endpoint's name")],
    rate_limit: Annotated[str | None, typer.Option(help="Requests per caller, like '100/minute'")] = None,
) -> None:
    """Serve an agent at a serving endpoint; exits 1 unless it is READY."""
    from servicetsunami.services.serving import endpoints

    with open_services() as svc:
        deployed = endpoints.deploy_agent(svc, key_principal(svc), agent, endpoint, rate_limit=rate_limit)
    console.print_json(deployed.model_dump_json(exclude={"config"}))
    if deployed.state != "READY":
        raise typer.Exit(1)


@app.command("deploy-model")
def agents_deploy_model(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's name")],
    entity: Annotated[str, typer.Option(help="<your catalog>.<schema>.<model> or system.ai.<model>")],
    version: Annotated[str | None, typer.Option(help="The model version, like '3'")] = None,
    workload_size: Annotated[str, typer.Option(help="Small, Medium or Large")] = "Small",
) -> None:
    """Databricks engine: serve a model on a Model Serving endpoint; exits 1 unless it is READY."""
    from servicetsunami.services.serving import workspace

    with open_services() as svc:
        deployed = workspace.deploy_workspace_model(
            svc, key_principal(svc), endpoint, entity_name=entity, entity_version=version, workload_size=workload_size
        )
    console.print_json(deployed.model_dump_json())
    if deployed.state != "READY":
        raise typer.Exit(1)


@app.command("invoke")
def agents_invoke(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's name")],
    question: Annotated[str | None, typer.Argument(help="A question (sent as messages)")] = None,
    body: Annotated[str | None, typer.Option("--json", help="A whole Databricks request body instead")] = None,
) -> None:
    """Ask a serving endpoint; prints its answer (the whole response with --json)."""
    from servicetsunami.services.serving import endpoints

    if (question is None) == (body is None):
        raise typer.BadParameter("give a question or --json, not both")
    request: Any = json.loads(body) if body is not None else {"messages": [{"role": "user", "content": question}]}
    with open_services() as svc:
        answer = endpoints.invoke_endpoint(svc, key_principal(svc), endpoint, request)
    if body is None:
        typer.echo(answer["choices"][0]["message"]["content"])
    else:
        console.print_json(json.dumps(answer))
