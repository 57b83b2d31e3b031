"""A starting check suite written from a profile, with the reason for every check.

The suggestions encode what the data looked like when profiled — "no NULLs in
1,000,000 rows", "email-like 99.8 %" — as checks in the ``checks/*.yml`` format
of `crane.quality.loader`, each followed by a comment with its reason, so a
person can keep, tighten or delete each line knowingly. Bounds get a little
slack where the data had some defects (a suite that fails on day one teaches
people to ignore it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from crane.quality.profile import ColumnProfile, TableProfile

# profile pattern -> the check catalogue's format name
_FORMATS = {
    "email": "email",
    "url": "url",
    "uuid": "uuid",
    "phone_e164": "e164",
    "iso_date": "iso_date",
    "ipv4": "ipv4",
}
MAX_ACCEPTED_VALUES = 20
PATTERN_SHARE = 0.95


@dataclass
class Suggestion:
    """One check (in the YAML short form ``{type: options}``) and why it is suggested."""

    check: dict[str, Any]
    reason: str


def _pct(value: float) -> str:
    return f"{value:.3g} %"


def _slack_pct(defect_pct: float) -> float:
    """A ceiling above the observed defect rate: 1.5x, rounded up to 0.1 %."""
    return math.ceil(defect_pct * 1.5 * 10 + 1) / 10


def _column(c: ColumnProfile, rows: int) -> list[Suggestion]:
    found: list[Suggestion] = []
    if c.nulls == 0 and rows:
        found.append(Suggestion({"not_null": c.name}, f"no NULLs in {rows:,} rows"))
    elif rows and c.null_pct < 100:
        limit = _slack_pct(c.null_pct)
        found.append(
            Suggestion(
                {"missing_pct": {"column": c.name, "max": limit}},
                f"{_pct(c.null_pct)} NULL when profiled; fails above {limit:g} %",
            )
        )
    if c.kind == "numeric" and c.min is not None:
        found.append(_range(c))
    if c.kind == "text":
        found.extend(_text(c))
    return found


def _range(c: ColumnProfile) -> Suggestion:
    low = float(c.min)
    if low >= 0:
        return Suggestion(
            {"range": {"column": c.name, "min": 0}},
            f"no negative values (min {c.min}, max {c.max})",
        )
    return Suggestion(
        {"range": {"column": c.name, "min": _plain(c.min), "max": _plain(c.max)}},
        f"observed range [{c.min}, {c.max}]",
    )


def _text(c: ColumnProfile) -> list[Suggestion]:
    found: list[Suggestion] = []
    exact_few = c.distinct_exact and c.distinct is not None and c.distinct <= MAX_ACCEPTED_VALUES
    listed = {v for v, _ in c.top_values}
    if exact_few and c.distinct is not None and len(listed) == c.distinct:
        values = sorted(str(v) for v in listed)
        found.append(
            Suggestion(
                {"accepted_values": {"column": c.name, "values": values}},
                f"only {c.distinct} distinct values",
            )
        )
    pattern = c.pattern(PATTERN_SHARE)
    if pattern and pattern[0] in _FORMATS and not (pattern[0] == "iso_date" and c.length_max != 10):
        name, share = pattern
        check: dict[str, Any] = {"column": c.name, "format": _FORMATS[name]}
        if share < 1:
            check["max_pct"] = _slack_pct(100 * (1 - share))
        found.append(Suggestion({"format": check}, f"{name}-like {_pct(100 * share)}"))
    if c.length_min is not None and c.length_min == c.length_max and not found:
        found.append(
            Suggestion(
                {
                    "length": {
                        "column": c.name,
                        "min_length": c.length_min,
                        "max_length": c.length_min,
                    }
                },
                f"every value is {c.length_min} characters long",
            )
        )
    return found


def _plain(value: Any) -> Any:
    """Numbers stay numbers in YAML (decimals as floats); anything else as text."""
    if isinstance(value, bool | int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def suggest(profile: TableProfile) -> list[Suggestion]:
    """Checks for one profiled table, table-level first, then column by column."""
    found = [
        Suggestion({"row_count": {"min": 1}}, f"{profile.rows:,} rows when profiled"),
        Suggestion(
            {"anomaly": {"metric": "row_count"}},
            "volume monitor: flags a row count outside its usual band once history exists",
        ),
    ]
    for key in profile.candidate_keys:
        found.append(Suggestion({"unique": key}, f"{key}: every value distinct, no NULLs"))
    if profile.duplicate_rows == 0 and not profile.candidate_keys:
        found.append(Suggestion({"duplicate_rows": {}}, "no duplicate rows when profiled"))
    for column in profile.columns:
        found.extend(_column(column, profile.rows))
    return found


def suite_yaml(profiles: list[TableProfile], connection: str = "warehouse") -> str:
    """The suggested suite as commented YAML, readable by `crane.quality.loader`."""
    import yaml

    lines = [
        "# Suggested by `crane profile --suggest`: a starting point, not a verdict.",
        "# Each check says why it was suggested; keep, tighten or delete it.",
        f"connection: {connection}",
        "tables:",
    ]
    for profile in profiles:
        lines.append(f"  {yaml.safe_dump(profile.table).strip().removesuffix('...').strip()}:")
        lines.append("    checks:")
        for s in suggest(profile):
            item = yaml.safe_dump(s.check, default_flow_style=True, width=10_000).strip()
            item = item[1:-1] if item.startswith("{") and item.endswith("}") else item
            lines.append(f"      - {{{item}}}  # {s.reason}")
    return "\n".join(lines) + "\n"
