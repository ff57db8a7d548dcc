"""Commands over several endpoints: the local hosting layer (`host`), `sweep` (deploy, test
and price instance types) and `cleanup` (what a sweep left behind)."""

from __future__ import annotations

from typing import Annotated

import typer

from recommender.cli.app import app, echo, echo_err
from recommender.cli.flags import Model


@app.command()
def host(
    aws_endpoint_url: Annotated[
        str, typer.Option(help="The AWS emulator's URL (moto server) whose endpoints to host.")
    ],
    region: Annotated[str, typer.Option(help="Region of the endpoints.")] = "us-east-1",
    host_: Annotated[str, typer.Option("--host", help="Address the router binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Router port; 0 picks a free one.")] = 0,
    poll_seconds: Annotated[float, typer.Option(help="How often the emulator is read.")] = 1.0,
    provision_seconds: Annotated[
        float, typer.Option(help="A new instance serves this long after its launch.")
    ] = 2.0,
    metrics_period: Annotated[int, typer.Option(help="Seconds per published datapoint.")] = 60,
    model: Annotated[Model, typer.Option(help="sklearn (iris classifier) or sleep.")] = (
        Model.sklearn
    ),
    max_queue: Annotated[int, typer.Option(help="Waiting requests per instance before 503.")] = (
        100
    ),
) -> None:
    """Host the AWS emulator's endpoints locally: a model server per endpoint (capacity from
    its instance type), one runtime URL for all (`run --endpoint-url`)."""
    from recommender.local.hosting import HostingConfig, serve_hosting

    config = HostingConfig(aws_endpoint_url, region, host_, port, poll_seconds,
                           provision_seconds, metrics_period, model.value, max_queue)  # fmt: skip

    def ready(url: str) -> None:
        echo(f"Listening on {url} (the SageMaker runtime of the endpoints in "
             f"{aws_endpoint_url}: run --endpoint E --endpoint-url {url} "
             f"--aws-endpoint-url {aws_endpoint_url})")

    serve_hosting(config.check(), ready, echo_err)
