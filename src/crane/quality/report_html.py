"""A self-contained HTML quality report: scorecard, checks with failing samples,
profiles with histograms, metric trends with anomaly bands.

One file, no network: CSS and the few lines of JS are inline, charts are inline
SVG drawn here (no chart library, no CDN), so the report opens anywhere —
a CI artifact, an e-mail attachment, an air-gapped laptop. Size is bounded by
construction (LESSONS.md: ydata-profiling's 291 MB reports): samples, top
values and histogram bins are capped upstream, and trends keep the newest
`MAX_POINTS` points.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crane.quality.anomaly import AnomalyConfig, AnomalyResult, bands

if TYPE_CHECKING:
    from crane.quality.model import SuiteResult
    from crane.quality.profile import Bin, TableProfile
    from crane.quality.score import Scorecard
    from crane.state.quality import QualityStore

MAX_POINTS = 120
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Trend:
    """One metric's history and, per point, the band it was judged against."""

    dataset: str
    metric: str
    column: str | None
    points: list[tuple[dt.datetime, float | None]]
    judged: list[AnomalyResult] = field(default_factory=list)

    @property
    def title(self) -> str:
        return (
            f"{self.dataset}.{self.column}: {self.metric}"
            if self.column
            else (f"{self.dataset}: {self.metric}")
        )


def trend(
    dataset: str,
    metric: str,
    column: str | None,
    points: Sequence[tuple[dt.datetime, float | None]],
    config: AnomalyConfig | None = None,
) -> Trend:
    """A trend with each point judged on the points before it (the anomaly bands)."""
    kept = list(points)[-MAX_POINTS:]
    return Trend(dataset, metric, column, kept, bands(kept, config))


def trends_from_store(
    store: QualityStore,
    keys: Iterable[tuple[str, str | None, str]],
    config: AnomalyConfig | None = None,
) -> list[Trend]:
    """Trends of ``(dataset, column, metric)`` keys read from the quality history."""
    found = []
    for dataset, column, metric in dict.fromkeys(keys):
        points = store.metric_history(dataset, column, metric, None, MAX_POINTS)
        if len(points) >= 2:
            found.append(trend(dataset, metric, column, points, config))
    return found


# -- inline SVG -----------------------------------------------------------------------------
def _num(value: float) -> str:
    return f"{value:.1f}"


def _points(pairs: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in pairs)


def histogram_svg(bins: Sequence[Bin], width: int = 220, height: int = 60) -> str:
    """Bars of an equi-width histogram; the tooltip gives each bin's range and count."""
    if not bins:
        return ""
    top = max(b.count for b in bins) or 1
    bar = width / len(bins)
    rects = []
    for i, b in enumerate(bins):
        h = height * b.count / top
        tip = html.escape(f"[{b.lower:.4g}, {b.upper:.4g}): {b.count:,}")
        rects.append(
            f'<rect x="{_num(i * bar)}" y="{_num(height - h)}" width="{_num(max(bar - 1, 1))}" '
            f'height="{_num(h)}"><title>{tip}</title></rect>'
        )
    return (
        f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="histogram">{"".join(rects)}</svg>'
    )


def trend_svg(t: Trend, width: int = 480, height: int = 140) -> str:
    """The metric as a line, its expected band as a shaded area, anomalies as red dots."""
    values = [v for _, v in t.points if v is not None]
    if len(values) < 2:
        return ""
    bounds = [x for r in t.judged for x in (r.lower, r.upper) if x is not None]
    low, high = min(values + bounds), max(values + bounds)
    span = (high - low) or 1.0
    pad = 6

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * i / max(len(t.points) - 1, 1)
        return x, height - pad - (height - 2 * pad) * (v - low) / span

    banded = [
        (i, r.lower, r.upper)
        for i, r in enumerate(t.judged)
        if r.upper is not None and r.lower is not None
    ]
    ring = [xy(i, hi) for i, _, hi in banded] + [xy(i, lo) for i, lo, _ in reversed(banded)]
    band = ""
    if len(banded) >= 2:
        band = f'<polygon class="band" points="{_points(ring)}"/>'
    line = _points([xy(i, v) for i, (_, v) in enumerate(t.points) if v is not None])
    dots = []
    for i, ((at, v), r) in enumerate(zip(t.points, t.judged, strict=False)):
        if v is None:
            continue
        x, y = xy(i, v)
        cls = "dot anomaly" if r.is_anomaly else "dot"
        tip = html.escape(f"{at:%Y-%m-%d %H:%M}: {v:.6g} — {r.reason}")
        circle = f'<circle class="{cls}" cx="{_num(x)}" cy="{_num(y)}" r="3">'
        dots.append(f"{circle}<title>{tip}</title></circle>")
    return (
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(t.title)}">{band}'
        f'<polyline class="line" points="{line}"/>{"".join(dots)}</svg>'
    )


# -- the page -------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_html(
    *,
    title: str = "crane quality report",
    suite: SuiteResult | None = None,
    scorecard: Scorecard | None = None,
    profiles: Sequence[TableProfile] = (),
    trends: Sequence[Trend] = (),
    generated_at: dt.datetime | None = None,
) -> str:
    """The report as one HTML string (every part optional)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    env.globals.update(histogram_svg=histogram_svg, trend_svg=trend_svg)
    css = (TEMPLATES / "report.css").read_text()
    js = (TEMPLATES / "report.js").read_text()
    return env.get_template("report.html.j2").render(
        title=title,
        suite=suite,
        card=scorecard,
        profiles=list(profiles),
        trends=list(trends),
        generated_at=(generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        css=css,
        js=js,
    )


def write_html(path: str | Path, **parts: Any) -> Path:
    """Render and write the report; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(**parts), encoding="utf-8")
    return target


def write_run_report(
    path: str | Path,
    suite: SuiteResult,
    store: QualityStore | None = None,
    *,
    profiles: Sequence[TableProfile] = (),
    weights: Any = None,
    title: str | None = None,
) -> tuple[Path, Scorecard]:
    """Everything a ``crane check --html`` needs in one call, after the run was recorded.

    Scores the run (comparing with the previous one and recording the scores when a
    ``store`` is given), draws the trend of every metric the run measured, and writes
    the report. Returns the path and the scorecard (its ``degraded`` flag is what an
    orchestrator alerts on).
    """
    from crane.quality.score import SCORE_METRIC, record_scores, scorecard

    card = scorecard(suite.results, weights, store=store, run_id=suite.run_id)
    trends: list[Trend] = []
    if store is not None:
        record_scores(store, card, suite.run_id)
        keys: list[tuple[str, str | None, str]] = [
            (d.table, None, SCORE_METRIC) for d in card.datasets
        ]
        keys += [(m.dataset, m.column, m.metric) for m in suite.metrics if m.filter is None]
        trends = trends_from_store(store, keys)
    target = write_html(
        path,
        title=title or f"crane quality report: {suite.suite or 'suite'}",
        suite=suite,
        scorecard=card,
        profiles=profiles,
        trends=trends,
    )
    return target, card
