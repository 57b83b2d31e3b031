"""``pipeline``: run one of the project's pipelines through the same runner as ``crane run``.

The runner retries transient errors itself and holds the pipeline's lock; the
task waits for a lock held by another process (``wait: true``, the default) so
a DAG run queues behind a manual ``crane run`` instead of failing. A pipeline
writing a DuckDB file takes that file's writer lock in the executor.
"""

from __future__ import annotations

from typing import Any

from crane.errors import ConfigError, CraneError
from crane.orchestrate.tasks import Options, TaskContext, TaskType, task_types
from crane.orchestrate.tasks.sql import writer_locks


class PipelineOptions(Options):
    pipeline: str
    full_refresh: bool = False
    wait: bool = True


class PipelineTask(TaskType):
    name = "pipeline"
    Options = PipelineOptions

    def run(self, options: PipelineOptions, ctx: TaskContext) -> Any:
        from crane.pipelines.runner import run_pipeline

        project = _project(ctx.project)
        spec = project.pipeline(options.pipeline)
        result = run_pipeline(
            spec,
            source_url=project.source_url(spec),
            target_url=project.target_url(spec),
            full_refresh=options.full_refresh,
            wait=options.wait,
            lineage=project.lineage_emitter(),
        )
        if not result.ok:
            error = result.exception
            if isinstance(error, CraneError):
                raise error
            raise CraneError(f"pipeline failed: {result.error}", pipeline=spec.name) from error
        return {
            "run_id": result.run_id,
            "table": spec.target.table,
            "rows_extracted": result.rows_extracted,
            "rows_loaded": result.rows_loaded,
            "rows_quarantined": result.rows_quarantined,
        }

    def locks(self, options: PipelineOptions, project: Any) -> list[str]:
        if project is None:
            return []
        return writer_locks(project.target_url(project.pipeline(options.pipeline)))

    def describe(self, options: PipelineOptions) -> str:
        return f"pipeline {options.pipeline}"


def _project(project: Any) -> Any:
    if project is None:
        raise ConfigError("a pipeline task needs a project (crane.yml)")
    return project


task_types.register("pipeline")(PipelineTask())
