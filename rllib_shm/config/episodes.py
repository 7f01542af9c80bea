"""Whole-episode BPTT (``algo.whole_episodes``): every learning sequence is one whole episode.

RLlib 2.60's PPO learns on episode chunks of ``max_seq_len`` steps; a chunk after the first starts
from the state stored while acting, and no gradient crosses the cut. With ``algo.whole_episodes``:

- env runners sample with ``batch_mode = "complete_episodes"``: each ``sample()`` call resets its
  envs and returns only finished episodes (no rollout fragment cut inside an episode);
- ``module.max_seq_len`` = the env's longest episode L + 1 (RLlib's learner connector appends one
  bootstrap step to every episode before chunking, masked out of the loss), so each episode is one
  sequence of the train batch, starting at t = 0 from the module's initial state (M_0 = 0), and
  BPTT runs through all of it.

This is the official SHM POPGym setting (``batch_mode: complete_episodes``, ``max_seq_len`` =
rollout fragment = horizon = 1024). An env that declares no bound on its episodes
(``envs.episode_bound``) is refused, as is a minibatch smaller than one episode (RLlib's
minibatches hold whole sequences); the memory a run needs is checked by the preflight.
"""

from __future__ import annotations

import dataclasses

from rllib_shm.config.experiment import ExperimentConfig


def whole_episode_length(config: ExperimentConfig, env=None) -> int:
    """The longest episode L of ``config.env`` (built here unless ``env`` is given); ValueError
    naming the env when it declares no bound."""
    from rllib_shm.rllib import episode_bound, make_env

    built = env is None
    if built:
        env = make_env(config.env.id, config.env.config)
    try:
        bound = episode_bound(env)
    finally:
        if built:
            env.close()
    if bound is None:
        raise ValueError(f"algo.whole_episodes needs episodes of bounded length, but {config.env.id} declares no "
                         "bound (no TimeLimit, max_episode_length, episode_length or max_steps): its episodes may "
                         "be unbounded; wrap it in a gymnasium TimeLimit or set algo.whole_episodes: false "
                         "(truncated BPTT over module.max_seq_len chunks)")
    return bound


def resolve_whole_episodes(config: ExperimentConfig, env=None) -> ExperimentConfig:
    """``config`` with ``module.max_seq_len`` = L + 1 when ``algo.whole_episodes`` (else unchanged);
    ValueError when the env's episodes are unbounded or a minibatch cannot hold one episode.
    Idempotent."""
    if not config.algo.whole_episodes:
        return config
    sequence = whole_episode_length(config, env) + 1
    if config.algo.minibatch_size < sequence:
        raise ValueError(f"algo.whole_episodes: {config.env.id} runs episodes of up to {sequence - 1} steps "
                         f"({sequence} with RLlib's bootstrap step), longer than algo.minibatch_size "
                         f"({config.algo.minibatch_size}); raise algo.minibatch_size to ≥ {sequence} (and "
                         "algo.train_batch_size with it) or use truncated BPTT (algo.whole_episodes: false)")
    if config.module.max_seq_len == sequence:
        return config
    return dataclasses.replace(config, module=dataclasses.replace(config.module, max_seq_len=sequence))
