"""One error root for crane.

Every error carries its context as attributes (pipeline, table, column, row,
run_id, query) and builds its message from them, so a user always learns
*where* something went wrong. Each error is either *transient* (worth a retry:
a dropped connection, a deadlock) or *terminal* (fail fast: bad credentials, a
missing table); retry logic decides by that flag, never by parsing messages.
"""

from __future__ import annotations

from typing import Any

_CONTEXT_FIELDS = ("pipeline", "table", "column", "row", "run_id", "file", "line", "field")


class CraneError(Exception):
    """Root of every error crane raises on purpose."""

    transient: bool = False
    hint: str | None = None

    def __init__(
        self,
        message: str,
        *,
        transient: bool | None = None,
        hint: str | None = None,
        **context: Any,
    ) -> None:
        self.detail = message
        # a verdict given here (a connector classified its driver's error) is final; without
        # one, a wrapper's retry decision defers to the error it was raised from
        self.classified = transient is not None or any(
            "transient" in kind.__dict__ for kind in type(self).__mro__ if kind is not CraneError
        )
        if transient is not None:
            self.transient = transient
        if hint is not None:
            self.hint = hint
        self.context = {k: v for k, v in context.items() if v is not None}
        for key, value in self.context.items():
            setattr(self, key, value)
        super().__init__(self._render())

    def _render(self) -> str:
        where = ", ".join(
            f"{key} {self.context[key]}" for key in _CONTEXT_FIELDS if key in self.context
        )
        text = f"{where}: {self.detail}" if where else self.detail
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __getattr__(self, name: str) -> Any:
        # Context fields that were not given read as None instead of raising.
        if name in _CONTEXT_FIELDS:
            return None
        raise AttributeError(name)


class ConfigError(CraneError):
    """A spec or configuration file is invalid."""


class ConnectorError(CraneError):
    """A source or target system refused or failed an operation."""


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message suggests the closest names."""


class ExtractError(CraneError):
    """Reading from a source failed."""


class LoadError(CraneError):
    """Staging, validating or publishing into a target failed."""


class SchemaChangeError(LoadError):
    """The source schema changed in a way the pipeline's policy refuses."""


class QuarantineLimitError(LoadError):
    """More rows were quarantined than the pipeline allows."""


class PipelineLockedError(CraneError):
    """Another run of the same pipeline holds its lock."""


class TransientError(CraneError):
    """A failure worth retrying (connection lost, deadlock, serialization)."""

    transient = True
