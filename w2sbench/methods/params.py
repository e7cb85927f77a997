"""A method's hyperparameters: typed class fields with defaults, declared once.

    class LogConf(LossMethod):
        name = "logconf"
        aux_coef: float = 0.5      # a hyperparameter: annotated, with a default
        warmup_frac: float = 0.2

`Method.__init_subclass__` collects them (a subclass inherits its parents' and may change a default by
plain assignment, `aux_coef = 0.3`) into `cls.hyperparameters`. From that one declaration follow:
`LogConf(aux_coef=0.25)` (names and types checked), `config()` (the method stage's cache key and the
results record), the values the method process rebuilds the method from, and the method's name in results,
`logconf[aux_coef=0.25]` (its non-default values; the defaults keep the plain name). The same text selects
it on the command line: `--method 'logconf[aux_coef=0.25]'`, and `logconf[aux_coef=0.1|0.25]` is a sweep
(one method per value; several swept fields give every combination).

Types: bool, int, float, str, or typing.Literal[...] of such values. Not a hyperparameter: a name starting
with `_`, one annotated ClassVar, the method's own metadata (name, version, description, ...).
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import numbers
import sys
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import W2SError

SCALARS: tuple[type, ...] = (bool, int, float, str)
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# Class attributes that describe the method rather than configure it (the card fields of a submission too).
RESERVED = frozenset(
    {
        "name",
        "version",
        "description",
        "uses_weak_labels",
        "hyperparameters",
        "authors",
        "code",
        "paper",
        "license",
        "contact",
        "non_default_recipe",
        "recipe_notes",
    }
)


class HyperparameterError(W2SError):
    """A hyperparameter override that the method does not declare, or of the wrong type."""


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    type: Any  # one of SCALARS, or a Literal[...]
    default: Any

    @property
    def choices(self) -> tuple | None:
        return typing.get_args(self.type) if typing.get_origin(self.type) is typing.Literal else None

    @property
    def type_name(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(format_value(c) for c in self.choices)
        return self.type.__name__

    def describe(self) -> str:
        return f"{self.name} ({self.type_name}, default {format_value(self.default)})"

    def check(self, value: Any, method: str) -> Any:
        """The value as stored: an int given for a float becomes a float (so 1 and 1.0 are one config)."""
        choices = self.choices
        if choices is not None:
            if any(value == c and type(value) is type(c) for c in choices):
                return value
        elif isinstance(value, bool) or value is None:
            if self.type is bool and value is not None:
                return value
        elif self.type is float and isinstance(value, numbers.Real):
            return float(value)
        elif self.type is int and isinstance(value, numbers.Integral):
            return int(value)
        elif self.type is str and isinstance(value, str):
            return str(value)
        raise HyperparameterError(
            f"method {method!r}: hyperparameter {self.name} must be {_article(self.type_name)}, "
            f"got {value!r} ({type(value).__name__})"
        )

    def parse(self, text: str, method: str) -> Any:
        """A value from the command line's text, by the declared type."""
        text = text.strip()
        value: Any = text
        if self.choices is not None:
            matches = [c for c in self.choices if format_value(c) == text]
            value = matches[0] if matches else text
        elif self.type is bool:
            value = BOOLEANS.get(text.lower(), text)
        elif self.type in (int, float):
            try:
                value = self.type(text)
            except ValueError:
                pass  # left as text: check() names the field and the type
        return self.check(value, method)


def _article(type_name: str) -> str:
    return type_name if type_name.startswith("one of") else ("an " if type_name[0] in "aeiou" else "a ") + type_name


def format_value(value: Any) -> str:
    """How a value reads in a method's name and on the command line (parse() reads it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _resolve(annotation: Any, cls: type) -> Any:
    """An annotation, evaluated where the class was defined when it is a string (`from __future__ import
    annotations`)."""
    if not isinstance(annotation, str):
        return annotation
    namespace = dict(vars(sys.modules[cls.__module__])) if cls.__module__ in sys.modules else {}
    for name in ("ClassVar", "Literal", "typing"):  # also for a class defined inside a function
        namespace.setdefault(name, typing if name == "typing" else getattr(typing, name))
    try:
        return eval(annotation, namespace, dict(vars(cls)))  # noqa: S307  (the class's own annotation)
    except Exception as e:
        raise TypeError(f"{cls.__qualname__}: cannot evaluate the annotation {annotation!r}: {e}") from None


def _is_classvar(tp: Any) -> bool:
    return tp is ClassVar or typing.get_origin(tp) is ClassVar


def _supported(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Literal:
        return bool(typing.get_args(tp)) and all(type(c) in SCALARS for c in typing.get_args(tp))
    return tp in SCALARS


def collect(cls: type) -> dict[str, Hyperparameter]:
    """The hyperparameters of a Method subclass: its bases' (in MRO order), then its own annotations."""
    found: dict[str, Hyperparameter] = {}
    for base in reversed(cls.__bases__):
        found.update(getattr(base, "hyperparameters", {}))
    for name, h in list(found.items()):  # a subclass changes an inherited default by plain assignment
        if name in vars(cls) and name not in inspect.get_annotations(cls):
            found[name] = Hyperparameter(name, h.type, h.check(vars(cls)[name], cls.__qualname__))
    for name, annotation in inspect.get_annotations(cls).items():
        if name.startswith("_") or name in RESERVED:
            continue
        tp = _resolve(annotation, cls)
        if _is_classvar(tp):
            continue
        where = f"{cls.__qualname__}.{name}"
        if not _supported(tp):
            raise TypeError(f"{where}: a hyperparameter is a bool, int, float, str or Literal[...], not {annotation!r}")
        if name not in vars(cls):
            raise TypeError(f"{where}: a hyperparameter needs a default value ({name}: {annotation} = ...)")
        if callable(vars(cls)[name]) and not isinstance(vars(cls)[name], type):
            raise TypeError(f"{where}: a hyperparameter cannot share its name with a method")
        h = Hyperparameter(name, tp, None)
        found[name] = Hyperparameter(name, tp, h.check(vars(cls)[name], cls.__qualname__))
    return found


