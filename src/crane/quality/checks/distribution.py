"""The ``distribution`` check: has a column's distribution shifted against a reference?

    - distribution: {column: amount, method: psi, reference_filter: "day = DATE '2024-01-01'"}
    - distribution: {column: amount, method: ks, reference: previous_run, min_p_value: 0.01}
    - distribution: {column: country, method: chi_square, reference_table: customers_snapshot}

The reference is another filter of the same table (a reference window), another
table (``reference_table``, ``reference_connection``), or the previous run's
summary kept in history (``reference: previous_run``). Summaries are computed in
the engine (`crane.quality.distribution`); the statistics in Python on at most
a few dozen numbers.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crane.errors import ConfigError
from crane.quality import distribution as dist
from crane.quality.checks import check_types
from crane.quality.checks.base import Check, Context, Scan
from crane.quality.model import CheckResult

METHODS = ("psi", "ks", "chi_square")


@check_types.register("distribution")
class Distribution(Check):
    """``column``'s distribution vs a reference: PSI/KS (numbers) or chi-square (categories)."""

    dimension = "accuracy"
    cross = True  # runs its own read-only queries (several scans and a window function)

    def validate(self) -> None:
        self.require("column")
        method = self.options.get("method", "psi")
        if method not in METHODS:
            raise ConfigError(f"distribution method must be one of {', '.join(METHODS)}")
        refs = [k for k in ("reference_filter", "reference_table") if k in self.options]
        if self.options.get("reference") != "previous_run" and not refs:
            raise ConfigError(
                f"check {self.name!r} needs a reference",
                hint="reference: previous_run, reference_filter: <SQL> or reference_table: <t>",
                table=self.spec.table,
            )

    @property
    def method(self) -> str:
        return str(self.options.get("method", "psi"))

    @property
    def previous_run(self) -> bool:
        return self.options.get("reference") == "previous_run"

    @property
    def categorical(self) -> bool:
        return self.method == "chi_square" or bool(self.options.get("categorical"))

    def _reference(self) -> Scan:
        o = self.options
        if "reference_table" in o:
            conn = o.get("reference_connection") or self.connection
            return Scan(conn, o["reference_table"], o.get("reference_filter"))
        return Scan(self.connection, self.spec.table, o.get("reference_filter"))

    def _fetch(self, ctx: Context, scan: Scan, query: exp.Select) -> list[tuple]:
        return ctx.session(scan.connection).fetch(query)[1]

    def _base(self, ctx: Context, scan: Scan) -> exp.Select:
        return scan.select(ctx.dialect(scan.connection).name, exp.Star())

    # -- numbers -------------------------------------------------------------------------
    def _cdf(self, ctx: Context, scan: Scan, edges: list[float]) -> tuple[int, list[float]]:
        row = self._fetch(ctx, scan, dist.cumulative_sql(self._base(ctx, scan), self.col, edges))[0]
        n = int(row[0] or 0)
        return n, [int(c or 0) / n if n else 0.0 for c in row[1:]]

    def _summary(self, ctx: Context, scan: Scan) -> tuple[list[float], int, list[float]]:
        rows = self._fetch(ctx, scan, dist.quantile_edges_sql(self._base(ctx, scan), self.col))
        edges = sorted({float(edge) for _, edge in rows if edge is not None})
        n, cdf = self._cdf(ctx, scan, edges) if edges else (0, [])
        return edges, n, cdf

    def _stored(self, ctx: Context, names: list[str]) -> list[float | None]:
        if ctx.store is None:
            return [None] * len(names)
        found = []
        for name in names:
            history = ctx.store.metric_history(
                self.spec.table, self.spec.column, name, self.spec.filter, 1, exclude_run=ctx.run_id
            )
            found.append(history[-1][1] if history else None)
        return found

    def _numeric(self, ctx: Context) -> dict[str, Any]:
        if self.previous_run:
            edges, n_ref, ref_cdf = self._summary(ctx, self.scan)
            summary = {
                "dist_n": n_ref,
                **_series("dist_edge", edges),
                **_series("dist_cdf", ref_cdf),
            }
            stored_n = self._stored(ctx, ["dist_n"])[0]
            count = dist.TILES
            old = self._stored(ctx, [f"dist_edge_{i:02d}" for i in range(count)])
            old_cdf = self._stored(ctx, [f"dist_cdf_{i:02d}" for i in range(count)])
            pairs = [
                (e, c) for e, c in zip(old, old_cdf, strict=True) if e is not None and c is not None
            ]
            if not stored_n or not pairs:
                return {"summary": summary, "baseline": True}
            edges, ref_cdf, n_ref = [e for e, _ in pairs], [c for _, c in pairs], int(stored_n)
        else:
            edges, n_ref, ref_cdf = self._summary(ctx, self._reference())
            summary = {}
        if not edges:
            return {"summary": summary, "empty": True}
        n_cur, cur_cdf = self._cdf(ctx, self.scan, edges)
        value, d, p = dist.numeric_shift(edges, ref_cdf, cur_cdf, n_ref, n_cur)
        return {"summary": summary, "psi": value, "ks": d, "p_value": p, "n_ref": n_ref, "n": n_cur}

    # -- categories ----------------------------------------------------------------------
    def _counts(self, ctx: Context, scan: Scan) -> tuple[dict[str, int], int]:
        rows = self._fetch(ctx, scan, dist.categories_sql(self._base(ctx, scan), self.col))
        total = int(rows[0][2]) if rows else 0
        return {str(v): int(n) for v, n, _ in rows}, total

    def _categorical(self, ctx: Context) -> dict[str, Any]:
        current, n_cur = self._counts(ctx, self.scan)
        summary: dict[str, Any] = {}
        if self.previous_run:
            summary = {
                "dist_n": n_cur,
                **{f"dist_share:{v}": c / n_cur for v, c in current.items()},
            }
            stored_n = self._stored(ctx, ["dist_n"])[0]
            if not stored_n:
                return {"summary": summary, "baseline": True}
            shares = self._stored(ctx, [f"dist_share:{v}" for v in current])
            n_ref = int(stored_n)
            reference = {v: round((s or 0.0) * n_ref) for v, s in zip(current, shares, strict=True)}
        else:
            reference, n_ref = self._counts(ctx, self._reference())
        keys = sorted(set(reference) | set(current))
        ref = [float(reference.get(k, 0)) for k in keys] + [float(n_ref - sum(reference.values()))]
        cur = [float(current.get(k, 0)) for k in keys] + [float(n_cur - sum(current.values()))]
        statistic, dof = dist.chi_square(ref, cur)
        p = dist.chi_square_pvalue(statistic, dof)
        value = (
            dist.psi([r / n_ref for r in ref], [c / n_cur for c in cur]) if n_ref and n_cur else 0.0
        )
        return {
            "summary": summary,
            "chi_square": statistic,
            "dof": dof,
            "p_value": p,
            "psi": value,
            "n_ref": n_ref,
            "n": n_cur,
        }

    def local(self, ctx: Context) -> dict[str, Any]:
        return self._categorical(ctx) if self.categorical else self._numeric(ctx)

    # -- verdict -------------------------------------------------------------------------
    def evaluate(self, values: dict[str, Any], ctx: Context) -> CheckResult:
        if values.get("baseline"):
            return self.result(True, None, "previous run", "no previous run: baseline recorded")
        if values.get("empty"):
            return self.result(True, None, "reference", "reference has no values")
        details = {
            k: values[k]
            for k in ("n", "n_ref", "psi", "ks", "p_value", "chi_square", "dof")
            if k in values
        }
        if self.method == "psi":
            limit = float(self.options.get("max_psi", 0.2))
            value = float(values["psi"])
            return self.result(
                value <= limit, round(value, 6), f"PSI <= {limit:g}", f"PSI {value:.4f}", **details
            )
        p = float(values["p_value"])
        statistic = float(values["ks"] if self.method == "ks" else values["chi_square"])
        if "max_statistic" in self.options:
            limit = float(self.options["max_statistic"])
            ok, text = statistic <= limit, f"statistic <= {limit:g}"
        else:
            limit = float(self.options.get("min_p_value", 0.01))
            ok, text = p >= limit, f"p >= {limit:g}"
        message = f"{self.method} statistic {statistic:.4g}, p-value {p:.3g}"
        return self.result(ok, round(statistic, 6), text, message, **details)

    def metrics(self, values: dict[str, Any]) -> dict[str, Any]:
        found = dict(values.get("summary") or {})
        if "psi" in values:
            found["distribution_psi"] = values["psi"]
        return found


def _series(prefix: str, numbers: list[float]) -> dict[str, float]:
    return {f"{prefix}_{i:02d}": v for i, v in enumerate(numbers)}
