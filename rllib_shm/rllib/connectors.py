"""Recurrent state storage: keep only the states that are read, copy only those.

RLlib stores the module's ``state_out`` at every env step in the episode (SHM: H×H floats,
64 KiB at H = 128) and ``episode.to_numpy()`` stacks them all (131 MB per 2,000-step batch at
H = 128), although acting reads only the newest and learning only one per ``max_seq_len`` chunk.
Here the states never enter ``extra_model_outputs``:

- :class:`SetStatesAside` (module-to-env, last) takes ``state_out`` out of the module's output and
  keeps, in the episode's ``custom_data`` (:class:`EpisodeStates`), the newest state and the
  chunk-boundary ones: the ``state_out`` of local steps m−1, 2m−1, … (m = ``max_seq_len``).
- :class:`StateInFromStore` (env-to-module, before RLlib's state piece) gives the module the
  newest state as ``state_in`` (the initial state at an episode's start).
- :class:`AddChunkStartStates` (learner) builds each chunk's ``state_in`` from the store:
  ``[look_back, s[m−1], s[2m−1], …]``, where ``look_back`` is the state the chunk started from.
- For SAC's chunk replay from stored start states (``algo.sac.chunk_start_state: stored``), the
  module's ``start_state_every`` = c makes :class:`SetStatesAside` also keep the start states of
  the episode's absolute steps c, 2c, … (``starts``: the ``state_out`` of steps c−1, 2c−1, …),
  which the replay buffer keeps (``sac_replay.py``).

RLlib's ``episode.cut()`` deep-copies ``custom_data`` into the successor chunk; the first step of
the successor rebases its store (look-back = the newest state, no boundaries yet).
"""

from __future__ import annotations

import math

import numpy as np
import tree
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.connectors.common.add_states_from_episodes_to_batch import AddStatesFromEpisodesToBatch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
from ray.rllib.utils.numpy import convert_to_numpy

from rllib_shm.rllib.theta_streams import MemoryEnvRunner, ThetaStreams

STORE = "rllib_shm.states"  # the key of EpisodeStates in episode.custom_data
START_STATE = "rllib_shm.start_state"  # a replayed SAC window's custom_data: the state it starts from (None: initial)


class EpisodeStates:
    """The recurrent states one episode chunk needs: the state it started from (``look_back``,
    None for the initial state), the newest ``state_out`` (``last``) and the ``state_out`` of the
    chunk-boundary local steps (``boundaries``: local step index → state) and, for SAC's stored
    start states, the state each absolute step k·c starts from (``starts``: step → state)."""

    __slots__ = ("t_started", "look_back", "last", "boundaries", "starts")

    def __init__(self, t_started: int) -> None:
        self.t_started = t_started
        self.look_back = None
        self.last = None
        self.boundaries: dict[int, dict] = {}
        self.starts: dict[int, dict] = {}

    def rebase(self, t_started: int) -> None:
        """A successor chunk (``episode.cut()``) starts from the newest state."""
        self.t_started, self.look_back, self.boundaries, self.starts = t_started, self.last, {}, {}

    def chunk_starts(self, initial, length: int, max_seq_len: int) -> list:
        """``state_in`` of every chunk of ``length`` steps: ⌈length/m⌉ states, not stacked (the
        stored arrays themselves; RLlib stacks the whole batch's once)."""
        starts = [initial if self.look_back is None else self.look_back]
        return starts + [self.boundaries[k * max_seq_len - 1] for k in range(1, math.ceil(length / max_seq_len))]


def _module(rl_module, episode):
    if isinstance(rl_module, MultiRLModule):
        return rl_module[episode.module_id if episode.module_id is not None else DEFAULT_MODULE_ID]
    return rl_module


def _store(episode) -> EpisodeStates:
    store = episode.custom_data.get(STORE)
    if store is None:
        store = episode.custom_data[STORE] = EpisodeStates(episode.t_started)
    elif store.t_started != episode.t_started:
        store.rebase(episode.t_started)
    return store


class SetStatesAside(ConnectorV2):
    """Module-to-env piece (last): moves ``state_out`` from the module's output into the episodes'
    :class:`EpisodeStates`, so RLlib stores no per-step state."""

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        states = batch.pop(Columns.STATE_OUT, None)
        if states is None:
            return batch
        for episode, state in zip(episodes, states, strict=True):
            if not episode.is_reset:
                continue  # an auto-reset step: its output is never stored
            store = _store(episode)
            # A copy: the state is a view into the batched [num_envs, ...] output, which it would keep alive.
            state = tree.map_structure(np.array, state)
            store.last = state
            module = _module(rl_module, episode)
            max_seq_len = module.model_config["max_seq_len"]
            step = len(episode)  # the local index of the step this output belongs to
            if step % max_seq_len == max_seq_len - 1:
                store.boundaries[step] = state
            every = getattr(module, "start_state_every", None)  # SAC's stored chunk start states
            if every and (episode.t_started + step + 1) % every == 0:
                store.starts[episode.t_started + step + 1] = state
        return batch


