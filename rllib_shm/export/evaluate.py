"""``rllib-shm evaluate policy.onnx``: the same seeded greedy episodes as for a checkpoint, run by
onnxruntime with the state threaded (``runtime.run_onnx_episodes``), on the same env (the exported
training env config with ``--env-config`` kwargs merged over it), reported the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rllib_shm.runs.episodes import summarize, summary_line, write_json
from rllib_shm.runs.evaluation_env import (
    check_episodes,
    episode_tasks,
    evaluation_env_config,
    make_evaluation_env,
)
from rllib_shm.runs.outputs import check_new_file


def evaluate_onnx(model: Path, *, episodes: int | None = None, env_id: str | None = None,
                  env_config: dict[str, Any] | None = None, seed: int = 0, output: Path | None = None,
                  each_task: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``episodes``: default 20; ``each_task``: one episode per task of the env's pool instead."""
    from rllib_shm.export.runtime import OnnxPolicy, run_onnx_episodes

    check_episodes(episodes, each_task, seed)
    check_new_file(output, "--output")
    policy = OnnxPolicy(model)
    config = policy.meta.get("config") or {}
    trained_env = (config.get("env") or {}).get("id")
    if env_id is None and trained_env is None:
        raise ValueError(f"{str(model)!r} does not say which env it was trained on: pass --env")
    env_id = env_id or trained_env
    overrides = dict(env_config or {})
    env_config = evaluation_env_config(env_id, trained_env, (config.get("env") or {}).get("config"), overrides)
    env = make_evaluation_env(env_id, env_config, overrides)
    from rllib_shm.export.onnx_export import space_description

    try:  # the env is closed whatever is refused next
        for name, space in (("observation_space", env.observation_space), ("action_space", env.action_space)):
            if space_description(space) != policy.meta[name]:
                raise ValueError(f"the env does not match the exported policy: {name} {space} vs the policy's "
                                 f"{policy.meta[name].get('type')} {policy.meta[name]}")
        episodes, tasks = episode_tasks(env, env_id, episodes, each_task)
        log(f"evaluating {model} with onnxruntime on {env_id}{f' {env_config}' if env_config else ''}: "
            f"{episodes} episodes{' (one per task of the pool)' if tasks else ''}, seed {seed}, greedy actions")
        results = summarize(run_onnx_episodes(policy, env, episodes, seed, tasks))
    finally:
        env.close()
    payload = {"model": str(Path(model).resolve()), "env": env_id, "env_config": env_config, "seed": seed,
               "each_task": each_task,
               "explore": False, "memory": policy.meta.get("memory"), "theta": policy.meta["theta"]["mode"],
               **results}
    log(summary_line(results))
    if output is not None:
        write_json(output, payload)
        log(f"results written to {output}")
    return payload
