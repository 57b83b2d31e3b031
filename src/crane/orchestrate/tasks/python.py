"""``python``: call ``module:function`` (or ``path/file.py:function``) with the run context.

The function receives, by parameter name: ``ctx``/``context`` (the `TaskContext`),
each upstream task's return value under that task's name, and the task's
``kwargs`` (string values templated, not quoted). Its return value must be
JSON-able and small; return a table name (``ctx.table(...)``) for large data.
A thread task cannot be killed: give long or risky functions ``isolation: process``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from crane.errors import ConfigError
from crane.orchestrate.tasks import Options, TaskContext, TaskType, task_types
from crane.orchestrate.template import raw, render


class PythonOptions(Options):
    callable: str = Field(pattern=r"^[^:]+:[\w.<>]+$")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class PythonTask(TaskType):
    name = "python"
    Options = PythonOptions

    def run(self, options: PythonOptions, ctx: TaskContext) -> Any:
        fn = resolve(options.callable)
        values = ctx.template_values()
        kwargs = {
            k: render(v, values, raw) if isinstance(v, str) else v
            for k, v in options.kwargs.items()
        }
        return fn(**_arguments(fn, ctx, kwargs))

    def describe(self, options: PythonOptions) -> str:
        return f"python: {options.callable.rpartition('/')[2]}"


def _arguments(fn: Callable[..., Any], ctx: TaskContext, kwargs: dict[str, Any]) -> dict[str, Any]:
    signature = inspect.signature(fn)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    available = {**ctx.inputs, **kwargs, "ctx": ctx, "context": ctx}
    if takes_any:
        return {k: v for k, v in available.items() if k not in ("context",)}
    return {name: available[name] for name in signature.parameters if name in available}


def resolve(ref: str) -> Callable[..., Any]:
    """The function named by ``ref``: decorated ones first, then by import."""
    from crane.orchestrate.dag import registered_function

    fn = registered_function(ref)
    if fn is not None:
        return fn
    where, _, qualname = ref.rpartition(":")
    if where.endswith(".py"):
        module = _import_file(Path(where))
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise ConfigError(f"cannot import {where!r} for callable {ref!r}: {error}") from None
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"{where!r} has no {qualname!r} (callable {ref!r})")
    fn = registered_function(ref)  # importing a DAG file registers its functions by file ref
    return fn or target  # type: ignore[no-any-return]


def _import_file(path: Path) -> Any:
    name = f"_crane_dags_{abs(hash(str(path)))}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


task_types.register("python")(PythonTask())
