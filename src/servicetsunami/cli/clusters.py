"""``tsunami clusters``: the compute code runs on: list, get, and for admins start, terminate and
resize (on the data folder, or with ``--server URL`` on a running server over REST).

On the Databricks engine these are the workspace's all-purpose clusters; elsewhere the one compute
``sandbox`` (this server's pool of sandboxed kernels), which has nothing to start, stop or resize.
Actions return at once with the state the workspace reports; ``get`` shows when it has settled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from servicetsunami.cli.common import console, id_column, key_principal, open_services, print_json_rows, remote

if TYPE_CHECKING:
    from servicetsunami.services.container import Services
    from servicetsunami.services.notebooks.compute import Cluster
    from servicetsunami.tenancy import Principal

app = typer.Typer(help="Clusters: the compute notebooks and execution contexts run on.", no_args_is_help=True)

ClusterId = Annotated[str, typer.Argument(help="Cluster id (`tsunami clusters list` shows them)")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the cluster as JSON")]


def _one(
    local: Callable[[Services, Principal], Cluster], method: str, path: str, body: dict[str, Any] | None = None
) -> Cluster:
    """The cluster an action answers: on the server with ``--server``, else on the data folder."""
    from servicetsunami.services.notebooks.compute import Cluster

    with remote() as server:
        if server is not None:
            return Cluster.model_validate(server.call(method, path, **({"json": body} if body is not None else {})))
    with open_services() as svc:
        return local(svc, key_principal(svc))


def _show(cluster: Cluster, as_json: bool) -> None:
    if as_json:
        console.print_json(cluster.model_dump_json())
        return
    size = (
        f"{cluster.autoscale.min_workers}-{cluster.autoscale.max_workers} workers (autoscale)"
        if cluster.autoscale
        else f"{cluster.num_workers} workers"
        if cluster.num_workers is not None
        else ""
    )
    console.print(f"{cluster.id} ({cluster.name}): {cluster.state} {size}".rstrip(), highlight=False)
    if cluster.state_message:
        console.print(f"  {cluster.state_message}", highlight=False)
    for key, value in cluster.detail.items():
        console.print(f"  {key}: {value}", highlight=False)


@app.command("list")
def clusters_list(as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON")] = False) -> None:
    """The clusters (locally: the sandbox pool)."""
    from servicetsunami.services.notebooks import compute

    with remote() as server:
        if server is not None:
            found = [compute.Cluster.model_validate(c) for c in server.call("GET", "/clusters")["clusters"]]
    if server is None:
        with open_services() as svc:
            found = compute.list_clusters(svc, key_principal(svc))
    if as_json:
        print_json_rows(found)
        return
    table = Table(id_column("id", (c.id for c in found)), "name", "state", "workers", "engine")
    for c in found:
        workers = (
            f"{c.autoscale.min_workers}-{c.autoscale.max_workers}"
            if c.autoscale
            else ""
            if c.num_workers is None
            else str(c.num_workers)
        )
        table.add_row(c.id, c.name, c.state, workers, c.engine)
    console.print(table)


@app.command("get")
def clusters_get(cluster_id: ClusterId, as_json: AsJson = False) -> None:
    """One cluster: state, size and details."""
    from servicetsunami.services.notebooks import compute

    _show(_one(lambda s, p: compute.get_cluster(s, p, cluster_id), "GET", f"/clusters/{cluster_id}"), as_json)


@app.command("start")
def clusters_start(cluster_id: ClusterId, as_json: AsJson = False) -> None:
    """Start a terminated cluster (admins; returns at once: `clusters get` until RUNNING)."""
    from servicetsunami.services.notebooks import compute

    _show(_one(lambda s, p: compute.start_cluster(s, p, cluster_id), "POST", f"/clusters/{cluster_id}/start"), as_json)


@app.command("terminate")
def clusters_terminate(cluster_id: ClusterId, as_json: AsJson = False) -> None:
    """Terminate a cluster (admins; its definition stays and it can be started again)."""
    from servicetsunami.services.notebooks import compute

    _show(
        _one(lambda s, p: compute.terminate_cluster(s, p, cluster_id), "POST", f"/clusters/{cluster_id}/terminate"),
        as_json,
    )


@app.command("resize")
def clusters_resize(
    cluster_id: ClusterId,
    workers: Annotated[int | None, typer.Option("--workers", min=0, help="A fixed number of workers")] = None,
    min_workers: Annotated[int | None, typer.Option(min=0, help="Or autoscale: at least this many")] = None,
    max_workers: Annotated[int | None, typer.Option(min=1, help="Or autoscale: at most this many")] = None,
    as_json: AsJson = False,
) -> None:
    """Resize a running cluster (admins): --workers N, or --min-workers and --max-workers."""
    from servicetsunami.services.notebooks import compute

    if (min_workers is None) != (max_workers is None):
        raise typer.BadParameter("give both --min-workers and --max-workers for autoscale", param_hint="--min-workers")
    if (workers is None) == (min_workers is None):
        raise typer.BadParameter("give --workers N, or --min-workers and --max-workers", param_hint="--workers")
    body: dict[str, Any] = {"num_workers": workers}
    scale = None
    if min_workers is not None and max_workers is not None:
        from pydantic import ValidationError

        try:
            scale = compute.AutoScale(min_workers=min_workers, max_workers=max_workers)
        except ValidationError:
            why = f"workers are between 0 and {compute.MAX_WORKERS}"
            raise typer.BadParameter(why, param_hint="--max-workers") from None
        body = {"autoscale": {"min_workers": min_workers, "max_workers": max_workers}}
    resized = _one(
        lambda s, p: compute.resize_cluster(s, p, cluster_id, num_workers=workers, autoscale=scale),
        "POST",
        f"/clusters/{cluster_id}/resize",
        body,
    )
    _show(resized, as_json)
