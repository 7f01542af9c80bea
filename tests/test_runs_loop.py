"""The one PPO iteration loop (runs/loop.py), driven by a scripted algorithm: stop conditions,
MMER, checkpoint cadence, metric names and resuming; plus RLlib's result names in one place."""

import math

import pytest
import torch

from rllib_shm.config import RunSection
from rllib_shm.runs.loop import Progress, run_iterations
from rllib_shm.runs.results import METRICS, iteration_metrics


class ScriptedAlgo:
    """``train()`` returns RLlib-shaped results with the given mean returns (and success rates, None:
    the env reports none), 100 env steps each."""

    def __init__(self, returns, steps_before=0, runners=None, successes=None, episodes=None):
        self.returns = list(returns)
        self.episodes = episodes  # RLlib's count of the iteration's finished episodes (None: absent)
        self.successes = list(successes) if successes else None
        self.steps = steps_before
        self.calls = 0
        self.runners = list(runners) if runners else None  # (healthy remote runners, restarts) per call

    def train(self):
        self.calls += 1
        self.steps += 100
        mean = self.returns.pop(0)
        result = {"env_runners": {"episode_return_mean": mean, "episode_len_mean": 10.0,
                                  "num_env_steps_sampled_lifetime": self.steps, "num_env_steps_sampled": 100,
                                  "num_episodes_lifetime": self.calls * 10},
                  "learners": {"default_policy": {"policy_loss": 0.5, "vf_loss": 1.5, "entropy": 0.1}}}
        if self.episodes is not None:
            result["env_runners"]["num_episodes"] = self.episodes
        if self.successes and (success := self.successes.pop(0)) is not None:
            result["env_runners"]["episode_success_mean"] = success
        if self.runners:
            healthy, restarts = self.runners.pop(0)
            result["fault_tolerance"] = {"num_healthy_workers": healthy, "num_remote_worker_restarts": restarts}
        return result


def run(returns, start=None, runners=None, successes=None, episodes=None, **run_fields):
    start = start or Progress()
    seen, lines = [], []
    algo = ScriptedAlgo(returns, start.env_steps, runners, successes, episodes)
    final = run_iterations(algo, RunSection(**run_fields), seen.append, start=start, log=lines.append)
    return algo, final, seen, lines


def test_runs_to_stop_iters_with_mmer_and_checkpoint_cadence():
    algo, final, seen, lines = run([0.1, float("nan"), 0.5, 0.2, 0.3], stop_iters=5, checkpoint_every=2)
    assert algo.calls == 5 and final == Progress(5, 500, 0.5, 0.3)
    assert [i.checkpoint_due for i in seen] == [False, True, False, True, True]  # every 2 and the last
    assert [i.last for i in seen] == [False] * 4 + [True]
    assert [i.metrics["episode_return_max_mean"] for i in seen][2:] == [0.5, 0.5, 0.5]
    assert seen[0].metrics["episode_return_max_mean"] == 0.1
    assert math.isnan(seen[1].metrics["episode_return_mean"])  # no episode finished: NaN, best kept
    assert set(seen[0].metrics) == {*METRICS, "iteration"} - {"learner/mean_kl_loss", "learner/vf_explained_var",
                                                              "env_runner_restarts", "healthy_env_runners",
                                                              "success_rate",  # the env reports no success
                                                              "learner/qf_loss", "learner/alpha_value",  # SAC only
                                                              "window_episodes"}  # no count of the iteration's episodes
    assert [i.metrics["episodes"] for i in seen] == [10, 20, 30, 40, 50]
    assert len(lines) == 5 and lines[2].startswith("[iter    3/5] env steps       300 | return   0.500")


def test_stop_return_ends_early_with_a_checkpoint():
    algo, final, seen, lines = run([0.1, 0.95, 0.99], stop_iters=10, checkpoint_every=5, stop_return=0.9)
    assert algo.calls == 2 and final.iteration == 2
    assert seen[-1].last and seen[-1].checkpoint_due
    assert "≥ run.stop_return 0.9: stopping" in lines[-1]


