"""The examples in the quality modules' docstrings run as tests."""

import doctest
import importlib

import pytest

MODULES = [
    "crane.quality.compiler",
    "crane.quality.loader",
    "crane.quality.executor",
    "crane.quality.junit",
    "crane.state.quality",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
