"""crane: pipelines, quality, orchestration and warehouse design in one toolkit.

The names below are the public API; everything else may change. Heavy modules
are imported on first use, so ``import crane`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "CraneError": "crane.errors",
    "ConfigError": "crane.errors",
    "connect": "crane.connectors.base",
    "TableRef": "crane.connectors.base",
    "PipelineSpec": "crane.config.spec",
    "ProjectSpec": "crane.config.spec",
    "ConnectionSpec": "crane.config.spec",
    "SourceSpec": "crane.config.spec",
    "TargetSpec": "crane.config.spec",
    "ExtractSpec": "crane.config.spec",
    "LoadSpec": "crane.config.spec",
    "Project": "crane.project",
    "run_pipeline": "crane.pipelines.runner",
    "RunResult": "crane.pipelines.runner",
    "Dag": "crane.orchestrate.dag",
    "DagSpec": "crane.orchestrate.dag",
    "run_dag": "crane.orchestrate.executor",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'crane' has no attribute {name!r}")
