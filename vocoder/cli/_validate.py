"""Config validation before any work: one line naming the offending key, never a traceback."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import types
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# defined below every layer (the lower layers raise it); re-exported here for the cli modules
from vocoder.errors import ConfigError

__all__ = ["ConfigError", "check_dataclass_section", "check_target_section", "resolve_target"]


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_dataclass_section(section: DictConfig, schema: type, prefix: str) -> Any:
    """Merge ``section`` into the structured ``schema``; unknown keys / wrong types → :class:`ConfigError`.

    Returns an instance of ``schema``.
    """
    names = [f.name for f in dataclasses.fields(schema)]
    for key in section:
        if key not in names:
            raise ConfigError(f"{prefix}.{key}: unknown setting{_suggest(str(key), names)}")
    try:
        # resolve interpolations against the whole config first (e.g. ${data.name} inside data)
        resolved = OmegaConf.create(OmegaConf.to_container(section, resolve=True))
        merged = OmegaConf.merge(OmegaConf.structured(schema), resolved)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        detail = str(exc).splitlines()[0]
        raise ConfigError(f"{prefix}.{key}: {detail}") from None
    return OmegaConf.to_object(merged)


def resolve_target(path: str, where: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"{where}._target_: cannot import {path!r}") from None


def _type_ok(value: Any, annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        return isinstance(value, list | tuple | ListConfig)
    if origin in (dict, typing.Mapping) or annotation is dict:
        return isinstance(value, dict | DictConfig)
    return True  # objects passed in (modules, tensors) are checked by the constructor itself


def check_target_section(section: DictConfig, prefix: str, extra_keys: tuple[str, ...] = (),
                         injected: tuple[str, ...] = ()) -> None:
    """Check a ``_target_`` section against the constructor's signature and type hints.

    Args:
        section: the config node with ``_target_``.
        prefix: its dotted path in the config (for messages).
        extra_keys: keys the CLI consumes itself (e.g. ``scheduler``, ``weights``).
        injected: constructor arguments the CLI passes in (e.g. ``model``); they must not be set.
    """
    if "_target_" not in section:
        raise ConfigError(f"{prefix}._target_: missing (which class builds this section?)")
    target = resolve_target(section._target_, prefix)
    signature = inspect.signature(target.__init__ if inspect.isclass(target) else target)
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:
        hints = {}
    params = {name: p for name, p in signature.parameters.items() if name != "self"}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in section:
        key = str(key)
        if key.startswith("_") or key in extra_keys:
            continue
        if key not in params:
            if accepts_any:
                continue
            raise ConfigError(f"{prefix}.{key}: unknown setting for {section._target_}"
                              f"{_suggest(key, list(params))}")
        value = OmegaConf.select(section, key)
        annotation = hints.get(key, params[key].annotation)
        if not _type_ok(value, annotation):
            shown = getattr(annotation, "__name__", str(annotation))
            raise ConfigError(f"{prefix}.{key}: expected {shown}, got {value!r}")
    for name, param in params.items():
        if (
            param.default is inspect.Parameter.empty
            and param.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
            and name not in section
            and name not in injected
        ):
            raise ConfigError(f"{prefix}.{name}: required by {section._target_} but not set")
