"""Every study in tune_configs/ loads, searches something valid, and builds its env and module; the
studies sized for the 2-core development machine fit it and build every trial's config."""

from pathlib import Path

import pytest

from rllib_shm.runs.preflight import check_memory_all, preflight
from rllib_shm.studies.runner import candidate_configs
from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import grid_size, load_study

STUDIES = sorted((Path(__file__).parents[1] / "tune_configs").glob("*.yaml"))


def test_the_studies_the_project_promises_exist():
    names = {p.stem for p in STUDIES}
    assert {"quickstart", "popgym_easy", "popgym_hard", "visual_match_250", "visual_match_500",
            "key_to_door_250", "key_to_door_500", "ablation_calibration", "memory_size", "replicate",
            "popgym_reference", *LOCAL} <= names


#: studies sized for the 2-core development machine (1 CPU per trial, two at a time, no GPU)
LOCAL = ("popgym_easy_scaled", "repeat_previous_sample_efficiency", "repeat_previous_slow", "visual_match_100",
         "wind_meta", "memory_length_cue_recall", "memory_length_repeat_first", "memory_length_repeat_previous",
         "popgym_easy_fair", "popgym_reference_scaled", "cue_recall_sac")


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_loads_and_builds(path):
    text = path.read_text()
    assert text.startswith("#") and "Budget:" in text and "Resources:" in text  # the comment header
    study = load_study(path)
    assert study.tune.name == path.stem
    for index in (0, -1):  # the first and last value of every searched path
        preflight(trial_config(study.base, {p: args[index] for p, (_k, args) in study.space.items()}))


@pytest.mark.parametrize("name", LOCAL)
def test_local_studies_fit_the_development_machine(name):
    path = Path(__file__).parents[1] / "tune_configs" / f"{name}.yaml"
    text = path.read_text()
    assert f"# Run: rllib-shm tune tune_configs/{name}.yaml" in text
    assert f"# Report: rllib-shm report {name} --storage results/tune" in text and "--out docs/results/" in text
    assert "@COST@" not in text  # the measured cost is filled in
    study = load_study(path)
    assert study.tune.sampler == "grid" and study.tune.num_samples == grid_size(study.space)  # every trial once
    assert study.tune.max_concurrent == 2 and study.tune.storage_path == "results/tune"
    configs = candidate_configs(study)
    assert len(configs) == study.tune.num_samples
    for config in configs:
        algo = config.algo
        assert (algo.num_env_runners, algo.num_learners, algo.num_gpus_per_learner) == (0, 0, 0)
        preflight(config)  # env, kwargs and module of every trial
    check_memory_all(configs, copies=study.tune.max_concurrent)
