"""The chunk-start state slicing picks exactly the rows RLlib's own connector picks."""

import numpy as np
import pytest

from rllib_shm.rllib.connectors import chunk_start_states


@pytest.mark.parametrize("length", [1, 5, 63, 64, 65, 128, 130])
@pytest.mark.parametrize("max_seq_len", [1, 4, 64])
def test_chunk_start_states_equal_rllibs_concatenate_then_stride(length, max_seq_len):
    rng = np.random.default_rng(length * 100 + max_seq_len)
    outs, look_back = rng.normal(size=(length, 3, 3)), rng.normal(size=(3, 3))
    expected = np.concatenate([[look_back], outs[:-1]])[::max_seq_len]  # RLlib 2.60's expression
    got = chunk_start_states(look_back, outs, max_seq_len, length)
    assert got.shape == (int(np.ceil(length / max_seq_len)), 3, 3)
    np.testing.assert_array_equal(got, expected)
