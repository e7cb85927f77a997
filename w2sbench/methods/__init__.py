"""W2S methods: the API (base), the registry and the built-in reference methods."""

from .base import LossMethod, Method, MethodContext
from .params import Hyperparameter, HyperparameterError
from .registry import list_methods, load_method, register_method

__all__ = [
    "Method",
    "LossMethod",
    "MethodContext",
    "Hyperparameter",
    "HyperparameterError",
    "register_method",
    "load_method",
    "list_methods",
]
