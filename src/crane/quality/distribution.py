"""Distribution change: PSI and KS for numbers, chi-square for categories — math and SQL.

A distribution is summarised *in the engine* so no rows reach Python:

* numbers: the reference's 20-quantile edges (``NTILE(20)`` — a window function
  every supported engine has), then the current data's cumulative counts at
  those edges in ONE aggregate query. PSI is computed over the 20 reference
  bins; KS is the largest CDF gap at the 21 edges (a binned KS: a lower bound
  of the exact statistic, within 1/20 of it), its p-value from the asymptotic
  Kolmogorov distribution.
* categories: counts of the most frequent values (GROUP BY … LIMIT), the rest
  lumped into one "other" cell; a chi-square test of homogeneity on the 2 x k table.

The p-values need the chi-square and Kolmogorov survival functions; both are
implemented here (regularised incomplete gamma, Numerical Recipes §6.2) so that
no SciPy is needed.

>>> round(psi([0.5, 0.5], [0.5, 0.5]), 6)
0.0
>>> round(chi_square_pvalue(3.84, 1), 3)
0.05
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

PSI_EPSILON = 1e-4  # share floor for empty bins (log(0) otherwise)
TILES = 20
TOP_CATEGORIES = 50


# -- statistics ----------------------------------------------------------------------------
def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two share vectors over the same bins.

    Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_EPSILON), max(a, PSI_EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sample KS p-value from the asymptotic Kolmogorov distribution (Stephens' correction)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    n = n1 * n2 / (n1 + n2)
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if lam < 1e-3:
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(max(2 * total, 0.0), 1.0)


def _gamma_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(500):
        ap += 1
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-14:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_pvalue(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X ~ chi-square(dof): the regularised upper incomplete gamma."""
    if dof <= 0 or statistic <= 0:
        return 1.0
    a, x = dof / 2.0, statistic / 2.0
    return 1.0 - _gamma_series(a, x) if x < a + 1 else _gamma_fraction(a, x)


def chi_square(reference: Sequence[float], current: Sequence[float]) -> tuple[float, int]:
    """Chi-square statistic and degrees of freedom of a 2 x k table of counts."""
    cells = [(r, c) for r, c in zip(reference, current, strict=True) if r + c > 0]
    n_ref, n_cur = sum(r for r, _ in cells), sum(c for _, c in cells)
    total = n_ref + n_cur
    if not n_ref or not n_cur or len(cells) < 2:
        return 0.0, 0
    statistic = 0.0
    for r, c in cells:
        column = r + c
        for observed, row_total in ((r, n_ref), (c, n_cur)):
            expected = row_total * column / total
            statistic += (observed - expected) ** 2 / expected
    return statistic, len(cells) - 1


@dataclass
class Shift:
    """The outcome of comparing two distributions."""

    method: str
    statistic: float
    p_value: float | None
    n_reference: int
    n_current: int
    detail: dict[str, float]


def numeric_shift(
    edges: Sequence[float],
    ref_cdf: Sequence[float],
    cur_cdf: Sequence[float],
    n_ref: int,
    n_cur: int,
) -> tuple[float, float, float]:
    """(PSI, KS statistic, KS p-value) from both CDFs evaluated at the reference edges."""
    ref_bins = [ref_cdf[0]] + [ref_cdf[i] - ref_cdf[i - 1] for i in range(1, len(edges))]
    cur_bins = [cur_cdf[0]] + [cur_cdf[i] - cur_cdf[i - 1] for i in range(1, len(edges))]
    ref_bins.append(1 - ref_cdf[-1])
    cur_bins.append(1 - cur_cdf[-1])
    d = max(abs(a - b) for a, b in zip(ref_cdf, cur_cdf, strict=True))
    return psi(ref_bins, cur_bins), d, ks_pvalue(d, n_ref, n_cur)


# -- SQL -----------------------------------------------------------------------------------
def quantile_edges_sql(
    source: exp.Select, column: exp.Expression, tiles: int = TILES
) -> exp.Select:
    """The upper edge of each of ``tiles`` equal-count tiles of ``column`` (NTILE, any engine).

    ``source`` is ``SELECT … FROM table [WHERE filter]``; NULLs are left out.
    """
    inner = source.copy()
    inner.set("expressions", [])
    window = exp.Window(
        this=exp.Anonymous(this="NTILE", expressions=[exp.Literal.number(tiles)]),
        order=exp.Order(expressions=[exp.Ordered(this=column.copy())]),
    )
    inner = inner.select(column.copy().as_("v"), window.as_("tile"), copy=False)
    inner = inner.where(exp.Not(this=exp.Is(this=column.copy(), expression=exp.null())))
    return (
        exp.select(exp.column("tile"), exp.Max(this=exp.column("v")).as_("edge"))
        .from_(inner.subquery("t"))
        .group_by(exp.column("tile"))
        .order_by(exp.column("tile"))
    )


def cumulative_sql(
    source: exp.Select, column: exp.Expression, edges: Sequence[float]
) -> exp.Select:
    """One row: non-null count, then the count of values <= each edge (one scan)."""
    query = source.copy()
    projections: list[Any] = [exp.Count(this=column.copy()).as_("n")]
    for i, edge in enumerate(edges):
        hit = exp.LTE(this=column.copy(), expression=exp.Literal.number(edge))
        count = exp.Count(this=exp.Case(ifs=[exp.If(this=hit, true=exp.Literal.number(1))]))
        projections.append(count.as_(f"c{i}"))
    query.set("expressions", projections)
    return query


def categories_sql(
    source: exp.Select, column: exp.Expression, limit: int = TOP_CATEGORIES
) -> exp.Select:
    """The ``limit`` most frequent values of ``column`` with their counts, as text."""
    value = exp.Cast(this=column.copy(), to=exp.DataType.build("text"))
    query = source.copy()
    # the window total counts every row (the lumped "other" cell is total - listed)
    total = exp.Window(this=exp.Sum(this=exp.Count(this=exp.Star())))
    query.set(
        "expressions",
        [value.as_("v"), exp.Count(this=exp.Star()).as_("n"), total.as_("total")],
    )
    return (
        query.group_by(value.copy())
        .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True))
        .limit(limit)
    )
