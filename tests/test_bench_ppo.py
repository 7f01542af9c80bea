"""``rllib-shm bench ppo``: a one-variant run writes a complete row; bad arguments are refused."""

import json

import pytest

from rllib_shm.cli import main


@pytest.mark.slow
def test_bench_ppo_one_variant(tmp_path, capsys):
    output = tmp_path / "ppo.json"
    assert main(["bench", "ppo", "--variants", "shm-H32", "--warmup", "0", "--iterations", "1",
                 "--env", "rllib_shm/CueRecall-D5-v0", "--output", str(output)]) == 0
    (row,) = json.loads(output.read_text())["results"]
    assert row["variant"] == "shm-H32" and row["env_steps_per_s"] > 0 and row["timed_steps"] >= 2000
    assert row["state_bytes_per_step"] == 4 * (32 * 32 + 1)  # the H×H memory and the step counter
    assert "env steps/s" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_ppo_ffm_variant(tmp_path):
    """FFM at its paper's size, 32×8: the state stored per step is its M×C complex trace."""
    output = tmp_path / "ppo.json"
    assert main(["bench", "ppo", "--variants", "ffm-32x8", "--warmup", "0", "--iterations", "1",
                 "--env", "rllib_shm/CueRecall-D5-v0", "--output", str(output)]) == 0
    (row,) = json.loads(output.read_text())["results"]
    assert row["variant"] == "ffm-32x8" and row["env_steps_per_s"] > 0
    assert row["state_bytes_per_step"] == 4 * (32 * 8 * 2 + 1)  # real and imaginary trace, step counter


def test_rllib_lstm_variant_is_the_config_path_with_rllibs_default_network():
    """``rllib-lstm-256`` is built by ``module.rllib_lstm`` (as train and studies build it) and is
    the network it was before: RLlib's defaults with use_lstm, cell 256, max_seq_len 64."""
    import dataclasses

    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from rllib_shm.bench.ppo import MAX_SEQ_LEN, _ppo_config

    ppo = _ppo_config("rllib-lstm-256", "rllib_shm/popgym-RepeatPreviousEasy-v0")
    expected = DefaultModelConfig(use_lstm=True, lstm_cell_size=256, max_seq_len=MAX_SEQ_LEN)
    assert ppo.model_config == dataclasses.asdict(expected)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--variants", "shm-H256"], "--variants: unknown ['shm-H256']"),
        (["--iterations", "0"], "--iterations ≥ 1, got 2, 0"),
    ],
)
def test_bench_ppo_rejects_bad_arguments(extra, message, capsys):
    assert main(["bench", "ppo", *extra]) == 2
    assert message in capsys.readouterr().err
