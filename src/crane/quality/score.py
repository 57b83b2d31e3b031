"""Scorecards: a 0-100 quality score per dataset, overall and per dimension, kept over time.

A dimension's score is the weighted share of its checks that passed (a warning
earns partial credit); a dataset's overall score is the dimension scores
averaged with configurable dimension weights, over the dimensions it has
checks for (a table without timeliness checks is not punished for it). Scores
go to the metric history (``quality_score`` and ``quality_score:<dimension>``),
so each run compares itself with the previous one and flags a *degradation*
(a drop above a threshold) that an orchestrator can alert on.

>>> from crane.quality.model import CheckResult
>>> results = [
...     CheckResult("a", "orders", "not_null", "completeness", status="pass"),
...     CheckResult("b", "orders", "format", "validity", status="fail"),
... ]
>>> card = scorecard(results)
>>> card.datasets[0].score, card.datasets[0].dimensions
(50.0, {'completeness': 100.0, 'validity': 0.0})
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from crane.quality.model import DIMENSIONS, CheckResult, MetricRecord

if TYPE_CHECKING:
    from crane.state.quality import QualityStore

SCORE_METRIC = "quality_score"


@dataclass(frozen=True)
class ScoreWeights:
    """How checks and dimensions count; the defaults weigh every dimension equally."""

    dimensions: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 1.0))
    credit: dict[str, float] = field(
        default_factory=lambda: {"pass": 1.0, "warn": 0.5, "fail": 0.0, "error": 0.0}
    )
    severity: dict[str, float] = field(default_factory=lambda: {"error": 1.0, "warn": 1.0})
    degradation_threshold: float = 5.0  # points of score drop that count as a degradation

    @classmethod
    def read(cls, options: dict[str, Any] | None) -> ScoreWeights:
        """From a ``scoring:`` mapping (``dimensions: {validity: 2}``, ``credit``, …)."""
        options = options or {}
        base = cls()
        return cls(
            dimensions={**base.dimensions, **(options.get("dimensions") or {})},
            credit={**base.credit, **(options.get("credit") or {})},
            severity={**base.severity, **(options.get("severity") or {})},
            degradation_threshold=float(
                options.get("degradation_threshold", base.degradation_threshold)
            ),
        )


@dataclass
class DatasetScore:
    """One dataset's score now, per dimension, and against its previous run."""

    table: str
    score: float
    dimensions: dict[str, float]
    counts: dict[str, int]
    previous: float | None = None
    previous_dimensions: dict[str, float] = field(default_factory=dict)
    degraded: bool = False
    degraded_dimensions: list[str] = field(default_factory=list)

    @property
    def change(self) -> float | None:
        return None if self.previous is None else round(self.score - self.previous, 2)


@dataclass
class Scorecard:
    """Scores of every dataset in a run."""

    datasets: list[DatasetScore]
    weights: ScoreWeights = field(default_factory=ScoreWeights)

    @property
    def degraded(self) -> bool:
        return any(d.degraded for d in self.datasets)

    def dataset(self, table: str) -> DatasetScore:
        return next(d for d in self.datasets if d.table == table)

    def metrics(self, run_id: str | None = None) -> list[MetricRecord]:
        """The scores as history records (overall and one per dimension)."""
        records = []
        for d in self.datasets:
            records.append(MetricRecord(d.table, SCORE_METRIC, d.score, run_id=run_id))
            for dim, value in d.dimensions.items():
                records.append(MetricRecord(d.table, f"{SCORE_METRIC}:{dim}", value, run_id=run_id))
        return records

    def to_dict(self) -> dict[str, Any]:
        return {
            "degraded": self.degraded,
            "threshold": self.weights.degradation_threshold,
            "datasets": [{**asdict(d), "change": d.change} for d in self.datasets],
        }


def _dimension_scores(results: list[CheckResult], w: ScoreWeights) -> dict[str, float]:
    earned: dict[str, float] = {}
    possible: dict[str, float] = {}
    for r in results:
        weight = w.severity.get(r.severity, 1.0)
        earned[r.dimension] = earned.get(r.dimension, 0.0) + weight * w.credit.get(r.status, 0.0)
        possible[r.dimension] = possible.get(r.dimension, 0.0) + weight
    return {
        dim: round(100.0 * earned[dim] / possible[dim], 2) for dim in possible if possible[dim] > 0
    }


def _overall(dimensions: dict[str, float], w: ScoreWeights) -> float:
    total = sum(w.dimensions.get(d, 1.0) for d in dimensions)
    if not total:
        return 100.0
    return round(sum(s * w.dimensions.get(d, 1.0) for d, s in dimensions.items()) / total, 2)


def scorecard(
    results: Iterable[CheckResult],
    weights: ScoreWeights | None = None,
    store: QualityStore | None = None,
    run_id: str | None = None,
) -> Scorecard:
    """Score every dataset in ``results``; with a ``store``, compare with the previous run."""
    w = weights or ScoreWeights()
    by_table: dict[str, list[CheckResult]] = {}
    for r in results:
        by_table.setdefault(r.table, []).append(r)
    datasets = []
    for table, rs in by_table.items():
        dims = _dimension_scores(rs, w)
        counts = dict.fromkeys(("pass", "warn", "fail", "error"), 0)
        for r in rs:
            counts[r.status] = counts.get(r.status, 0) + 1
        score = DatasetScore(table, _overall(dims, w), dims, counts)
        if store is not None:
            _compare(score, store, run_id, w.degradation_threshold)
        datasets.append(score)
    return Scorecard(datasets, w)


def _previous(store: QualityStore, table: str, metric: str, run_id: str | None) -> float | None:
    history = store.metric_history(table, None, metric, None, 1, exclude_run=run_id)
    return float(history[-1][1]) if history and history[-1][1] is not None else None


def _compare(
    score: DatasetScore, store: QualityStore, run_id: str | None, threshold: float
) -> None:
    score.previous = _previous(store, score.table, SCORE_METRIC, run_id)
    for dim, value in score.dimensions.items():
        before = _previous(store, score.table, f"{SCORE_METRIC}:{dim}", run_id)
        if before is None:
            continue
        score.previous_dimensions[dim] = before
        if before - value > threshold:
            score.degraded_dimensions.append(dim)
    dropped = score.previous is not None and score.previous - score.score > threshold
    score.degraded = dropped or bool(score.degraded_dimensions)


def record_scores(store: QualityStore, card: Scorecard, run_id: str) -> None:
    """Append the scores to the metric history of an already recorded run.

    Uses the store's own transaction/retry helper; scores are metrics, so the
    history, trends and anomaly checks read them like any other metric.
    """
    from crane.state.quality import NO_FILTER, _iso, _number

    rows = [
        (
            run_id,
            m.dataset,
            NO_FILTER,
            NO_FILTER,
            m.metric,
            _number(m.value),
            _iso(m.measured_at),
        )
        for m in card.metrics(run_id)
    ]
    sql = "INSERT INTO quality_metrics VALUES (?,?,?,?,?,?,?)"
    store._retry("recording scores", lambda con: store._many(con, sql, rows))
