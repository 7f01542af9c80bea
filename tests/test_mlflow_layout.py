"""What a run looks like in MLflow (docs/comparing-runs.md): its name says what varies, each
parameter is logged once under its config path, metrics are at step = env steps with the
iteration as a metric; runs logged in the older layout (``lr``, ``searched.*``, step = iteration)
read the same in reports; the printed URL opens MLflow's model-training view; `rllib-shm ui`."""

from __future__ import annotations

import mlflow
import pytest

from rllib_shm.cli.main import main
from rllib_shm.reports.collect import _record, with_metrics
from rllib_shm.studies.search_space import split_search_space, trial_config
from rllib_shm.tracking import SEARCHED_TAG, curated_params, log_metrics, log_params
from rllib_shm.tracking.run_names import run_name
from rllib_shm.tracking.ui import runs_url, where_to_look

STUDY = {"env": {"id": "rllib_shm/popgym-RepeatFirstEasy-v0"},
         "module": {"memory": {"choice": [{"kind": "shm", "mem_size": 32}, {"kind": "gru", "mem_size": 64}]}},
         "algo": {"lr": {"choice": [1.0e-3, 2.0e-3]}},
         "run": {"seed": {"choice": [0, 1]}}}


def test_a_trial_is_named_by_what_varies_and_logs_each_parameter_once():
    base, space = split_search_space(STUDY)
    values = {"module.memory": {"kind": "gru", "mem_size": 64}, "algo.lr": 2e-3, "run.seed": 1}
    config = trial_config(base, values)
    assert run_name(config, values) == "gru-H64 lr=2e-3 s1"
    # a study's variant that names its memory stands for it (the memory-length studies' runs)
    variant = {"env.id": "rllib_shm/popgym-RepeatFirstEasy-v0", "variant": "gru-64", "run.seed": 1}
    assert run_name(config, variant) == "RepeatFirstEasy gru-64 s1"
    assert run_name(config, {**variant, "variant": "baseline"}) == "RepeatFirstEasy gru-H64 baseline s1"
    # sizes count only as whole numbers: "gru-640" does not say a GRU of 64
    assert run_name(config, {**variant, "variant": "gru-640"}) == "RepeatFirstEasy gru-H64 gru-640 s1"
    params = curated_params(config, values)
    assert params["algo.lr"] == 2e-3 and params["module.memory.kind"] == "gru" and params["run.seed"] == 1
    assert not [key for key in params if key in ("lr", "memory", "memory.H", "seed") or key.startswith("searched.")]
    shm = curated_params(trial_config(base, {**values, "module.memory": {"kind": "shm", "mem_size": 32}}), values)
    assert shm["module.memory.theta_mode"] == "random" and "module.memory.theta_mode" not in params
    assert (shm["module.memory.key_query"], shm["module.memory.recency"]) == ("relu", 0)  # the paper's form, logged


@pytest.mark.parametrize("layout", ["today", "legacy"])
def test_report_reads_both_layouts_alike(tmp_path, layout):
    """Today: params by config path, step = env steps, ``iteration`` metric. Legacy (runs logged
    before): ``lr`` / ``memory.H`` / ``searched.*`` params, step = iteration. A resumed trial logged
    iteration 2 twice; the later value counts in both."""
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("x")
    _, space = split_search_space(STUDY)
    values = {"module.memory": {"kind": "gru", "mem_size": 64}, "algo.lr": 2e-3, "run.seed": 1}
    config = trial_config(split_search_space(STUDY)[0], values)
    if layout == "today":
        run = client.create_run(experiment, tags={SEARCHED_TAG: ",".join(values)}).info.run_id
        log_params(client, run, curated_params(config, values))
    else:
        run = client.create_run(experiment).info.run_id
        log_params(client, run, {"env": config.env.id, "memory": "gru", "memory.H": 64, "lr": 2e-3, "seed": 1,
                                 "searched.module.memory": 1, "searched.algo.lr": 2e-3, "searched.run.seed": 1})
    logged = [(1, 2000, -0.5), (2, 4000, 0.1), (2, 4000, 0.3), (3, 6000, 0.7)]  # iteration 2 again on resume
    for number, (iteration, steps, value) in enumerate(logged):
        metrics = {"episode_return_mean": value, "env_steps": steps, "episode_return_max_mean": max(value, 0.3)}
        if layout == "today":
            log_metrics(client, run, {**metrics, "iteration": iteration}, step=steps)
        else:
            log_metrics(client, run, metrics, step=iteration)
        if number == 1:
            import time

            time.sleep(0.01)  # the resumed trial logs later
    record = with_metrics(client, _record(client.get_run(run), space))
    assert record.params["algo.lr"] == "0.002" and record.params["module.memory.mem_size"] == "64"
    assert record.task == config.env.id and record.seed == "1"
    assert record.searched == {"module.memory": {"kind": "gru", "mem_size": 64}, "algo.lr": 2e-3, "run.seed": 1}
    assert record.history.iterations == (1, 2, 3) and record.history.env_steps == (2000, 4000, 6000)
    assert record.history.returns == (-0.5, 0.3, 0.7) and record.mmer == 0.7
    steps = [m.step for m in client.get_metric_history(run, "episode_return_mean")]
    assert steps == ([2000, 4000, 4000, 6000] if layout == "today" else [1, 2, 2, 3])


