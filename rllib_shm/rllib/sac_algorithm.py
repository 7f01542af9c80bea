"""``MemorySACConfig``: RLlib's SAC on the new API stack, made recurrent for :class:`MemorySACModule`.

What changes from RLlib's ``SACConfig`` / ``SAC`` (everything else, including DQN's training step
that alternates sampling into the replay buffer with ``LearnerGroup.update`` calls and syncs the
env runners' weights, is RLlib's own):

- module: :class:`MemorySACModule` (``rllib/sac_module.py``); learner: :class:`MemorySACLearner`
  (``rllib/sac_learner.py``); buffer: :class:`MemoryEpisodeReplay` (``rllib/sac_replay.py``),
  sampling whole episodes (``train_batch_size_per_learner`` counts episodes);
- acting: the memory pieces of PPO (:class:`MemoryActing`: one θ stream per env runner, acting
  states kept aside, never per step);
- warm-up: learning starts once the buffer holds ``warmup_episodes`` finished episodes (the
  paper's count; RLlib counts env steps), also after a restore, whose buffer starts empty;
- the learner pipeline is RLlib's SAC one (observations, next observations, columns, time dim with
  zero padding and loss mask), with ``state_in`` from :class:`AddReplayStartStates`: the stored
  start state of a replayed window (``chunk_start_state: stored``), else the initial (zero) state.

The update-to-data ratio u (gradient updates per env step) is RLlib's ``training_intensity``
(replayed items per sampled env step) with one item per update: with ``train_batch_size_per_learner``
= episodes per update, ``training_intensity = u · total_train_batch_size · n' / (n + 1)`` with n
remote env runners and n' = max(n, 1) runners that sample (DQN's ``calculate_rr_weights`` counts
n + 1: the driver's runner too, which samples only when n = 0); it then runs
u · (env steps per sampling round) updates per round (tested: ``tests/test_sac_train.py``).
"""

from __future__ import annotations

from ray.rllib.algorithms.sac import SAC, SACConfig
from ray.rllib.connectors.common.add_states_from_episodes_to_batch import AddStatesFromEpisodesToBatch
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    TIMERS,
)

from rllib_shm.rllib.connectors import AddReplayStartStates, MemoryActing
from rllib_shm.rllib.sac_module import MemorySACModule
from rllib_shm.rllib.sac_replay import MemoryEpisodeReplay


class MemorySACConfig(MemoryActing, SACConfig):
    """Recurrent SAC / SAC-Discrete for memory modules (see the module docstring)."""

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or MemorySAC)
        self._init_memory_acting()
        self.warmup_episodes = 10  # finished episodes in the replay buffer before the first update
        self.num_steps_sampled_before_learning_starts = 0  # the warm-up counts episodes instead

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=MemorySACModule)

    def get_default_learner_class(self):
        from rllib_shm.rllib.sac_learner import MemorySACLearner

        return MemorySACLearner

    def build_learner_connector(self, input_observation_space, input_action_space, device=None):
        """RLlib's SAC learner pipeline with ``state_in`` from the replayed items' stored start
        states (``AddReplayStartStates``; the initial state where none is stored)."""
        pipeline = super().build_learner_connector(input_observation_space, input_action_space, device)
        if self.add_default_connectors_to_learner_pipeline:
            pipeline.insert_before(AddStatesFromEpisodesToBatch, AddReplayStartStates(as_learner_connector=True))
        return pipeline


class MemorySAC(SAC):
    """RLlib's SAC algorithm, built from :class:`MemorySACConfig`; its replay buffer is
    :class:`MemoryEpisodeReplay` (RLlib's config check accepts only its own buffer names, so the
    config says ``EpisodeReplayBuffer`` and the buffer's own settings ride along)."""

    def training_step(self) -> None:
        """DQN's training step (sample, store, update, sync weights) once the buffer holds
        ``warmup_episodes`` finished episodes; until then only its sampling and storing half.
        A restored run starts with an empty buffer (it is not checkpointed), so it warms up again."""
        if not getattr(self, "_warmed_up", False):
            self._warmed_up = self.local_replay_buffer.num_finished_episodes() >= max(1, self.config.warmup_episodes)
        if self._warmed_up:
            return super().training_step()
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group, concat=True, sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True, _return_metrics=True)
        self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            self.local_replay_buffer.add(episodes)
        return None

    def _create_local_replay_buffer_if_necessary(self, config):
        settings = {k: v for k, v in dict(config["replay_buffer_config"]).items() if k != "type"}
        return MemoryEpisodeReplay(metrics_num_episodes_for_smoothing=self.config.metrics_num_episodes_for_smoothing,
                                   **settings)

    @classmethod
    def get_default_config(cls) -> MemorySACConfig:
        return MemorySACConfig()
