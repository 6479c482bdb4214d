"""Config validation before any work: one line naming the offending key, never a traceback.

Three checks close the class of bad settings, each turning what it finds into one
:class:`~vocoder.errors.ConfigError` line that names the full key:

* **schemas** (:func:`check_dataclass_section`): sections typed by a dataclass (``data``,
  ``trainer``) reject unknown keys, wrong types and, in the dataclass's ``__post_init__``,
  impossible values and unknown choices;
* **signatures** (:func:`check_target_section`): a ``_target_`` section's keys and value types
  against the constructor's signature and type hints (``Literal`` choices included);
* **a dry run** (:func:`build_checked`): the constructor itself runs once on the settings (models,
  training modules, optimizers and schedulers, on throw-away objects), so every check it makes is
  made before any work; an exception it raises is traced back to the key whose removal (the
  constructor's default) makes it go away.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vocoder.errors import ConfigError

__all__ = [
    "ConfigError",
    "build_checked",
    "check_dataclass_section",
    "check_target_section",
    "resolve_target",
]


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
    """Whether a config value (a plain YAML value) fits ``annotation``."""
    if annotation in (inspect.Parameter.empty, Any) or isinstance(annotation, str | typing.TypeVar):
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
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
    if isinstance(value, Mapping) and "_target_" in value:
        return True  # an object built from its own section; its constructor checks it
    sequence_origins = (list, tuple, Sequence, typing.Sequence)
    if origin in sequence_origins or annotation in (list, tuple, Sequence):
        if not isinstance(value, list | tuple | ListConfig):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_type_ok(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(_type_ok(v, args[0]) for v in value)
    if origin in (dict, Mapping, typing.Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, dict | DictConfig):
            return False
        return len(args) != 2 or all(_type_ok(v, args[1]) for v in value.values())
    if inspect.isclass(annotation):
        if issubclass(annotation, PurePath | os.PathLike):
            return isinstance(value, str)
        # an object type (a tensor, a module): a plain config value is never one
        return isinstance(value, annotation)
    return True  # Callable and other typing constructs: left to the constructor (dry run)


def _shown(annotation: Any) -> str:
    """A type hint as a short phrase: ``float or Tensor``, ``one of fast, torch``, ``list of int``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_shown(arg) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(arg) for arg in args)
    if annotation is type(None):
        return "null"
    if origin is not None:
        return str(annotation).replace("typing.", "").replace("collections.abc.", "")
    return getattr(annotation, "__name__", str(annotation))


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Type hints of ``function``; one unresolvable hint (a TYPE_CHECKING import) is left out, not all."""
    try:
        return typing.get_type_hints(function)
    except Exception:
        pass
    hints = {}
    namespace = getattr(inspect.unwrap(function), "__globals__", {})
    for name, hint in getattr(function, "__annotations__", {}).items():
        try:
            hints[name] = eval(hint, namespace) if isinstance(hint, str) else hint  # noqa: S307
        except Exception:
            continue
    return hints


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
    hints = _type_hints(target.__init__ if inspect.isclass(target) else target)
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
            raise ConfigError(f"{prefix}.{key}: expected {_shown(annotation)}, got {value!r}")
    for name, param in params.items():
        if (
            param.default is inspect.Parameter.empty
            and param.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
            and name not in section
            and name not in injected
        ):
            raise ConfigError(f"{prefix}.{name}: required by {section._target_} but not set")


def _reason(error: BaseException) -> str:
    """The first line of what a constructor raised (Hydra's wrapper unwrapped)."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _node(config: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        config = config[key]
    return config


def _default_hint(config: dict, key: str) -> str:
    """`` (default: X)`` for a top-level constructor argument with a default, else ``""``."""
    try:
        target = resolve_target(config["_target_"], "")
        parameter = inspect.signature(target).parameters.get(key)
    except (ConfigError, KeyError, TypeError, ValueError):
        return ""
    if parameter is None or parameter.default in (inspect.Parameter.empty, None):
        return ""
    return f" (default: {parameter.default!r})"


def build_checked(
    section: DictConfig | Mapping[str, Any],
    prefix: str,
    build: Callable[[dict], Any],
    *,
    reached: tuple[type[BaseException], ...] = (),
    passthrough: tuple[type[BaseException], ...] = (),
) -> Any:
    """Build ``section`` with ``build`` so that the constructor's own checks run; errors → one line.

    Any exception the build raises (a ``ValueError`` of a range check, torch's ``Invalid learning
    rate``, a ``TypeError`` deep inside) becomes a :class:`ConfigError` naming the key it comes
    from: the first key (searched depth-first into nested sections) whose removal, that is the
    constructor's default, lets the build succeed. When no single key explains it, the section is
    named. The torch RNG state is left as it was.

    Args:
        section: the config section (interpolations are resolved first).
        prefix: its dotted key (``model``, ``optim.scheduler``).
        build: plain-dict section → the built object.
        reached: exceptions meaning the settings were accepted and the constructor went on to need
            what does not exist yet (the feature cache before preparation): the result is ``None``.
        passthrough: exceptions that already are one line naming the key (re-raised as they are).

    Returns:
        The built object, or ``None`` when one of ``reached`` was raised.

    Raises:
        ConfigError: one line, ``<prefix>.<key>=<value>: <reason>``.
    """
    import torch

    if isinstance(section, DictConfig):
        config = OmegaConf.to_container(section, resolve=True)
    else:
        config = copy.deepcopy(dict(section))
    passthrough = (ConfigError, *passthrough)

    def attempt(trial: dict) -> tuple[Any, BaseException | None]:
        with torch.random.fork_rng(devices=[]):
            try:
                return build(copy.deepcopy(trial)), None
            except passthrough:
                raise
            except reached:
                return None, None
            except Exception as error:
                return None, error

    built, error = attempt(config)
    if error is None:
        return built

    def explains(path: tuple[str, ...]) -> bool:
        trial = copy.deepcopy(config)
        del _node(trial, path[:-1])[path[-1]]
        try:
            return attempt(trial)[1] is None
        except passthrough:
            return False

    def culprit(path: tuple[str, ...]) -> tuple[str, ...] | None:
        node = _node(config, path)
        for key in [k for k in node if not str(k).startswith("_")]:
            if explains((*path, key)):
                value = node[key]
                deeper = culprit((*path, key)) if isinstance(value, dict) and value else None
                return deeper or (*path, key)
        return None

    found = culprit(())
    reason = _reason(error)
    if found is None:
        raise ConfigError(f"{prefix}: {reason}") from None
    value = _node(config, found)
    if isinstance(value, dict):
        # no single sub-key explains it (its default fails too, e.g. start > end): the one the
        # message names first
        named = sorted(
            (match.start(), key)
            for key in value
            if (match := re.search(rf"\b{re.escape(str(key))}\b", reason)) is not None
        )
        if named:
            found = (*found, named[0][1])
            value = value[named[0][1]]
    if isinstance(value, dict):
        raise ConfigError(f"{prefix}.{'.'.join(found)}: {reason}") from None
    hint = _default_hint(config, found[0]) if len(found) == 1 else ""
    raise ConfigError(f"{prefix}.{'.'.join(found)}={value!r}: {reason}{hint}") from None
