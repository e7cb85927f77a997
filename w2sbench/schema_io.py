"""JSON Schema checks that turn the most relevant violation into one line naming the file and the field,
and the one atomic JSON writer every schema-checked document goes through."""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from .errors import ConfigError


@cache
def load_schema(name: str) -> dict:
    """A schema shipped in the package (w2sbench/schemas/<name>.schema.json)."""
    return json.loads(resources.files("w2sbench").joinpath(f"schemas/{name}.schema.json").read_text())


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for one schema; the package's other schemas resolve by $id (a submission embeds results)."""
    registry = Registry()
    for other in ("results", "submission", "leaderboard", "setting", "task"):
        schema = load_schema(other)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=registry)


def describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(dotted field, message) for one schema error, naming the exact key where possible."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return ".".join(path + missing[:1]), "required field is missing"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in allowed)
        known = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
        return ".".join(path + extra[:1]), f"unknown field{known}"
    if error.validator in ("oneOf", "anyOf") and "x-error" in error.schema:
        return ".".join(path), error.schema["x-error"]
    return ".".join(path), error.message


def validate(instance: Any, schema_name: str, path: str) -> None:
    """Raise ConfigError(path, field, message) for the most relevant schema violation, if any."""
    errors = list(_validator(schema_name).iter_errors(instance))
    if not errors:
        return
    field, message = describe(jsonschema.exceptions.best_match(errors))
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    raise ConfigError(path, field or "<root>", message + more)


def read_yaml(path: Path | str) -> Any:
    """Parse a YAML file (UTF-8); an unreadable or malformed file is a ConfigError naming it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot be read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(str(path), "", f"invalid YAML: {e}") from None


def read_json(path: Path | str) -> Any:
    """Parse a JSON file; an unreadable or malformed file is a ConfigError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot be read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(str(path), "", f"not valid JSON: {e}") from None


def write_json(doc: Any, path: Path, sort_keys: bool = False) -> Path:
    """Write JSON atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=sort_keys)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
