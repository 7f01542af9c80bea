"""Every study in tune_configs/ loads, searches something valid, and builds its env and module; the
studies sized for the 2-core development machine fit it and build every trial's config; the
full-budget studies for a GPU cluster build every distinct trial (env, module and RLlib's algorithm
config, PPO or SAC), fit the cluster's GPU nodes and are submitted as cluster/README.md says."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from rllib_shm.config.episodes import resolve_whole_episodes
from rllib_shm.config.sac import build_algorithm_config
from rllib_shm.runs.preflight import _meta_module, check_memory_all, memory_estimate, played_env, preflight
from rllib_shm.studies.runner import candidate_configs
from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import grid_size, load_study

REPO = Path(__file__).parents[1]
STUDIES = sorted((REPO / "tune_configs").glob("*.yaml"))


def test_the_studies_the_project_promises_exist():
    names = {p.stem for p in STUDIES}
    assert {"quickstart", "popgym_easy", "popgym_hard", "visual_match_250", "visual_match_500",
            "key_to_door_250", "key_to_door_500", "ablation_calibration", "memory_size", "replicate",
            "popgym_reference", *LOCAL, *CLUSTER} <= names


#: studies sized for the 2-core development machine (1 CPU per trial, two at a time, no GPU)
LOCAL = ("popgym_easy_scaled", "repeat_previous_sample_efficiency", "repeat_previous_slow", "visual_match_100",
         "wind_meta", "memory_length_cue_recall", "memory_length_repeat_first", "memory_length_repeat_previous",
         "popgym_easy_fair", "popgym_reference_scaled", "repeat_previous_factors", "recency_across_tasks",
         "cue_recall_sac", "cue_recall_sac_d200",
         "visual_match_sac_scaled", "key_to_door_sac_scaled", "wind_meta_sac_scaled", "point_robot_meta_sac_scaled")
#: full-budget studies for a GPU cluster (the paper's budgets), submitted with `ray job submit`
CLUSTER = ("popgym_reference", "visual_match_sac", "key_to_door_sac", "wind_meta_sac", "point_robot_meta_sac")
#: the cluster launcher's 1-GPU node (cluster/launcher/aws-gpu.yaml: g5.2xlarge, 32 GiB of memory)
GPU_NODE_MEMORY = 32 * 2**30


def test_every_study_with_a_run_line_is_checked_as_local_or_cluster():
    """A study's `# Run:` line says where it runs; the tests below must check it there."""
    for path in STUDIES:
        text = path.read_text()
        if "\n# Run: rllib-shm tune " in text:
            assert path.stem in LOCAL, f"{path.name} runs locally: add it to LOCAL"
        if "\n# Run: ray job submit " in text:
            assert path.stem in CLUSTER, f"{path.name} runs on a cluster: add it to CLUSTER"


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
        build_algorithm_config(config).validate()  # RLlib's own checks (PPO or SAC), no Ray started
    check_memory_all(configs, copies=study.tune.max_concurrent)


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_studies_build_every_trial_and_fit_the_gpu_nodes(name, monkeypatch):
    path = REPO / "tune_configs" / f"{name}.yaml"
    text = path.read_text()
    submit = f"ray job submit --working-dir . -- rllib-shm tune tune_configs/{name}.yaml"
    assert f"# Run: {submit}" in text
    assert f"# Report: rllib-shm report {name} --storage <shared storage> --out docs/results/{name}" in text
    assert f"rllib-shm tune tune_configs/{name}.yaml --storage" in (REPO / "cluster" / "README.md").read_text()
    study = load_study(path)
    assert study.tune.sampler == "grid" and study.tune.num_samples == grid_size(study.space)  # every trial once
    node = yaml.safe_load((REPO / "cluster" / "launcher" / "aws-gpu.yaml").read_text())["available_node_types"]
    node = node["gpu_worker"]["resources"]
    monkeypatch.setenv("RAY_JOB_ID", "01000000")  # as on the cluster: the local memory check does not apply
    trials = {}  # the distinct trials (seeds aside): every env, memory, length and algorithm of the study
    for config in candidate_configs(study):
        trials.setdefault(repr(dataclasses.replace(config, run=dataclasses.replace(config.run, seed=0))), config)
    for config in trials.values():
        preflight(config)  # env, kwargs, module; SAC: max_seq_len covers the longest episode
        build_algorithm_config(config).validate()  # RLlib's own checks (PPO or SAC), no Ray started
        algo = config.algo
        assert algo.num_learners <= 1 and 0 < algo.num_gpus_per_learner <= node["GPU"]  # 1-GPU nodes
        cpus = 1 + algo.num_env_runners * algo.num_cpus_per_env_runner  # the trial (its learner) + env runners
        per_node = min(int(node["GPU"] / algo.num_gpus_per_learner), node["CPU"] // cpus)
        assert per_node >= 1
        env = played_env(config)
        try:
            config = resolve_whole_episodes(config, env)  # PPO's whole-episode BPTT: max_seq_len = L + 1
            needed = sum(memory_estimate(config, _meta_module(config, env)).values())
        finally:
            env.close()
        assert needed * per_node <= GPU_NODE_MEMORY, f"{per_node} trials of {needed / 2**30:.1f} GiB on one node"
