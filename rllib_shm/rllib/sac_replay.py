"""``MemoryEpisodeReplay``: RLlib's ``EpisodeReplayBuffer``, sampling whole episodes or burn-in windows.

RLlib's buffer stores episodes (chunks of an ongoing episode are concatenated under its id) and
samples transitions or fixed-length sequences. For a recurrent SAC this buffer keeps RLlib's
storage, eviction and metrics and changes what one ``sample`` returns:

- ``replay="episodes"`` (default, the paper's code): ``num_items`` finished episodes, drawn
  uniformly, each whole from t = 0; the learner starts every trunk from the zero state. An episode
  longer than ``max_len`` (the module's ``max_seq_len``, the padded length) is an error naming both.
- ``replay="chunks"``, ``start_states="zero"``: windows of ``chunk_length`` learned steps
  starting at any step, each preceded by up to ``burn_in`` steps that only warm the memories up
  from the zero state (no loss on them: ``REPLAY_MASK`` 0). No recurrent state is stored: the cost
  is compute (``burn_in`` extra steps per window), not memory.
- ``replay="chunks"``, ``start_states="stored"``: the episode is cut into aligned chunks
  [k·c, (k+1)·c) (c = ``chunk_length``); a window learns one chunk, drawn uniformly, after a
  burn-in of n·c steps, n = ⌈burn_in / c⌉ (fewer at the episode's start), which starts from the
  acting state stored at step (k − n)·c (the zero state at step 0). The buffer keeps one state
  per c steps (``START_STATES``: step → state, actor's and critic's), never one per step.

Per step, no recurrent state enters the buffer: the acting states never reach the episodes'
per-step outputs (``SetStatesAside``), and the few an episode keeps aside in ``custom_data`` (the
newest and the chunk-boundary ones) are dropped before storing, except the chunk start states in
the stored mode. What one stored step costs is measured by :func:`bytes_per_step`.

Every sampled episode carries RLlib's SAC columns ``n_step`` (1) and ``weights`` (1) and the
project's ``REPLAY_MASK`` (1 for learned steps, 0 for burn-in).
"""

from __future__ import annotations

import math

import numpy as np
import tree
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

from rllib_shm.rllib.connectors import START_STATE, STORE

REPLAY_MASK = "replay_mask"  # per-step column: 1 learned, 0 burn-in
START_STATES = "rllib_shm.start_states"  # stored episode's custom_data: {step k·c: acting state}
START_STATE_MODES = ("zero", "stored")


class MemoryEpisodeReplay(EpisodeReplayBuffer):
    """RLlib's episode replay buffer for recurrent SAC (see the module docstring)."""

    def __init__(self, capacity: int = 1_000_000, *, max_len: int = 64, replay: str = "episodes",
                 chunk_length: int = 64, burn_in: int = 0, start_states: str = "zero", seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(capacity=capacity, **kwargs)
        if replay not in ("episodes", "chunks"):
            raise ValueError(f"replay must be 'episodes' or 'chunks', got {replay!r}")
        if start_states not in START_STATE_MODES or (start_states == "stored" and replay != "chunks"):
            raise ValueError(f"start_states must be one of {START_STATE_MODES} ('stored' with replay 'chunks' only), "
                             f"got {start_states!r} with replay {replay!r}")
        self.stored = start_states == "stored"
        burn = math.ceil(burn_in / chunk_length) * chunk_length if self.stored else burn_in  # whole chunks
        if replay == "chunks" and chunk_length + burn > max_len:
            raise ValueError(f"a replayed window (burn_in {burn} + chunk_length {chunk_length}"
                             f"{', burn-in rounded up to whole chunks' if burn != burn_in else ''}) must fit "
                             f"module.max_seq_len ({max_len})")
        self.max_len, self.replay, self.chunk_length, self.burn_in = max_len, replay, chunk_length, burn_in
        self.rng = np.random.default_rng(seed)

    def add(self, episodes) -> None:
        """RLlib's ``add`` (it deep-copies each episode) without the states kept aside for acting;
        in the stored mode the chunk start states go to the stored episode's ``START_STATES``."""
        episodes = episodes if isinstance(episodes, list) else [episodes]
        for episode in episodes:
            store = episode.custom_data.pop(STORE, None)
            try:
                starts = dict(store.starts) if self.stored and store is not None else {}
                if self.stored and episode.id_ in self.episode_id_to_index:  # an ongoing episode: to its record
                    record = self.episodes[self.episode_id_to_index[episode.id_] - self._num_episodes_evicted]
                    record.custom_data.setdefault(START_STATES, {}).update(tree.map_structure(np.copy, starts))
                elif self.stored:
                    episode.custom_data[START_STATES] = starts  # deep-copied into the new record by RLlib
                super().add([episode])
                if self.stored and episode.is_done and episode.id_ in self.episode_id_to_index:
                    record = self.episodes[self.episode_id_to_index[episode.id_] - self._num_episodes_evicted]
                    starts = record.custom_data.get(START_STATES, {})
                    for step in [step for step in starts if step >= len(record)]:
                        del starts[step]  # the state after the last step starts no chunk
            finally:
                episode.custom_data.pop(START_STATES, None)
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
        if self.stored:
            return self._stored_window(episode)
        start = int(self.rng.integers(len(episode)))  # first learned step
        begin = max(0, start - self.burn_in)
        end = min(len(episode), start + self.chunk_length)
        return self._columns(episode.slice(slice(begin, end), len_lookback_buffer=0), start - begin)

    def _stored_window(self, episode):
        """Chunk k (uniform) learned, after ⌈burn_in/c⌉ chunks of burn-in from the state stored there."""
        c = self.chunk_length
        chunk = int(self.rng.integers(math.ceil(len(episode) / c)))
        first = max(0, chunk - math.ceil(self.burn_in / c))
        begin, start, end = first * c, chunk * c, min(len(episode), (chunk + 1) * c)  # local = absolute steps
        starts = episode.custom_data.pop(START_STATES, {})  # slice() deep-copies custom_data: not these
        try:
            piece = episode.slice(slice(begin, end), len_lookback_buffer=0)
        finally:
            episode.custom_data[START_STATES] = starts
        if episode.t_started or (begin and begin not in starts):
            raise RuntimeError(f"the replay buffer holds no stored start state for step "
                               f"{episode.t_started + begin} of episode {episode.id_} (it keeps one every {c} "
                               "steps of the episodes it holds from their first step)")
        piece.custom_data[START_STATE] = starts.get(begin)  # None at step 0: the module's initial state
        return self._columns(piece, start - begin)

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
