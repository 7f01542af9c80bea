"""Every study in tune_configs/ loads, searches something valid, and builds its env and module."""

from pathlib import Path

import pytest

from rllib_shm.runs.preflight import preflight
from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import load_study

STUDIES = sorted((Path(__file__).parents[1] / "tune_configs").glob("*.yaml"))


def test_the_studies_the_project_promises_exist():
    names = {p.stem for p in STUDIES}
    assert {"quickstart", "popgym_easy", "popgym_hard", "visual_match_250", "visual_match_500",
            "key_to_door_250", "key_to_door_500", "ablation_calibration", "memory_size", "replicate"} <= names


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_loads_and_builds(path):
    text = path.read_text()
    assert text.startswith("#") and "Budget:" in text and "Resources:" in text  # the comment header
    study = load_study(path)
    assert study.tune.name == path.stem
    for index in (0, -1):  # the first and last value of every searched path
        preflight(trial_config(study.base, {p: args[index] for p, (_k, args) in study.space.items()}))
