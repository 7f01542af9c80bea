"""``rllib-shm bench study``: one trial of a study file is timed (SAC's sampling-only warm-up left
out) and the study's wall time estimated; a trial that is not the study's is refused before anything runs."""

import json
import os

import pytest
import yaml

from rllib_shm.bench.study import PARALLEL_EFFICIENCY, estimate, trial_values
from rllib_shm.cli import main
from rllib_shm.studies.study import load_study

STUDY = {
    "env": {"id": "rllib_shm/CueRecall-D5-v0"},
    "module": {"memory": {"kind": "gru", "mem_size": 16}, "encoder_hiddens": [32], "memory_output": 32,
               "head_hiddens": [32], "max_seq_len": 8},
    "variants": {"gru": {"module.memory": {"kind": "gru", "mem_size": 16}},
                 "shm": {"module.memory": {"kind": "shm", "mem_size": 16}}},
    "algo": {"name": "sac", "num_envs_per_env_runner": 8,
             "sac": {"batch_episodes": 4, "alpha": 0.1, "warmup_episodes": 40, "env_steps_per_iteration": 64}},
    "run": {"seed": {"choice": [0, 1, 2]}, "stop_iters": 1000, "stop_env_steps": 6400},
    "tune": {"name": "tiny", "sampler": "grid", "num_samples": 6, "max_concurrent": 2},
}


@pytest.fixture
def study_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    return path


def test_the_trial_is_the_first_values_unless_given(study_file):
    study = load_study(study_file)
    assert trial_values(study, []) == {"run.seed": 0, "variant": "gru"}
    assert trial_values(study, ["variant=shm", "run.seed=2"]) == {"run.seed": 2, "variant": "shm"}


@pytest.mark.parametrize(("trial", "message"), [
    ("algo.lr=1e-3", "--trial 'algo.lr' is not searched by the study; its searched paths are ['run.seed', 'variant']"),
    ("variant=lstm", "--trial variant='lstm' is not one of the study's values ['gru', 'shm']"),
    ("run.seed=7", "--trial run.seed='7' is not one of the study's values [0, 1, 2]"),
    ("variant", "--trial 'variant': expected PATH=VALUE"),
])
def test_a_trial_outside_the_study_is_refused_before_anything_runs(study_file, tmp_path, trial, message, capsys):
    output = tmp_path / "out.json"
    assert main(["bench", "study", str(study_file), "--trial", trial, "--output", str(output)]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_the_estimate_is_the_budget_over_the_rate_for_every_trial(study_file):
    study = load_study(study_file)
    config = trial_values(study, [])
    from rllib_shm.studies.search_space import trial_config

    config = trial_config(study.base, config)
    sized = estimate(study, config, rate=100.0, steps_per_iteration=64.0, warmup_s=2.0)
    assert sized["budget_env_steps_per_trial"] == 6400  # run.stop_env_steps ends the trial before stop_iters
    assert sized["trial_s"] == pytest.approx(6400 / 100 + 2)
    parallel = sized["parallel"]
    assert parallel == min(2, os.cpu_count())
    efficiency = PARALLEL_EFFICIENCY if parallel > 1 else 1.0
    assert sized["study_s"] == pytest.approx(6 * 66 / (parallel * efficiency))


def test_the_warm_ups_env_steps_are_not_counted_at_the_learning_rate(study_file):
    # SAC's initial episodes only sample: the trial is the warm-up's seconds plus the rest of the
    # budget at the learning rate (Point Robot: 80,000 of 120,000 env steps in ~75 s)
    from rllib_shm.studies.search_space import trial_config

    study = load_study(study_file)
    config = trial_config(study.base, trial_values(study, []))
    sized = estimate(study, config, rate=100.0, steps_per_iteration=64.0, warmup_s=2.0, warmup_env_steps=400)
    assert sized["warmup_env_steps"] == 400 and sized["learning_env_steps_per_trial"] == 6000
    assert sized["trial_s"] == pytest.approx(6000 / 100 + 2)
    # a warm-up longer than the budget leaves nothing to learn
    sized = estimate(study, config, rate=100.0, steps_per_iteration=64.0, warmup_s=2.0, warmup_env_steps=9000)
    assert sized["learning_env_steps_per_trial"] == 0 and sized["trial_s"] == pytest.approx(2)


@pytest.mark.slow
def test_a_sac_trial_is_timed_after_its_warm_up(study_file, tmp_path, capsys):
    output = tmp_path / "out.json"
    assert main(["bench", "study", str(study_file), "--trial", "variant=shm", "--iterations", "2",
                 "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["trial"] == {"run.seed": 0, "variant": "shm"}
    rows = report["iterations"]
    assert len(rows) == 2 and all(row["env_steps"] >= 64 and row["seconds"] > 0 and row["learned"] for row in rows)
    total = sum(row["env_steps"] for row in rows)
    assert report["env_steps_per_s"] == pytest.approx(total / sum(row["seconds"] for row in rows))
    # the 40 warm-up episodes (240 env steps) only sample; the timed iterations learned
    assert report["warmup_s"] > 0 and report["estimate"]["budget_env_steps_per_trial"] == 6400
    # the warm-up ends with the first iteration that learned: at least the 240 initial env steps
    assert 240 <= report["warmup_env_steps"] == report["estimate"]["warmup_env_steps"] < 6400
    assert report["estimate"]["trial_s"] == pytest.approx(
        (6400 - report["warmup_env_steps"]) / report["env_steps_per_s"] + report["warmup_s"])
    assert "env steps/s over 2 timed iterations" in capsys.readouterr().out
