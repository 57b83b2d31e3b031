"""Start-up stays short: every ``crane`` command pays it before it does any work.

Timings on a shared machine are noise, so these tests guard the causes instead:
which modules a command loads, and that building one command alone gives the
same command as building the whole app.
"""

import json
import os
import subprocess
import sys

import pytest
import typer
import typer.main

import crane
from crane.cli import run_cli
from crane.cli.app import COMMANDS, GROUPS, build_app, invoked_command

# the data plane and the commands a project-reading command does not need
NOT_FOR_CONFIG = (
    "sqlglot",
    "duckdb",
    "psycopg",
    "pyarrow",
    "rich.progress",
    "crane.pipelines.runner",
    "crane.cli.dag",
    "crane.cli.model",
    "crane.cli.check",
)


# variables that make Rich call a pipe a terminal (or used to); a test of the pipe drops them
RICH_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "FORCE_TERMINAL", "TTY_INTERACTIVE")


def _pipe_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RICH_TERMINAL_VARIABLES}
    return {**env, **extra}


def _loaded_after(
    args: list[str], watched: tuple[str, ...], cwd: str, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run the CLI in a fresh interpreter; its exit code and which ``watched`` modules it loaded."""
    probe = (
        "import json, sys; from crane.cli import run_cli; "
        f"code = run_cli({args!r}); "
        f"print(json.dumps([code, [m for m in {watched!r} if m in sys.modules]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env=_pipe_environment() if env is None else env,
    )
    assert done.returncode == 0, done.stderr
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return code, loaded


@pytest.fixture
def project(tmp_path, capsys):
    assert run_cli(["init", str(tmp_path / "shop")]) == 0
    capsys.readouterr()
    return tmp_path / "shop"


@pytest.mark.parametrize("name", [*COMMANDS, *GROUPS])
def test_a_command_built_alone_is_the_command_of_the_whole_app(name):
    whole = typer.main.get_command(build_app())
    alone = typer.main.get_command(build_app(name))
    assert list(alone.commands) == [name]  # type: ignore[attr-defined]

    def described(root):
        command = root.commands[name]
        parent = typer.Context(root, info_name="crane")
        context = typer.Context(command, info_name=name, parent=parent)
        return command.get_help(context), [p.name for p in command.params]

    assert described(alone) == described(whole)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "orders"], "run"),
        (["--debug", "config", "show"], "config"),
        (["--help"], None),
        (["--help", "run"], None),  # the root's help lists every command
        (["--version"], None),
        (["rnu"], None),  # a typo: the whole app answers "did you mean 'run'?"
        ([], None),
    ],
)
def test_invoked_command(args, expected):
    assert invoked_command(args) == expected


def test_config_show_loads_neither_the_data_plane_nor_other_commands(project):
    code, loaded = _loaded_after(
        ["config", "show", "--json", "-p", str(project)], NOT_FOR_CONFIG, str(project)
    )
    assert code == 0 and loaded == []


def test_pipeline_list_loads_no_data_plane(project):
    code, loaded = _loaded_after(
        ["pipeline", "list", "--json", "-p", str(project)], NOT_FOR_CONFIG, str(project)
    )
    assert code == 0 and loaded == []


def _duck_items(root):
    """A DuckDB-to-DuckDB project with one small pipeline, ``items``."""
    import duckdb

    root.mkdir()
    con = duckdb.connect(str(root / "src.duckdb"))
    con.execute("CREATE TABLE items AS SELECT range AS id FROM range(10)")
    con.close()
    (root / "crane.yml").write_text(
        "name: duck\nconnections:\n  source:\n    url: duckdb:///src.duckdb\n"
        "pipelines:\n  items:\n    source: {table: items}\n    target: {table: items}\n"
    )
    return root


def test_a_run_without_a_terminal_loads_no_rich(tmp_path):
    root = _duck_items(tmp_path / "duck")
    code, loaded = _loaded_after(
        ["run", "items", "-p", str(root)], ("rich.progress", "rich.console", "duckdb"), str(root)
    )
    assert code == 0 and loaded == ["duckdb"]  # it ran, with no bar and a plain table


def test_version_answers_without_a_command(capsys):
    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out == f"crane {crane.__version__}\n"
    done = subprocess.run(
        [sys.executable, "-m", "crane", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout == f"crane {crane.__version__}\n"


def test_a_json_run_never_loads_rich(tmp_path):
    root = _duck_items(tmp_path / "duck")
    code, loaded = _loaded_after(
        ["run", "items", "--json", "-p", str(root)], ("rich.console", "duckdb"), str(root)
    )
    assert code == 0 and loaded == ["duckdb"]


def test_tables_print_values_literally(capsys):
    from crane.cli.output import print_table

    print_table(None, ["error"], [["no such column :x: [bold]"]])
    assert "no such column :x: [bold]" in capsys.readouterr().out  # no emoji, no markup


def test_the_command_exits_without_taking_its_libraries_apart():
    """``main`` freezes what is alive once the command is done, so the interpreter's
    shutdown skips ~70,000 library objects (0.1-0.25 s of a short ``crane run``); atexit
    handlers still run, and `run_cli` (tests, embedding) freezes nothing."""
    probe = (
        "import atexit, gc; "
        "atexit.register(lambda: print('frozen at exit', gc.get_freeze_count() > 0)); "
        "from crane.cli import main, run_cli; "
        "run_cli(['--version']); print('run_cli froze', gc.get_freeze_count() > 0); "
        "main(['--version'])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"crane {crane.__version__}",
        "run_cli froze False",
        f"crane {crane.__version__}",
        "frozen at exit True",
    ]


def _console_probe(env: dict[str, str]) -> list[str]:
    probe = (
        "import sys; from crane.cli.console import RichConsole; c = RichConsole(); "
        "c.start_task('p'); c.advance('p', 5); c.finish_task('p'); "
        "print(c.shows_progress, 'rich.console' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_run_console_on_a_pipe_needs_no_rich():
    """Deciding that stderr is a pipe (no progress bar) must not import Rich: that import
    would otherwise land inside every timed run."""
    assert _console_probe(_pipe_environment()) == ["False", "False"]


def test_a_pipe_forced_to_be_a_terminal_gets_the_progress_bar():
    """FORCE_COLOR makes Rich treat a pipe as a terminal; crane then leaves the answer to
    Rich instead of deciding "pipe" on its own."""
    assert _console_probe(_pipe_environment(FORCE_COLOR="1")) == ["True", "True"]


def test_a_table_on_a_pipe_needs_no_rich(project):
    for args in (["pipeline", "list"], ["runs"]):
        code, loaded = _loaded_after(
            [*args, "-p", str(project)], ("rich.console", "rich.table"), str(project)
        )
        assert code == 0 and loaded == [], args


def test_a_table_on_a_pipe_is_plain_columns(capsys):
    from crane.cli.output import print_table

    rows = [["orders", "success", 1200, 0.25], ["items", "failed\nsecond line", None, 12.0]]
    print_table("runs", ["pipeline", "status", "loaded", "seconds"], rows)
    assert capsys.readouterr().out.splitlines() == [
        "runs",
        "pipeline  status              loaded  seconds",
        "orders    success              1,200      0.2",
        "items     failed second line             12.0",
    ]


def test_a_pipe_forced_to_be_a_terminal_gets_the_rich_table(project):
    probe = f"from crane.cli import run_cli; run_cli(['pipeline', 'list', '-p', {str(project)!r}])"
    for forced, drawn in (("1", True), ("", False)):  # FORCE_COLOR="" means "not forced"
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            env=_pipe_environment(FORCE_COLOR=forced),
        )
        assert done.returncode == 0, done.stderr
        assert ("┃" in done.stdout) is drawn and "orders_etl" in done.stdout


@pytest.mark.parametrize("name", ["crane.cli.app", "crane.cli.output"])
def test_docstring_examples_run(name, monkeypatch):
    import doctest
    import importlib

    for variable in RICH_TERMINAL_VARIABLES:  # the examples print as on a pipe
        monkeypatch.delenv(variable, raising=False)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