def test_stop_success_ends_early_with_a_checkpoint():
    successes = [None, 0.5, 0.96, 0.99]  # no episode reported success yet, then RLlib's window mean
    algo, final, seen, lines = run([20.0] * 4, successes=successes, stop_iters=10, checkpoint_every=5,
                                   stop_success=0.95, stop_return=100.0)  # a Visual Match return says nothing
    assert algo.calls == 3 and final.iteration == 3
    assert "success_rate" not in seen[0].metrics and [i.metrics["success_rate"] for i in seen[1:]] == [0.5, 0.96]
    assert seen[-1].last and seen[-1].checkpoint_due
    assert "success" not in lines[0] and "| success  96.0% |" in lines[2]
    assert lines[-1] == "success rate 0.960 ≥ run.stop_success 0.95: stopping"


def test_stop_env_steps_ends_at_the_budget_in_env_steps():
    algo, final, seen, lines = run([0.1] * 10, stop_iters=10, checkpoint_every=5, stop_env_steps=250)
    assert algo.calls == 3 and final.env_steps == 300  # the first iteration that reaches 250 steps is the last
    assert seen[-1].last and seen[-1].checkpoint_due
    assert lines[-1] == "env steps 300 ≥ run.stop_env_steps 250: stopping"
    with pytest.raises(ValueError, match="run.stop_env_steps"):
        RunSection(stop_env_steps=0)


def test_stop_success_never_stops_without_a_success_rate():
    algo, _, seen, lines = run([0.1, 0.2], successes=[None, float("nan")], stop_iters=2, stop_success=0.0)
    assert algo.calls == 2 and math.isnan(seen[1].metrics["success_rate"])
    assert not any("stopping" in line or "success" in line for line in lines)


def test_resumes_from_saved_progress():
    start = Progress(iteration=3, env_steps=300, best=0.7)
    algo, final, seen, _ = run([0.2, 0.8], start=start, stop_iters=5, checkpoint_every=10)
    assert algo.calls == 2 and [i.progress.iteration for i in seen] == [4, 5]
    assert seen[0].metrics["episode_return_max_mean"] == 0.7 and final.best == 0.8
    assert final.env_steps == 500


def test_iteration_metrics_reads_rllib_names():
    metrics = iteration_metrics(ScriptedAlgo([0.25]).train())
    assert metrics == pytest.approx({"episode_return_mean": 0.25, "episode_len_mean": 10.0, "env_steps": 100,
                                     "episodes": 10, "learner/policy_loss": 0.5, "learner/vf_loss": 1.5,
                                     "learner/entropy": 0.1})
    empty = iteration_metrics({})
    assert math.isnan(empty["episode_return_mean"]) and empty["env_steps"] == 0


class DivergingAlgo(ScriptedAlgo):
    """The second iteration's policy loss is NaN; ``get_module`` returns a module whose weights
    become NaN at the third."""

    def __init__(self, returns, nan_weights_at=None):
        super().__init__(returns)
        self.module = torch.nn.Linear(2, 2)
        self.nan_weights_at = nan_weights_at

    def train(self):
        result = super().train()
        if self.nan_weights_at is None and self.calls == 2:
            result["learners"]["default_policy"]["policy_loss"] = float("nan")
        if self.calls == self.nan_weights_at:
            with torch.no_grad():
                self.module.weight.fill_(float("inf"))
        return result

    def get_module(self):
        return self.module  # any torch module: MemoryRLModule or RLlib's own (module.rllib_lstm)


@pytest.mark.parametrize(("nan_weights_at", "message"),
                         [(None, "iteration 2: non-finite learner/policy_loss"),
                          (3, "iteration 3: non-finite weight weight")])
