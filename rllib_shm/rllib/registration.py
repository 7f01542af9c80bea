"""Environment registration with Ray, so env runners and restored checkpoints find every task.

RLlib's env runners look a string ``config.env`` up in Ray Tune's registry (``ENV_CREATOR``),
which lives in the cluster's key-value store, and otherwise call ``gymnasium.make`` in their own
process, where nothing of the driver's gymnasium registry exists. So every env name the project
hands to RLlib goes through :func:`resolve_env`, which registers it with Ray first. This module is
the only caller of Ray's public ``ray.tune.register_env``; ray is imported inside the functions.

Accepted names:

- a project id from ``envs.ENV_SPECS`` (e.g. ``rllib_shm/VisualMatch-L250-v0``);
- any id registered with gymnasium in this process (e.g. ``CartPole-v1``), or by importing an
  installed env package (``ENV_PROVIDERS``: ``MiniGrid-Empty-5x5-v0``, ``popgym-...``), rebuilt in
  workers from its gymnasium ``EnvSpec``;
- ``package.module:Attr``, a gymnasium.Env class or a function returning an env, called with the
  env config as keyword arguments (or gymnasium's ``module:EnvId`` form). The module is imported
  from the installed packages and ``PYTHONPATH``, else from the **current directory** (the one
  ``rllib-shm`` runs in, not the config file's): Ray puts the driver's current directory on its
  workers' path too, so env runners and trials import it the same way
  (``docs/examples/my_env``).

Creators build the env with the RLlib ``env_config`` entries as constructor keyword arguments.
Call :func:`resolve_env` (or :func:`register_envs_with_ray`) in every entry point before building
or restoring an algorithm: Ray's registry lives as long as the Ray session, and
``Algorithm.from_checkpoint`` in a new process needs the names registered again.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

import envs


def make_project_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> gym.Env:
    """Creator of a project id: registers the table with gymnasium in this process, then makes."""
    envs.register()
    return gym.make(env_id, **dict(env_config or {}))


def make_gymnasium_env(spec: gym.envs.registration.EnvSpec, env_config: Mapping[str, Any] | None = None):
    """Creator of a gymnasium id, from the driver's spec (the worker need not have registered it)."""
    return gym.make(spec, **dict(env_config or {}))


def make_entry_point_env(entry_point: str, env_config: Mapping[str, Any] | None = None) -> gym.Env:
    """Creator of ``module:Attr``: ``Attr(**env_config)``."""
    return _load_attribute(entry_point)(**dict(env_config or {}))


def register_envs_with_ray() -> tuple[str, ...]:
    """Register every project id with Ray Tune's registry (idempotent). Returns the ids."""
    envs.register()
    for spec in envs.ENV_SPECS:
        _register_with_ray(spec.id, functools.partial(make_project_env, spec.id))
    return tuple(spec.id for spec in envs.ENV_SPECS)


def resolve_env(name: str) -> str:
    """Register ``name`` with Ray and return the string to pass as RLlib's ``config.env``.

    Raises ValueError listing close matches when ``name`` is neither a project id, a registered
    gymnasium id, nor an importable ``module:Attr``.
    """
    envs.register()
    project_ids = [spec.id for spec in envs.ENV_SPECS]
    if name in project_ids:
        register_envs_with_ray()
        return name
    if name not in gym.registry and ":" not in name:
        _import_env_providers()  # their ids exist in gymnasium's registry only once imported
    if name in gym.registry:
        _register_with_ray(name, functools.partial(make_gymnasium_env, gym.spec(name)))
        return name
    if ":" in name:
        module_name, attribute = name.split(":", 1)
        module = import_env_module(module_name, name)
        if callable(getattr(module, attribute, None)):
            _register_with_ray(name, functools.partial(make_entry_point_env, name))
            return name
        if attribute in gym.registry:  # gymnasium's "module:EnvId", registered by the import
            _register_with_ray(name, functools.partial(make_gymnasium_env, gym.spec(attribute)))
            return name
        raise ValueError(f"module {module_name!r} has no env class, function or gymnasium id {attribute!r}")
    candidates = project_ids + [i for i in gym.registry if i not in project_ids]
    raise ValueError(
        f"unknown environment {name!r}; close matches: {envs.close_matches(name, candidates)}. "
        "Give a project id (`rllib-shm envs`), a gymnasium id or `package.module:Class`."
    )


