"""Anomaly detection on a metric's history: a robust z-score with an explained band.

Why robust: a mean/stddev band is dragged by the very outliers it should find;
the median and the median absolute deviation (MAD) are not. ``1.4826 * MAD``
estimates the standard deviation of normal data, so ``sensitivity`` reads like
a z threshold (3 ≈ "three sigma").

What peers get wrong and this module guards against (LESSONS.md, Elementary
#1560/#1912): the tested value never trains its own band (`detect` trains only
on points strictly before ``at``; the check also excludes its own run), the
sensitivity is configurable, tiny relative changes can be ignored
(``min_relative_change``), and with too little history the answer is "not
enough history" rather than a guess. Seasonality trains on the same weekday or
hour only, so Monday's low volume is compared with other Mondays.

>>> import datetime as dt
>>> days = [dt.datetime(2024, 1, d) for d in range(1, 15)]
>>> history = [(t, 100.0 + (i % 3)) for i, t in enumerate(days)]
>>> r = detect(history, 160.0, dt.datetime(2024, 1, 15))
>>> r.status, r.lower < 101 < r.upper
('anomaly', True)
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): MAD -> sigma for normal data
MEAN_AD_TO_SIGMA = 1.2533  # sqrt(pi/2): mean absolute deviation -> sigma (MAD = 0 fallback)

Direction = Literal["up", "down", "both"]
Seasonality = Literal["day_of_week", "hour_of_day"] | None


@dataclass(frozen=True)
class AnomalyConfig:
    """How sensitive a monitor is; every knob has a safe default."""

    sensitivity: float = 3.0  # robust z beyond which a value is anomalous
    min_history: int = 7  # training points needed (after the seasonal filter)
    max_history: int = 90  # newest points used for training
    min_relative_change: float = 0.0  # |value - median| / |median| must also exceed this
    direction: Direction = "both"
    seasonality: Seasonality = None

    @classmethod
    def read(cls, options: dict[str, Any]) -> AnomalyConfig:
        """From check options (``sensitivity: 2.5``, ``direction: down``, …)."""
        known = {k: options[k] for k in cls.__dataclass_fields__ if k in options}
        config = cls(**known)
        if config.direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be up, down or both, got {config.direction!r}")
        if config.seasonality not in (None, "day_of_week", "hour_of_day"):
            raise ValueError(
                f"seasonality must be day_of_week or hour_of_day, got {config.seasonality!r}"
            )
        return config


@dataclass
class AnomalyResult:
    """The verdict on one value, with the band it was expected in and why."""

    status: Literal["ok", "anomaly", "not_enough_history"]
    value: float | None
    lower: float | None = None  # expected band; None = unbounded on that side
    upper: float | None = None
    median: float | None = None
    scale: float | None = None  # robust sigma (1.4826 * MAD, or a fallback)
    z: float | None = None
    training_size: int = 0
    reason: str = ""

    @property
    def is_anomaly(self) -> bool:
        return self.status == "anomaly"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bucket(at: dt.datetime, seasonality: Seasonality) -> int | None:
    """The seasonal bucket of a timestamp: weekday (Mon = 0) or hour of day."""
    if seasonality == "day_of_week":
        return at.weekday()
    if seasonality == "hour_of_day":
        return at.hour
    return None


def training_set(
    history: Sequence[tuple[dt.datetime, float | None]], at: dt.datetime, config: AnomalyConfig
) -> list[float]:
    """Past values (strictly before ``at``) in ``at``'s seasonal bucket, newest last."""
    key = bucket(at, config.seasonality)
    points = [
        float(v)
        for t, v in history
        if v is not None
        and not math.isnan(float(v))
        and _naive(t) < _naive(at)
        and bucket(t, config.seasonality) == key
    ]
    return points[-config.max_history :]


def _naive(t: dt.datetime) -> dt.datetime:
    """Compare aware and naive stamps alike (history may hold either)."""
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def robust_scale(values: Sequence[float], median: float) -> float:
    """1.4826 * MAD; when more than half the values are equal (MAD = 0), 1.2533 * mean AD.

    Zero only when every training value is identical: then any change is anomalous
    unless ``min_relative_change`` allows it.
    """
    mad = statistics.median(abs(v - median) for v in values)
    if mad > 0:
        return MAD_TO_SIGMA * mad
    return MEAN_AD_TO_SIGMA * statistics.fmean(abs(v - median) for v in values)


