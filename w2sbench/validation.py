"""JSON Schema checks that turn the first violation into one line naming the file and the field."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from .errors import ConfigError


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """A schema shipped in the package (w2sbench/schemas/<name>.schema.json)."""
    return json.loads(resources.files("w2sbench").joinpath(f"schemas/{name}.schema.json").read_text())


def field_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        parts += missing[:1]
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        parts += extra[:1]
    return ".".join(parts)


def validate(instance: Any, schema_name: str, path: str) -> None:
    """Raise ConfigError(path, field, message) for the most relevant schema violation."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(list(e.absolute_path)), e.path and str(e.path)))
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    message = best.message
    if best.validator == "additionalProperties":
        message = "unknown field (" + message + ")"
    elif best.validator == "required":
        message = "required field is missing"
    raise ConfigError(path, field_path(best) or "<root>", message)