def check_overrides(cls: type, values: dict[str, Any], method: str | None = None) -> dict[str, Any]:
    """Every declared value (defaults filled in) after checking `values`' names and types."""
    method = method or getattr(cls, "name", "") or cls.__name__
    declared: dict[str, Hyperparameter] = getattr(cls, "hyperparameters", {})
    for key in values:
        if key not in declared:
            raise unknown(cls, key, method)
    return {name: h.check(values[name], method) if name in values else h.default for name, h in declared.items()}


def unknown(cls: type, key: str, method: str) -> HyperparameterError:
    declared: dict[str, Hyperparameter] = getattr(cls, "hyperparameters", {})
    if not declared:
        return HyperparameterError(
            f"method {method!r} has no hyperparameter {key!r}: it declares none (a hyperparameter is a typed "
            "class field with a default; CONTRIBUTING.md, 'Adding a method')"
        )
    close = difflib.get_close_matches(key, list(declared), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(h.describe() for h in declared.values())
    return HyperparameterError(f"method {method!r} has no hyperparameter {key!r}{hint} Its hyperparameters: {listing}")


def run_name(name: str, declared: dict[str, Hyperparameter], values: dict[str, Any]) -> str:
    """`name`, or `name[k=v,...]` with the values that differ from the defaults, in declaration order."""
    changed = [f"{k}={format_value(values[k])}" for k, h in declared.items() if k in values and values[k] != h.default]
    return f"{name}[{','.join(changed)}]" if changed else name


# ---- the command line's text: 'a,b[k=v,k2=v2],c[k=1|2]' ------------------------------------------------------
def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets: 'vanilla,logconf[aux_coef=0.1,warmup_frac=0]' -> two items."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise W2SError(f"method list {text!r}: ']' without '['")
        elif ch == sep and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise W2SError(f"method list {text!r}: '[' without ']'")
    items.append(text[start:])
    return [s.strip() for s in items if s.strip()]


def split_spec(spec: str) -> tuple[str, dict[str, list[str]]]:
    """'logconf[aux_coef=0.1|0.25,warmup_frac=0]' -> ('logconf', {'aux_coef': ['0.1', '0.25'], 'warmup_frac':
    ['0']}); a spec without brackets -> (spec, {})."""
    spec = spec.strip()
    if not spec.endswith("]") or "[" not in spec:
        if "[" in spec or "]" in spec:
            raise W2SError(f"method {spec!r}: hyperparameters go in brackets at the end, e.g. logconf[aux_coef=0.25]")
        return spec, {}
    base, _, inner = spec[:-1].partition("[")
    if "[" in inner or "]" in inner or not base.strip():
        raise W2SError(f"method {spec!r}: expected NAME[key=value,...]")
    values: dict[str, list[str]] = {}
    for item in (s for s in inner.split(",") if s.strip()):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise W2SError(f"method {spec!r}: {item.strip()!r} is not key=value")
        if key in values:
            raise W2SError(f"method {spec!r}: {key} is given twice")
        values[key] = value.split("|")
    return base.strip(), values


def expand(cls: type, spec_values: dict[str, list[str]], method: str) -> list[dict[str, Any]]:
    """Typed overrides from a spec's text values; a field with several values ('0.1|0.25') sweeps: one dict
    per combination, in the order given."""
    declared: dict[str, Hyperparameter] = getattr(cls, "hyperparameters", {})
    parsed: dict[str, list[Any]] = {}
    for key, texts in spec_values.items():
        if key not in declared:
            raise unknown(cls, key, method)
        parsed[key] = [declared[key].parse(t, method) for t in texts]
    keys = list(parsed)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(parsed[k] for k in keys))]
