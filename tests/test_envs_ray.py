"""Registration with Ray: every id builds inside a fresh Ray worker process; name resolution."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from ray.tune.registry import ENV_CREATOR, _global_registry  # noqa: E402

import envs  # noqa: E402
from rllib_shm.rllib import register_envs_with_ray, resolve_env  # noqa: E402


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=1, include_dashboard=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


@ray.remote
def episode_in_worker(name: str, env_config: dict) -> dict:
    """Build ``name`` from Ray's registry in a worker process and play one episode."""
    import os
    import sys

    import gymnasium as gym

    in_gym_registry = name in gym.registry  # the worker's own gymnasium registry, before the creator
    env = _global_registry.get(ENV_CREATOR, name)(env_config)
    observation, _ = env.reset(seed=0)
    steps, done = 0, False
    while not done:
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    return {
        "pid": os.getpid(),
        "steps": steps,
        "dtype": str(observation.dtype),
        "in_gym_registry_before": in_gym_registry,
        "ray_in_envs_import": "ray" in sys.modules,
    }


def test_project_ids_build_in_a_fresh_worker(ray_session):
    assert set(register_envs_with_ray()) == {spec.id for spec in envs.ENV_SPECS}
    assert all(_global_registry.contains(ENV_CREATOR, spec.id) for spec in envs.ENV_SPECS)
    name = resolve_env("rllib_shm/VisualMatch-L5-v0")
    result = ray.get(episode_in_worker.remote(name, {}))
    assert result["pid"] != __import__("os").getpid()
    assert not result["in_gym_registry_before"]  # so only the Ray registry made it findable
    assert result["steps"] == 30 and result["dtype"] == "uint8"
    # the RLlib env_config overrides constructor kwargs
    assert ray.get(episode_in_worker.remote(name, {"distractor_length": 7}))["steps"] == 32
    popgym = ray.get(episode_in_worker.remote(resolve_env("rllib_shm/popgym-RepeatPreviousEasy-v0"), {}))
    assert popgym["steps"] == 51 and popgym["dtype"] == "float32"


def test_gymnasium_ids_and_entry_points_build_in_a_worker(ray_session):
    assert resolve_env("envs.cue_recall:CueRecall") == "envs.cue_recall:CueRecall"
    result = ray.get(episode_in_worker.remote("envs.cue_recall:CueRecall", {"delay": 3}))
    assert result["steps"] == 5
    assert resolve_env("CartPole-v1") == "CartPole-v1"
    assert 1 <= ray.get(episode_in_worker.remote("CartPole-v1", {}))["steps"] <= 500


def test_register_envs_with_ray_is_idempotent(ray_session, monkeypatch):
    register_envs_with_ray()
    calls = []
    monkeypatch.setattr("ray.tune.registry.register_env", lambda *args: calls.append(args))
    register_envs_with_ray()
    resolve_env("rllib_shm/Wind-v0")
    assert calls == []


def test_unknown_names_raise_with_close_matches():
    with pytest.raises(ValueError, match="rllib_shm/KeyToDoor-L500-v0"):
        resolve_env("rllib_shm/KeyToDor-L500-v0")
    with pytest.raises(ValueError, match="no env class"):
        resolve_env("envs.cue_recall:NoSuchEnv")
    with pytest.raises(ValueError, match="cannot import"):
        resolve_env("no_such_package.module:Env")
