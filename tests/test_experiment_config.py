"""Experiment configs: YAML + --set overrides, key and value checks, the PPO build, the module config."""

import pytest
import yaml

from rllib_shm.config import ExperimentConfig, load_config
from rllib_shm.config.ppo import build_ppo_config, model_config
from rllib_shm.rllib.module_config import ModuleConfig


def test_yaml_and_overrides_round_trip(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "env": {"id": "rllib_shm/CueRecall-D5-v0"},
        "module": {"memory": {"kind": "shm", "mem_size": 16}, "max_seq_len": 8},
        "algo": {"lr": "1e-3"},
    }))
    config = load_config(path, ["module.memory.kind=gru", "algo.num_epochs=2", "module.encoder_hiddens=[32, 16]",
                                "run.stop_return=0.9", "run.stop_success=1"])
    assert config.module.memory.kind == "gru" and config.module.memory.mem_size == 16
    assert config.algo.lr == pytest.approx(1e-3) and config.algo.num_epochs == 2
    assert config.module.encoder_hiddens == (32, 16) and config.run.stop_return == 0.9
    assert config.run.stop_success == 1.0 and load_config(None).run.stop_success is None
    assert ExperimentConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["module.memory.mem_sise=8"], r"unknown config key\(s\) \['module.memory.mem_sise'\]; valid keys in "
                                       r"module.memory: \['kind', 'mem_size'"),
        (["algo.learning_rate=0.1"], r"unknown config key\(s\) \['algo.learning_rate'\]"),
        (["module.memory.mem_size=0"], "mem_size must be a positive integer, got 0"),
        (["module.memory.mem_size=-4"], "mem_size must be a positive integer, got -4"),
        (["module.max_seq_len=0"], "max_seq_len must be a positive integer, got 0"),
        (["algo.lr=fast"], "algo.lr: expected a number, got 'fast'"),
        (["module.memory.kind=transformer"],
         "kind must be one of 'shm', 'gru', 'lstm', 'mlp', 'ffm'; got 'transformer'"),
        (["algo.minibatch_size=4000"], r"algo.minibatch_size \(4000\) must not exceed algo.train_batch_size"),
        (["module.shared_trunk=maybe"], "module.shared_trunk: expected true or false, got 'maybe'"),
        (["oops"], "--set expects section.key=value, got 'oops'"),
        (["run.stop_success=1.01"], r"run.stop_success is a success rate in \[0, 1\] \(e.g. 0.95\), got 1.01"),
        (["run.stop_success=-0.1"], r"run.stop_success is a success rate in \[0, 1\]"),
        (["run.stop_success=.nan"], "run.stop_success: expected a finite number"),
        (["run.stop_success=high"], "run.stop_success: expected a number, got 'high'"),
    ],
)
def test_bad_configs_name_the_offending_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, overrides)


def test_numbers_with_underscores_stay_text_in_overrides():
    """``50_150`` (a meta-RL task split) is not the number 50150 YAML 1.1 would read."""
    config = load_config(None, ["env.config.split=50_150", "algo.train_batch_size=4096"])
    assert config.env.config == {"split": "50_150"} and config.algo.train_batch_size == 4096


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("env: [unclosed\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        load_config(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ValueError, match="must hold a mapping of sections"):
        load_config(scalar)


def test_module_config_ignores_rllib_keys_but_not_typos():
    values = ModuleConfig().to_model_config()
    assert ModuleConfig.from_model_config({**values, "vf_share_layers": True}) == ModuleConfig()
    with pytest.raises(ValueError, match=r"unknown module config key\(s\) \['max_seq_lenn'\]"):
        ModuleConfig.from_model_config({**values, "max_seq_lenn": 3})


def test_build_maps_every_section_onto_ppo():
    config = load_config(None, ["env.id=rllib_shm/CueRecall-D5-v0", "algo.lr=0.002", "algo.num_epochs=3",
                                "algo.train_batch_size=600", "algo.minibatch_size=200", "run.seed=7",
                                "module.memory.seed=2", "algo.num_gpus_per_learner=0.25"])
    ppo = build_ppo_config(config)
    assert ppo.env == "rllib_shm/CueRecall-D5-v0" and ppo.lr == 0.002 and ppo.num_epochs == 3
    assert ppo.train_batch_size_per_learner == 600 and ppo.minibatch_size == 200 and ppo.seed == 7
    assert ppo.num_gpus_per_learner == 0.25
    assert ppo.model_config["memory"]["seed"] == 2  # each env runner mixes in run.seed and its index
    assert ppo.restart_failed_env_runners and ppo.max_num_env_runner_restarts == 100
    assert ppo.env_runner_cls.__name__ == "MemoryEnvRunner"
    assert ppo.callbacks_class.__name__ == "SuccessMetric"  # env runners log info["success"]
    assert model_config(config)["max_seq_len"] == config.module.max_seq_len
