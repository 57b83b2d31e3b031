"""DAG specs: YAML and Python build the same objects; validation names the problem."""

import os
import textwrap

import pytest

from crane.config.env import Environment
from crane.errors import ConfigError
from crane.orchestrate.dag import Dag, DagSpec, load_dags
from crane.orchestrate.executor import run_dag
from crane.orchestrate.graph import Graph

YAML = """\
params: {region: eu}
pools: {source_db: 2}
defaults: {retries: 2, timeout: 60}
tasks:
  - {name: extract_a, pipeline: orders, pool: source_db}
  - {name: extract_b, sql: "SELECT 1", connection: source}
  - name: merge
    callable: "_dag_tasks:add"
    depends_on: [extract_a, extract_b]
    trigger_rule: none_failed
groups:
  checks:
    depends_on: [merge]
    tasks:
      - {name: count, command: "echo {{ ds }}"}
      - {name: notify, command: "echo done", depends_on: [count]}
"""


def _write(root, name, text):
    (root / "dags").mkdir(exist_ok=True)
    (root / "dags" / name).write_text(textwrap.dedent(text))


def test_yaml_and_python_build_the_same_spec(tmp_path):
    _write(tmp_path, "daily.yml", YAML)
    from_yaml = load_dags(tmp_path, Environment.of({}))["daily"]

    dag = Dag(
        "daily",
        params={"region": "eu"},
        pools={"source_db": 2},
        defaults={"retries": 2, "timeout": 60},
    )
    a = dag.pipeline("extract_a", "orders", pool="source_db")
    b = dag.sql("extract_b", "SELECT 1", connection="source")
    dag.add("merge", callable="_dag_tasks:add", depends_on=[a, b], trigger_rule="none_failed")
    with dag.group("checks", depends_on=["merge"]):
        dag.shell("count", "echo {{ ds }}")
        dag.shell("notify", "echo done", depends_on=["count"])
    assert dag.spec == from_yaml
    assert [t.type for t in from_yaml.tasks] == ["pipeline", "sql", "python", "shell", "shell"]
    assert from_yaml.task("count").retries == 2 and from_yaml.task("count").group == "checks"
    graph = from_yaml.graph()
    assert graph.upstream["count"] == ["merge"]  # from the group
    assert graph.upstream["notify"] == ["count", "merge"]  # its own and its group's
    assert graph.layers() == [["extract_a", "extract_b"], ["merge"], ["count"], ["notify"]]


def test_decorated_functions_are_tasks():
    dag = Dag("py")

    @dag.task()
    def first(ctx):
        return 1

    @dag.task(depends_on=[first], retries=3)
    def second(first):
        return first + 1

    spec = dag.spec
    assert spec.task("second").depends_on == ["first"] and spec.task("second").retries == 3
    assert (
        spec.task("first")
        .options()
        .callable.endswith(":test_decorated_functions_are_tasks.<locals>.first")
    )


def test_cycle_error_prints_the_cycle(tmp_path):
    _write(
        tmp_path,
        "loop.yml",
        """\
        tasks:
          - {name: a, command: x, depends_on: [c]}
          - {name: b, command: x, depends_on: [a]}
          - {name: c, command: x, depends_on: [b]}
          - {name: d, command: x}
        """,
    )
    with pytest.raises(ConfigError, match=r"dags/loop.yml.*dependency cycle: a → b → c → a"):
        load_dags(tmp_path, Environment.of({}))
    assert Graph.of({"x": ["x"]}).find_cycle() == ["x", "x"]


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            [{"name": "a", "command": "x", "depends_on": ["bb"]}, {"name": "b", "command": "x"}],
            r"unknown task or group 'bb'.*did you mean 'b'",
        ),
        ([{"name": "a", "comand": "x"}], r"set 'type' or exactly one of"),
        ([{"name": "a", "command": "x", "colour": 1}], r"colour: unknown option"),
        ([{"name": "a", "type": "shel", "command": "x"}], r"did you mean 'shell'"),
        ([{"name": "a", "command": "x", "pool": "db"}], r"unknown pool 'db'"),
        ([{"name": "a", "command": "x"}, {"name": "a", "command": "y"}], r"defined twice: a"),
    ],
)
def test_validation_names_the_problem(tasks, message):
    with pytest.raises(ValueError, match=message):
        DagSpec.model_validate({"name": "bad", "tasks": tasks})


def test_yaml_errors_point_at_the_line(tmp_path):
    _write(tmp_path, "bad.yml", "tasks:\n  - name: a\n    command: x\n    retries: -1\n")
    with pytest.raises(ConfigError, match=r"dags/bad.yml, line 4, field tasks\[0\].retries"):
        load_dags(tmp_path, Environment.of({}))


def test_python_dag_file(tmp_path):
    _write(
        tmp_path,
        "pydag.py",
        """\
        from crane.orchestrate.dag import Dag

        dag = Dag("pydag")

        @dag.task()
        def hello(ctx):
            return "hi"

        @dag.task(isolation="process", depends_on=[hello])
        def again(hello):
            import os
            return [hello, os.getpid()]
        """,
    )
    spec = load_dags(tmp_path, Environment.of({}))["pydag"]
    ref = spec.task("hello").options().callable
    assert ref == f"{tmp_path / 'dags' / 'pydag.py'}:hello"
    result = run_dag(spec)  # the process-isolated task imports the DAG file by its path
    assert result.ok, {n: t.error for n, t in result.tasks.items()}
    assert result.tasks["again"].output[0] == "hi"
    assert result.tasks["again"].output[1] != os.getpid()
