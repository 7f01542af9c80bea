"""RLlib's built-in LSTM as a baseline (``module.rllib_lstm``): its settings map onto RLlib's
``DefaultModelConfig``, nonsense combinations are refused, it trains through ``rllib-shm train`` and
a study's trainable with the MLflow param recorded, and evaluate / export refuse its checkpoints."""

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from ray.rllib.algorithms.ppo import PPOConfig

from rllib_shm.cli import main
from rllib_shm.config import load_config
from rllib_shm.config.ppo import build_module, build_ppo_config
from rllib_shm.rllib import make_env
from rllib_shm.rllib.connectors import MemoryPPOConfig
from rllib_shm.tracking import curated_params, run_tags

TASK = "rllib_shm/popgym-RepeatPreviousEasy-v0"
LSTM = ["module.rllib_lstm=true", "module.memory.kind=lstm", "module.memory.mem_size=32",
        "module.encoder_hiddens=[24]", "module.head_hiddens=[]", "module.max_seq_len=16"]
TINY = ["algo.train_batch_size=256", "algo.minibatch_size=128", "algo.num_epochs=1",
        "algo.num_envs_per_env_runner=2"]


def test_settings_map_onto_rllibs_lstm_under_plain_ppo():
    config = load_config(None, [f"env.id={TASK}", *LSTM, "module.shared_trunk=false", "algo.lr=1e-3"])
    ppo = build_ppo_config(config)
    assert type(ppo) is PPOConfig and not isinstance(ppo, MemoryPPOConfig)  # RLlib's own state handling
    model = ppo.model_config
    assert model["use_lstm"] and model["lstm_cell_size"] == 32 and model["max_seq_len"] == 16
    assert model["fcnet_hiddens"] == [24] and model["head_fcnet_hiddens"] == [] and model["vf_share_layers"] is False
    assert ppo.rl_module_spec.module_class.__name__ == "DefaultPPOTorchRLModule"  # PPO's default module
    assert ppo.lr == 1e-3 and ppo.train_batch_size_per_learner == config.algo.train_batch_size  # same PPO settings
    env = make_env(TASK)
    module = build_module(config, env.observation_space, env.action_space)
    assert type(module).__name__ == "DefaultPPOTorchRLModule"
    state = module.get_initial_state()  # separate trunks: an LSTM for the actor and one for the critic
    assert {name: {k: tuple(v.shape) for k, v in part.items()} for name, part in state.items()} == {
        trunk: {"h": (1, 32), "c": (1, 32)} for trunk in ("actor", "critic")}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["module.memory.kind=shm"], r"rllib_lstm: true builds RLlib's built-in LSTM module, where memory.kind "
                                     r"must be 'lstm' \(got 'shm'"),
        (["module.encoder=cnn"], "encoder must be 'mlp'"),
        (["module.positional_embedding=sine"], "positional_embedding must be 'none'"),
        (["module.rllib_lstm=maybe"], "module.rllib_lstm: expected true or false, got 'maybe'"),
    ],
)
def test_combinations_that_make_no_sense_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [*LSTM, *overrides])


def test_empty_heads_only_for_rllibs_lstm():
    with pytest.raises(ValueError, match="head_hiddens must be a non-empty list"):
        load_config(None, ["module.head_hiddens=[]"])


def test_mlflow_params_and_tags_tell_it_apart():
    lstm, project = load_config(None, LSTM), load_config(None, ["module.memory.kind=lstm"])
    assert curated_params(lstm)["module.rllib_lstm"] is True and curated_params(project)["module.rllib_lstm"] is False
    assert run_tags(lstm)["memory"] == "rllib_lstm" and run_tags(project)["memory"] == "lstm"


@pytest.mark.slow
def test_trains_through_train_and_its_checkpoint_is_refused_by_evaluate_and_export(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["train", "--mlflow-uri", uri, "--smoke-test"]
    for override in (f"env.id={TASK}", *LSTM, f"run.output_dir={tmp_path / 'runs'}", "run.name=rllib-lstm"):
        argv += ["--set", override]
    assert main(argv) == 0
    (checkpoint,) = (tmp_path / "runs").glob("rllib-lstm-*/checkpoints/iter_00002")
    meta = json.loads((checkpoint / "rllib_shm.json").read_text())
    assert meta["iteration"] == 2 and meta["env_steps"] >= 512
    assert meta["module_class"].endswith("DefaultPPOTorchRLModule")
    run = mlflow.MlflowClient(uri).get_run(meta["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["module.rllib_lstm"] == "True"
    assert run.data.tags["memory"] == "rllib_lstm" and "episode_return_mean" in run.data.metrics
    capsys.readouterr()
    for command in (["evaluate", str(checkpoint), "--no-mlflow"], ["export", str(checkpoint), "--output",
                                                                   str(tmp_path / "policy.onnx")]):
        assert main(command) == 2
        assert "trained with RLlib's built-in LSTM (module.rllib_lstm: true), a baseline for comparisons only" in \
            capsys.readouterr().err
    assert not (tmp_path / "policy.onnx").exists()


@pytest.mark.slow
def test_trains_as_a_study_trial(tmp_path):
    """A study whose one variant (``variants``, searched as ``variant``) is RLlib's LSTM: the
    trainable builds it, MLflow's child run records it, the leaderboard names the variant."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    study = {
        "env": {"id": TASK},
        "module": {"memory": {"kind": "gru", "mem_size": 32}, "encoder_hiddens": [24], "max_seq_len": 16},
        "variants": {"rllib-lstm-32": {"module.rllib_lstm": True, "module.memory.kind": "lstm",
                                       "module.head_hiddens": []}},
        "algo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 2},
        "run": {"stop_iters": 1},
        "tune": {"name": "lstm", "num_samples": 1, "sampler": "grid"},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main(["tune", str(path), "--storage", str(tmp_path / "tune"), "--mlflow-uri", uri]) == 0
    import ray

    assert not ray.is_initialized()  # the Ray the study started is stopped (later tests start their own)
    client = mlflow.MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    (child,) = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    assert child.info.status == "FINISHED" and child.data.params["module.rllib_lstm"] == "True"
    assert child.data.tags["memory"] == "rllib_lstm" and "episode_return_mean" in child.data.metrics
    assert child.data.params["variant"] == "rllib-lstm-32" and child.data.params["module.memory.mem_size"] == "32"
    assert child.info.run_name == "rllib-lstm-32 s0"  # named by what varies: the variant, which says the memory
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kind = 'study'")
    assert "'module.rllib_lstm': True" in parent.data.params["variants.rllib-lstm-32"]
    leaderboard = Path(client.download_artifacts(parent.info.run_id, "leaderboard.csv", str(tmp_path))).read_text()
    assert leaderboard.startswith("trial,run,variant,") and "rllib-lstm-32 s0" in leaderboard


def test_byte_observations_are_refused_before_training():
    """RLlib's default module does not cast uint8 observations (Visual Match's flat images): the
    preflight refuses instead of a dtype error in the first iteration."""
    from rllib_shm.runs.preflight import preflight

    config = load_config(None, ["env.id=rllib_shm/VisualMatch-L5-v0", *LSTM])
    with pytest.raises(ValueError, match=r"module.rllib_lstm: RLlib's built-in LSTM module needs floating-point "
                                         r"observations, but rllib_shm/VisualMatch-L5-v0 observes .*uint8"):
        preflight(config)
    preflight(load_config(None, [f"env.id={TASK}", *LSTM]))  # float observations pass
