"""Experiment configuration: the frozen dataclasses of a run (``experiment.py``), built from plain
data with every key and type checked (``typed.py``), read from YAML and ``--set`` (``loading.py``),
the one dotted-path walker (``paths.py``), and the derived RLlib ``PPOConfig`` (``ppo.py``, the only
place that knows RLlib's config names)."""

from rllib_shm.config.experiment import AlgoSection, EnvSection, ExperimentConfig, RunSection
from rllib_shm.config.loading import apply_override, load_config, parse_assignments, read_mapping

__all__ = ["AlgoSection", "EnvSection", "ExperimentConfig", "RunSection", "apply_override", "load_config",
           "parse_assignments", "read_mapping"]
