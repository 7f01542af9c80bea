"""``MemorySACModule``: the recurrent SAC / SAC-Discrete module, for every memory.

Dimension letters: B batch (episodes), T time (padded episode length), F flat observation width,
P post-MLP width, A actions (discrete: number of actions; continuous: action dims), H memory size.

Actor and critic have their own trunk (encoder → memory → post MLP, ``module.Trunk``); the critic
trunk may run another memory (``algo.sac.critic_memory``; the paper's meta-RL ran a GRU actor with
an SHM critic) and carries two Q heads (twin Q, as the paper's code: one recurrent critic, two
heads), with a Polyak-averaged target copy of trunk and heads (RLlib's ``TargetNetworkAPI``):

    actor:   o_{0..T} [B,T+1,F] → actor trunk [B,T+1,P] → π logits [B,T+1,A]
    critic:  o_{0..T} [B,T+1,F] → critic trunk [B,T+1,P] → Q₁, Q₂ [B,T+1,A]       (discrete)
                                                   cat(·, a) → Q₁, Q₂ [B,T+1]    (continuous)

Learning replays whole episodes from the zero state (``sac_replay.py``): the observation sequence
o_0..o_T is ``OBS[:, :1]`` followed by ``NEXT_OBS`` (RLlib's SAC learner connector), so one trunk pass
gives h_t for the prediction Q(h_t, a_t) (steps 0..T−1) and h_{t+1} for the target
r_t + γ (1 − d_t) V'(h_{t+1}) (steps 1..T). Padded steps come after every real step of an episode,
so they change no real step's output; the learner drops them from every loss (``sac_learner.py``).
The output names are RLlib's SAC ones, so RLlib's SAC losses run unchanged.

θ (SHM with random θ): the critic and its target draw fresh rows on every forward pass;
the actor draws fresh rows too (``theta_replay: fresh``, the paper's code) or replays the rows it
drew while acting (``theta_replay: acting``; the final observation, on which it never acted,
gets a fresh draw). The three trunks draw from their own generators: the actor's from the
memory's seed, the critic's and the target critic's from seeds derived from the critic memory's
(``derived_seed``), so the critic never draws the actor's rows. Their states are learner state
(``training_random_states``; checkpointed by ``MemorySACLearner``).

Acting (env runners, evaluation, drawings, export) is :class:`MemoryRLModule`'s: the actor is its
``trunk`` and ``pi_head``, the state is the actor trunk's, and env runners build the module
``inference_only`` without the critic. With stored chunk start states (``algo.sac.replay: chunks``,
``chunk_start_state: stored``) the critic trunk acts too, so that its state exists at the chunk
boundaries: the state is then ``pi_``- (actor) and ``qf_``-prefixed (critic), the env runners'
module keeps ``qf_encoder`` (not its Q heads), and ``start_state_every`` = chunk_length tells
``SetStatesAside`` which states to keep. A replayed window starts the actor from the stored
``pi_`` state and the critic and its target from the stored ``qf_`` state (the target has no
acting state of its own: an approximation, like the staleness of every stored state).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.sac.sac_learner import (
    ACTION_DIST_INPUTS_NEXT,
    ACTION_LOG_PROBS,
    ACTION_LOG_PROBS_NEXT,
    ACTION_PROBS,
    ACTION_PROBS_NEXT,
    QF_PREDS,
    QF_TARGET_NEXT,
    QF_TWIN_PREDS,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDeterministic,
    TorchSquashedGaussian,
)
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, QNetAPI, TargetNetworkAPI
from torch import nn

from rllib_shm.memory import MemoryConfig
from rllib_shm.rllib.module import THETA_COLUMN, MemoryRLModule, Trunk
from rllib_shm.rllib.module_config import ModuleConfig

# model_config entry: {"critic_memory": dict | None, "theta_replay": "fresh" | "acting",
#                      "chunk_start_state": "zero" | "stored", "chunk_length": int}
SAC_KEY = "sac"
SAC_KEYS = ("critic_memory", "theta_replay", "chunk_start_state", "chunk_length")
CRITIC_ATTRIBUTES = ("qf_encoder", "qf", "qf_twin", "target_qf_encoder", "target_qf", "target_qf_twin")
#: the trunks that draw θ rows in training, by name in ``training_random_states``
TRAINING_TRUNKS = {"pi": "trunk", "qf": "qf_encoder", "target_qf": "target_qf_encoder"}


def derived_seed(seed: int, index: int) -> int:
    """The θ seed of trunk ``index`` (1: critic, 2: target critic) from the memory's ``seed``, as
    ``MemoryRLModule.reseed`` derives a separate value trunk's (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence((int(seed), int(index))).generate_state(1)[0])


