"""The lean state store keeps exactly the states RLlib's own connector would pick for learning."""

import numpy as np
import pytest

from rllib_shm.rllib.connectors import EpisodeStates


def fill(store: EpisodeStates, outs: np.ndarray, max_seq_len: int) -> None:
    """What SetStatesAside does for every acting step of a chunk."""
    for step, out in enumerate(outs):
        store.last = {"memory": out}
        if step % max_seq_len == max_seq_len - 1:
            store.boundaries[step] = {"memory": out}


@pytest.mark.parametrize("length", [1, 5, 63, 64, 65, 128, 130])
@pytest.mark.parametrize("max_seq_len", [1, 4, 64])
def test_chunk_starts_equal_rllibs_concatenate_then_stride(length, max_seq_len):
    rng = np.random.default_rng(length * 100 + max_seq_len)
    first, second = rng.normal(size=(length, 3, 3)), rng.normal(size=(length, 3, 3))
    initial = {"memory": np.zeros((3, 3))}
    store = EpisodeStates(t_started=0)
    fill(store, first, max_seq_len)
    got = np.stack([start["memory"] for start in store.chunk_starts(initial, length, max_seq_len)])
    expected = np.concatenate([[initial["memory"]], first[:-1]])[::max_seq_len]  # RLlib 2.60's expression
    assert got.shape == (int(np.ceil(length / max_seq_len)), 3, 3)
    np.testing.assert_array_equal(got, expected)
    assert len(store.boundaries) == length // max_seq_len  # one state per chunk, not one per step

    store.rebase(t_started=length)  # episode.cut(): the successor starts from the newest state
    fill(store, second, max_seq_len)
    got = np.stack([start["memory"] for start in store.chunk_starts(initial, length, max_seq_len)])
    np.testing.assert_array_equal(got, np.concatenate([[first[-1]], second[:-1]])[::max_seq_len])
