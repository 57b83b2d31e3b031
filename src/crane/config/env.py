"""The environment a project is loaded in: real variables, `.env`, `${VAR}` interpolation.

Credentials belong in the environment, not in committed files, so every string
in a spec may say ``${SOURCE_DB_PASSWORD}`` or ``${SCHEMA:-public}``. A ``.env``
file beside ``crane.yml`` fills in variables the real environment lacks; it
never overrides a real variable (the operator's shell wins over a file).

The conventional variables work with no wiring at all, because most teams
already export them for other tools:

- ``SOURCE_DB_TYPE/HOST/PORT/NAME/USER/PASSWORD`` → connection ``source``
- ``TARGET_DB_TYPE/HOST/PORT/NAME/USER/PASSWORD`` → connection ``target``
  (which then becomes the warehouse)
- ``BATCH_SIZE``, ``MAX_RETRIES`` → defaults for every pipeline
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from crane.errors import ConfigError

Origin = Literal["env", ".env"]
_log = logging.getLogger(__name__)

# ${VAR} or ${VAR:-default}; "$${" is a literal "${"
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PREFIXES = {"source": "SOURCE_DB_", "target": "TARGET_DB_"}
_PARTS = ("TYPE", "HOST", "PORT", "NAME", "USER", "PASSWORD")


@dataclass(frozen=True)
class Environment(Mapping[str, str]):
    """Variables visible to a project, remembering whether each came from the shell or `.env`.

    >>> env = Environment.of({"HOST": "db1"})
    >>> env.interpolate("postgresql://${HOST}:${PORT:-5432}/shop")
    'postgresql://db1:5432/shop'
    """

    variables: dict[str, str] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)

    @classmethod
    def of(
        cls, variables: Mapping[str, str], dotenv: Mapping[str, str] | None = None
    ) -> Environment:
        """Real ``variables`` win over ``dotenv`` entries with the same name."""
        values: dict[str, str] = {}
        origins: dict[str, Origin] = {}
        for name, value in (dotenv or {}).items():
            values[name], origins[name] = value, ".env"
        for name, value in variables.items():
            values[name], origins[name] = value, "env"
        return cls(values, origins)

    @classmethod
    def load(cls, project_dir: Path | None = None) -> Environment:
        """The process environment plus ``project_dir/.env`` if it exists."""
        dotenv: dict[str, str] = {}
        if project_dir is not None and (project_dir / ".env").is_file():
            dotenv = read_dotenv(project_dir / ".env", os.environ)
        return cls.of(os.environ, dotenv)

    def __getitem__(self, name: str) -> str:
        return self.variables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def interpolate(self, text: str) -> str:
        """Replace ``${VAR}`` / ``${VAR:-default}``; a missing variable without default fails."""
        return _substitute(text, self)

    def references(self, text: str) -> list[str]:
        """Names of the variables ``text`` refers to (for provenance in `crane config show`)."""
        return [m.group(1) for m in _REFERENCE.finditer(text) if m.group(1)]


def read_dotenv(path: Path, shell: Mapping[str, str]) -> dict[str, str]:
    """The variables of a ``.env`` file, ``${VAR}`` expanded in unquoted and double-quoted
    values from ``shell`` or an earlier line (the shell wins; unset reads as empty).

    A line that is not ``NAME=value`` is skipped with a warning naming its number only,
    since its text may hold a secret.
    """
    from dotenv.parser import parse_stream

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows editors is no key
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            "not UTF-8 text", file=path.name, line=line, hint="save .env as UTF-8"
        ) from None
    values: dict[str, str] = {}
    scope = ChainMap(dict(shell), values)  # sees each line as soon as it is read
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            _log.warning("%s, line %d: not NAME=value; ignored", path.name, line)
        if binding.key is None or binding.value is None:
            continue
        written = binding.original.string.partition("=")[2].lstrip()
        literal = written.startswith("'")
        values[binding.key] = binding.value if literal else _expand(binding.value, scope)
    return values


def _expand(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:
            return "${"
        return env.get(name) or (default or "")

    return _REFERENCE.sub(replace, text)


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:
            return "${"
        value = env.get(name)
        if value not in (None, ""):
            return str(value)
        if default is not None:
            return default
        if value == "":
            return ""
        raise ConfigError(
            f"environment variable {name} is not set",
            hint=f"export {name}=... or add it to .env, or write ${{{name}:-default}}",
        )

    return _REFERENCE.sub(replace, text)


def conventional_connections(env: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Connection specs (as plain dicts) from SOURCE_DB_* / TARGET_DB_* variables.

    A connection appears only when its HOST or NAME is set, so a lone
    ``SOURCE_DB_PASSWORD`` never replaces a connection written in ``crane.yml``.
    """
    found: dict[str, dict[str, object]] = {}
    for name, prefix in _PREFIXES.items():
        parts = {part: env.get(prefix + part) for part in _PARTS}
        if not (parts["HOST"] or parts["NAME"]):
            continue
        spec: dict[str, object] = {"type": parts["TYPE"] or "postgresql"}
        for part, key in (("HOST", "host"), ("NAME", "database"), ("USER", "user")):
            if parts[part]:
                spec[key] = parts[part]
        if parts["PASSWORD"]:
            spec["password"] = parts["PASSWORD"]
        if parts["PORT"]:
            spec["port"] = parts["PORT"]
        found[name] = spec
    return found


def conventional_variables(name: str) -> list[str]:
    """The variable names that define the conventional connection ``name`` (for provenance)."""
    prefix = _PREFIXES.get(name)
    return [prefix + part for part in _PARTS] if prefix else []


def pipeline_defaults(env: Mapping[str, str]) -> dict[str, str]:
    """``BATCH_SIZE`` and ``MAX_RETRIES`` as raw strings keyed by the spec field they set."""
    pairs = (("batch_size", "BATCH_SIZE"), ("max_retries", "MAX_RETRIES"))
    return {key: env[var] for key, var in pairs if env.get(var)}
