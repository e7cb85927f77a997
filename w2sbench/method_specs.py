"""A method with hyperparameters, named by one string: `NAME:key=value,key=value` (NAME as --method takes it:
a registered name, a plug-in, or `path/file.py:Class`).

This is the seam the sweep (w2sbench/sweep.py), the Ray workers and the sealed method process load methods
through: `load(spec)` returns a class whose instances carry the values, `spec_of(cls)` gives the string
back. Values are YAML scalars (0.25, 3, true, text), cast to the type of the class's declared default; a
key the method does not declare (as an __init__ argument or a class attribute) is an error. The values
enter the method's config(), so its cache key and results name them.
"""

from __future__ import annotations

import inspect
from typing import Any

import yaml

from .errors import W2SError

PARAMS_ATTR = "_w2sbench_params"
BASE_ATTR = "_w2sbench_base"
RESERVED = frozenset({"name", "version", "description", "uses_weak_labels"})  # what a method is, not how it runs


def split(spec: str) -> tuple[str, dict[str, Any]]:
    """'logconf:aux_coef=0.25' -> ('logconf', {'aux_coef': 0.25}); a spec without parameters comes back whole."""
    base, sep, tail = spec.rpartition(":")
    if not sep or "=" not in tail or "/" in tail:
        return spec, {}
    params: dict[str, Any] = {}
    for item in tail.split(","):
        key, eq, raw = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise W2SError(f"method {spec!r}: expected NAME:key=value,... (got {item!r})")
        try:
            params[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            params[key.strip()] = raw
    return base, params


def join(base: str, params: dict[str, Any]) -> str:
    """The spec string of a configuration: keys sorted, values as YAML writes them."""
    if not params:
        return base
    return f"{base}:{','.join(f'{k}={_text(v)}' for k, v in sorted(params.items()))}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if "," in text or ":" in text:
        raise W2SError(f"hyperparameter value {text!r}: commas and colons cannot appear in a method spec")
    return text


def load(spec: str, loader: Any = None) -> type:
    """The class a spec names, configured with its parameters. `loader` loads the base name (default:
    w2sbench.methods.load_method)."""
    if loader is None:
        from .methods import load_method as loader
    base, params = split(spec)
    return configure(loader(base), params, spec)


def configure(cls: type, params: dict[str, Any], spec: str = "") -> type:
    """A subclass of `cls` whose instances take `params`; `cls` itself when there are none."""
    if not params:
        return cls
    init = inspect.signature(cls.__init__).parameters
    declared = {k: p.default for k, p in init.items() if p.default is not inspect.Parameter.empty}
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key in declared:
            default = declared[key]
        elif key not in RESERVED and not key.startswith("_") and hasattr(cls, key) and not callable(getattr(cls, key)):
            default = getattr(cls, key)
        else:
            attrs = {k for k, v in vars(cls).items() if k not in RESERVED and not k.startswith("_") and not callable(v)}
            known = sorted(set(declared) | attrs)
            raise W2SError(
                f"method {spec or cls.__name__!r}: {getattr(cls, 'name', cls.__name__)!r} has no hyperparameter "
                f"{key!r} (it declares: {', '.join(known) or 'none'})"
            )
        values[key] = _cast(value, default, key, spec)
    init_args = {k: v for k, v in values.items() if k in declared}

    def __init__(self: Any) -> None:
        cls.__init__(self, **init_args)
        for key, value in values.items():
            setattr(self, key, value)

    def config(self: Any) -> dict[str, Any]:
        return {**cls.config(self), **values}

    return type(
        cls.__name__,
        (cls,),
        {
            "__init__": __init__,
            "config": config,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            PARAMS_ATTR: dict(values),
            BASE_ATTR: cls,
        },
    )


def _cast(value: Any, default: Any, key: str, spec: str) -> Any:
    if default is None or isinstance(default, str) or value is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif not isinstance(default, (int, float, bool)):
        return value
    raise W2SError(f"method {spec!r}: {key}={value!r} is not a {kind.__name__} (its default is {default!r})")


def params_of(cls: type) -> dict[str, Any]:
    """The parameters a configured class carries ({} for a plain one)."""
    return dict(vars(cls).get(PARAMS_ATTR, {}))


def base_of(cls: type) -> type:
    return vars(cls).get(BASE_ATTR, cls)
