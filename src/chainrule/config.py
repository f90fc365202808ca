"""Objects described as JSON: ``{"type": name, "config": {...}}`` and back.

Layers, losses and optimizers all record their constructor arguments with
``get_config()`` so a model file can rebuild them without running any code
stored in the file: only registered classes can be named.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def describe(obj: Any) -> dict[str, Any]:
    """``{"type": class name, "config": obj.get_config()}``."""
    return {"type": type(obj).__name__, "config": obj.get_config()}


def from_config(registry: Mapping[str, type[T]], kind: str, description: object) -> T:
    """Instantiate the registered class a description names, with its config."""
    if not isinstance(description, dict):
        raise TypeError(f"{kind} description must be a dict, got {description!r}")
    name = description.get("type")
    config = description.get("config", {})
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} type {name!r}; known types: {known}")
    if not isinstance(config, dict):
        raise TypeError(f"config of {kind} {name} must be a dict, got {config!r}")
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"bad config for {kind} {name}: {config!r} ({exc})") from exc


def format_call(name: str, init: Callable[..., Any], config: dict[str, Any]) -> str:
    """``Name(arg=value, ...)`` listing only the arguments that differ from defaults."""
    defaults = {
        k: p.default
        for k, p in inspect.signature(init).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    args = []
    for key, value in config.items():
        if key in defaults and defaults[key] == value:
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else repr(value)
        args.append(f"{key}={shown}")
    return f"{name}({', '.join(args)})"


__all__ = ["describe", "format_call", "from_config"]
