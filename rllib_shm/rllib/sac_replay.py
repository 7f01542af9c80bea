"""``MemoryEpisodeReplay``: RLlib's ``EpisodeReplayBuffer``, sampling whole episodes or burn-in windows.

RLlib's buffer stores episodes (chunks of an ongoing episode are concatenated under its id) and
samples transitions or fixed-length sequences. For a recurrent SAC this buffer keeps RLlib's
storage, eviction and metrics and changes what one ``sample`` returns:

- ``replay="episodes"`` (default, the paper's code): ``num_items`` finished episodes, drawn
  uniformly, each whole from t = 0; the learner starts every trunk from the zero state. An episode
  longer than ``max_len`` (the module's ``max_seq_len``, the padded length) is an error naming both.
- ``replay="chunks"``: windows of ``chunk_length`` learned steps, each preceded by up to
  ``burn_in`` steps that only warm the memories up from the zero state (no loss on them:
  ``REPLAY_MASK`` 0). No recurrent state is stored: the cost is compute (``burn_in`` extra steps
  per window), not memory.

No recurrent state enters the buffer: the acting states never reach the episodes' per-step
outputs (``SetStatesAside``), and the few an episode keeps aside in ``custom_data`` (the newest and
the chunk-boundary ones) are dropped before storing. What one stored step costs is measured by
:func:`bytes_per_step`.

Every sampled episode carries RLlib's SAC columns ``n_step`` (1) and ``weights`` (1) and the
project's ``REPLAY_MASK`` (1 for learned steps, 0 for burn-in).
"""

from __future__ import annotations

import numpy as np
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

from rllib_shm.rllib.connectors import STORE

REPLAY_MASK = "replay_mask"  # per-step column: 1 learned, 0 burn-in


class MemoryEpisodeReplay(EpisodeReplayBuffer):
    """RLlib's episode replay buffer for recurrent SAC (see the module docstring)."""

    def __init__(self, capacity: int = 1_000_000, *, max_len: int = 64, replay: str = "episodes",
                 chunk_length: int = 64, burn_in: int = 0, seed: int | None = None, **kwargs) -> None:
        super().__init__(capacity=capacity, **kwargs)
        if replay not in ("episodes", "chunks"):
            raise ValueError(f"replay must be 'episodes' or 'chunks', got {replay!r}")
        if replay == "chunks" and chunk_length + burn_in > max_len:
            raise ValueError(f"a replayed window (burn_in {burn_in} + chunk_length {chunk_length}) must fit "
                             f"module.max_seq_len ({max_len})")
        self.max_len, self.replay, self.chunk_length, self.burn_in = max_len, replay, chunk_length, burn_in
        self.rng = np.random.default_rng(seed)

    def add(self, episodes) -> None:
        """RLlib's ``add`` (it deep-copies each episode) without the states kept aside for acting."""
        episodes = episodes if isinstance(episodes, list) else [episodes]
        aside = [episode.custom_data.pop(STORE, None) for episode in episodes]
        try:
            super().add(episodes)
        finally:
            for episode, store in zip(episodes, aside, strict=True):
                if store is not None:
                    episode.custom_data[STORE] = store

    def num_finished_episodes(self) -> int:
        return sum(1 for episode in self.episodes if episode.is_done)

    def sample(self, num_items: int | None = None, *, batch_size_B: int | None = None, **kwargs) -> list:
        """``num_items`` whole episodes (or windows); RLlib's transition arguments (n_step,
        batch_length_T, lookback, ...) do not apply and are ignored."""
        count = num_items or batch_size_B or self.batch_size_B
        finished = [i for i, episode in enumerate(self.episodes) if episode.is_done]
        if not finished:
            raise ValueError("the replay buffer holds no finished episode yet; raise algo.sac.warmup_episodes")
        sampled = []
        for index in self.rng.choice(finished, size=count):
            episode = self.episodes[int(index)]
            sampled.append(self._episode(episode) if self.replay == "episodes" else self._window(episode))
        self.sampled_timesteps += sum(len(e) for e in sampled)
        return sampled

    def _episode(self, episode):
        if len(episode) > self.max_len:
            raise ValueError(f"an episode of {len(episode)} steps is longer than module.max_seq_len ({self.max_len}), "
                             "the padded length of whole-episode replay: raise module.max_seq_len to the longest "
                             "episode, or use algo.sac.replay: chunks")
        return self._columns(episode.slice(slice(0, len(episode)), len_lookback_buffer=0), 0)

    def _window(self, episode):
        start = int(self.rng.integers(len(episode)))  # first learned step
        begin = max(0, start - self.burn_in)
        end = min(len(episode), start + self.chunk_length)
        return self._columns(episode.slice(slice(begin, end), len_lookback_buffer=0), start - begin)

    @staticmethod
    def _columns(piece, burn_in: int):
        length = len(piece)
        mask = np.ones(length, np.float32)
        mask[:burn_in] = 0.0
        for key, values in (("n_step", np.ones(length, np.int64)), ("weights", np.ones(length, np.float32)),
                            (REPLAY_MASK, mask)):
            piece.extra_model_outputs[key] = InfiniteLookbackBuffer(values, lookback=0)
        return piece


def bytes_per_step(buffer: EpisodeReplayBuffer) -> float:
    """Bytes of numpy data the buffer's episodes hold per stored env step (observations, actions,
    rewards, per-step model outputs, anything kept in ``custom_data``)."""
    total = 0
    for episode in buffer.episodes:
        total += _nbytes(episode.observations) + _nbytes(episode.actions) + _nbytes(episode.rewards)
        total += sum(_nbytes(v) for v in episode.extra_model_outputs.values())
        total += _nbytes(list(episode.custom_data.values()))
    steps = buffer.get_num_timesteps()
    return total / steps if steps else 0.0


def _nbytes(value) -> int:
    if isinstance(value, InfiniteLookbackBuffer):
        return _nbytes(value.data)
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, np.generic):
        return value.nbytes
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    if hasattr(value, "__slots__"):
        return sum(_nbytes(getattr(value, name, None)) for name in value.__slots__)
    if isinstance(value, int | float):
        return 8
    return 0
