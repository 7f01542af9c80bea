"""``MemoryRLModule``: one recurrent TorchRLModule for every memory (SHM, ablations, GRU, LSTM, MLP).

Dimension letters: B batch, T time, F flat observation width, E encoder width, O memory output
width, P post-MLP width (the last of ``head_hiddens``), A action-distribution inputs, H memory size.

    obs [B,T,F] → encoder [B,T,E] (+ sine embedding of the episode step) → memory [B,T,O]
                → post MLP [B,T,P] → policy head [B,T,A] and value head [B,T]

The official SHM POPGym agent's variations are switches of ``ModuleConfig``
(docs/official-agent.md): ``positional_embedding: official`` mixes the embedding into the first
encoder layer's output instead (``encoders.MixedSineEmbedding``), ``head_linear`` puts a
Linear(P, P) before each head, ``init: official`` re-initialises the non-memory Linears
(``official_init``), ``encoder_norm_affine: false`` drops the encoder LayerNorm's scale and shift.

Everything but the memory is identical across memories, so a comparison changes one thing.
``model_config`` is :meth:`ModuleConfig.to_model_config` (``max_seq_len`` is mandatory for RLlib's
chunking of episodes). State (without batch dim, as RLlib wants it): ``step`` [1] (the episode
step, for the positional embedding; also keeps the memoryless MLP on the same stateful code path)
plus the cell's state (SHM ``memory`` [H,H], GRU ``h`` [H], LSTM ``h``, ``c``); with separate
trunks every key gets a ``pi_`` / ``vf_`` prefix.

θ replay (SHM with random θ): while acting, the module returns the drawn row indices as the
extra column ``theta_indices`` [B,T] (``pi_theta_indices`` / ``vf_theta_indices`` with separate
trunks). RLlib stores extra model outputs per step in the episode and hands them back as train
batch columns, zero-padded like everything else; ``_forward_train`` and ``compute_values`` replay
them, so the memory the learner sees is the one that chose the actions and PPO's ratio starts at 1.
``forward_inference`` (``explore=False``) acts with the memory's ``eval_theta`` behaviour.

Outside RLlib (evaluation, drawing, export), use the small public API instead of the state keys:
``initial_state(B)`` gives batched state tensors, ``act(obs, state, explore=..., record=...)`` runs
one acting call and, with ``record=True``, adds what the policy trunk's memory did
(``MEMORY_TRACE``: the cell's ``trace``, e.g. SHM ``memory`` M_t [B,T,H,H] and ``calibration`` C_t,
GRU ``memory`` h_t [B,T,H]); ``reseed(seed)`` restarts every memory's own random stream, and
``random_states()`` / ``set_random_states()`` save and continue it (``rllib/theta_streams.py`` gives
every env runner its own stream and keeps it in checkpoints).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.catalog import Catalog
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rllib_shm.memory import MemoryCell, build_memory
from rllib_shm.rllib.encoders import CNNEncoder, MixedSineEmbedding, mlp_encoder, sine_embedding
from rllib_shm.rllib.module_config import ModuleConfig

THETA_COLUMN = "theta_indices"
STEP = "step"
MEMORY_TRACE = "memory_trace"  # key of act(..., record=True)'s recording


class Trunk(nn.Module):
    """Encoder → positional embedding → memory → post MLP, for one set of weights."""

    def __init__(self, config: ModuleConfig, obs_size: int, image_shape) -> None:
        super().__init__()
        if config.encoder == "cnn":
            self.encoder = CNNEncoder(image_shape, config.encoder_hiddens, config.encoder_norm_affine)
        else:
            self.encoder = mlp_encoder(obs_size, config.encoder_hiddens, config.encoder_norm_affine)
        width = config.encoder_hiddens[-1]
        self.positional = config.positional_embedding == "sine"
        # official: mixed into the first encoder layer's (Linear + LayerNorm) output, E₀ = encoder_hiddens[0]
        self.mixed = MixedSineEmbedding(config.encoder_hiddens[0]) \
            if config.positional_embedding == "official" else None
        self.memory: MemoryCell = build_memory(config.memory, width, config.memory_output)
        layers: list[nn.Module] = []
        for width_in, width_out in zip((config.memory_output, *config.head_hiddens), config.head_hiddens,
                                       strict=False):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.post = nn.Sequential(*layers)

    def features(self, obs, start):
        """The memory's input: encoder(obs) [B,T,E] (+ sine embedding of steps start, start+1, …;
        official form: mixed in after the encoder's first Linear + LayerNorm)."""
        if not self.positional and self.mixed is None:
            return self.encoder(obs)
        positions = start.unsqueeze(1) + torch.arange(obs.shape[1], device=obs.device, dtype=start.dtype)
        if self.mixed is not None:
            features = obs
            for index, layer in enumerate(self.encoder):
                features = layer(features)
                if index == 1:  # after Linear(F, E₀) + LayerNorm
                    features = self.mixed(features, positions)
            return features
        features = self.encoder(obs)
        return features + sine_embedding(positions, features.shape[-1])

    def _split(self, obs, state):
        """(features [B,T,E], episode-step start [B], the cell's own state)."""
        start = state[STEP][:, 0]  # [B]
        return self.features(obs, start), start, {k: v for k, v in state.items() if k != STEP}

    def forward(self, obs, state, theta_indices=None, evaluation=None):
        """obs [B,T,F], state dict → (features [B,T,P], new state, θ indices [B,T] or None)."""
        features, start, cell_state = self._split(obs, state)
        extras = self.memory.select_extras(theta_indices=theta_indices, evaluation=evaluation)
        out, new_state, extras_out = self.memory(features, cell_state, return_extras=True, **extras)
        new_state = {STEP: (start + obs.shape[1]).unsqueeze(1), **new_state}
        return self.post(out), new_state, extras_out.get("theta_indices")

    def trace(self, obs, state, theta_indices=None, evaluation=None) -> dict[str, torch.Tensor]:
        """What the memory did over obs [B,T,F] from ``state`` (the cell's ``trace``), replaying
        ``theta_indices`` where given."""
        features, _, cell_state = self._split(obs, state)
        extras = self.memory.select_extras(theta_indices=theta_indices, evaluation=evaluation)
        return self.memory.trace(features, cell_state, **extras)


