"""The examples in public docstrings are tests too (STYLE: docstrings show how)."""

import doctest
import importlib

import pytest

MODULES = ["crane.connectors.base"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