class SquashedGaussian(TorchSquashedGaussian):
    """RLlib's squashed Gaussian whose deterministic action is squashed too: tanh(μ) in [−1, 1]
    (RLlib's returns μ itself, which the env runner then clips)."""

    def to_deterministic(self) -> TorchDeterministic:
        return TorchDeterministic(loc=self._squash(self.loc))


class MemorySACModule(MemoryRLModule, InferenceOnlyAPI, TargetNetworkAPI, QNetAPI):
    """Recurrent actor and twin-Q critic for RLlib's SAC learner; see the module docstring.

    Example:
        >>> import numpy as np
        >>> module = MemorySACModule(
        ...     observation_space=gym.spaces.Box(0, 1, (3,), np.float32), action_space=gym.spaces.Discrete(2),
        ...     model_config={**ModuleConfig(max_seq_len=4).to_model_config(),
        ...                   "sac": {"critic_memory": {"kind": "gru", "mem_size": 8}, "theta_replay": "fresh"}})
        >>> module.make_target_networks()
        >>> batch = {Columns.OBS: torch.zeros(2, 4, 3), Columns.NEXT_OBS: torch.zeros(2, 4, 3),
        ...          Columns.STATE_IN: module.initial_state(2), Columns.ACTIONS: torch.zeros(2, 4)}
        >>> out = module.forward_train(batch)
        >>> out["qf_preds"].shape, out["q_target_next"].shape, out["action_probs_next"].shape
        (torch.Size([2, 4, 2]), torch.Size([2, 4, 2]), torch.Size([2, 4, 2]))
    """

    def setup(self) -> None:
        values = dict(self.model_config)
        sac = dict(values.pop(SAC_KEY, None) or {})
        values.pop("twin_q", None)  # RLlib's SACConfig adds it; the critic here is always twin
        config = ModuleConfig.from_model_config(values)
        if config.rllib_lstm:
            raise ValueError("MemorySACModule: module.rllib_lstm: true is RLlib's LSTM PPO module, not SAC's trunk")
        config = config.resolve_shared_trunk("sac")  # actor and critic have their own trunks; true is refused
        if config.head_linear or config.init != "torch":
            raise ValueError("MemorySACModule: module.head_linear and module.init: official are the official PPO "
                             "agent's switches (docs/official-agent.md); SAC keeps PyTorch's init")
        unknown = sorted(set(sac) - set(SAC_KEYS))
        if unknown:
            raise ValueError(f"unknown {SAC_KEY} model config key(s) {unknown}")
        self.module_config = config
        self.theta_replay = sac.get("theta_replay", "fresh")
        # stored chunk start states: the critic trunk acts too, states kept every chunk_length steps
        self.critic_acts = sac.get("chunk_start_state", "zero") == "stored"
        self.start_state_every = int(sac["chunk_length"]) if self.critic_acts else None
        critic_memory = sac.get("critic_memory")
        self.critic_config = config if critic_memory is None else dataclasses.replace(
            config, memory=critic_memory if isinstance(critic_memory, MemoryConfig)
            else MemoryConfig.from_dict(critic_memory))
        obs_size, image_shape = self._observation_layout(config)
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        if not self.discrete and not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"SAC needs a Discrete or Box action space, got {self.action_space}")
        self.action_dist_cls = TorchCategorical if self.discrete else SquashedGaussian
        width = config.head_hiddens[-1]
        self.trunk, self.vf_trunk = Trunk(config, obs_size, image_shape), None  # the actor (MemoryRLModule's API)
        self.pi_head = nn.Linear(width, int(self.action_dist_cls.required_input_dim(self.action_space)))
        self.pi_pre = nn.Identity()  # MemoryRLModule.policy_outputs: no head_linear layer in SAC's actor
        if self.inference_only and not self.critic_acts:
            return
        self.qf_encoder = Trunk(self.critic_config, obs_size, image_shape)
        self.qf_encoder.memory.reseed(derived_seed(self.critic_config.memory.seed, 1))  # not the actor's rows
        if self.inference_only:
            return
        self.qf, self.qf_twin = self._q_head(width), self._q_head(width)

    def _q_head(self, width: int) -> nn.Module:
        """Discrete: Linear(P → A) (Q of every action); continuous: MLP(P + A → P → 1) on cat(h, a)."""
        if self.discrete:
            return nn.Linear(width, int(self.action_space.n))
        actions = int(self.action_space.shape[0])
        return nn.Sequential(nn.Linear(width + actions, width), nn.ReLU(), nn.Linear(width, 1))

    # -- RLlib's APIs ------------------------------------------------------------------------
    def get_inference_action_dist_cls(self):
        return self.action_dist_cls

    def get_exploration_action_dist_cls(self):
        return self.action_dist_cls

    def get_train_action_dist_cls(self):
        return self.action_dist_cls

    @property
    def squashed_actions(self) -> bool:
        """Continuous actions are tanh-squashed to [−1, 1] (then unsquashed to the Box bounds)."""
        return not self.discrete

    def get_non_inference_attributes(self) -> list[str]:
        return [name for name in CRITIC_ATTRIBUTES if not (self.critic_acts and name == "qf_encoder")]

    def _trunks(self) -> dict[str, Trunk]:
        """prefix → acting trunk: {"": actor}, or {"pi_": actor, "qf_": critic} when the critic acts."""
        return {"pi_": self.trunk, "qf_": self.qf_encoder} if self.critic_acts else {"": self.trunk}

    def make_target_networks(self) -> None:
        self.target_qf_encoder = make_target_network(self.qf_encoder)
        self.target_qf = make_target_network(self.qf)
        self.target_qf_twin = make_target_network(self.qf_twin)
        self.target_qf_encoder.memory.reseed(derived_seed(self.critic_config.memory.seed, 2))  # not the critic's

    def get_target_network_pairs(self):
        return [(self.qf_encoder, self.target_qf_encoder), (self.qf, self.target_qf),
                (self.qf_twin, self.target_qf_twin)]

    def training_random_states(self) -> dict[str, torch.Tensor]:
        """The θ generator state of every trunk that draws rows in training (``pi`` actor, ``qf``
        critic, ``target_qf`` target critic, once built); {} when no memory draws."""
        trunks = {name: getattr(self, attribute, None) for name, attribute in TRAINING_TRUNKS.items()}
        return {name: trunk.memory.random_state() for name, trunk in trunks.items()
                if trunk is not None and trunk.memory.draws_rows}

    def set_training_random_states(self, states: dict[str, torch.Tensor]) -> None:
        """Continue the generators from ``training_random_states()``'s output (unknown names are an error)."""
        unknown = sorted(set(states) - set(self.training_random_states()))
        if unknown:
            raise ValueError(f"θ generator states for unknown trunk(s) {unknown}; this module draws in "
                             f"{sorted(self.training_random_states())}")
        for name, state in states.items():
            getattr(self, TRAINING_TRUNKS[name]).memory.set_random_state(state)

    def compute_values(self, batch, embeddings=None):
        raise NotImplementedError("MemorySACModule has no state-value head; its critic is Q (compute_q_values)")

    def acting_copy(self, model_config: dict) -> MemorySACModule:
        """An inference-only module (the actor alone, even when the critic acts in training) with
        ``model_config``, holding this module's actor weights."""
        sac = {**dict(model_config.get(SAC_KEY) or {}), "chunk_start_state": "zero"}
        copy = type(self)(observation_space=self.observation_space, action_space=self.action_space,
                          model_config={**model_config, SAC_KEY: sac}, inference_only=True)
        copy.load_state_dict({k: v for k, v in self.state_dict().items() if k in copy.state_dict()})
        return copy

    #: the actor has no V(h): SAC's critic is Q(h, a) on its own trunk and state, which acting never runs
    has_state_value = False

    def _act(self, batch, evaluation: bool, values: bool = False) -> dict[str, Any]:
        """The actor's acting step (and the critic trunk's, when it acts); no ``VF_PREDS`` whatever
        ``values`` says (``has_state_value``)."""
        features, state_out, columns = self._run_trunks(batch, evaluation, which=("pi", "qf"))
        return {Columns.ACTION_DIST_INPUTS: self.policy_outputs(features["pi"]), Columns.STATE_OUT: state_out,
                **columns}

    def forward_target(self, batch: dict[str, Any], **kwargs) -> torch.Tensor:
        """min(Q'₁, Q'₂) of the target critic over ``batch[OBS]`` [B,T,...] from the zero state
        (continuous: at ``batch[ACTIONS]``): [B,T,A] or [B,T]."""
        with torch.no_grad():
            features = self._critic_features(self._observations(batch), target=True)
            return self._twin_min(features, batch.get(Columns.ACTIONS), target=True)

    def compute_q_values(self, batch: dict[str, Any], **kwargs) -> torch.Tensor:
        """min(Q₁, Q₂) over ``batch[OBS]`` from the zero state: [B,T,A] (discrete) or [B,T]."""
        features = self._critic_features(self._observations(batch))
        return self._twin_min(features, batch.get(Columns.ACTIONS))

    # -- learning ----------------------------------------------------------------------------
    def _critic_features(self, obs: torch.Tensor, target: bool = False,
                         state: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """[B,T,F] → critic trunk features [B,T,P] from ``state`` (default: the zero state), fresh θ draws."""
        trunk = self.target_qf_encoder if target else self.qf_encoder
        if state is None:
            state = {k: v.to(obs.device) for k, v in self._zero_state(trunk, obs.shape[0]).items()}
        return trunk(obs, state)[0]

    def _start_states(self, state_in: dict[str, torch.Tensor]):
        """``STATE_IN`` → (the actor's start state, the critic's or None: the zero state)."""
        if not self.critic_acts:
            return state_in, None
        return ({k[3:]: v for k, v in state_in.items() if k.startswith("pi_")},
                {k[3:]: v for k, v in state_in.items() if k.startswith("qf_")})

    @staticmethod
    def _zero_state(trunk: Trunk, batch_size: int) -> dict[str, torch.Tensor]:
        state = {"step": torch.zeros(batch_size, 1)}
        for key, shape in trunk.memory.state_shapes().items():
            state[key] = torch.zeros(batch_size, *shape)
        return state

    def _q(self, head: nn.Module, features: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
        if self.discrete:
            return head(features)
        return head(torch.cat((features, actions.to(features.dtype)), dim=-1)).squeeze(-1)

    def _twin_min(self, features, actions, target: bool = False) -> torch.Tensor:
        heads = (self.target_qf, self.target_qf_twin) if target else (self.qf, self.qf_twin)
        return torch.min(self._q(heads[0], features, actions), self._q(heads[1], features, actions))

    def _actor_theta(self, batch, batch_size: int) -> torch.Tensor | None:
        """θ rows the actor replays over o_0..o_T (``theta_replay: acting``), else None (fresh draws)."""
        acting = batch.get(("pi_" if self.critic_acts else "") + THETA_COLUMN)
        if self.theta_replay != "acting" or acting is None:
            return None
        last = self.trunk.memory.draw_indices(batch_size, 1).to(acting.device)
        return torch.cat((acting.long(), last), dim=1)

    def _forward_train(self, batch, **kwargs) -> dict[str, Any]:
        """RLlib's SAC outputs for every step of the padded episodes [B,T]; see the module docstring."""
        sequence = torch.cat((batch[Columns.OBS][:, :1], batch[Columns.NEXT_OBS]), dim=1)  # o_0..o_T [B,T+1,...]
        obs = self._observations({Columns.OBS: sequence})
        batch_size = obs.shape[0]
        actor_state, critic_state = self._start_states(batch[Columns.STATE_IN])
        actor, _, _ = self.trunk(obs, actor_state, self._actor_theta(batch, batch_size), False)
        logits = self.pi_head(actor)  # [B,T+1,A]
        critic = self._critic_features(obs, state=critic_state)  # [B,T+1,P]
        with torch.no_grad():
            target = self._critic_features(obs, target=True, state=critic_state)
        if self.discrete:
            return self._discrete_outputs(logits, critic, target)
        return self._continuous_outputs(logits, critic, target, batch[Columns.ACTIONS])

    def _discrete_outputs(self, logits, critic, target) -> dict[str, Any]:
        probs, log_probs = torch.softmax(logits, -1), torch.log_softmax(logits, -1)  # log_softmax: no log(0)
        with torch.no_grad():
            target_q = torch.min(self.target_qf(target[:, 1:]), self.target_qf_twin(target[:, 1:]))
        return {
            Columns.ACTION_DIST_INPUTS: logits[:, :-1],
            ACTION_PROBS: probs[:, :-1], ACTION_LOG_PROBS: log_probs[:, :-1],
            ACTION_PROBS_NEXT: probs[:, 1:], ACTION_LOG_PROBS_NEXT: log_probs[:, 1:],
            QF_PREDS: self.qf(critic[:, :-1]), QF_TWIN_PREDS: self.qf_twin(critic[:, :-1]),
            QF_TARGET_NEXT: target_q,
        }

    def _continuous_outputs(self, logits, critic, target, actions) -> dict[str, Any]:
        current = self.action_dist_cls.from_logits(logits[:, :-1])
        following = self.action_dist_cls.from_logits(logits[:, 1:])
        resampled, logp_resampled = current.rsample_and_logp()
        with torch.no_grad():
            next_actions, logp_next = following.sample_and_logp()
            target_q = torch.min(self._q(self.target_qf, target[:, 1:], next_actions),
                                 self._q(self.target_qf_twin, target[:, 1:], next_actions))
        # the actor's loss reaches the actor only: critic features detached, Q heads frozen for this pass
        heads = [p for head in (self.qf, self.qf_twin) for p in head.parameters()]
        for parameter in heads:
            parameter.requires_grad_(False)
        q_current = torch.min(self._q(self.qf, critic[:, :-1].detach(), resampled),
                              self._q(self.qf_twin, critic[:, :-1].detach(), resampled))
        for parameter in heads:
            parameter.requires_grad_(True)
        return {
            Columns.ACTION_DIST_INPUTS: logits[:, :-1], ACTION_DIST_INPUTS_NEXT: logits[:, 1:],
            QF_PREDS: self._q(self.qf, critic[:, :-1], actions),
            QF_TWIN_PREDS: self._q(self.qf_twin, critic[:, :-1], actions),
            "logp_resampled": logp_resampled, "logp_next_resampled": logp_next,
            "q_curr": q_current, QF_TARGET_NEXT: target_q,
        }