def test_divergence_stops_before_the_iteration_is_reported(nan_weights_at, message):
    seen = []
    algo = DivergingAlgo([0.1, 0.2, 0.3, 0.4], nan_weights_at=nan_weights_at)
    with pytest.raises(ValueError, match=message):
        run_iterations(algo, RunSection(stop_iters=4, checkpoint_every=1), seen.append, log=lambda line: None)
    assert len(seen) == (1 if nan_weights_at is None else 2)  # the diverged iteration never reached the callback


def test_env_runner_crashes_and_restarts_are_reported_once():
    runners = [(2, 0), (1, 0), (1, 0), (2, 1), (2, 1)]
    _, _, seen, lines = run([0.1] * 5, runners=runners, stop_iters=5)
    assert [(i.metrics["healthy_env_runners"], i.metrics["env_runner_restarts"]) for i in seen] == runners
    notes = [line.strip() for line in lines if not line.startswith("[iter")]
    assert len(notes) == 2
    assert notes[0].startswith("1 env runner(s) crashed: 1 healthy; the episodes they had in flight were lost")
    assert notes[1] == "1 env runner(s) restarted and rejoined (1 restart(s) so far)"


def test_means_are_over_the_last_100_episodes_across_iterations():
    """RLlib 2.60 reports each iteration's own episodes (8 per iteration on CueRecall-D1000); the loop's
    means cover the last 100, the oldest iteration counted for the episodes the window still needs."""
    returns = [1.0] + [0.0] * 12 + [1.0]  # 8 episodes each: the first all right, then none, then all
    _, final, seen, _ = run(returns, successes=[1.0] + [0.0] * 12 + [1.0], episodes=8, stop_iters=14)
    covered = [i.metrics["window_episodes"] for i in seen]
    assert covered == [8 * n for n in range(1, 13)] + [100, 100]
    assert seen[0].metrics["episode_return_mean"] == 1.0 and seen[1].metrics["success_rate"] == 0.5
    assert seen[12].metrics["success_rate"] == pytest.approx(4 / 100)  # 4 of the first iteration's 8 remain
    assert seen[13].metrics["episode_return_mean"] == pytest.approx(8 / 100)  # the newest 8, the rest 0
    assert len(final.window) == 13 and sum(chunk[0] for chunk in final.window) >= 100


def test_a_lucky_first_iteration_neither_stops_the_run_nor_stands_as_mmer():
    """8 of 8 episodes right in the first iteration is luck at chance level (1/256); the level counts
    over 100 episodes, and the first full window replaces the best partial one as MMER."""
    returns = [1.0] + [0.0] * 15
    _, final, seen, lines = run(returns, successes=[1.0] + [0.5] * 15, episodes=8, stop_iters=16,
                                stop_success=0.95)
    assert len(seen) == 16 and not any("stopping" in line for line in lines)
    assert seen[0].metrics["episode_return_max_mean"] == 1.0  # no full window yet: the partial one
    full = next(i for i in seen if i.metrics["window_episodes"] == 100)
    assert full.metrics["episode_return_max_mean"] == pytest.approx(full.metrics["episode_return_mean"])
    assert full.metrics["episode_return_mean"] < 0.1
    assert final.best_full and final.best < 0.1


def test_a_full_window_at_the_level_stops_the_run():
    _, _, seen, lines = run([1.0] * 20, successes=[1.0] * 20, episodes=25, stop_iters=20, stop_success=0.95)
    assert len(seen) == 4 and seen[-1].metrics["window_episodes"] == 100  # not before 100 episodes
    assert lines[-1] == "success rate 1.000 ≥ run.stop_success 0.95: stopping"


def test_a_resumed_run_continues_its_window():
    _, first, _, _ = run([1.0] * 3, episodes=50, stop_iters=3)
    _, final, seen, _ = run([0.0], start=first, episodes=50, stop_iters=4)
    assert seen[0].metrics["episode_return_mean"] == 0.5 and seen[0].metrics["window_episodes"] == 100
    assert final.best == 1.0 and final.best_full