def test_a_critic_memory_comparison_names_the_actor_and_the_critic():
    # the paper's meta-RL arms differ only in the critic's memory (the actors are GRUs alike)
    from pathlib import Path

    from rllib_shm.studies.study import load_study

    study = load_study(Path(__file__).parents[1] / "tune_configs" / "point_robot_meta_sac_scaled.yaml")
    names = {run_name(trial_config(study.base, values), values)
             for values in ({"variant": arm, "run.seed": 1} for arm in ("shm", "gru"))}
    assert names == {"gru-H128 critic-shm-H24 s1", "gru-H128 critic-gru-H128 s1"}
    values = {"variant": "shm", "run.seed": 1}
    config = trial_config(study.base, values)
    # a variant that says more than the critic's kind stays in the name
    assert run_name(config, {**values, "variant": "shm-fixed"}) == "gru-H128 critic-shm-H24 shm-fixed s1"
    assert run_name(config, {**values, "variant": "SHM-24"}) == "gru-H128 critic-shm-H24 s1"
    # SAC with the actor's memory in the critic, and PPO, are named as before
    from rllib_shm.config import ExperimentConfig

    sacd = ExperimentConfig.from_dict({"module": {"memory": {"kind": "gru", "mem_size": 64}}, "algo": {"name": "sac"}})
    assert run_name(sacd, {"variant": "gru-64"}) == "gru-64 s0"
    assert run_name(sacd, {"variant": "gru"}) == "gru-H64 gru s0"


def test_the_printed_url_opens_the_model_training_view_and_ui_prints_it(tmp_path, capsys):
    url = runs_url("http://127.0.0.1:5000", "7")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/7/runs?") and "workflowType=machine_learning" in url
    store = tmp_path / "tune" / "mlflow.db"
    text = where_to_look(f"sqlite:///{store}", "7", "the trials of study s")
    assert text == f"compare the trials of study s in MLflow: {url}\n  (serve it first: rllib-shm ui {store})"
    assert where_to_look("http://mlflow.internal:5000", "7", "x").endswith(
        "http://mlflow.internal:5000/#/experiments/7/runs?workflowType=machine_learning&compareRunsMode=CHART")

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    first = client.create_experiment("study_a")
    assert main(["ui", str(tmp_path / "tune"), "--print-only", "--port", "5123"]) == 0
    out = capsys.readouterr().out
    assert f"  study_a: {runs_url('http://127.0.0.1:5123', first)}" in out.splitlines()


@pytest.mark.parametrize(("name", "memory", "says"), [
    ("shm-H64-fixed", ("shm", 64), True),
    ("FFM_32×8", ("ffm", 32, 8), True),
    ("ffm-32x8", ("ffm", 32, 8), True),
    ("rllib-lstm-256", ("lstm", 256), True),
    ("gru", ("gru", 256), False),           # no size
    ("gru-128", ("gru", 12), False),        # 12 is only part of 128
    ("ffm-32x16", ("ffm", 32, 1), False),   # a context of 1 is not spelled
    ("ffm-32", ("ffm", 32, 8), False),      # an FFM's context is part of its memory
    ("gru-64", ("shm", 64), False),         # another kind
])
def test_a_variant_says_its_memory_by_kind_and_whole_numbers(name, memory, says):
    from rllib_shm.tracking.run_names import says_memory
    assert says_memory(name, *memory) is says
