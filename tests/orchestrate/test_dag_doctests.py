"""The docstring examples of the orchestration modules run as tests."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name", ["crane.orchestrate.template", "crane.orchestrate.retry", "crane.orchestrate.executor"]
)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
