"""Every YAML under cluster/ and tune_configs/ parses; the versions in them are the pinned ones."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PINS = {m.group(1).split("[")[0]: m.group(2) for m in (
    re.match(r"([A-Za-z0-9_\-\[\],]+)==([0-9.]+)$", dep)
    for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]) if m}
FILES = sorted(REPO.glob("cluster/**/*.yaml")) + sorted(REPO.glob("tune_configs/*.yaml"))
CLUSTER_TEXTS = sorted(p for p in REPO.glob("cluster/**/*") if p.is_file())


def test_pins_are_what_the_project_promises():
    assert PINS["ray"] == "2.60.0" and PINS["torch"] == "2.13.0"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_parses(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents and all(isinstance(d, dict) for d in documents)


@pytest.mark.parametrize("path", CLUSTER_TEXTS, ids=lambda p: str(p.relative_to(REPO)))
def test_versions_in_cluster_files_equal_the_pins(path):
    text = path.read_text()
    for version in re.findall(r"ray(?:\[[a-z,]+\])?==([0-9.]+)", text):
        assert version == PINS["ray"], f"{path}: ray=={version}"
    for version in re.findall(r"torch==([0-9.]+)", text):
        assert version == PINS["torch"], f"{path}: torch=={version}"
    for version in re.findall(r'rayVersion:\s*"?([0-9.]+)', text):
        assert version == PINS["ray"], f"{path}: rayVersion {version}"
    for version in re.findall(r"rayproject/ray:([0-9.]+)", text):
        assert version == PINS["ray"], f"{path}: image rayproject/ray:{version}"
    for version in re.findall(r"rllib-shm:[0-9.]+-ray([0-9.]+)-py", text):
        assert version == PINS["ray"], f"{path}: project image built for ray {version}"


def test_kuberay_manifests_keep_token_auth_and_gpu_workers():
    for name in ("raycluster.yaml", "rayjob.yaml"):
        text = (REPO / "cluster" / "kuberay" / name).read_text()
        assert "RAY_AUTH_MODE, value: token" in text and "secretKeyRef: {name: rllib-shm-ray-token" in text
        assert "nvidia.com/gpu: 1" in text
    launcher = yaml.safe_load((REPO / "cluster" / "launcher" / "aws-gpu.yaml").read_text())
    assert any("RAY_AUTH_MODE=token" in c and "--dashboard-host=127.0.0.1" in c
               for c in launcher["head_start_ray_commands"])
    assert launcher["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1


def test_multi_gpu_learner_study_fits_the_multi_gpu_nodes():
    """tune_configs/multi_gpu_learners.yaml asks for 2 learners × 1 GPU; the gpu4 nodes hold 2 such trials."""
    from rllib_shm.studies.study import load_study

    algo = load_study(REPO / "tune_configs" / "multi_gpu_learners.yaml").base["algo"]
    gpus = algo["num_learners"] * algo["num_gpus_per_learner"]
    cpus = algo["num_env_runners"] + algo["num_learners"]
    assert algo["num_learners"] == 2 and gpus == 2
    node = yaml.safe_load((REPO / "cluster" / "launcher" / "aws-gpu.yaml").read_text())["available_node_types"]
    assert node["gpu4_worker"]["resources"]["GPU"] // gpus == 2 and node["gpu4_worker"]["resources"]["CPU"] >= 2 * cpus
    group = next(g for g in yaml.safe_load_all((REPO / "cluster" / "kuberay" / "raycluster.yaml").read_text())
                 if g and g.get("kind") == "RayCluster")["spec"]["workerGroupSpecs"]
    assert any(g["rayStartParams"].get("num-gpus") == "4" for g in group)