class MemoryRLModule(TorchRLModule, ValueFunctionAPI):
    """PPO-ready recurrent module; see the module docstring for shapes, state and θ replay.

    Examples:
        >>> import gymnasium as gym
        >>> module = MemoryRLModule(
        ...     observation_space=gym.spaces.Box(-1, 1, (6,), np.float32),
        ...     action_space=gym.spaces.Discrete(3),
        ...     model_config=ModuleConfig(max_seq_len=8).to_model_config(),
        ... )
        >>> state = module.initial_state(2)  # {"step": [2,1], "memory": [2,H,H]}
        >>> out = module.act(torch.zeros(2, 1, 6), state, explore=True, record=True)
        >>> out[Columns.ACTION_DIST_INPUTS].shape, out[THETA_COLUMN].shape
        (torch.Size([2, 1, 3]), torch.Size([2, 1]))
        >>> sorted(out[MEMORY_TRACE]), out[MEMORY_TRACE]["memory"].shape  # M_t, C_t, ... per step
        (['calibration', 'memory', 'reads', 'theta_indices', 'update', 'y'], torch.Size([2, 1, 64, 64]))
    """

    #: whether ``act(values=True)`` gives V(h) (PPO's value head); SAC's actor has none
    has_state_value = True

    def setup(self) -> None:
        config = ModuleConfig.from_model_config(dict(self.model_config))
        if config.rllib_lstm:
            raise ValueError("module.rllib_lstm: true is RLlib's own default PPO module with its built-in LSTM "
                             "(config/ppo.py builds it), not a MemoryRLModule")
        config = config.resolve_shared_trunk("ppo")  # null: PPO's shared trunk
        self.module_config = config
        obs_size, image_shape = self._observation_layout(config)
        self.action_dist_cls = Catalog._get_dist_cls_from_action_space(self.action_space, framework="torch")
        action_inputs = int(self.action_dist_cls.required_input_dim(self.action_space))
        self.trunk = Trunk(config, obs_size, image_shape)
        self.vf_trunk = None if config.shared_trunk else Trunk(config, obs_size, image_shape)
        width = config.head_hiddens[-1]
        self.pi_pre = nn.Linear(width, width) if config.head_linear else nn.Identity()
        self.vf_pre = nn.Linear(width, width) if config.head_linear else nn.Identity()
        self.pi_head = nn.Linear(width, action_inputs)
        self.vf_head = nn.Linear(width, 1)
        if config.init == "official":
            self.official_init()

    def _observation_layout(self, config: ModuleConfig) -> tuple[int, tuple[int, int, int] | None]:
        """(flat observation width F, image shape (C, H, W) or None) of the observation space;
        sets the uint8 → [0, 1] scale. ValueError for a space the trunks cannot read."""
        space = self.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(
                f"MemoryRLModule needs a Box observation space (flatten Discrete/Tuple/Dict spaces first), "
                f"got {space}"
            )
        self._obs_scale = 1 / 255.0 if space.dtype == np.uint8 else None
        obs_size = int(np.prod(space.shape))
        image_shape = config.image_shape
        if config.encoder == "cnn" and image_shape is None:
            if len(space.shape) != 3:
                raise ValueError(
                    f"encoder 'cnn' needs image observations (C, H, W) or image_shape, got shape {space.shape}"
                )
            image_shape = tuple(space.shape)
        if image_shape is not None and int(np.prod(image_shape)) != obs_size:
            raise ValueError(f"image_shape {image_shape} does not match the observation size {obs_size}")
        return obs_size, image_shape
    def official_init(self) -> None:
        """The official agent's init (popgym ``BaseModel.__init__``): orthogonal weights (gain 1) on
        every Linear of the encoder(s), post MLP(s) and ``head_linear`` layers; the final policy and
        value Linears' weights ~ N(0, 0.01²). Biases, the embedding strength and the memory cell
        (SHM's own Linears, θ table) keep their defaults, as there."""
        for trunk in self._trunks().values():
            for part in (trunk.encoder, trunk.post):
                for layer in part.modules():
                    if isinstance(layer, nn.Linear):
                        nn.init.orthogonal_(layer.weight)
        for layer in (self.pi_pre, self.vf_pre):
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight)
        nn.init.normal_(self.pi_head.weight, std=0.01)
        nn.init.normal_(self.vf_head.weight, std=0.01)

    def policy_outputs(self, features: torch.Tensor) -> torch.Tensor:
        """Post-MLP features [B,T,P] → action distribution inputs [B,T,A]."""
        return self.pi_head(self.pi_pre(features))

    def value_outputs(self, features: torch.Tensor) -> torch.Tensor:
        """Post-MLP features [B,T,P] → values [B,T]."""
        return self.vf_head(self.vf_pre(features)).squeeze(-1)

    # -- state -------------------------------------------------------------------------------
    def _trunks(self) -> dict[str, Trunk]:
        """prefix → trunk: {"": shared} or {"pi_": policy, "vf_": value}."""
        return {"": self.trunk} if self.vf_trunk is None else {"pi_": self.trunk, "vf_": self.vf_trunk}

    def get_initial_state(self) -> dict[str, np.ndarray]:
        state = {}
        for prefix, trunk in self._trunks().items():
            state[prefix + STEP] = np.zeros((1,), np.float32)
            for key, shape in trunk.memory.state_shapes().items():
                state[prefix + key] = np.zeros(shape, np.float32)
        return state

    # -- public API for acting outside RLlib (evaluation, drawing) -----------------------------
    @property
    def memory_kind(self) -> str:
        """The memory's kind (``shm``, ``gru``, ``lstm``, ``mlp``)."""
        return self.module_config.memory.kind

    @property
    def has_memory_state(self) -> bool:
        """Whether the memory carries a state (and so has something to draw)."""
        return bool(self.trunk.memory.state_shapes())

    def initial_state(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        """``get_initial_state()`` as tensors with a leading batch dimension [B, ...]."""
        return {k: torch.from_numpy(v).unsqueeze(0).repeat(batch_size, *([1] * v.ndim))
                for k, v in self.get_initial_state().items()}

    def reseed(self, seed: int) -> None:
        """Restart the random stream of every memory (SHM's θ generator): the policy (or shared)
        trunk's from ``seed``, a separate value trunk's from a seed derived from (``seed``, 1), so
        the two trunks never draw the same rows."""
        for index, trunk in enumerate(self._trunks().values()):
            trunk.memory.reseed(seed if index == 0 else int(np.random.SeedSequence((seed, index)).generate_state(1)[0]))

    def random_states(self) -> dict[str, torch.Tensor]:
        """The state of every memory's random stream that draws rows while acting (SHM random θ),
        keyed by trunk prefix (``""`` shared, ``pi_`` / ``vf_``); {} when nothing draws."""
        return {prefix: trunk.memory.random_state() for prefix, trunk in self._trunks().items()
                if trunk.memory.draws_rows}

    def set_random_states(self, states: dict[str, torch.Tensor]) -> None:
        """Continue the streams from ``random_states()``'s output (unknown prefixes are an error)."""
        trunks = self._trunks()
        unknown = sorted(set(states) - set(trunks))
        if unknown:
            raise ValueError(f"random states for unknown trunk(s) {unknown}; this module has {sorted(trunks)}")
        for prefix, state in states.items():
            trunks[prefix].memory.set_random_state(state)

    def act(self, obs: torch.Tensor, state: dict[str, torch.Tensor], *, explore: bool = False,
            record: bool = False, values: bool = False,
            replay: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """One acting call as an env runner makes it: obs [B,T,...], state from ``initial_state``
        or the previous call's ``STATE_OUT``.

        Returns ``ACTION_DIST_INPUTS`` [B,T,A], ``STATE_OUT``, the θ columns drawn (SHM random θ),
        with ``values=True`` also ``VF_PREDS`` [B,T] from the same pass, and with ``record=True``
        ``MEMORY_TRACE``: what the policy trunk's memory did over these steps (the cell's ``trace``,
        replaying the θ draws just made; needs a memory state). ``explore=False`` acts as
        ``forward_inference`` (the memory's ``eval_theta``), ``explore=True`` as
        ``forward_exploration``. ``replay`` maps θ column names (``theta_indices``, or
        ``pi_``/``vf_``-prefixed) to indices [B,T] to use instead of drawing.
        """
        batch = {Columns.OBS: obs, Columns.STATE_IN: state, **(replay or {})}
        out = self._act(batch, evaluation=not explore, values=values)
        if record:
            prefix = next(iter(self._trunks()))  # the policy trunk's: "" (shared) or "pi_"
            trunk_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            out[MEMORY_TRACE] = self.trunk.trace(self._observations(batch), trunk_state,
                                                 theta_indices=out.get(prefix + THETA_COLUMN),
                                                 evaluation=not explore)
        return out

    def acting_copy(self, model_config: dict) -> MemoryRLModule:
        """A module of this class built from ``model_config``, holding this module's weights."""
        copy = type(self)(observation_space=self.observation_space, action_space=self.action_space,
                          model_config=model_config)
        copy.load_state_dict(self.state_dict())
        return copy

    def theta_columns(self) -> list[str]:
        """The θ columns this module draws while acting (one per trunk whose memory draws rows)."""
        return [prefix + THETA_COLUMN for prefix, trunk in self._trunks().items() if trunk.memory.draws_rows]

    # -- forward passes ----------------------------------------------------------------------
    def _observations(self, batch, column: str = Columns.OBS) -> torch.Tensor:
        """``batch[column]`` [B,T,...] as flat float observations [B,T,F] (uint8 scaled to [0, 1])."""
        obs = batch[column]
        batch_size, steps = obs.shape[:2]
        obs = obs.reshape(batch_size, steps, -1).float()
        return obs * self._obs_scale if self._obs_scale is not None else obs

    def _run_trunks(self, batch, evaluation: bool | None, which=("pi", "vf")):
        """Run the trunks named in ``which``; returns features per role, state out, θ columns."""
        obs = self._observations(batch)
        state_in = batch[Columns.STATE_IN]
        features, state_out, columns = {}, {}, {}
        for prefix, trunk in self._trunks().items():
            roles = ("pi", "vf") if prefix == "" else (prefix[:-1],)
            if not any(role in which for role in roles):
                continue
            state = {k[len(prefix):]: v for k, v in state_in.items() if k.startswith(prefix)}
            replay = batch.get(prefix + THETA_COLUMN)
            out, new_state, indices = trunk(obs, state, replay, evaluation)
            for role in roles:
                features[role] = out
            state_out.update({prefix + k: v for k, v in new_state.items()})
            if indices is not None:
                columns[prefix + THETA_COLUMN] = indices
        return features, state_out, columns

    # RLlib's env runners act through these two without disabling autograd; acting never needs
    # gradients, so they run under no_grad: no graph is built per env step, and SHM takes its native
    # acting step (``SHMCell._act``) on the compiled backend.
    @torch.no_grad()
    def _forward(self, batch, **kwargs) -> dict[str, Any]:
        # Acting: explore=False (inference) uses the memory's eval_theta behaviour.
        return self._act(batch, evaluation=True)

    @torch.no_grad()
    def _forward_exploration(self, batch, **kwargs) -> dict[str, Any]:
        return self._act(batch, evaluation=False)

    def _act(self, batch, evaluation: bool, values: bool = False) -> dict[str, Any]:
        features, state_out, columns = self._run_trunks(batch, evaluation)
        out = {Columns.ACTION_DIST_INPUTS: self.policy_outputs(features["pi"]), Columns.STATE_OUT: state_out,
               **columns}
        if values:
            out[Columns.VF_PREDS] = self.value_outputs(features["vf"])
        return out

    def _forward_train(self, batch, **kwargs) -> dict[str, Any]:
        features, state_out, _ = self._run_trunks(batch, evaluation=False)
        return {
            Columns.ACTION_DIST_INPUTS: self.policy_outputs(features["pi"]),
            Columns.STATE_OUT: state_out,
            Columns.EMBEDDINGS: features["vf"],
        }

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """Values [B,T]; without ``embeddings`` the value trunk runs from ``state_in``, replaying θ."""
        if embeddings is None:
            features, _, _ = self._run_trunks(batch, evaluation=False, which=("vf",))
            embeddings = features["vf"]
        return self.value_outputs(embeddings)