def detect(
    history: Sequence[tuple[dt.datetime, float | None]],
    value: float | None,
    at: dt.datetime,
    config: AnomalyConfig | None = None,
) -> AnomalyResult:
    """Judge ``value`` measured at ``at`` against the history before it."""
    config = config or AnomalyConfig()
    train = training_set(history, at, config)
    if value is None:
        return AnomalyResult("not_enough_history", None, reason="no value measured")
    if len(train) < config.min_history:
        where = f" in the same {config.seasonality.replace('_', ' ')}" if config.seasonality else ""
        return AnomalyResult(
            "not_enough_history",
            value,
            training_size=len(train),
            reason=f"not enough history: {len(train)} of {config.min_history} points{where}",
        )
    median = statistics.median(train)
    scale = robust_scale(train, median)
    margin = max(config.sensitivity * scale, config.min_relative_change * abs(median))
    lower = None if config.direction == "up" else median - margin
    upper = None if config.direction == "down" else median + margin
    deviation = value - median
    z = (
        deviation / scale
        if scale
        else (0.0 if deviation == 0 else math.copysign(math.inf, deviation))
    )
    outside = (upper is not None and value > upper) or (lower is not None and value < lower)
    status: Literal["ok", "anomaly"] = "anomaly" if outside else "ok"
    reason = (
        f"{value:g} outside expected [{_fmt(lower)}, {_fmt(upper)}] (robust z {z:+.2f})"
        if outside
        else f"{value:g} within expected [{_fmt(lower)}, {_fmt(upper)}]"
    )
    return AnomalyResult(status, value, lower, upper, median, scale, z, len(train), reason)


def _fmt(bound: float | None) -> str:
    return "-inf" if bound is None else f"{bound:.6g}"


def bands(
    history: Sequence[tuple[dt.datetime, float | None]], config: AnomalyConfig | None = None
) -> list[AnomalyResult]:
    """Each point judged against the points before it (for trend charts)."""
    config = config or AnomalyConfig()
    return [detect(history, v, t, config) for t, v in history]


def monitor_specs(
    tables: dict[str, dict[str, Any]], config: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Built-in monitors for every table of a suite, as anomaly check specs.

    ``tables`` maps a table to ``{"columns": [...], "timestamp": "updated_at"}``:
    volume (row count) always, freshness when a timestamp column is known, and the
    null rate of every listed column. Fed to `crane.quality.loader.build_suite`.
    """
    options = dict(config or {})
    specs: list[dict[str, Any]] = []
    for table, info in tables.items():
        specs.append({"type": "anomaly", "table": table, "metric": "row_count", **options})
        if info.get("timestamp"):
            specs.append(
                {
                    "type": "anomaly",
                    "table": table,
                    "metric": "freshness",
                    "column": info["timestamp"],
                    **options,
                }
            )
        for name in info.get("columns") or []:
            specs.append(
                {
                    "type": "anomaly",
                    "table": table,
                    "metric": "null_rate",
                    "column": name,
                    **options,
                }
            )
    return specs


_FRESHNESS_NAMES = ("updated_at", "loaded_at", "_loaded_at", "modified_at", "created_at")


def suite_monitors(suite: Any, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`monitor_specs` for every table a suite checks, columns read from the database.

    The freshness column is the first timestamp named like ``updated_at``/``loaded_at``/
    ``created_at``, else the first timestamp column; tables are read through a
    read-only connection (schema only, no scan).
    """
    import pyarrow as pa

    from crane.connectors.base import TableRef, connect

    tables: dict[str, dict[str, Any]] = {}
    for check in suite.checks:
        table, url = check.spec.table, suite.connections[check.connection]
        if table in tables:
            continue
        with connect(url, read_only=True) as con:
            schema = con.table_schema(TableRef.parse(table))
        if schema is None:
            continue
        stamps = [f.name for f in schema if pa.types.is_timestamp(f.type)]
        named = [n for n in _FRESHNESS_NAMES if n in stamps]
        tables[table] = {
            "columns": [f.name for f in schema],
            "timestamp": (named or stamps or [None])[0],
        }
    specs = monitor_specs(tables, config)
    connections = {c.spec.table: c.connection for c in suite.checks}
    for spec in specs:
        spec["connection"] = connections[spec["table"]]
    return specs
