"""The examples in docstrings are tests too (STYLE: docstrings show how).

Every module of the package whose source holds an example is found here, so a new
example runs without being listed, and none can rot unseen.
"""

import doctest
import importlib
from pathlib import Path

import pytest

import crane

ROOT = Path(crane.__file__).resolve().parent


def _modules_with_examples() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT.parent).with_suffix("").parts
            found.append(".".join(parts).removesuffix(".__init__"))
    return found


MODULES = _modules_with_examples()


def test_the_examples_are_found():
    assert {"crane.connectors.base", "crane.warehouse.scd.base", "crane.sql.merge"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(name), optionflags=flags)
    assert result.attempted > 0 and result.failed == 0
