"""The execution plan: every aggregate of one scan fused into ONE SELECT.

A *scan* is (connection, table, filter). The compiler collects the aggregate
expressions of every check on a scan, computes identical expressions once (the
``COUNT(*)`` that ten checks need is one column), and renders one ``SELECT`` per
scan for its engine. Checks that need more than an aggregate (GROUP BY, custom
SQL) add stand-alone *probes*. Failing-row samples and precise duplicate figures
are not in the plan: the executor fetches them only for checks that failed.

>>> from crane.quality.checks.base import CheckSpec, Context
>>> from crane.quality.checks import check_types
>>> from crane.quality.dialects import DIALECTS
>>> specs = [CheckSpec(type="not_null", table="t", column=c) for c in ("a", "b")]
>>> checks = [check_types.get(s.type)(s, "db") for s in specs]
>>> plan = compile_plan(checks, Context({"db": DIALECTS["duckdb"]}))
>>> plan.summary()
'2 checks → 1 query'
>>> print(plan.bundles[0].sql(DIALECTS["duckdb"])[:59])
SELECT COUNT(*) AS "row_count", COUNT(CASE WHEN "a" IS NULL
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from crane.quality.checks.base import Check, Context, Probe, Scan
from crane.quality.dialects import QualityDialect

ROW_COUNT = "row_count"


@dataclass
class Bundle:
    """One fused aggregate query over one scan."""

    scan: Scan
    columns: dict[str, exp.Expr] = field(default_factory=dict)  # alias -> aggregate
    # alias -> [(check index, the check's local name)]
    users: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # name -> row-level expression computed once per row (`Check.row_columns`)
    row_columns: dict[str, exp.Expr] = field(default_factory=dict)
    _by_sql: dict[str, str] = field(default_factory=dict)

    def add(self, expression: exp.Expr, dialect: QualityDialect, user: tuple[int, str]) -> str:
        key = dialect.render(expression)
        alias = self._by_sql.get(key)
        if alias is None:
            alias = ROW_COUNT if key == "COUNT(*)" else f"m{len(self.columns)}"
            self._by_sql[key] = alias
            self.columns[alias] = expression
        self.users.setdefault(alias, []).append(user)
        return alias

    def query(self, dialect: QualityDialect, aliases: list[str] | None = None) -> exp.Select:
        """The aggregates ``aliases`` over the scan. Row columns they read are computed
        in a derived table (``SELECT *, <expr> AS name``), and only those: a query
        that bisection sends for other checks must not fail on a broken one."""
        names = aliases if aliases is not None else list(self.columns)
        projections = [exp.alias_(self.columns[a].copy(), a, quoted=True) for a in names]
        needed = sorted({n for a in names for n in self._reads(a)})
        if not needed:
            return self.scan.select(dialect.name, *projections)
        rows = [exp.alias_(self.row_columns[n].copy(), n, quoted=True) for n in needed]
        inner = self.scan.select(dialect.name, exp.Star(), *rows)
        return exp.select(*projections).from_(inner.subquery("scan", copy=False), copy=False)

    def _reads(self, alias: str) -> set[str]:
        if not self.row_columns:
            return set()
        found = {c.name for c in self.columns[alias].find_all(exp.Column)}
        return found & self.row_columns.keys()

    def sql(self, dialect: QualityDialect, aliases: list[str] | None = None) -> str:
        return dialect.render(self.query(dialect, aliases))


@dataclass
class ProbeStep:
    check: int
    name: str
    probe: Probe


@dataclass
class Plan:
    """What one run will ask of each database, before it asks."""

    checks: list[Check]
    bundles: list[Bundle] = field(default_factory=list)
    probes: list[ProbeStep] = field(default_factory=list)
    local: list[int] = field(default_factory=list)  # checks computed outside the databases
    schema_sql: list[tuple[str, str]] = field(default_factory=list)  # column-list probes
    errors: dict[int, str] = field(default_factory=dict)  # checks that failed to compile

    @property
    def query_count(self) -> int:
        return len(self.bundles) + len(self.probes) + 2 * len(self.local) + len(self.schema_sql)

    def summary(self) -> str:
        n, k = len(self.checks), self.query_count
        return f"{n} check{'s' if n != 1 else ''} → {k} quer{'ies' if k != 1 else 'y'}"

    def statements(self, ctx: Context) -> list[tuple[str, str]]:
        """(connection, SQL) of every planned query, in execution order."""
        out = list(self.schema_sql)
        out += [(b.scan.connection, b.sql(ctx.dialect(b.scan.connection))) for b in self.bundles]
        for step in self.probes:
            query, connection = step.probe.query, step.probe.connection
            sql = query if isinstance(query, str) else ctx.dialect(connection).render(query)
            out.append((connection, sql))
        for index in self.local:
            for connection, key_query in self.checks[index].local_queries(ctx):
                out.append((connection, ctx.dialect(connection).render(key_query)))
        return out


def compile_plan(checks: list[Check], ctx: Context) -> Plan:
    """Fuse the checks' aggregates per scan; collect probes and local checks."""
    plan = Plan(checks=checks)
    bundles: dict[Scan, Bundle] = {}
    for index, check in enumerate(checks):
        try:
            aggregates = check.aggregates(ctx)
            row_columns = check.row_columns(ctx)
            probes = check.probes(ctx)
        except Exception as error:  # a broken check must not take the plan down
            plan.errors[index] = f"cannot compile: {error}"
            continue
        for name, (scan, expression) in row_columns.items():
            _bundle(bundles, scan, ctx).row_columns.setdefault(name, expression)
        for local_name, (scan, expression) in aggregates.items():
            bundle = _bundle(bundles, scan, ctx)
            bundle.add(expression, ctx.dialect(scan.connection), (index, local_name))
        plan.probes.extend(ProbeStep(index, name, probe) for name, probe in probes.items())
        if getattr(check, "cross", False):
            plan.local.append(index)
    plan.bundles = list(bundles.values())
    return plan


def _bundle(bundles: dict[Scan, Bundle], scan: Scan, ctx: Context) -> Bundle:
    bundle = bundles.get(scan)
    if bundle is None:
        bundle = bundles[scan] = Bundle(scan)
        bundle.add(exp.Count(this=exp.Star()), ctx.dialect(scan.connection), (-1, ROW_COUNT))
    return bundle
