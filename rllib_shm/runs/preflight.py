"""Checks before anything is written: the env and the module, and the memory the run will need.

A bad env id, env kwargs that the env does not take, or a module that cannot take the env's spaces
fail here with the env's (or module's) own message, before Ray starts, before a run directory,
a study or an MLflow run exists. The env is also played for a few steps of sampled actions
(``env_probe``): an unsupported action space, observations outside the space or not finite, and an
env that raises in its constructor, ``reset`` or ``step`` are refused naming the env and its error.
Used by ``train`` and by a study (for its first trial, and for every searched env and memory).

The memory estimate (``memory_estimate``) is built on the meta device, so nothing is allocated
while measuring: float32 bytes of

- the learner's weights, gradients and two Adam moments (4 × the parameters), plus one module copy
  per env runner (the local one when ``num_env_runners`` is 0);
- the recurrent state while acting (state in and out for every env);
- the states stored with a train batch (RLlib's ``episode.to_numpy()`` stacks one per env step;
  measured 131 MB for 2,000 steps at H = 128, which this reproduces);
- the learner's activations per minibatch: about one state per step for the fused SHM scan (chunk
  boundaries + one recomputed chunk) and six (C_t, U_t, M_t and their gradients) where the
  calibration is materialised (``fixed_matrix``, ``random_matrix``, ``memory_clamp``).

With whole-episode BPTT (``algo.whole_episodes``, ``config/episodes.py``) the estimate is taken
with ``max_seq_len`` = the longest episode L + 1: a train batch holds up to one more episode per
env (complete episodes overshoot ``train_batch_size``), and a minibatch holds whole sequences, each
zero-padded to L + 1 steps, so its activations grow to ⌈minibatch / (L + 1)⌉ · (L + 1) steps.
An env with unbounded episodes, or episodes longer than a minibatch, is refused with the reason.

A local run whose estimate exceeds the memory available now is refused with the breakdown. On a
cluster (``RAY_ADDRESS`` or a Ray job) the trials run elsewhere and the check is skipped.

Recurrent SAC replaying whole episodes (``algo.name: sac``, ``algo.sac.replay: episodes``) pads every
replayed episode to ``module.max_seq_len``, so that must cover the env's longest episode; a replayed
window (``replay: chunks``, ``burn_in`` + ``chunk_length``) must fit it too (``check_sac_replay``).
Without this check the mismatch surfaces only at the first update, after warm-up, on the cluster.

A run that stops on ``run.stop_success`` needs an env that reports ``info["success"]`` on an
episode's last step (``check_success_reported``): one episode of random actions is played (at most
``PROBE_STEPS`` steps, well under a second for the project's envs) and an env whose episode ends
without it is refused. An env whose probe episode does not end in time is let through.
"""

from __future__ import annotations

import math
import os

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.episodes import resolve_whole_episodes
from rllib_shm.runs.env_probe import open_env, play

GIB = 2**30
FLOAT = 4  # bytes
PROBE_STEPS = 5_000  # the longest random-action episode played to learn whether an env reports success


def _meta_module(config: ExperimentConfig, env):
    """The module with the config's sizes on the meta device (shapes, no storage)."""
    import torch

    from rllib_shm.config.ppo import build_module

    with torch.device("meta"):
        return build_module(config, env.observation_space, env.action_space)


