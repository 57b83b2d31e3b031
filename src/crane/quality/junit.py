"""JUnit XML for CI systems: one testsuite per table, one testcase per check.

``fail`` → <failure>, ``error`` → <error>, ``warn`` → passes with the warning in
<system-out> (a warning must not break a CI build; exit codes say the same).

>>> from crane.quality.model import CheckResult, SuiteResult
>>> r = CheckResult("t.not_null(a)", "t", "not_null", "completeness", status="fail", value=3)
>>> "<failure" in to_junit(SuiteResult(run_id="r", results=[r]))
True
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from crane.quality.model import CheckResult, SuiteResult


def to_junit(suite: SuiteResult) -> str:
    root = ET.Element(
        "testsuites",
        name=suite.suite or "crane check",
        tests=str(len(suite.results)),
        failures=str(sum(r.status == "fail" for r in suite.results)),
        errors=str(sum(r.status == "error" for r in suite.results) + (1 if suite.error else 0)),
        time=f"{suite.seconds:.3f}",
    )
    tables: dict[str, list[CheckResult]] = {}
    for result in suite.results:
        tables.setdefault(result.table, []).append(result)
    for table, results in tables.items():
        node = ET.SubElement(
            root,
            "testsuite",
            name=table,
            tests=str(len(results)),
            failures=str(sum(r.status == "fail" for r in results)),
            errors=str(sum(r.status == "error" for r in results)),
        )
        for result in results:
            _case(node, result)
    if suite.error:
        node = ET.SubElement(root, "testsuite", name="run", tests="1", failures="0", errors="1")
        case = ET.SubElement(node, "testcase", name="run", classname="crane.check")
        ET.SubElement(case, "error", message=suite.error)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _case(parent: ET.Element, result: CheckResult) -> None:
    case = ET.SubElement(
        parent, "testcase", name=result.check, classname=f"{result.table}.{result.dimension}"
    )
    text = f"value={result.value!r} threshold={result.threshold} {result.message}".strip()
    if result.status == "fail":
        failure = ET.SubElement(case, "failure", message=text, type=result.check_type)
        failure.text = json.dumps(result.sample, default=str, indent=1) if result.sample else None
    elif result.status == "error":
        ET.SubElement(case, "error", message=result.message or "error", type=result.check_type)
    elif result.status == "warn":
        ET.SubElement(case, "system-out").text = f"WARNING {text}"


def write_junit(suite: SuiteResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_junit(suite))