class StateInFromStore(ConnectorV2):
    """Env-to-module piece (before RLlib's ``AddStatesFromEpisodesToBatch``, which then steps
    aside): ``state_in`` = the episode's newest state, or the module's initial state. It runs right
    after every env step, so it also drops the newest state of the episodes that just ended."""

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        if rl_module is None or Columns.STATE_IN in batch:
            return batch
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=True):
            module = _module(rl_module, episode)
            if not module.is_stateful():
                continue
            store = episode.custom_data.get(STORE)
            if store is not None and episode.is_done:
                store.last = None  # a finished episode's newest state is never read again
            state = store.last if store is not None and store.last is not None \
                else convert_to_numpy(module.get_initial_state())
            self.add_batch_item(batch, Columns.STATE_IN, item_to_add=state, single_agent_episode=episode)
        return batch


class AddChunkStartStates(AddStatesFromEpisodesToBatch):
    """Learner connector piece: ``state_in`` per chunk from the episodes' :class:`EpisodeStates`
    (RLlib's own piece handles episodes without a store, e.g. offline data)."""

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        if not self._as_learner_connector or rl_module is None or Columns.STATE_IN in batch or not any(
                STORE in episode.custom_data for episode in self.single_agent_episode_iterator(
                    episodes, agents_that_stepped_only=False)):
            return super().__call__(rl_module=rl_module, batch=batch, episodes=episodes, explore=explore,
                                    shared_data=shared_data, **kwargs)
        if Columns.NEXT_OBS in batch:
            raise ValueError("the lean state storage (MemoryPPOConfig.lean_states) serves on-policy PPO; "
                             "NEXT_STATE_IN is not kept")
        initials: dict[int, dict] = {}  # one initial state shared by every chunk that starts an episode
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            module = _module(rl_module, episode)
            if not module.is_stateful():
                continue
            max_seq_len = module.model_config["max_seq_len"]
            length = len(episode)
            store = episode.custom_data.get(STORE) or EpisodeStates(episode.t_started)
            initial = initials.get(id(module))
            if initial is None:
                initial = initials[id(module)] = convert_to_numpy(module.get_initial_state())
            self.add_n_batch_items(
                batch=batch,
                column=Columns.STATE_IN,
                items_to_add=store.chunk_starts(initial, length, max_seq_len),
                num_items=math.ceil(length / max_seq_len),
                single_agent_episode=episode,
            )
        return batch


class AddReplayStartStates(ConnectorV2):
    """SAC's learner piece (before RLlib's state piece): ``state_in`` of every replayed episode or
    window is the state stored with it (``custom_data[START_STATE]``, ``sac_replay.py``), else the
    module's initial state. One sequence per item: replayed items fit ``max_seq_len``. (RLlib's
    piece would also build a per-step ``NEXT_STATE_IN`` that the SAC module never reads.)"""

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        if rl_module is None or Columns.STATE_IN in batch:
            return batch
        initials: dict[int, dict] = {}
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            module = _module(rl_module, episode)
            if not module.is_stateful():
                continue
            state = episode.custom_data.get(START_STATE)
            if state is None:
                if id(module) not in initials:
                    initials[id(module)] = convert_to_numpy(module.get_initial_state())
                state = initials[id(module)]
            self.add_n_batch_items(batch=batch, column=Columns.STATE_IN, items_to_add=[state], num_items=1,
                                   single_agent_episode=episode)
        return batch


class MemoryActing:
    """The acting pieces every memory algorithm (PPO, SAC) adds to RLlib's pipelines: a mixin put
    before RLlib's ``AlgorithmConfig`` subclass. Env-to-module: :class:`ThetaStreams` first and, with
    ``lean_states``, :class:`StateInFromStore` before RLlib's state piece; module-to-env:
    :class:`SetStatesAside` last (with ``lean_states``). Env runners are :class:`MemoryEnvRunner`."""

    def _init_memory_acting(self) -> None:
        self.lean_states = True
        self.env_runner_cls = MemoryEnvRunner

    def build_env_to_module_connector(self, env=None, spaces=None, device=None):
        pipeline = super().build_env_to_module_connector(env=env, spaces=spaces, device=device)
        if self.add_default_connectors_to_env_to_module_pipeline:
            # First in the pipeline: ConnectorPipelineV2.merge_states pairs the i-th non-empty piece
            # state with the i-th piece, so the only stateful piece must come first.
            pipeline.prepend(ThetaStreams())
            if self.lean_states:
                pipeline.insert_before(AddStatesFromEpisodesToBatch, StateInFromStore())
        return pipeline

    def build_module_to_env_connector(self, env=None, spaces=None):
        pipeline = super().build_module_to_env_connector(env=env, spaces=spaces)
        if self.add_default_connectors_to_module_to_env_pipeline and self.lean_states:
            pipeline.append(SetStatesAside())
        return pipeline


class MemoryPPOConfig(MemoryActing, PPOConfig):
    """PPO for memory modules: one θ stream per env runner (:class:`ThetaStreams`, run by
    :class:`MemoryEnvRunner`) and, with ``lean_states`` (default), only the recurrent states that
    are read kept (:class:`SetStatesAside`, :class:`StateInFromStore`, :class:`AddChunkStartStates`);
    ``lean_states = False`` keeps RLlib's own state handling (for benchmarks)."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self._init_memory_acting()

    def build_learner_connector(self, input_observation_space, input_action_space, device=None):
        pipeline = super().build_learner_connector(input_observation_space, input_action_space, device)
        if self.add_default_connectors_to_learner_pipeline and self.lean_states:
            pipeline.insert_before(AddStatesFromEpisodesToBatch, AddChunkStartStates(as_learner_connector=True))
        return pipeline
