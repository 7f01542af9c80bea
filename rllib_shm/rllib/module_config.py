"""``ModuleConfig``: the memory RLModule's configuration, and its RLlib ``model_config`` form.

One frozen dataclass is the source; :meth:`ModuleConfig.to_model_config` derives the dict RLlib
passes to the module (``config.rl_module(model_config=...)``) and
:meth:`ModuleConfig.from_model_config` reads it back, rejecting unknown keys by name.

``rllib_lstm: true`` swaps the whole module for RLlib's own default PPO module with its built-in
LSTM (``DefaultModelConfig(use_lstm=True)``), a baseline for comparisons run by the same PPO
settings, loop, studies and MLflow records. The fields that map onto it (``config/ppo.py``,
``rllib_lstm_model_config``): ``memory.mem_size`` → ``lstm_cell_size``, ``encoder_hiddens`` →
``fcnet_hiddens`` (RLlib's tanh MLP before the LSTM), ``head_hiddens`` → ``head_fcnet_hiddens``
(may be empty here: RLlib's default puts the heads straight on the LSTM output),
``shared_trunk`` → ``vf_share_layers``, ``max_seq_len``. ``memory.kind`` must say ``lstm``;
the project's encoder options (``cnn``, ``image_shape``), the positional embeddings and the
official-agent switches have no counterpart and are refused; ``memory_output`` and the memory's
other fields are unused.

The official SHM POPGym agent (thaihungle/SHM ``train_popgym.py`` + popgym's ``BaseModel``;
docs/official-agent.md) is this config: ``encoder_hiddens: [128, 64]``, ``memory_output: 1024``,
``head_hiddens: [64]``, ``positional_embedding: official``, ``init: official``,
``encoder_norm_affine: false``, ``head_linear: true``, ``memory: {kind: shm, theta_mode: fixed}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rllib_shm.memory import MemoryConfig
from rllib_shm.memory.validation import check_choice, check_positive_int

ENCODERS = ("mlp", "cnn")
POSITIONAL_EMBEDDINGS = ("none", "sine", "official")
INITS = ("torch", "official")


@dataclass(frozen=True)
class ModuleConfig:
    """Encoder → (positional embedding) → memory → post MLP → policy / value heads.

    Defaults follow the SHM paper's POPGym model scaled down: the paper used encoder (128, 64),
    memory output 1024 and head (64,).
    """

    memory: MemoryConfig = field(default_factory=MemoryConfig)  # which memory, its sizes
    encoder: str = "mlp"  # mlp (vectors) | cnn (image observations)
    encoder_hiddens: tuple[int, ...] = (128, 64)  # Linear+LayerNorm, then Linear+ReLU layers
    memory_output: int = 256  # O: width of the memory cell's output projection
    head_hiddens: tuple[int, ...] = (64,)  # post MLP (ReLU) shared by the policy and value heads
    # one encoder+memory for policy and value (the paper's PPO), or one each; null: the algorithm's
    # default (resolved by ExperimentConfig, ``resolve_shared_trunk``): true for PPO, false for SAC
    shared_trunk: bool | None = None
    # none | sine: transformer sine (base 10,000) added to the encoder output | official: the official
    # SHM agent's (base 1,024, mixed into the first encoder layer's LayerNorm'd output as x(1−s) + s·emb,
    # s learned, init 0.5, clamped to [0, 1]; encoders.MixedSineEmbedding)
    positional_embedding: str = "none"
    max_seq_len: int = 64  # RLlib's chunk length for learning (must cover the BPTT horizon)
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of flat image observations (cnn)
    rllib_lstm: bool = False  # RLlib's built-in LSTM PPO module instead (a baseline; module docstring)
    # torch: PyTorch's default init everywhere | official (the official SHM agent's, popgym BaseModel):
    # orthogonal weights (gain 1) on the encoder, post-MLP and head Linears, the final policy and value
    # Linears' weights N(0, 0.01²); biases and the memory cell keep PyTorch's defaults
    init: str = "torch"
    encoder_norm_affine: bool = True  # the encoder LayerNorm's learned scale/shift (official agent: false)
    # an extra Linear(P, P) before each of the policy and value heads, no activation between
    # (official agent: true, train_popgym.py's actor = critic = Linear(64, 64))
    head_linear: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.memory, MemoryConfig):
            raise ValueError(f"memory must be a MemoryConfig, got {type(self.memory).__name__}")
        check_choice("encoder", self.encoder, ENCODERS)
        check_choice("positional_embedding", self.positional_embedding, POSITIONAL_EMBEDDINGS)
        check_choice("init", self.init, INITS)
        for name in ("rllib_lstm", "encoder_norm_affine", "head_linear"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.positional_embedding == "official" and self.encoder != "mlp":
            raise ValueError("positional_embedding 'official' mixes into the mlp encoder's first layer; "
                             f"encoder is {self.encoder!r}")
        for name in ("encoder_hiddens", "head_hiddens"):
            values = getattr(self, name)
            if isinstance(values, tuple | list) and not values and name == "head_hiddens" and self.rllib_lstm:
                object.__setattr__(self, name, ())  # RLlib's default: heads on the LSTM output
                continue
            if not isinstance(values, tuple | list) or not values:
                raise ValueError(f"{name} must be a non-empty list of positive integers, got {values!r}")
            for value in values:
                check_positive_int(name, value)
            object.__setattr__(self, name, tuple(values))
        check_positive_int("memory_output", self.memory_output)
        check_positive_int("max_seq_len", self.max_seq_len)
        if self.shared_trunk is not None and not isinstance(self.shared_trunk, bool):
            raise ValueError(f"shared_trunk must be true, false or null (the algorithm's default), "
                             f"got {self.shared_trunk!r}")
        if self.image_shape is not None:
            if len(self.image_shape) != 3:
                raise ValueError(f"image_shape must be (C, H, W), got {self.image_shape!r}")
            for value in self.image_shape:
                check_positive_int("image_shape", value)
            object.__setattr__(self, "image_shape", tuple(self.image_shape))
        if self.rllib_lstm:
            self._check_rllib_lstm()

    def _check_rllib_lstm(self) -> None:
        """RLlib's built-in LSTM takes only the fields that map onto it; refuse the others by name."""
        problems = []
        if self.memory.kind != "lstm":
            problems.append(f"memory.kind must be 'lstm' (got {self.memory.kind!r}; its cell size is "
                            "memory.mem_size)")
        if self.encoder != "mlp":
            problems.append(f"encoder must be 'mlp' (got {self.encoder!r}; RLlib's LSTM has its own tokenizer)")
        if self.image_shape is not None:
            problems.append("image_shape must be null")
        if self.positional_embedding != "none":
            problems.append(f"positional_embedding must be 'none' (got {self.positional_embedding!r})")
        if self.init != "torch" or not self.encoder_norm_affine or self.head_linear:
            problems.append("init, encoder_norm_affine and head_linear must keep their defaults")
        if problems:
            raise ValueError("rllib_lstm: true builds RLlib's built-in LSTM module, where " + "; ".join(problems))

    def resolve_shared_trunk(self, algorithm: str) -> ModuleConfig:
        """This config with ``shared_trunk`` decided for ``algorithm`` (``ppo`` | ``sac``): null
        becomes true for PPO (the paper's shared trunk) and false for SAC (actor and critic always
        have their own trunks); an explicit true with SAC is refused."""
        if algorithm == "sac":
            if self.shared_trunk:
                raise ValueError("module.shared_trunk: true with algo.name: sac: SAC's actor and critic always have "
                                 "their own trunks (algo.sac.critic_memory picks the critic's memory); remove "
                                 "module.shared_trunk or set it false")
            return dataclasses.replace(self, shared_trunk=False) if self.shared_trunk is None else self
        return dataclasses.replace(self, shared_trunk=True) if self.shared_trunk is None else self

    def to_model_config(self) -> dict[str, Any]:
        """The plain dict RLlib carries (nested ``memory`` dict; lists for tuples)."""
        values = dataclasses.asdict(self)
        for key, value in values.items():
            if isinstance(value, tuple):
                values[key] = list(value)
        return values

    @classmethod
    def from_model_config(cls, values: dict[str, Any]) -> ModuleConfig:
        """Inverse of :meth:`to_model_config`; unknown keys raise naming them and the valid ones.

        RLlib adds some of its own ``DefaultModelConfig`` keys (e.g. PPO's ``vf_share_layers``);
        those are ignored, any other unknown key is an error.
        """
        from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

        names = {f.name for f in dataclasses.fields(cls)}
        rllib_names = {f.name for f in dataclasses.fields(DefaultModelConfig)} - names
        values = {k: v for k, v in values.items() if k not in rllib_names}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown module config key(s) {unknown}; valid keys: {sorted(names)}")
        values = dict(values)
        memory = values.get("memory", {})
        if isinstance(memory, dict):
            values["memory"] = MemoryConfig.from_dict(memory)
        for key in ("encoder_hiddens", "head_hiddens", "image_shape"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)
