"""Suite files (YAML shorthand and long form), the history store on SQLite and
PostgreSQL, and the fused SQL rendered for every dialect."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from crane.errors import ConfigError, UnknownNameError
from crane.quality.checks.base import Context
from crane.quality.compiler import compile_plan
from crane.quality.dialects import DIALECTS
from crane.quality.loader import build_suite, load_suite
from crane.quality.model import CheckResult, MetricRecord, SuiteResult
from crane.state.quality import QualityStore

SUITE = """
connection: db
sample_rows: 2
tables:
  orders:
    filter: "id > 0"
    checks:
      - row_count: {min: 1}
      - not_null: [id, email]
      - unique: id
      - duplicate_rows
      - accepted_values: {column: status, values: [new, paid], filter: "amount > 0"}
      - type: range
        column: amount
        min: 0
        severity: warn
"""


def test_yaml_shorthand_and_long_form(tmp_path: Path, duck_db: str) -> None:
    path = tmp_path / "orders.yml"
    path.write_text(SUITE)
    suite = load_suite(path, lambda name: duck_db, "warehouse")
    names = [c.name for c in suite.checks]
    assert names == [
        "orders.row_count()",
        "orders.not_null(id)",
        "orders.not_null(email)",
        "orders.unique(id)",
        "orders.duplicate_rows()",
        "orders.accepted_values(status)",
        "orders.range(amount)",
    ]
    assert suite.connections == {"db": duck_db} and suite.sample_rows == 2
    accepted = suite.checks[5].spec
    assert accepted.filter == "(id > 0) AND (amount > 0)"
    assert suite.checks[6].spec.severity == "warn"


def test_bad_suites_point_at_the_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("tables:\n  t:\n    checks:\n      - {nott_null: a}\n")
    with pytest.raises(ConfigError, match=r"checks\[0\].*cannot tell"):
        load_suite(path, str, "db")
    path.write_text(
        "tables:\n  t:\n    checks:\n      - row_count: {min: 1}\n\n      - not_nul: [a]\n"
    )
    with pytest.raises(ConfigError) as error:
        load_suite(path, str, "db")
    assert "line 6, tables.t.checks[1]" in str(error.value)  # the line, not only the index
    assert "did you mean 'not_null'?" in str(error.value)
    path.write_text("tables:\n  t:\n    checks:\n      - not_null: [a\n")
    with pytest.raises(ConfigError, match="line"):
        load_suite(path, str, "db")
    with pytest.raises(UnknownNameError, match="not_null"):
        build_suite([{"type": "nott_null", "table": "t", "column": "a"}], {"db": "duckdb://"})
    with pytest.raises(ConfigError, match="needs 'values'"):
        build_suite([{"type": "accepted_values", "table": "t", "column": "a"}], {"db": "x"})


def _suite_result(run_id: str, rows: float) -> SuiteResult:
    result = CheckResult("t.row_count()", "t", "row_count", "completeness", value=rows)
    metric = MetricRecord("t", "row_count", rows, filter="day = 1", run_id=run_id)
    return SuiteResult(run_id=run_id, results=[result], metrics=[metric], suite="s")


def test_sqlite_store_survives_concurrent_writers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            store = QualityStore(url)
            for i in range(10):
                store.record(_suite_result(f"r{n}-{i}", float(i)))
        except BaseException as error:  # pragma: no cover - the assertion shows it
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = QualityStore(url)
    assert len(store.metric_history("t", None, "row_count", "day = 1")) == 40
    assert store.metric_history("t", None, "row_count") == []  # another filter: none


@pytest.mark.integration
def test_postgres_store(pg_schema: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    store = QualityStore(url)
    store.record(_suite_result("a", 10))
    store.record(_suite_result("b", 12))
    assert [v for _, v in store.metric_history("t", None, "row_count", "day = 1")] == [10, 12]
    assert store.results("b")[0].value == 12
    assert [r["run_id"] for r in store.runs(suite="s")] == ["b", "a"]


# the same fused checks, rendered for every engine (each dialect's regex, epoch,
# multi-column distinct and percentile as declared in dialects.py)
SPECS = [
    {"type": "format", "table": "t", "column": "e", "format": "uuid"},
    {"type": "lag", "table": "t", "column": "a", "to_column": "b", "max_lag": "1h"},
    {"type": "unique", "table": "t", "columns": ["a", "b"]},
    {"type": "median", "table": "t", "column": "x"},
]
EXPECTED = {
    "duckdb": [
        'REGEXP_MATCHES(CAST("e" AS TEXT)',
        'EPOCH("b")',
        'THEN ("a", "b")',
        'QUANTILE_CONT("x", 0.5)',
    ],
    "postgres": [
        'CAST("e" AS TEXT) ~',
        'EXTRACT(EPOCH FROM "b")',
        'THEN ("a", "b")',
        'PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY "x")',
    ],
    "mysql": ["REGEXP_INSTR(CAST(`e` AS CHAR)", "UNIX_TIMESTAMP(`b`)", "COUNT(DISTINCT `a`, `b`)"],
    "sqlite": ['CAST("e" AS TEXT) REGEXP', 'JULIANDAY("b")'],
}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_fused_sql_per_dialect(dialect: str) -> None:
    suite = build_suite(SPECS, {"db": f"{dialect}://"})
    # samples off: the compound key's DISTINCT stays in the fused scan on every engine
    plan = compile_plan(suite.checks, Context({"db": DIALECTS[dialect]}, sample_rows=0))
    sql = plan.bundles[0].sql(DIALECTS[dialect])
    for fragment in EXPECTED[dialect]:
        assert fragment in sql
    # engines without multi-column DISTINCT count compound keys with a GROUP BY probe;
    # engines without an aggregate percentile compute it in one extra query
    assert len(plan.probes) == {"duckdb": 0, "postgres": 0, "mysql": 1, "sqlite": 2}[dialect]


PY_SUITE = """
from crane.quality import CheckSpec

connection = "db"
checks = [
    CheckSpec(type="unique", table="orders", column="id"),
    {"type": "rule", "table": "orders", "expression": "amount >= 0", "severity": "warn"},
]
"""


def test_python_suite_builds_the_same_checks(tmp_path: Path, duck_db: str) -> None:
    from crane.quality.executor import run_suite
    from crane.quality.loader import find_suites

    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "orders.py").write_text(PY_SUITE)
    (tmp_path / "checks" / "_helpers.py").write_text("X = 1\n")
    paths = find_suites(tmp_path)
    assert [p.name for p in paths] == ["orders.py"]
    suite = load_suite(paths[0], {"db": duck_db}.__getitem__, "warehouse")
    outcome = run_suite(suite)
    assert [(r.check, r.status, r.value) for r in outcome.results] == [
        ("orders.unique(id)", "fail", 2),
        ("orders.rule()", "warn", 1),
    ]


def test_a_new_check_type_is_one_registered_class(duck_db: str) -> None:
    from sqlglot import exp

    from crane.quality.checks import check_types
    from crane.quality.checks.base import RowCheck
    from crane.quality.executor import run_suite

    @check_types.register("positive_test_only")
    class Positive(RowCheck):
        dimension = "accuracy"

        def predicate(self, ctx: Context) -> exp.Expr:
            return exp.LTE(this=self.col, expression=exp.Literal.number(0))

    spec = {"type": "positive_test_only", "table": "orders", "column": "amount"}
    result = run_suite(build_suite([spec], {"db": duck_db})).results[0]
    assert (result.status, result.value, result.dimension) == ("fail", 1, "accuracy")
    assert result.sample[0]["amount"] == -5
