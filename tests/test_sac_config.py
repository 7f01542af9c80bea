"""``algo.name: ppo | sac``: SAC's section, and each algorithm's settings refused under the other."""

from __future__ import annotations

import dataclasses

import pytest

from rllib_shm.config import load_config
from rllib_shm.config.experiment import PPO_ONLY_FIELDS, AlgoSection, SACSection
from rllib_shm.tracking import curated_params

SAC = ["algo.name=sac"]


def test_ppo_stays_the_default_and_sac_reads_its_section():
    assert load_config(None, []).algo.name == "ppo"
    config = load_config(None, [*SAC, "algo.sac.alpha=0.1", "algo.sac.critic_memory={kind: shm, mem_size: 24}"])
    assert config.algo.sac.alpha == 0.1 and config.algo.sac.critic_memory.mem_size == 24
    assert config.algo.sac.theta_replay == "fresh" and config.algo.sac.replay == "episodes"


@pytest.mark.parametrize("name", PPO_ONLY_FIELDS)
def test_every_ppo_only_field_is_refused_by_name_under_sac(name):
    default = getattr(AlgoSection(), name)
    value = (not default) if isinstance(default, bool) else default * 2 if default else 0.01  # entropy_coeff: 0
    with pytest.raises(ValueError, match=rf"algo\.{name}\b.*PPO-only"):
        load_config(None, [*SAC, f"algo.{name}={value}"])


def test_ppo_only_fields_are_all_algo_fields_and_exclude_shared_ones():
    names = {f.name for f in dataclasses.fields(AlgoSection)}
    assert set(PPO_ONLY_FIELDS) <= names
    assert not {"gamma", "grad_clip", "num_learners", "num_env_runners"} & set(PPO_ONLY_FIELDS)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(SACSection)])
def test_every_sac_setting_is_refused_by_name_under_ppo(name):
    value = {"replay": "chunks", "theta_replay": "acting", "critic_memory": "{kind: gru}", "alpha": 0.1,
             "target_entropy": 0.3, "chunk_start_state": "stored"}.get(name)
    if value is None:
        value = getattr(SACSection(), name) * 2
    extra = ["algo.sac.replay=chunks"] if name == "chunk_start_state" else []  # stored needs chunk replay
    with pytest.raises(ValueError, match=rf"algo\.sac\.{name}\b.*algo.name: ppo"):
        load_config(None, [*extra, f"algo.sac.{name}={value}"])


@pytest.mark.parametrize("override, message", [
    ("algo.name=dqn", r"algo.name must be one of \['ppo', 'sac'\], got 'dqn'"),
    ("algo.sac.replay=sometimes", r"algo.sac: replay must be one of"),
    ("algo.sac.theta_replay=stored", r"theta_replay must be one of \['fresh', 'acting'\]"),
    ("algo.sac.tau=1.5", r"tau must be in \(0, 1\]"),
    ("algo.sac.alpha=0", r"alpha .* must be > 0 or null"),
    ("algo.sac.batch_episodes=0", r"batch_episodes must be ≥ 1"),
    ("algo.sac.chunk_start_state=kept", r"chunk_start_state must be one of \['zero', 'stored'\]"),
    ("algo.sac.chunk_start_state=stored", r"chunk_start_state: stored applies to replay: chunks only"),
])
def test_bad_sac_values_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [*SAC, override])


def test_shared_trunk_follows_the_algorithm_and_sac_refuses_an_explicit_one():
    """module.shared_trunk unset: PPO shares its trunk, SAC gives actor and critic their own; the
    saved config holds the decided value, and an explicit true under SAC is refused by name."""
    assert load_config(None, []).module.shared_trunk is True
    assert load_config(None, ["module.shared_trunk=false"]).module.shared_trunk is False
    sac = load_config(None, SAC)
    assert sac.module.shared_trunk is False
    assert sac.to_dict()["module"]["shared_trunk"] is False
    assert load_config(None, [*SAC, "module.shared_trunk=false"]) == sac
    with pytest.raises(ValueError, match=r"module.shared_trunk: true with algo.name: sac.*remove module.shared_trunk"):
        load_config(None, [*SAC, "module.shared_trunk=true"])
    with pytest.raises(ValueError, match=r"module.rllib_lstm: true with algo.name: sac"):
        load_config(None, [*SAC, "module.memory.kind=lstm", "module.rllib_lstm=true"])


def test_curated_params_follow_the_algorithm():
    sac = curated_params(load_config(None, [*SAC, "algo.sac.alpha=0.1"]))
    assert sac["algo.name"] == "sac" and sac["algo.sac.alpha"] == 0.1 and sac["algo.sac.theta_replay"] == "fresh"
    assert "algo.clip_param" not in sac and "algo.lr" not in sac
    ppo = curated_params(load_config(None, []))
    assert ppo["algo.name"] == "ppo" and "algo.clip_param" in ppo and not any(k.startswith("algo.sac.") for k in ppo)


@pytest.mark.parametrize("overrides, message", [
    (["module.max_seq_len=30"], r"episodes of up to 32 steps, longer than module.max_seq_len \(30\)"),
    (["module.max_seq_len=32", "algo.sac.replay=chunks", "algo.sac.chunk_length=24", "algo.sac.burn_in=16"],
     r"burn_in 16 \+ chunk_length 24 steps, longer than module.max_seq_len \(32\)"),
])
def test_preflight_refuses_a_replayed_sequence_longer_than_max_seq_len(overrides, message):
    """Before Ray starts (RLlib's buffer would raise only at the first update, after warm-up)."""
    from rllib_shm.runs.preflight import preflight

    config = load_config(None, [*SAC, "env.id=rllib_shm/CueRecall-D30-v0", *overrides])
    with pytest.raises(ValueError, match=message):
        preflight(config)
    preflight(load_config(None, [*SAC, "env.id=rllib_shm/CueRecall-D30-v0", "module.max_seq_len=32"]))  # fits
