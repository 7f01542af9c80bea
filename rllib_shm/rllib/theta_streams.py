"""One θ stream per env runner, kept in checkpoints and carried across restarts.

SHM with random θ draws a row l_t ~ Uniform{0..L−1} of the θ table per batch element and step from
the memory's own ``torch.Generator``. Every env runner builds its module from the same config, so
without this module every runner would draw the same index stream, and a restored run would start
it over. Here:

- ``stream_seed(run_seed, memory_seed, worker_index)`` derives each runner's seed by mixing the
  three numbers (``numpy.random.SeedSequence``, so nearby seeds give unrelated streams);
  evaluation runners mix in a fourth number, 1.
- :class:`MemoryEnvRunner` (RLlib's ``SingleAgentEnvRunner``) binds its module and worker index to
  the :class:`ThetaStreams` piece of its env-to-module pipeline, which reseeds the module.
- :class:`ThetaStreams` is that piece's connector state: for every runner index it knows, the
  generator states of the module's drawing memories and how many acting calls have drawn from
  them. RLlib gathers the runners' connector states after every iteration, merges them on the
  driver (``merge_states``: per runner, the entry with the most calls wins) and broadcasts the
  result; the driver's env runner then holds every runner's stream, so ``Algorithm.save_to_path``
  writes them all and ``restore_from_path`` (which syncs them back out) continues them. A runner
  restarted after a crash gets the last synced state of its index from the same broadcast.

PPO's learners replay the stored draws (``theta_indices``) and never draw, so they need no stream
(checked: a PPO learner's generator states are unchanged by a training iteration). SAC's learners
draw fresh rows on every training forward pass (``algo.sac.theta_replay: fresh``); their
generators are learner state (``MemorySACLearner``, ``THETA_GENERATORS``).
The weights broadcast (``RLModule.set_state``) carries no generator state, so it cannot reset one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner


def stream_seed(run_seed: int, memory_seed: int, worker_index: int, evaluation: bool = False) -> int:
    """The θ generator seed of env runner ``worker_index`` (0: the driver's / trial's own runner).

    Examples:
        >>> stream_seed(0, 0, 1) != stream_seed(0, 0, 2) != stream_seed(1, 0, 1)
        True
        >>> stream_seed(3, 5, 2) == stream_seed(3, 5, 2)
        True
    """
    entropy = (int(run_seed), int(memory_seed), int(worker_index)) + ((1,) if evaluation else ())
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


class ThetaStreams(ConnectorV2):
    """Env-to-module piece holding the θ streams as connector state (see the module docstring).

    State: ``{"streams": {runner key: {"calls": n, "states": {trunk prefix: bytes}}}, "own": key}``.
    It changes no batch; it counts the acting calls of its own runner.
    """

    def __init__(self, input_observation_space=None, input_action_space=None, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self._module = None
        self._key: str | None = None
        self._calls = 0
        self._streams: dict[str, dict[str, Any]] = {}

    # -- binding -----------------------------------------------------------------------------
    def bind(self, module, worker_index: int, run_seed: int | None, evaluation: bool = False) -> None:
        """Give this runner's module its own stream (or the one a set_state already delivered)."""
        if module is None or not hasattr(module, "random_states") or not module.random_states():
            return  # a module that draws nothing: no stream, no state
        self._module = module
        self._key = f"{'eval-' if evaluation else ''}{int(worker_index or 0)}"
        memory_seed = module.module_config.memory.seed
        module.reseed(stream_seed(run_seed or 0, memory_seed, worker_index or 0, evaluation))
        self._calls = 0
        self._apply_own()

    def _own_entry(self) -> dict[str, Any]:
        states = {prefix: state.numpy().tobytes() for prefix, state in self._module.random_states().items()}
        return {"calls": self._calls, "states": states}

    def _apply_own(self) -> None:
        entry = self._streams.get(self._key) if self._key is not None else None
        if entry is None or entry["calls"] == self._calls:
            return  # nothing newer (the usual broadcast of what this runner just reported)
        self._module.set_random_states(
            {prefix: torch.frombuffer(bytearray(raw), dtype=torch.uint8) for prefix, raw in entry["states"].items()})
        self._calls = entry["calls"]

    # -- the piece ---------------------------------------------------------------------------
    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        if self._module is not None:
            self._calls += 1
        return batch

    # -- connector state ---------------------------------------------------------------------
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        streams = dict(self._streams)
        if self._module is not None:
            streams[self._key] = self._own_entry()
        return {"streams": streams, "own": self._key} if streams else {}

    def set_state(self, state: dict[str, Any]) -> None:
        self._streams = dict(state.get("streams", {}))
        if self._module is not None:
            self._apply_own()

    def merge_states(self, states: list[dict[str, Any]]) -> dict[str, Any]:
        """Union of every runner's view; per runner key, the entry with the most calls (the runner's
        own latest report beats stale copies, a restored stream beats a freshly started one)."""
        merged: dict[str, dict[str, Any]] = dict(self.get_state().get("streams", {}))
        for state in states:
            for key, entry in state.get("streams", {}).items():
                if key not in merged or entry["calls"] > merged[key]["calls"]:
                    merged[key] = entry
        return {"streams": merged, "own": self._key} if merged else {}


class MemoryEnvRunner(SingleAgentEnvRunner):
    """RLlib's single-agent env runner that hands its module and worker index to ``ThetaStreams``,
    and seeds each env it makes once.

    RLlib 2.60 reseeds on every ``sample()`` in ``batch_mode = "complete_episodes"`` (what
    ``algo.whole_episodes`` uses): ``_sample(num_episodes=...)`` sets ``_needs_initial_reset``, and
    ``_reset_envs`` passes ``seed=self._seed`` whenever that flag is set. Every sample call then
    replays the same episodes (the same cues, goals, cards), so a whole-episode PPO run trains and
    scores on a handful of fixed episodes. Here the seed reaches an env only at its first reset;
    later resets draw on from the env's own generator, as in ``truncate_episodes`` mode.
    """

    _seeded_env = None  # the env object that has had its seed

    def _try_env_reset(self, *, seed=None, options=None):
        if seed is not None:
            if self._seeded_env is self.env:
                seed = None
            else:
                self._seeded_env = self.env
        return super()._try_env_reset(seed=seed, options=options)

    def make_module(self):
        super().make_module()
        pipeline = getattr(self, "_env_to_module", None)
        if pipeline is None:
            return
        for piece in pipeline.connectors:
            if isinstance(piece, ThetaStreams):
                piece.bind(self.module, self.worker_index, self.config.seed,
                           evaluation=bool(getattr(self.config, "in_evaluation", False)))
