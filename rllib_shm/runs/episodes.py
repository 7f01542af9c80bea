"""Evaluation episodes: run a trained module in an env, threading the recurrent state, and record
what its memory did.

Dimension letters: T time (steps of the recorded episode), H memory size. Only the module's public
acting API is used (``MemoryRLModule.initial_state`` / ``act`` / ``reseed``), so any memory kind works.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.spaces.space_utils import unsquash_action

from rllib_shm.files import write_json as write_whole
from rllib_shm.rllib.module import MEMORY_TRACE
from rllib_shm.runs.evaluation_env import outcome_of, reset_options, task_of


@dataclass
class EpisodeLog:
    """What one recorded episode did: per step, the arrays of the memory's trace that are drawn
    (``memory``: SHM's M_t [H,H] or a GRU's h_t [H]; ``calibration``: SHM's C_t [H,H]), the reward and
    the phase (``info["phase"]`` of the observation acted on: reset's info at t = 0, then step t−1's).
    The episode starts at reset from the module's initial (zero) state, so M_{−1} = 0."""

    keep: tuple[str, ...] = ("memory", "calibration")  # trace entries kept (an episode of H×H frames is big)
    trace: dict[str, list] = field(default_factory=dict)  # name -> one array per step
    rewards: list = field(default_factory=list)
    phases: list = field(default_factory=list)  # info["phase"] per step (None where the env gave none)
    phase_names: Any = None  # the env's ``phase_names`` (phase id → name), if it has them
    vanishing: list = field(default_factory=list)  # per evaluated episode (the first too): fraction of ∏C < 1 [T_e]

    def add(self, trace: dict[str, Any]) -> None:
        """Append step 0 of batch element 0 of each kept tensor in ``trace`` (tensors [B,T,...])."""
        for name in self.keep:
            value = trace.get(name)
            if isinstance(value, torch.Tensor):
                self.trace.setdefault(name, []).append(value[0, 0].numpy())

    def stacked(self, name: str) -> np.ndarray | None:
        """The per-step arrays of ``name`` stacked to [T, ...], or None if the memory has none."""
        steps = self.trace.get(name)
        return np.stack(steps) if steps else None

    def phase_array(self) -> np.ndarray | None:
        """The phases [T] as int64, or None unless every step has an integer phase."""
        known = self.phases and all(isinstance(p, int | np.integer) and not isinstance(p, bool) for p in self.phases)
        return np.asarray(self.phases, dtype=np.int64) if known else None

    def recording(self, title: str = ""):
        """The episode as a ``drawing.MemoryRecording`` (memory, calibration, rewards, phases and their names,
        and the vanishing fractions of every evaluated episode)."""
        from rllib_shm.drawing import MemoryRecording  # matplotlib only where something is drawn

        return MemoryRecording(memory=self.stacked("memory"), calibration=self.stacked("calibration"),
                               rewards=np.asarray(self.rewards), title=title, phases=self.phase_array(),
                               phase_names=self.phase_names, vanishing_episodes=self.vanishing or None)


@dataclass(frozen=True)
class EpisodeSteps:
    """One evaluated episode, step by step (T its length): the observations [T + 1, ...] (reset's,
    then each step's), the actions taken [T, ...] (as the env received them) and the rewards [T]."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray


def write_episode_steps(path: Path, episodes: Sequence[EpisodeSteps], returns: Sequence[float],
                        tasks: Sequence[Any] | None = None) -> None:
    """Write ``episodes`` whole to a new ``.npz`` (``--record-episodes``): ``observations_<i>``,
    ``actions_<i>``, ``rewards_<i>`` per episode i (episodes may differ in length), their ``returns``
    [E] (as ``run_episodes`` summed them) and, where the env reports them, ``tasks`` [E]. ``np.load``
    reads it without pickles."""
    from rllib_shm.files import temporary_path

    arrays: dict[str, np.ndarray] = {"returns": np.asarray(returns, np.float64)}
    if tasks is not None and all(task is not None for task in tasks):
        arrays["tasks"] = np.asarray(tasks, np.int64)
    for index, episode in enumerate(episodes):
        arrays[f"observations_{index}"] = episode.observations
        arrays[f"actions_{index}"] = episode.actions
        arrays[f"rewards_{index}"] = episode.rewards
    with temporary_path(path, flag="--record-episodes") as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def run_episodes(
    module,
    env,
    episodes: int,
    seed: int,
    explore: bool = False,
    record: EpisodeLog | None = None,
    tasks: Sequence[int] | None = None,
    steps: list | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` episodes (seeds seed, seed+1, ...); the first is recorded into ``record``, and of
    every episode ``record.vanishing`` gets the vanishing fraction of its calibration (SHM), the paper's
    measure over many episodes. ``steps``: a list that gets each episode's ``EpisodeSteps`` (what it
    saw, did and got, step by step).
    ``tasks``: episode i runs task ``tasks[i]`` (``reset(options={"task": ...})``, meta-RL envs);
    None lets the env draw.

    Returns per-episode returns, lengths, successes (None where the env has no success notion),
    tasks (``info["task"]`` at reset, as the meta-RL envs report it; None where there is none) and
    outcomes (``info["outcome"]`` at the last step, as Visual Match and Key-to-Door name what the
    agent did; None where there is none).
    Actions: the distribution's deterministic action, or a sample when ``explore`` (drawn under a
    forked, seeded torch RNG, so the global RNG is untouched). The memories' own random streams
    (SHM's θ) are reseeded with ``seed`` so that sampled θ (``eval_theta: sample``) is reproducible too.
    """
    module.eval()
    module.reseed(seed)
    dist_cls = module.get_exploration_action_dist_cls() if explore else module.get_inference_action_dist_cls()
    options = reset_options(tasks, episodes)
    returns, lengths, successes, tasks, outcomes = [], [], [], [], []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index in range(episodes):
            recording = record if index == 0 else None
            obs, info = env.reset(seed=seed + index, options=options[index])
            tasks.append(task_of(info))
            if recording is not None:
                recording.phase_names = getattr(getattr(env, "unwrapped", env), "phase_names", None)
            state = module.initial_state(1)
            total, length, done, success = 0.0, 0, False, None
            calibration = []  # C_t [H, H] of this episode (SHM, while recording)
            seen, taken, rewards = [np.asarray(obs)], [], []  # for ``steps``
            # trace every step of the first episode, and of later ones only for the calibration (SHM)
            trace = recording is not None or (record is not None and bool(record.vanishing))
            while not done:
                obs_t = torch.as_tensor(np.asarray(obs)).unsqueeze(0).unsqueeze(0)
                out = module.act(obs_t, state, explore=explore, record=trace)
                if trace and isinstance(out[MEMORY_TRACE].get("calibration"), torch.Tensor):
                    calibration.append(out[MEMORY_TRACE]["calibration"][0, 0].numpy())
                dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS][:, 0])
                action = (dist.sample() if explore else dist.to_deterministic().sample())[0].numpy()
                if isinstance(env.action_space, gym.spaces.Box):  # as RLlib's default normalize_actions
                    action = unsquash_action(action, env.action_space)
                state = out[Columns.STATE_OUT]
                phase = info.get("phase")  # of the observation just acted on
                obs, reward, terminated, truncated, info = env.step(action)
                if steps is not None:
                    seen.append(np.asarray(obs))
                    taken.append(np.asarray(action))
                    rewards.append(float(reward))
                if recording is not None:
                    recording.add(out[MEMORY_TRACE])
                    recording.rewards.append(float(reward))
                    recording.phases.append(phase)
                total += float(reward)
                length += 1
                done = terminated or truncated
            if calibration:
                from rllib_shm.drawing import vanishing_fraction  # matplotlib only where something is drawn

                record.vanishing.append(vanishing_fraction(np.stack(calibration)))
            if "success" in info:
                success = bool(info["success"])
            if steps is not None:
                steps.append(EpisodeSteps(np.stack(seen), np.stack(taken), np.asarray(rewards, np.float64)))
            returns.append(total)
            lengths.append(length)
            successes.append(success)
            outcomes.append(outcome_of(info))
    return {"returns": returns, "lengths": lengths, "successes": successes, "tasks": tasks, "outcomes": outcomes}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std return, success rate (when the env reports one), mean episode length, the
    episodes' tasks (when the env reports them: meta-RL) and outcomes (when the env names them:
    ``outcomes`` per episode and ``outcome_counts``, most frequent first)."""
    returns = np.asarray(raw["returns"], dtype=float)
    known = [s for s in raw["successes"] if s is not None]
    outcomes = list(raw.get("outcomes", ()))
    named = [o for o in outcomes if o is not None]
    counts = dict(sorted(Counter(named).items(), key=lambda item: (-item[1], item[0])))
    return {
        "episodes": len(returns),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "success_rate": float(np.mean(known)) if known else None,
        "episode_len_mean": float(np.mean(raw["lengths"])),
        "returns": [float(r) for r in returns],
        "lengths": [int(n) for n in raw["lengths"]],
        **({"tasks": raw["tasks"]} if any(t is not None for t in raw.get("tasks", ())) else {}),
        **({"outcomes": outcomes, "outcome_counts": counts} if named else {}),
    }


def summary_line(results: dict[str, Any]) -> str:
    """One line of ``summarize``'s results: return mean ± std, success rate (when reported), length,
    and the outcome counts (when the env names outcomes).

    >>> summary_line({"return_mean": 0.5, "return_std": 0.25, "success_rate": 0.75, "episode_len_mean": 10.0,
    ...               "episodes": 4})
    'return 0.500 ± 0.250 | success 75.00% | episode length 10.0 over 4 episodes'
    >>> summary_line({"return_mean": 10.0, "return_std": 0.0, "success_rate": 0.75, "episode_len_mean": 18.0,
    ...               "episodes": 4, "outcome_counts": {"opened_door": 3, "no_key": 1}})
    'return 10.000 ± 0.000 | success 75.00% | episode length 18.0 over 4 episodes | outcomes: opened_door 3, no_key 1'
    """
    success = "" if results["success_rate"] is None else f" | success {results['success_rate']:.2%}"
    counts = results.get("outcome_counts")
    outcomes = " | outcomes: " + ", ".join(f"{name} {n}" for name, n in counts.items()) if counts else ""
    return (f"return {results['return_mean']:.3f} ± {results['return_std']:.3f}{success} | "
            f"episode length {results['episode_len_mean']:.1f} over {results['episodes']} episodes{outcomes}")


def check_spaces(module, env) -> None:
    """The env must produce what the module was trained on (same observation and action spaces)."""
    problems = []
    if env.observation_space != module.observation_space:
        problems.append(f"observation space {env.observation_space} vs checkpoint's {module.observation_space}")
    if env.action_space != module.action_space:
        problems.append(f"action space {env.action_space} vs checkpoint's {module.action_space}")
    if problems:
        raise ValueError("the env does not match the checkpoint: " + "; ".join(problems))


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` whole to a new file (refuses to overwrite, also a file that another
    process wrote meanwhile: ``rllib_shm.files``)."""
    write_whole(path, payload, flag="--output")
