"""The training success rate: the share of finished episodes that solved their task.

Tasks with a success notion report it on an episode's last step as ``info["success"]`` (Visual
Match, Key-to-Door, CueRecall, MiniGrid memory, Wind, Point Robot; ENVS.md), and their return does
not say it (Visual Match adds the distractor phase's apples to the final reward).
:class:`SuccessMetric`, an RLlib callback run by every env runner, logs each finished episode's
success (1.0 or 0.0) under :data:`SUCCESS_MEAN`; RLlib's results carry it as
``env_runners/episode_success_mean``. It is windowed as RLlib windows ``episode_return_mean``
(``success_window``: each of N remote env runners keeps ⌈100 / N⌉ and the algorithm merges theirs),
and, as with that, RLlib 2.60 clears the window at every reduce: the value is over the episodes
finished in one iteration. The loop turns both into means over the last 100 episodes across
iterations (``runs/loop.py``, ``runs/results.py``). Episodes whose last info holds no ``success``
log nothing, so for envs without a success notion the metric never appears.
"""

from __future__ import annotations

import math

from ray.rllib.callbacks.callbacks import RLlibCallback

SUCCESS_MEAN = "episode_success_mean"  # the key under RLlib's env runner results


def success_window(config) -> int:
    """Episodes each env runner averages over: RLlib's window for ``episode_return_mean``
    (``SingleAgentEnvRunner._log_episode_metrics``), ``metrics_num_episodes_for_smoothing`` shared
    among the remote env runners."""
    return max(1, math.ceil(config.metrics_num_episodes_for_smoothing / (config.num_env_runners or 1)))


def episode_success(episode) -> bool | None:
    """``info["success"]`` of a finished single-agent episode's last step, or None where the env
    reports none.

        >>> from ray.rllib.env.single_agent_episode import SingleAgentEpisode
        >>> episode = SingleAgentEpisode(observations=[0, 1], actions=[0], rewards=[1.0],
        ...                              infos=[{}, {"success": True}], terminated=True)
        >>> episode_success(episode), episode_success(SingleAgentEpisode(
        ...     observations=[0, 1], actions=[0], rewards=[1.0], infos=[{}, {}], terminated=True))
        (True, None)
    """
    info = episode.get_infos(-1)
    if not isinstance(info, dict) or "success" not in info:
        return None
    return bool(info["success"])


class SuccessMetric(RLlibCallback):
    """Logs every finished episode's ``info["success"]`` as :data:`SUCCESS_MEAN` (see the module
    docstring)."""

    def on_episode_end(self, *, episode, env_runner=None, metrics_logger=None, **kwargs) -> None:
        success = episode_success(episode)
        if success is None or metrics_logger is None or env_runner is None:
            return
        metrics_logger.log_value(SUCCESS_MEAN, float(success), reduce="mean",
                                 window=success_window(env_runner.config))
