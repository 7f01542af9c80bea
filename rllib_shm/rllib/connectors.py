"""Recurrent state storage: keep only the states that are read, copy only those.

RLlib stores the module's ``state_out`` at every env step (SHM: H×H floats, 64 KiB at H = 128),
and its learner connector ``AddStatesFromEpisodesToBatch`` builds each chunk's ``state_in`` as
``np.concatenate([[initial], state_outs[:-1]])[::max_seq_len]``: a full copy of all stored states
(131 MB per 2,000-step batch at H = 128) to keep one in ``max_seq_len``. ``AddChunkStartStates``
picks the same rows by slicing (``state_outs[m-1 :: m]``, a view), so only the chunk-start states
are copied. It runs right before the default piece, which then sees ``state_in`` and steps aside.
``ReleaseInteriorStates`` stops keeping the other states while sampling.
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


def chunk_start_states(look_back: np.ndarray, state_outs: np.ndarray, max_seq_len: int, length: int) -> np.ndarray:
    """state_in of every chunk: [look_back, outs[m−1], outs[2m−1], …], ⌈length/m⌉ rows.

    Equals ``np.concatenate([[look_back], state_outs[:-1]])[::m]`` without copying ``state_outs``.
    """
    chunks = int(math.ceil(length / max_seq_len))
    rest = state_outs[max_seq_len - 1 : (chunks - 1) * max_seq_len : max_seq_len]
    return np.concatenate([np.asarray(look_back)[np.newaxis], rest])


class AddChunkStartStates(AddStatesFromEpisodesToBatch):
    """Learner connector piece: ``state_in`` per chunk from the episodes, by slicing."""

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        if not self._as_learner_connector or rl_module is None or not rl_module.is_stateful() \
                or Columns.STATE_IN in batch:
            return super().__call__(rl_module=rl_module, batch=batch, episodes=episodes, explore=explore,
                                    shared_data=shared_data, **kwargs)
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            if episode.module_id is not None:
                module = rl_module[episode.module_id]
            else:
                module = rl_module[DEFAULT_MODULE_ID] if isinstance(rl_module, MultiRLModule) else rl_module
            if not module.is_stateful():
                continue
            if not episode.is_numpy or Columns.STATE_OUT not in episode.extra_model_outputs:
                # Rare paths (offline data, list episodes): RLlib's own piece handles them.
                return super().__call__(rl_module=rl_module, batch=batch, episodes=episodes, explore=explore,
                                        shared_data=shared_data, **kwargs)
            max_seq_len = module.model_config["max_seq_len"]
            look_back = (
                convert_to_numpy(module.get_initial_state())
                if episode.t_started == 0
                else episode.get_extra_model_outputs(key=Columns.STATE_OUT, indices=-1, neg_index_as_lookback=True)
            )
            state_outs = episode.get_extra_model_outputs(key=Columns.STATE_OUT)
            length = len(episode)
            chunks = int(math.ceil(length / max_seq_len))
            self.add_n_batch_items(
                batch=batch,
                column=Columns.STATE_IN,
                items_to_add=tree.map_structure(
                    lambda i, o, m=max_seq_len, n=length: chunk_start_states(i, o, m, n), look_back, state_outs
                ),
                num_items=chunks,
                single_agent_episode=episode,
            )
            if Columns.NEXT_OBS in batch:
                self.add_n_batch_items(
                    batch=batch,
                    column=Columns.NEXT_STATE_IN,
                    items_to_add=tree.map_structure(lambda o, m=max_seq_len: o[::m], state_outs),
                    num_items=chunks,
                    single_agent_episode=episode,
                )
        return batch


class MemoryPPOConfig(PPOConfig):
    """PPO for memory modules: one θ stream per env runner (:class:`ThetaStreams`, run by
    :class:`MemoryEnvRunner`), and, with ``lean_states`` (default), only the recurrent states it
    needs stored (:class:`ReleaseInteriorStates` while sampling) and ``state_in`` built by slicing
    (:class:`AddChunkStartStates` when learning); ``lean_states = False`` keeps RLlib's own state
    handling (for benchmarks)."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        self.lean_states = True
        self.env_runner_cls = MemoryEnvRunner

    def build_env_to_module_connector(self, env=None, spaces=None, device=None):
        pipeline = super().build_env_to_module_connector(env=env, spaces=spaces, device=device)
        if self.add_default_connectors_to_env_to_module_pipeline:
            # First in the pipeline: ConnectorPipelineV2.merge_states pairs the i-th non-empty piece
            # state with the i-th piece, so the only stateful piece must come first.
            pipeline.prepend(ThetaStreams())
            if self.lean_states:
                pipeline.append(ReleaseInteriorStates())
        return pipeline

    def build_learner_connector(self, input_observation_space, input_action_space, device=None):
        pipeline = super().build_learner_connector(input_observation_space, input_action_space, device)
        if self.add_default_connectors_to_learner_pipeline and self.lean_states:
            pipeline.insert_before(AddStatesFromEpisodesToBatch, AddChunkStartStates(as_learner_connector=True))
        return pipeline


class ReleaseInteriorStates(ConnectorV2):
    """Env-to-module piece: while sampling, drop the stored states the learner never reads.

    At every step the episode gets the module's ``state_out``. Acting only needs the newest one,
    and learning only the chunk-boundary ones (``state_outs[m−1 :: m]`` of each episode chunk, plus
    a cut chunk's last state as the next chunk's look-back). Each step this piece replaces the
    previous step's state, unless it is a chunk boundary, by one shared zero state (a reference,
    no memory), so an episode holds about len/m full states instead of len.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self._zeros: dict = {}

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        if rl_module is None:
            return batch
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=True):
            module_id = episode.module_id if episode.module_id is not None else DEFAULT_MODULE_ID
            module = rl_module[module_id] if isinstance(rl_module, MultiRLModule) else rl_module
            index = len(episode) - 2
            if index < 0 or not module.is_stateful() or Columns.STATE_OUT not in episode.extra_model_outputs:
                continue
            max_seq_len = module.model_config["max_seq_len"]
            if index % max_seq_len == max_seq_len - 1:
                continue  # a chunk boundary: the learner's state_in for the next chunk
            if module_id not in self._zeros:
                zeros = convert_to_numpy(module.get_initial_state())
                self._zeros[module_id] = tree.map_structure(lambda a: np.zeros_like(a, dtype=np.float32), zeros)
            episode.set_extra_model_outputs(key=Columns.STATE_OUT, new_data=self._zeros[module_id], at_indices=index)
        return batch
