"""What a training run is called in MLflow: the memory, what else varies, the seed.

A study's trial is named by its memory (kind and size ``H``), the other values its study searched
(the last part of each path, ``=`` its value; a variant by its name; an env by its short id) and
its seed, so runs can be told apart in MLflow's runs table and chart legends:

    >>> from rllib_shm.config import ExperimentConfig
    >>> config = ExperimentConfig.from_dict({"module": {"memory": {"kind": "shm", "mem_size": 32}},
    ...                                      "algo": {"lr": 1e-3}, "run": {"seed": 0}})
    >>> run_name(config, {"module.memory.kind": "shm", "algo.lr": 1e-3, "run.seed": 0})
    'shm-H32 lr=1e-3 s0'
    >>> run_name(config, {"env.id": config.env.id, "variant": "theta-fixed"})  # (popgym-RepeatFirstEasy-v0)
    'RepeatFirstEasy shm-H32 theta-fixed s0'
    >>> run_name(config, prefix="quickstart")  # a `rllib-shm train` run: its run.name first
    'quickstart shm-H32 s0'
    >>> run_name(config, {"variant": "shm-32-fixed"})  # a variant that names its memory stands for it
    'shm-32-fixed s0'

A SAC critic with a memory of its own (``algo.sac.critic_memory``; the paper's meta-RL compared
critic memories under one GRU actor) is named after the actor's, and a variant that is just the
critic's memory kind is said by it:

    >>> sac = ExperimentConfig.from_dict({"module": {"memory": {"kind": "gru", "mem_size": 128}},
    ...     "algo": {"name": "sac", "sac": {"critic_memory": {"kind": "shm", "mem_size": 24}}}, "run": {"seed": 1}})
    >>> run_name(sac, {"variant": "shm", "run.seed": 1})
    'gru-H128 critic-shm-H24 s1'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rllib_shm.config import ExperimentConfig

#: searched paths the memory label or the seed already shows
SHOWN = ("module.memory.kind", "module.memory.mem_size", "module.memory.context_size", "module.rllib_lstm",
         "run.seed", "env.id")
MAX_LENGTH = 200


def _label(memory) -> str:
    if memory.kind == "mlp":
        return "mlp"
    if memory.kind == "ffm":
        return f"ffm-H{memory.mem_size}x{memory.context_size}"
    return f"{memory.kind}-H{memory.mem_size}"


def critic_memory(config: ExperimentConfig):
    """The SAC critic's own memory (a ``MemoryConfig``), or None where the critic runs the actor's."""
    return config.algo.sac.critic_memory if config.algo.name == "sac" else None


def memory_label(config: ExperimentConfig) -> str:
    """``shm-H32``, ``gru-H64``, ``ffm-H32x8`` (size × context), ``mlp``, ``rllib-lstm-H32``; a SAC
    critic with its own memory adds it: ``gru-H128 critic-shm-H24``."""
    memory = config.module.memory
    label = f"rllib-lstm-H{memory.mem_size}" if config.module.rllib_lstm else _label(memory)
    critic = critic_memory(config)
    return label if critic is None else f"{label} critic-{_label(critic)}"


def says_memory(name: str, kind: str, size: Any = None, context: Any = None) -> bool:
    """Whether a name (a study's variant) already says a memory: its kind and, where given, its size
    and FFM context size, case and punctuation aside (``shm-H64-fixed`` says SHM 64, ``ffm-32x8``
    FFM 32 × 8). The kind is matched within the name's letters and digits; a size or context only as
    a whole number in it (``gru-128`` does not say a GRU of 12, nor ``ffm-32x16`` a context of 1).
    The one rule for run names (``names_memory``) and report labels
    (``reports.grouping``).

        >>> says_memory("shm-H64-fixed", "shm", 64), says_memory("FFM_32×8", "ffm", 32, 8)
        (True, True)
        >>> says_memory("gru", "gru", 256), says_memory("gru-128", "gru", 12)
        (False, False)
    """
    lowered = name.lower().replace("×", "x")
    bare = "".join(ch for ch in lowered if ch.isalnum())
    numbers = re.findall(r"\d+", lowered)
    if str(kind).lower().replace("_", "") not in bare:
        return False
    return all(str(part) in numbers for part in (size, context) if part is not None)


def names_memory(variant: str, config: ExperimentConfig) -> bool:
    """Whether a variant's name already says the memory: its kind and, but for the MLP, its size
    (``gru-256``, ``shm-H64-fixed``, ``rllib-lstm-256``, ``ffm-32x8``, ``mlp``)."""
    memory = config.module.memory
    return says_memory(variant, memory.kind, None if memory.kind == "mlp" else memory.mem_size,
                       memory.context_size if memory.kind == "ffm" else None)


def says_memory_alone(name: str, kind: str, size: Any = None, context: Any = None) -> bool:
    """Whether a name says no more than a memory label shown beside it: the kind alone (``shm``,
    ``GRU``), or the kind with its size (and FFM context), as ``says_memory`` reads them. A SAC
    critic-memory arm named ``shm`` is said by its label ``critic-shm-H24``; ``shm-fixed`` is not.

        >>> says_memory_alone("shm", "shm", 24), says_memory_alone("shm-24", "shm", 24)
        (True, True)
        >>> says_memory_alone("shm-fixed", "shm", 24)
        False
    """
    bare = "".join(ch for ch in name.lower() if ch.isalnum())
    return bare == str(kind).lower() or says_memory(name, kind, None if kind == "mlp" else size,
                                                    context if kind == "ffm" else None)


def names_critic(variant: str, config: ExperimentConfig) -> bool:
    """Whether a variant's name says no more than the SAC critic's own memory label."""
    critic = critic_memory(config)
    return critic is not None and says_memory_alone(variant, critic.kind, critic.mem_size, critic.context_size)


def short_env(env_id: str) -> str:
    """``rllib_shm/popgym-AutoencodeEasy-v0`` → ``AutoencodeEasy``; ``module:Class`` → ``Class``."""
    name = env_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    name = name.removeprefix("popgym-")
    head, _, version = name.rpartition("-v")
    return head if head and version.isdigit() else name


def short_value(value: Any) -> str:
    """Numbers as short as they read: ``1e-3``, ``2.5e-4``, ``0.95``, ``128``."""
    if isinstance(value, float):
        if value != 0 and not 1e-2 <= abs(value) < 1e4:
            mantissa, exponent = f"{value:.3e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.4g}"
    return str(value)


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def run_name(config: ExperimentConfig, searched: Mapping[str, Any] | None = None, prefix: str = "") -> str:
    """The run's name: ``prefix``, the short env id where searched, the memory label, the other
    searched values (``name=value``; a variant by its name), ``s<seed>``."""
    flat = _flat(searched or {})
    extras = {path: value for path, value in flat.items() if path not in SHOWN}
    leaves = {path: path.rsplit(".", 1)[-1] for path in extras}
    if len(set(leaves.values())) < len(leaves):  # two paths end alike: show them whole
        leaves = {path: path for path in extras}
    parts = [prefix] if prefix else []
    if "env.id" in flat:
        parts.append(short_env(config.env.id))
    variant = str(extras["variant"]) if list(extras) == ["variant"] else None
    if variant is not None and names_critic(variant, config):
        extras = {}  # the memory label's critic part says the variant
    if not (variant is not None and critic_memory(config) is None and names_memory(variant, config)):
        parts.append(memory_label(config))  # unless the variant says the memory and stands for it
    for path, value in extras.items():
        parts.append(str(value) if path == "variant" else f"{leaves[path]}={short_value(value)}")
    parts.append(f"s{config.run.seed}")
    name = " ".join(parts)
    return name if len(name) <= MAX_LENGTH else name[: MAX_LENGTH - 1] + "…"