def memory_estimate(config: ExperimentConfig, module) -> dict[str, int]:
    """Estimated peak bytes of one run by component (see the module docstring); ``module`` may
    live on the meta device. ``config`` as resolved by ``resolve_whole_episodes``."""
    algo, memory = config.algo, config.module.memory
    parameters = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
    if config.module.rllib_lstm:  # RLlib's LSTM: h and c
        state = 2 * memory.mem_size
    else:
        trunks = [module.trunk] + ([module.vf_trunk] if module.vf_trunk is not None else []) + (
            [module.qf_encoder] if hasattr(module, "qf_encoder") else [])
        state = sum(1 + sum(math.prod(shape) for shape in trunk.memory.state_shapes().values()) for trunk in trunks)
    envs = max(algo.num_env_runners, 1) * algo.num_envs_per_env_runner
    learners = max(algo.num_learners, 1)
    batch, minibatch = algo.train_batch_size, algo.minibatch_size
    if algo.whole_episodes:  # config resolved: max_seq_len = L + 1 (config/episodes.py)
        sequence = config.module.max_seq_len
        batch += envs * sequence  # complete episodes: each env finishes the one it is in
        minibatch = math.ceil(minibatch / sequence) * sequence  # whole sequences, zero-padded
    materialised = memory.kind == "shm" and (memory.calibration in ("fixed_matrix", "random_matrix")
                                             or memory.memory_clamp is not None)
    if algo.name == "sac":  # no stored states; the learner runs 3 trunk passes (actor, critic, target) per step
        steps = algo.sac.batch_episodes * config.module.max_seq_len
        return {
            "weights, gradients and Adam moments": FLOAT * parameters * (4 * learners + max(algo.num_env_runners, 1)),
            "recurrent states while acting": FLOAT * state * envs * 2,
            "learner activations per update": FLOAT * state * steps * (6 if materialised else 1) * 3 * learners,
        }
    return {
        "weights, gradients and Adam moments": FLOAT * parameters * (4 * learners + max(algo.num_env_runners, 1)),
        "recurrent states while acting": FLOAT * state * envs * 2,
        "states stored with a train batch": FLOAT * state * batch,
        "learner activations per minibatch": FLOAT * state * minibatch * (6 if materialised else 1)
        * learners,
    }


def available_memory() -> int | None:
    """Bytes of memory available to new processes now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(config: ExperimentConfig, module, copies: int = 1) -> None:
    """ValueError with the estimate's breakdown when a local run (``copies`` of it at once: a
    study's concurrent trials) would not fit in memory."""
    if os.environ.get("RAY_ADDRESS") or os.environ.get("RAY_JOB_ID"):
        return  # trials run on the cluster's nodes, not here
    available = available_memory()
    estimate = {name: size * copies for name, size in memory_estimate(config, module).items()}
    total = sum(estimate.values())
    if available is None or total <= available:
        return
    parts = ", ".join(f"{name} {size / GIB:.1f} GiB" for name, size in
                      sorted(estimate.items(), key=lambda item: -item[1]) if size >= 0.05 * total)
    runs = "the run needs" if copies == 1 else f"{copies} trials at once need"
    whole = (f"; whole-episode BPTT over episodes of up to {config.module.max_seq_len - 1} steps "
             "(algo.whole_episodes: false learns on shorter chunks)") if config.algo.whole_episodes else ""
    raise ValueError(f"{runs} an estimated {total / GIB:.1f} GiB of memory but {available / GIB:.1f} GiB is "
                     f"available ({parts}; module.memory.mem_size={config.module.memory.mem_size}{whole}); lower "
                     "module.memory.mem_size, algo.train_batch_size, algo.minibatch_size or the number of envs")


def preflight(config: ExperimentConfig) -> None:
    """Build ``config``'s env, check the memory estimate, build the module once (``MemoryRLModule``,
    or RLlib's built-in LSTM one with ``module.rllib_lstm``); ValueError naming what does not fit."""
    from rllib_shm.config.ppo import build_module

    env = played_env(config)
    try:
        config = resolve_whole_episodes(config, env)
        if config.module.rllib_lstm:
            check_float_observations(config, env.observation_space)
        check_sac_replay(config, env)
        check_memory(config, _meta_module(config, env))
        build_module(config, env.observation_space, env.action_space)
        if config.run.stop_success is not None:
            check_reports_success(config, env)
    finally:
        env.close()


