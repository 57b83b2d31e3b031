"""The ``crane`` command line: a thin Typer layer over the Python API.

``main`` is the console-script entry point. It turns every error into one
masked line on stderr and a non-zero exit code; ``--debug`` shows the
traceback instead. Start-up is kept short because every command pays it: only
the invoked command is built (`crane.cli.app.build_app`), and command modules
import heavy libraries inside the commands that use them. Exit is kept short too
(see `main`).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and exit with its status.

    When `run_cli` returns, the command is done: its connections are closed and its
    output is written. What is left alive (about 70,000 objects after a ``crane run``:
    sqlglot's expression classes, pydantic's schemas, ...) is frozen (`gc.freeze`) so
    that the interpreter's shutdown does not take it apart object by object; that took
    0.1-0.25 s of a 0.7 s incremental ``crane run`` here, for memory the OS frees at
    exit anyway. atexit handlers still run (pooled connections close, logging flushes);
    what no longer runs is the finalizer of an object left in a reference cycle, and crane
    relies on none: it closes what it opens. `run_cli` itself (tests, embedding) does
    not freeze anything.
    """
    code = run_cli(argv)
    gc.freeze()
    sys.exit(code)


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (used by tests)."""
    import typer
    import typer.main

    from crane.cli.app import build_app, invoked_command
    from crane.cli.output import report_error, setup_logging

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    setup_logging(debug)
    command = typer.main.get_command(build_app(invoked_command(args)))
    try:
        result = command.main(args=args, prog_name="crane", standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as usage:  # usage errors: bad option, missing argument
        show = getattr(usage, "show", None)
        if show is not None:
            show()
        else:
            print(f"Error: {usage.format_message()}", file=sys.stderr)
        return usage.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        return report_error(error, debug)
    return result if isinstance(result, int) else 0
