"""Running an exported policy with onnxruntime, threading the recurrent state: numpy only, no
torch, no Ray (this module imports neither; ``rllib-shm evaluate policy.onnx`` uses it).

    policy = OnnxPolicy("policy.onnx")            # reads policy.json beside it
    state = policy.initial_state(batch_size=1)
    out = policy.step(obs[None], state)           # obs [B,*obs] → dict of outputs
    action, state = out["greedy_action"][0], out["state"]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rllib_shm.runs.evaluation_env import outcome_of, reset_options, task_of

SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT = "rllib-shm onnx policy 1"
SIDECAR_KEYS = ("inputs", "outputs", "observation", "state", "theta", "action_space", "observation_space")


def sidecar_path(model: str | Path) -> Path:
    """``policy.onnx`` → ``policy.json``."""
    return Path(model).with_suffix(SIDECAR_SUFFIX)


class OnnxPolicy:
    """An exported policy: ``initial_state``, ``step`` (one acting step, state threaded) and, for
    ``--theta sample`` exports, ``draw_thetas`` (uniform θ rows from a numpy ``Generator``)."""

    def __init__(self, model: str | Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise ValueError(f"running {str(model)!r} needs onnxruntime (pip install onnxruntime, or the "
                             f"project's [export] extra): {error}") from None
        model = Path(model)
        if not model.is_file():
            raise ValueError(f"ONNX model {str(model)!r} does not exist")
        meta_path = sidecar_path(model)
        if not meta_path.is_file():
            raise ValueError(f"{str(model)!r} has no sidecar {meta_path.name!r} (written by `rllib-shm export`)")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"sidecar {str(meta_path)!r} is not valid JSON: {error}") from None
        if not isinstance(self.meta, dict):
            raise ValueError(f"sidecar {str(meta_path)!r} holds a JSON {type(self.meta).__name__}, expected an object")
        missing = [key for key in SIDECAR_KEYS if key not in self.meta]
        if self.meta.get("format") != SIDECAR_FORMAT or missing:
            raise ValueError(f"sidecar {str(meta_path)!r} is not a {SIDECAR_FORMAT!r} sidecar (format "
                             f"{self.meta.get('format')!r}, missing {missing})")
        try:  # every field read later, read now: a damaged sidecar is refused before the first step
            self.state_names = [s["name"] for s in self.meta["state"]]
            self.initial_state(1)
            self.theta_inputs = [{"name": t["name"], "rows": int(t["rows"])} for t in self.meta["theta"]["inputs"]]
            self.output_names = [o["name"] for o in self.meta["outputs"]]
            input_names = [i["name"] for i in self.meta["inputs"]]
            self.obs_dtype = np.dtype(self.meta["observation"]["dtype"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"sidecar {str(meta_path)!r} is damaged: {type(error).__name__}: {error}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"ONNX model {str(model)!r} cannot be loaded (corrupt or truncated? export it again): "
                             f"{message}") from None
        names = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if sorted(names[0]) != sorted(input_names) or sorted(names[1]) != sorted(self.output_names):
            raise ValueError(f"sidecar {str(meta_path)!r} does not describe {str(model)!r}: the model takes "
                             f"{names[0]} and gives {names[1]}, the sidecar lists {input_names} and "
                             f"{self.output_names}")

    def initial_state(self, batch_size: int = 1) -> dict[str, np.ndarray]:
        """Every state tensor at the start of an episode, [B,*S] float32 (zeros unless the sidecar lists values)."""
        state = {}
        for entry in self.meta["state"]:
            initial = np.asarray(entry["initial"], np.float32) if entry["initial"] is not None else \
                np.zeros(entry["shape"], np.float32)
            state[entry["name"]] = np.broadcast_to(initial, (batch_size, *entry["shape"])).copy()
        return state

    def draw_thetas(self, rng: np.random.Generator, batch_size: int = 1) -> dict[str, np.ndarray]:
        """One θ row index per batch element for every θ input, uniform in [0, L)."""
        return {t["name"]: rng.integers(0, t["rows"], size=batch_size, dtype=np.int64) for t in self.theta_inputs}

    def step(self, obs: np.ndarray, state: dict[str, np.ndarray],
             thetas: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """One acting step for a batch: obs [B,*obs] (raw, as the env gives it). Returns the
        outputs by name (``action_dist_inputs``, ``greedy_action``, ``value``) and ``state``, the
        new state to pass to the next call."""
        feeds = {"obs": np.asarray(obs, dtype=self.obs_dtype), **state}
        if self.theta_inputs:
            if thetas is None:
                raise ValueError("this policy was exported with --theta sample: pass thetas (see draw_thetas)")
            feeds.update(thetas)
        values = dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))
        new_state = {name: values.pop(f"{name}_out") for name in self.state_names}
        return {**values, "state": new_state}


def run_onnx_episodes(policy: OnnxPolicy, env, episodes: int, seed: int,
                      tasks: list[int] | None = None) -> dict[str, Any]:
    """``episodes`` greedy episodes (reset seeds seed, seed+1, ...) threading the state, as
    ``rllib_shm.runs.episodes.run_episodes`` does for the torch module; θ rows (``--theta sample``
    exports) come from ``numpy.random.default_rng(seed)``. Returns returns, lengths, successes,
    tasks (``info["task"]`` at reset, or None), outcomes (``info["outcome"]`` at the end, or None).
    ``tasks``: episode i runs task ``tasks[i]`` (meta-RL)."""
    rng = np.random.default_rng(seed)
    options = reset_options(tasks, episodes)
    returns, lengths, successes, tasks, outcomes = [], [], [], [], []
    for index in range(episodes):
        obs, info = env.reset(seed=seed + index, options=options[index])
        tasks.append(task_of(info))
        state = policy.initial_state(1)
        total, steps, done = 0.0, 0, False
        while not done:
            thetas = policy.draw_thetas(rng) if policy.theta_inputs else None
            out = policy.step(np.asarray(obs)[None], state, thetas)
            state = out["state"]
            obs, reward, terminated, truncated, info = env.step(out["greedy_action"][0])
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
        successes.append(bool(info["success"]) if "success" in info else None)
        outcomes.append(outcome_of(info))
    return {"returns": returns, "lengths": lengths, "successes": successes, "tasks": tasks, "outcomes": outcomes}
