"""``shell``: a command in its own process group, so a timeout kills it and its children.

Template values are shell-quoted (`crane.orchestrate.template`). The output goes
to the attempt's log file; the task's return value is the last non-empty line
of that output (like Airflow's BashOperator), capped at 1 KB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

from pydantic import Field

from crane.errors import CraneError
from crane.orchestrate.tasks import Options, TaskContext, TaskType, task_types
from crane.orchestrate.template import render, shell_quote


class ShellError(CraneError):
    """A command exited non-zero (transient only for the exit codes the task lists)."""


class ShellOptions(Options):
    command: str | list[str]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    transient_exit_codes: list[int] = Field(default_factory=list)


class ShellTask(TaskType):
    name = "shell"
    Options = ShellOptions

    def run(self, options: ShellOptions, ctx: TaskContext) -> Any:
        values = ctx.template_values()
        if isinstance(options.command, list):
            args: Any = [render(a, values, lambda v, f: str(v)) for a in options.command]
        else:
            args = render(options.command, values, shell_quote)
        env = {**os.environ, **options.env, "CRANE_RUN_ID": ctx.run_id, "CRANE_TASK": ctx.task}
        cwd = options.cwd or (str(ctx.project.root) if ctx.project is not None else None)
        log = open(ctx.log_path, "ab") if ctx.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                args,
                shell=isinstance(args, str),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,  # its own process group: a kill reaches the children
            )
            ctx.on_cancel(lambda: _kill_group(proc))
            code = proc.wait()
        finally:
            if not isinstance(log, int):
                log.close()
        if code != 0:
            raise ShellError(
                f"command exited with {_describe(code)}",
                transient=code in options.transient_exit_codes,
                hint=f"see the log: {ctx.log_path}" if ctx.log_path else None,
            )
        return last_line(ctx)

    def describe(self, options: ShellOptions) -> str:
        text = options.command if isinstance(options.command, str) else " ".join(options.command)
        return f"shell: {text[:40]}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def last_line(ctx: TaskContext) -> str | None:
    """The last non-empty line of the attempt's log (its tail only is read)."""
    if ctx.log_path is None or not ctx.log_path.exists():
        return None
    with open(ctx.log_path, "rb") as file:
        file.seek(max(file.seek(0, os.SEEK_END) - 4096, 0))
        lines = [line.strip() for line in file.read().decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:1024] if lines else None


task_types.register("shell")(ShellTask())