def import_env_module(module_name: str, name: str):
    """Import the module of an entry point ``name`` (``module:Attr``): from the installed packages
    and ``PYTHONPATH``, else from the current directory (appended to ``sys.path``, as Ray does for
    its workers); a ValueError saying how to make it importable otherwise."""
    here, top = os.getcwd(), module_name.split(".")[0]

    def attempt():
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name in (top, module_name):
                return None  # the module itself is missing (not something it imports)
            raise ValueError(f"cannot import module {module_name!r} of env {name!r}: {error}") from None
        except ImportError as error:
            raise ValueError(f"cannot import module {module_name!r} of env {name!r}: {error}") from None

    module = attempt()
    if module is None and here not in sys.path:
        sys.path.append(here)
        importlib.invalidate_caches()
        module = attempt()
        if module is None:
            sys.path.remove(here)
    if module is None:
        raise ValueError(f"cannot import module {module_name!r} of env {name!r}: it is neither installed nor in the "
                         f"current directory {here!r} (entry points resolve against the directory rllib-shm runs "
                         f"in, not the config file's): run from the folder holding {module_name.replace('.', '/')}.py, "
                         "or make it importable with PYTHONPATH=<that folder> or `pip install -e` of its package")
    return module


#: installed packages that register gymnasium ids when imported (MiniGrid-*, popgym-*)
ENV_PROVIDERS = ("minigrid", "popgym")


def _import_env_providers() -> None:
    for package in ENV_PROVIDERS:
        try:
            importlib.import_module(package)
        except ImportError:
            continue


def _register_with_ray(name: str, creator: Callable[[Mapping[str, Any]], gym.Env]) -> None:
    """Ray's public ``register_env``; registering a name again replaces it with the same creator,
    so every call is safe (and needed after a new ``ray.init``, whose registry starts empty)."""
    from ray.tune import register_env

    register_env(name, creator)


def _load_attribute(entry_point: str) -> Callable[..., gym.Env]:
    module_name, attribute = entry_point.split(":", 1)
    return getattr(importlib.import_module(module_name), attribute)


def make_env(name: str, env_config: Mapping[str, Any] | None = None) -> gym.Env:
    """Build the env ``name`` in this process, as an env runner would (after :func:`resolve_env`)."""
    name = resolve_env(name)
    if name in {spec.id for spec in envs.ENV_SPECS}:
        return make_project_env(name, env_config)
    if name in gym.registry:
        return make_gymnasium_env(gym.spec(name), env_config)
    module_name, attribute = name.split(":", 1)
    if attribute in gym.registry and not callable(getattr(importlib.import_module(module_name), attribute, None)):
        return make_gymnasium_env(gym.spec(attribute), env_config)
    return make_entry_point_env(name, env_config)


def env_kwargs(name: str) -> tuple[str, ...] | None:
    """The keyword arguments env ``name`` can be built with (its constructor's, plus
    ``gymnasium.make``'s own for registered ids), or None when they cannot be listed (a constructor
    taking ``**kwargs``, such as POPGym's, or one that cannot be inspected). Call after
    :func:`resolve_env`."""
    make_params: tuple[str, ...] = ()
    if name in gym.registry:
        entry_point = gym.spec(name).entry_point
        make_params = tuple(p for p in inspect.signature(gym.make).parameters if p not in ("id", "kwargs"))
    else:
        entry_point = name
    try:
        target = _load_attribute(entry_point) if isinstance(entry_point, str) else entry_point
        parameters = inspect.signature(target).parameters.values()
    except Exception:  # noqa: BLE001 - e.g. a missing extra (gymnasium's DependencyNotInstalled): building says why
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    names = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                       inspect.Parameter.KEYWORD_ONLY)]
    return tuple(names) + make_params
