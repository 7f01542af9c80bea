"""End to end on 2 CPU cores: SHM learns a memory task, the memoryless MLP does not; a checkpoint
evaluates through the CLI exactly as in-process, also on held-out meta-RL tasks (``--env-config``);
bad input fails before any work."""

import json
import pickle
import shutil
import subprocess
import sys

import matplotlib.image
import pytest

from rllib_shm.config import load_config
from rllib_shm.runs.evaluate import evaluate
from rllib_shm.runs.train import train

TASK = "rllib_shm/popgym-RepeatFirstEasy-v0"
BUDGET = [f"env.id={TASK}", "run.stop_iters=50", "module.max_seq_len=64", "module.memory.mem_size=32",
          "module.memory_output=64", "module.encoder_hiddens=[64, 32]", "algo.lr=1e-3",
          "algo.train_batch_size=2000", "algo.minibatch_size=500", "run.checkpoint_every=100"]


def cli(*args, check=True):
    done = subprocess.run([sys.executable, "-m", "rllib_shm.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"rllib-shm {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """SHM (random θ) trained on RepeatFirst-Easy until the mean return reaches 0.9 (≤ 50 iterations)."""
    out = tmp_path_factory.mktemp("train")
    config = load_config(None, [*BUDGET, f"run.output_dir={out}", "run.stop_return=0.9", "run.name=shm"])
    return train(config, log=lambda line: None)


@pytest.mark.slow
def test_shm_learns_repeat_first(trained):
    assert trained.final_return >= 0.8, trained
    assert trained.checkpoint.is_dir() and (trained.checkpoint / "rllib_shm.json").is_file()


@pytest.mark.slow
def test_memoryless_mlp_does_not_learn_on_the_same_budget(tmp_path):
    config = load_config(None, [*BUDGET, f"run.output_dir={tmp_path}", "module.memory.kind=mlp", "run.name=mlp"])
    result = train(config, log=lambda line: None)
    assert result.best_return <= -0.3, result  # the best memoryless policy scores about -0.5


@pytest.mark.slow
def test_cli_evaluation_equals_in_process_evaluation(trained, tmp_path):
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    from rllib_shm.rllib import make_env, register_envs_with_ray
    from rllib_shm.runs.episodes import run_episodes, summarize

    output = tmp_path / "eval.json"
    cli("evaluate", trained.checkpoint, "--episodes", 5, "--seed", 3, "--output", output)
    from_cli = json.loads(output.read_text())

    # In process: RLlib's own restore of the whole algorithm, then the module it holds.
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        register_envs_with_ray()
        algo = Algorithm.from_checkpoint(str(trained.checkpoint))
        module = algo.get_module()
        in_process = summarize(run_episodes(module, make_env(TASK), 5, seed=3))
        algo.stop()
    finally:
        ray.shutdown()
    assert from_cli["returns"] == pytest.approx(in_process["returns"], abs=1e-9)
    assert from_cli["return_mean"] >= 0.8


@pytest.mark.slow
def test_record_memory_draws_the_episode(trained, tmp_path):
    directory = tmp_path / "memory"
    cli("evaluate", trained.checkpoint, "--episodes", 1, "--record-memory", directory, "--no-mlflow",
        "--memory-steps", 0, 10, 50, "--cue-steps", 1)
    summary = json.loads((directory / "summary.json").read_text())
    # RepeatFirst reports no phases: --cue-steps 1 (the first card is the cue) gives the retention figure
    assert summary["phases"] is None and summary["retention"]["cue_steps"] == [0, 0]
    for name in ("memory_steps.png", "calibration_steps.png", "vanishing.png", "memory.gif", "retention.png"):
        assert (directory / name).stat().st_size > 1000, name
    image = matplotlib.image.imread(directory / "memory_steps.png")
    assert image.shape[0] > 100 and image.shape[1] > 3 * 100  # three panels side by side
    assert summary["steps"] == [0, 10, 50] and summary["H"] == 32


@pytest.mark.slow
def test_bad_checkpoints_and_envs_fail_before_work(trained, tmp_path):
    done = cli("evaluate", tmp_path, check=False)
    assert done.returncode == 2 and "is not an RLlib checkpoint" in done.stderr

    done = cli("evaluate", trained.checkpoint, "--env", "rllib_shm/CueRecall-D5-v0", "--no-mlflow", check=False)
    assert done.returncode == 2 and "the env does not match the checkpoint: observation space" in done.stderr

    # a checkpoint whose module class cannot be imported (its package is not installed)
    broken = tmp_path / "broken"
    shutil.copytree(trained.checkpoint, broken)
    ctor_file = broken / "learner_group/learner/rl_module/default_policy/class_and_ctor_args.pkl"
    info = pickle.loads(ctor_file.read_bytes())
    payload = pickle.dumps(info).replace(b"rllib_shm.rllib.module", b"missing_pkg.mod.module")  # same length
    ctor_file.write_bytes(payload)
    output = tmp_path / "never.json"
    done = cli("evaluate", broken, "--output", output, "--no-mlflow", check=False)
    assert done.returncode == 2 and "cannot be imported" in done.stderr
    assert not output.exists()


def test_train_rejects_bad_configs_before_writing_anything(tmp_path):
    for override, message in (
        ("module.memory.mem_size=0", "mem_size must be a positive integer, got 0"),
        ("module.max_seq_len=0", "max_seq_len must be a positive integer, got 0"),
        ("module.memory.mem_sise=3", "unknown config key(s) ['module.memory.mem_sise']"),
        ("env.id=rllib_shm/VisualMatsh-L250-v0", "close matches: rllib_shm/VisualMatch-L250-v0"),
    ):
        done = cli("train", "--set", f"run.output_dir={tmp_path / 'out'}", "--set", override, check=False)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert not (tmp_path / "out").exists()


WIND = "rllib_shm/Wind-v0"


@pytest.fixture(scope="module")
def wind(tmp_path_factory):
    """A tiny GRU run on Wind's 50 train tasks (split 50_150), one iteration, logged to MLflow."""
    out = tmp_path_factory.mktemp("wind")
    config = load_config(None, [f"env.id={WIND}", "env.config={split: '50_150', subset: train}",
                                "module.memory.kind=gru", "module.memory.mem_size=8", "module.encoder_hiddens=[8]",
                                "module.memory_output=8", "module.head_hiddens=[8]", "module.max_seq_len=100",
                                "algo.train_batch_size=200", "algo.minibatch_size=200", "algo.num_epochs=1",
                                "algo.num_envs_per_env_runner=2", "run.stop_iters=1", f"run.output_dir={out}",
                                "run.name=wind"])
    return train(config, log=lambda line: None)


@pytest.mark.slow
def test_held_out_evaluation_is_one_command_and_recorded(wind, tmp_path):
    import mlflow

    held_out = tmp_path / "eval.json"
    cli("evaluate", wind.checkpoint, "--env-config", "subset=eval", "--episodes", 8, "--output", held_out)
    payload = json.loads(held_out.read_text())
    assert payload["env_config"] == {"split": "50_150", "subset": "eval"}  # merged over the training config
    assert len(payload["tasks"]) == 8 and all(50 <= task < 200 for task in payload["tasks"])  # held-out pool
    (run,) = mlflow.MlflowClient(wind.tracking_uri).search_runs(
        [mlflow.MlflowClient(wind.tracking_uri).get_run(wind.mlflow_run_id).info.experiment_id],
        "tags.kind = 'evaluation'")
    assert run.data.params["env.config"] == str({"split": "50_150", "subset": "eval"})
    assert run.data.tags["training_run_id"] == wind.mlflow_run_id

    trained_tasks = tmp_path / "train.json"
    cli("evaluate", wind.checkpoint, "--episodes", 8, "--output", trained_tasks, "--no-mlflow")
    assert all(0 <= task < 50 for task in json.loads(trained_tasks.read_text())["tasks"])  # the training pool


@pytest.mark.slow
def test_each_held_out_task_once(wind):
    """``--each-task``: one episode per task of the pool (the 150 held-out tasks, in order), the
    same episodes as a CLI run; refused with --episodes and on an env without a task pool."""
    payload = evaluate(wind.checkpoint, env_config={"subset": "eval"}, each_task=True, use_mlflow=False,
                       log=lambda line: None)
    assert payload["tasks"] == list(range(50, 200)) and payload["episodes"] == 150 and payload["each_task"]
    again = evaluate(wind.checkpoint, env_config={"subset": "eval"}, each_task=True, use_mlflow=False,
                     log=lambda line: None)
    assert again["returns"] == payload["returns"]  # seeded: the same numbers twice
    done = cli("evaluate", wind.checkpoint, "--each-task", "--episodes", 5, "--no-mlflow", check=False)
    assert done.returncode == 2 and "--episodes 5 and --each-task exclude each other" in done.stderr, done.stderr


@pytest.mark.slow
def test_recorded_episodes_replay_the_env_step_by_step(wind, tmp_path):
    """``--record-episodes``: each episode's observations, actions and rewards in a .npz; replaying
    the actions in the env from the same seed and task gives the same observations and rewards."""
    import numpy as np

    from envs.wind import Wind

    recorded = tmp_path / "episodes.npz"
    payload = evaluate(wind.checkpoint, env_config={"subset": "eval"}, episodes=3, seed=5, use_mlflow=False,
                       record_episodes=recorded, log=lambda line: None)
    with np.load(recorded) as data:
        arrays = {key: data[key] for key in data.files}
    assert list(arrays["returns"]) == payload["returns"] and list(arrays["tasks"]) == payload["tasks"]
    env = Wind(split="50_150", subset="eval")
    for index, task in enumerate(payload["tasks"]):
        observations, actions, rewards = (arrays[f"{name}_{index}"] for name in ("observations", "actions", "rewards"))
        assert observations.shape == (101, *env.observation_space.shape) and actions.shape == (100, 2)
        obs, _ = env.reset(seed=5 + index, options={"task": task})
        replayed, got = [obs], []
        for action in actions:
            obs, reward, *_ = env.step(action)
            replayed.append(obs)
            got.append(reward)
        np.testing.assert_array_equal(np.stack(replayed), observations)
        np.testing.assert_array_equal(np.asarray(got), rewards)
    # never over a file, never anything but .npz, checked before any episode runs
    for path, message in ((recorded, "exists"), (tmp_path / "episodes.json", "expected a file name ending in .npz")):
        with pytest.raises(ValueError, match=message):
            evaluate(wind.checkpoint, episodes=1, use_mlflow=False, record_episodes=path, log=lambda line: None)
    done = cli("evaluate", wind.checkpoint, "--episodes", 2, "--no-mlflow", "--record-episodes", tmp_path / "two.npz")
    assert "episodes written to" in done.stdout and np.load(tmp_path / "two.npz")["returns"].shape == (2,)


def test_each_task_needs_a_task_pool():
    from envs.registry import make
    from rllib_shm.runs.evaluation_env import check_episodes, episode_tasks

    env = make("rllib_shm/popgym-RepeatFirstEasy-v0")
    with pytest.raises(ValueError, match="--each-task: rllib_shm/popgym-RepeatFirstEasy-v0 has no task pool"):
        episode_tasks(env, "rllib_shm/popgym-RepeatFirstEasy-v0", None, True)
    assert episode_tasks(env, "x", None, False) == (20, None)
    with pytest.raises(ValueError, match="--episodes must be ≥ 1, got 0"):
        check_episodes(0, False)
    with pytest.raises(ValueError, match="--episodes 5 and --each-task exclude each other"):
        check_episodes(5, True)
    train = make("rllib_shm/Wind-v0", split="50_150", subset="train")
    assert episode_tasks(train, "rllib_shm/Wind-v0", None, True) == (50, list(range(50)))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_config", "message"),
    [
        (["subset=foo"], "--env-config subset=foo: rllib_shm/Wind-v0 refused the env config {'split': '50_150', "
                         "'subset': 'foo'}: subset must be one of ('train', 'eval'), got 'foo'"),
        (["split=60_150"], "--env-config split=60_150: rllib_shm/Wind-v0 refused the env config {'split': '60_150', "
                           "'subset': 'train'}: split '60_150' does not add up"),
        (["colour=red"], "--env-config: rllib_shm/Wind-v0 takes no keyword argument 'colour'; it takes horizon, "
                         "goal_radius, prev_action, num_tasks, task_seed, split, subset, max_step"),
        (["subset"], "--env-config expects KEY=VALUE with KEY a plain name, got 'subset'"),
    ],
)
def test_bad_env_kwargs_are_refused_before_any_episode(wind, tmp_path, env_config, message):
    output = tmp_path / "never.json"
    argv = [arg for item in env_config for arg in ("--env-config", item)]
    done = cli("evaluate", wind.checkpoint, *argv, "--output", output, "--no-mlflow", check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "evaluating" not in done.stdout and not output.exists()


@pytest.mark.slow
def test_the_env_is_closed_when_its_spaces_do_not_fit(wind, monkeypatch):
    from rllib_shm.runs import evaluate as evaluation

    closed = []
    build = evaluation.make_evaluation_env

    def tracked(*args):
        env = build(*args)
        monkeypatch.setattr(env, "close", lambda: closed.append(True))
        return env

    monkeypatch.setattr(evaluation, "make_evaluation_env", tracked)
    with pytest.raises(ValueError, match="the env does not match the checkpoint"):
        evaluation.evaluate(wind.checkpoint, env_id="rllib_shm/CueRecall-D5-v0", use_mlflow=False, log=lambda _: None)
    assert closed == [True]


@pytest.mark.slow
def test_evaluation_counts_the_outcomes_the_env_names(tmp_path, monkeypatch):
    """Key-to-Door names how far each episode got (opened_door / key_unused / no_key): the
    evaluation's JSON counts them, and its MLflow run logs each one's share. The evaluation's run
    always ends: a Ctrl-C while it is logged lands after it (FINISHED, then exit 130), a failure
    marks it FAILED."""
    import signal

    import mlflow

    from rllib_shm.interrupts import Interrupted

    config = load_config(None, ["env.id=rllib_shm/KeyToDoor-L5-v0", "module.memory.kind=gru",
                                "module.memory.mem_size=8", "module.encoder_hiddens=[8]", "module.memory_output=8",
                                "module.head_hiddens=[8]",
                                "module.max_seq_len=18", "algo.train_batch_size=144", "algo.minibatch_size=144",
                                "algo.num_epochs=1", "algo.num_envs_per_env_runner=2", "run.stop_iters=1",
                                f"run.output_dir={tmp_path / 'out'}", "run.name=key-to-door"])
    trained = train(config, log=lambda line: None)
    output = tmp_path / "eval.json"
    cli("evaluate", trained.checkpoint, "--episodes", 12, "--output", output)
    payload = json.loads(output.read_text())
    counts = payload["outcome_counts"]
    assert set(counts) <= {"opened_door", "key_unused", "no_key"} and sum(counts.values()) == 12
    assert [payload["outcomes"].count(name) for name in counts] == list(counts.values())
    assert list(counts.values()) == sorted(counts.values(), reverse=True)  # most frequent first
    assert counts.get("opened_door", 0) / 12 == pytest.approx(payload["success_rate"])
    client = mlflow.MlflowClient(trained.tracking_uri)
    experiment = client.get_run(trained.mlflow_run_id).info.experiment_id
    (run,) = client.search_runs([experiment], "tags.kind = 'evaluation'")
    logged = {key.removeprefix("eval/outcome/"): value for key, value in run.data.metrics.items()
              if key.startswith("eval/outcome/")}
    assert logged == pytest.approx({name: n / 12 for name, n in counts.items()})
    from types import SimpleNamespace

    from rllib_shm.reports.collect import collect_evaluations  # as the report reads them back
    (read,) = collect_evaluations(client, [SimpleNamespace(run_id=trained.mlflow_run_id, params={})], [experiment])
    assert dict(read.outcomes) == pytest.approx({name: n / 12 for name, n in counts.items()})

    log_dict = mlflow.MlflowClient.log_dict

    def ctrl_c_while_logging(self, *args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return log_dict(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "log_dict", ctrl_c_while_logging)
    with pytest.raises(Interrupted):
        evaluate(trained.checkpoint, episodes=2, log=lambda line: None)
    monkeypatch.setattr(mlflow.MlflowClient, "log_dict", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        evaluate(trained.checkpoint, episodes=2, log=lambda line: None)
    runs = client.search_runs([experiment], "tags.kind = 'evaluation'", order_by=["attributes.start_time ASC"])
    assert [run.info.status for run in runs] == ["FINISHED", "FINISHED", "FAILED"]
    assert "evaluation.json" in [f.path for f in client.list_artifacts(runs[1].info.run_id)]  # logged whole
