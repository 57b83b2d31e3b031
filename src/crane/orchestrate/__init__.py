"""Orchestration: DAGs of tasks, the local executor, run history (scheduler and alerts next).

Import from the submodules (`crane.orchestrate.dag`, `crane.orchestrate.executor`,
`crane.orchestrate.history`); nothing is imported here so ``import crane`` stays fast.
"""