def played_env(config: ExperimentConfig):
    """``config``'s env, built and played for a few steps (``env_probe``: kwargs, spaces, finite
    observations in their space, the env's own errors named); the caller closes it."""
    env = open_env(config.env.id, config.env.config)
    try:
        play(env, config.env.id, config.run.seed)
    except BaseException:
        env.close()
        raise
    return env


def check_sac_replay(config: ExperimentConfig, env) -> None:
    """``algo.name: sac``: ValueError when ``module.max_seq_len``, the padded length of a replayed
    sequence, is shorter than the env's longest episode (whole-episode replay) or than a replayed
    window (``burn_in`` + ``chunk_length``), naming both numbers. An env that declares no bound passes."""
    from rllib_shm.rllib import episode_bound

    if config.algo.name != "sac":
        return
    sac, length = config.algo.sac, config.module.max_seq_len
    if sac.replay == "chunks":
        if sac.burn_in + sac.chunk_length > length:
            raise ValueError(f"algo.sac.replay: chunks replays windows of burn_in {sac.burn_in} + chunk_length "
                             f"{sac.chunk_length} steps, longer than module.max_seq_len ({length}); raise "
                             "module.max_seq_len or shorten the window")
        return
    bound = episode_bound(env)
    if bound is not None and bound > length:
        raise ValueError(f"algo.sac.replay: episodes replays whole episodes, but {config.env.id} runs episodes of up "
                         f"to {bound} steps, longer than module.max_seq_len ({length}); set module.max_seq_len to "
                         f"{bound} or use algo.sac.replay: chunks")


def check_float_observations(config: ExperimentConfig, space) -> None:
    """``module.rllib_lstm``: RLlib's default module feeds observations to its Linear layers as they
    come, so they must be floating point (the project's module casts; RLlib's does not)."""
    import numpy as np

    dtype = getattr(space, "dtype", None)
    if dtype is None or not np.issubdtype(dtype, np.floating):
        raise ValueError(f"module.rllib_lstm: RLlib's built-in LSTM module needs floating-point observations, but "
                         f"{config.env.id} observes {space} (dtype {dtype}); use the project's module "
                         "(module.memory.kind: lstm without module.rllib_lstm) for this env")


def reports_success(env, seed: int) -> bool | None:
    """Whether one random-action episode of ``env`` ends with ``info["success"]`` on its last step;
    None when it does not end within ``PROBE_STEPS`` steps."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(PROBE_STEPS):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            return "success" in info
    return None


def check_success_reported(configs) -> None:
    """ValueError when a config stops on ``run.stop_success`` but its env ends an episode without
    ``info["success"]`` (one probe per env id and kwargs; see the module docstring)."""
    probed: set = set()
    for config in configs:
        key = (config.env.id, repr(sorted(config.env.config.items())))
        if config.run.stop_success is None or key in probed:
            continue
        probed.add(key)
        env = open_env(config.env.id, config.env.config)
        try:
            check_reports_success(config, env)
        finally:
            env.close()


def check_reports_success(config: ExperimentConfig, env) -> None:
    """ValueError when ``env`` (built from ``config.env``) ends a probe episode without ``info["success"]``."""
    if reports_success(env, config.run.seed) is False:
        raise ValueError(f"run.stop_success needs an env that reports info['success'] on an episode's last step; "
                         f"{config.env.id} ended an episode without it: stop on run.stop_return instead, or "
                         "train on an env with a success notion (Visual Match, Key-to-Door, CueRecall, MiniGrid "
                         "memory, Wind, Point Robot)")


def check_memory_all(configs, copies: int = 1) -> None:
    """``check_memory`` for several configs (a study's candidates), one env built per env id."""
    built: dict = {}
    try:
        for config in configs:
            key = (config.env.id, repr(sorted(config.env.config.items())))
            if key not in built:
                built[key] = played_env(config)
            config = resolve_whole_episodes(config, built[key])
            check_memory(config, _meta_module(config, built[key]), copies)
    finally:
        for env in built.values():
            env.close()
