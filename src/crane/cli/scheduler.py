"""``crane scheduler``: the long-lived process that fires DAG runs (schedules and events).

A thin layer over `crane.orchestrate.scheduler.Scheduler`: it loads the
project's DAGs, starts the webhook and NATS/Redis listeners they need, and runs
passes until SIGTERM or Ctrl-C; then it stops firing, gives running runs
``--grace`` seconds and records the rest as interrupted.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated, Any

import typer

from crane.cli.app import ProjectOption


def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="One pass: fire what is due, wait for it, exit.")
    ] = False,
    webhook_port: Annotated[
        int | None,
        typer.Option(
            "--webhook-port",
            help="Serve POST /dags/NAME/trigger on this port (0: any free port; default 8787 "
            "when $CRANE_WEBHOOK_TOKEN is set, else off).",
        ),
    ] = None,
    webhook_host: Annotated[
        str, typer.Option("--webhook-host", help="Address the webhook binds.")
    ] = "127.0.0.1",
    grace: Annotated[
        float, typer.Option("--grace", help="Seconds running runs get to finish on shutdown.")
    ] = 30.0,
    file_settle: Annotated[
        float, typer.Option("--file-settle", help="A file fires once unchanged this many s.")
    ] = 1.0,
    project: ProjectOption = None,
) -> None:
    """Run DAGs on their cron schedules and on events (files, datasets, webhook, NATS, Redis)."""
    from crane.cli.console import RichConsole
    from crane.orchestrate.dag import load_dags
    from crane.orchestrate.history import HistoryStore, location
    from crane.orchestrate.scheduler import Scheduler
    from crane.project import Project

    loaded = Project.load(project)
    dags = load_dags(loaded.root, loaded.env)
    console = RichConsole()
    history = HistoryStore.open(location(loaded.root, _one_history(dags)))
    stop = threading.Event()
    sched = Scheduler(
        dags,
        history,
        project=loaded,
        log_dir=loaded.root / ".crane" / "logs",
        console=console,
        file_settle=file_settle,
    )
    services: list[Any] = []
    _install_handlers(stop, sched)
    try:
        sched.recover()
        services = _services(sched, webhook_host, webhook_port)
        if once:
            sched.run_once()
        else:
            typer.echo(f"scheduler: {len(dags)} DAG(s); pid {os.getpid()}", err=True)
            while not stop.is_set():
                sched.wait(sched.tick())
    finally:
        if stop.is_set():  # what the signal did, and how to hurry it
            typer.echo(
                f"scheduler: stopping; running runs get {grace:.0f}s"
                " (signal again to interrupt them now)",
                err=True,
            )
        for service in services:
            service.stop()
        interrupted = sched.shutdown(grace)
        if interrupted:
            console.warn(f"interrupted {len(interrupted)} run(s) after {grace:.0f}s")
        console.close()
        history.close()


def _one_history(dags: dict[str, Any]) -> str | None:
    """The history the DAGs configure: claims must live in ONE database for all of them."""
    from crane.errors import ConfigError

    named = sorted({spec.history for spec in dags.values() if spec.history})
    if len(named) > 1:
        raise ConfigError(
            f"the DAGs name different run histories ({', '.join(named)}); one scheduler "
            "keeps its schedule state in one",
            hint="set the same 'history' in every DAG, or $CRANE_DAG_HISTORY",
        )
    return named[0] if named else None


def _services(sched: Any, host: str, port: int | None) -> list[Any]:
    from crane.orchestrate.triggers.messages import start_listeners
    from crane.orchestrate.webhook import TOKEN_ENV, WebhookServer

    services = start_listeners(sched)
    token = os.environ.get(TOKEN_ENV, "")
    if port is None and token:
        port = 8787
    if port is not None:
        server = WebhookServer(sched.submit, token, host, port).start()
        services.append(server)
        typer.echo(f"webhook: http://{host}:{server.port}/dags/NAME/trigger", err=True)
    return services


def _install_handlers(stop: threading.Event, sched: Any) -> None:
    """SIGTERM / SIGINT: stop the loop (the shutdown itself runs in the main flow);
    a second signal ends the grace period at once."""

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            sched.hurry.set()
        stop.set()
        sched.stopping = True
        sched.wake()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
