"""``rllib-shm export``: the acting step in ONNX with the recurrent state explicit, checked against
the torch module with onnxruntime (logits over a 200-step episode, greedy actions, returns), for
every memory kind and both trunk layouts; docs/export.md's onnxruntime loop runs without torch or Ray."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from ray.rllib.core.columns import Columns  # noqa: E402

from rllib_shm.cli import main  # noqa: E402
from rllib_shm.config import load_config  # noqa: E402
from rllib_shm.config.ppo import model_config  # noqa: E402
from rllib_shm.export.policy import acting_module  # noqa: E402
from rllib_shm.export.runtime import OnnxPolicy, run_onnx_episodes  # noqa: E402
from rllib_shm.rllib import make_env  # noqa: E402
from rllib_shm.rllib.module import THETA_COLUMN, MemoryRLModule  # noqa: E402
from rllib_shm.runs.checkpoints import CHECKPOINT_META, load_checkpoint  # noqa: E402
from rllib_shm.runs.episodes import run_episodes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = "rllib_shm/CueRecall-D200-v0"  # 202 steps per episode


def checkpoint(tmp_path, kind, shared=True, env_id=TASK, **extra):
    """A module checkpoint (random weights) with the project's metadata, written without Ray."""
    overrides = [f"env.id={env_id}", f"module.memory.kind={kind}", "module.memory.mem_size=8",
                 "module.memory.num_thetas=16", "module.memory_output=16", "module.encoder_hiddens=[16]",
                 "module.head_hiddens=[16]", f"module.shared_trunk={str(shared).lower()}",
                 *(f"{k}={v}" for k, v in extra.items())]
    config = load_config(None, overrides)
    env = make_env(env_id)
    torch.manual_seed(1)
    module = MemoryRLModule(observation_space=env.observation_space, action_space=env.action_space,
                            model_config=model_config(config))
    directory = tmp_path / f"{kind}-{'shared' if shared else 'separate'}"
    module.save_to_path(str(directory))
    (directory / CHECKPOINT_META).write_text(json.dumps({"config": config.to_dict(), "iteration": 0}))
    return directory


def sac_checkpoint(tmp_path, env_id=TASK, *extra):
    """A SAC module checkpoint (actor, critic, random weights; SHM with random θ), written without Ray."""
    from rllib_shm.config.sac import sac_model_config
    from rllib_shm.rllib.sac_module import MemorySACModule

    config = load_config(None, [f"env.id={env_id}", "algo.name=sac", "module.memory.kind=shm",
                                "module.memory.mem_size=8", "module.memory.num_thetas=16", "module.memory_output=16",
                                "module.encoder_hiddens=[16]", "module.head_hiddens=[16]", *extra])
    env = make_env(env_id)
    torch.manual_seed(1)
    module = MemorySACModule(observation_space=env.observation_space, action_space=env.action_space,
                             model_config=sac_model_config(config))
    directory = tmp_path / "sac"
    module.save_to_path(str(directory))
    (directory / CHECKPOINT_META).write_text(json.dumps({"config": config.to_dict(), "iteration": 0}))
    return directory


def export(directory, output, *extra):
    assert main(["export", str(directory), "--output", str(output), *extra]) == 0
    return OnnxPolicy(output)


@pytest.mark.parametrize("kind", ["shm", "gru", "mlp"])
def test_onnx_matches_torch_over_an_episode(tmp_path, kind):
    directory = checkpoint(tmp_path, kind)
    policy = export(directory, tmp_path / "policy.onnx")
    module = acting_module(load_checkpoint(directory).module, "expected")
    env = make_env(TASK)
    obs, _ = env.reset(seed=0)
    torch_state, onnx_state = module.initial_state(1), policy.initial_state(1)
    worst, steps, done = 0.0, 0, False
    with torch.no_grad():
        while not done:
            out = module.act(torch.as_tensor(obs)[None, None], torch_state)
            logits = out[Columns.ACTION_DIST_INPUTS][0, 0].numpy()
            got = policy.step(obs[None], onnx_state)
            # 1e-5, relative where |logit| > 1: at random init SHM's memory grows to ~1e7 over the
            # episode, where float32's different summation orders differ by ~1e-7 relative
            scale = np.maximum(1.0, np.abs(logits))
            worst = max(worst, float((np.abs(got["action_dist_inputs"][0] - logits) / scale).max()))
            assert int(got["greedy_action"][0]) == int(logits.argmax())
            torch_state, onnx_state = out[Columns.STATE_OUT], got["state"]
            obs, _, terminated, truncated, _ = env.step(int(logits.argmax()))
            steps, done = steps + 1, terminated or truncated
    assert steps == 202 and worst < 1e-5, worst
    # the same seeded episodes give the same returns through evaluate's torch path and onnxruntime
    assert run_onnx_episodes(policy, make_env(TASK), 3, seed=5)["returns"] == \
        run_episodes(module, make_env(TASK), 3, seed=5)["returns"]


@pytest.mark.parametrize(("kind", "shared"), [("shm", False), ("lstm", True), ("lstm", False), ("gru", False)])
def test_every_kind_and_trunk_layout_exports(tmp_path, kind, shared):
    directory = checkpoint(tmp_path, kind, shared=shared)
    policy = export(directory, tmp_path / "policy.onnx")
    names = {entry["name"] for entry in policy.meta["state"]}
    prefixes = [""] if shared else ["pi_", "vf_"]
    cell = {"shm": ["memory"], "lstm": ["h", "c"], "gru": ["h"]}[kind]
    assert names == {p + key for p in prefixes for key in ["step", *cell]}
    out = policy.step(np.zeros((5, 3), np.float32), policy.initial_state(5))  # a dynamic batch of 5
    assert out["action_dist_inputs"].shape == (5, 2) and out["value"].shape == (5,)
    assert all(out["state"][name].shape[0] == 5 for name in names)
    assert out["state"][prefixes[0] + "step"].tolist() == [[1.0]] * 5


def test_theta_sample_takes_the_rows_as_input_and_replays(tmp_path):
    directory = checkpoint(tmp_path, "shm", shared=False)
    policy = export(directory, tmp_path / "policy.onnx", "--theta", "sample")
    assert [t["name"] for t in policy.meta["theta"]["inputs"]] == ["pi_" + THETA_COLUMN, "vf_" + THETA_COLUMN]
    module = acting_module(load_checkpoint(directory).module, "sample")
    rng = np.random.default_rng(0)
    env = make_env(TASK)
    obs, _ = env.reset(seed=0)
    torch_state, onnx_state = module.initial_state(1), policy.initial_state(1)
    with torch.no_grad():
        for _ in range(50):
            thetas = policy.draw_thetas(rng)
            replay = {name: torch.as_tensor(index)[:, None] for name, index in thetas.items()}
            out = module.act(torch.as_tensor(obs)[None, None], torch_state, replay=replay)
            got = policy.step(obs[None], onnx_state, thetas)
            np.testing.assert_allclose(got["action_dist_inputs"][0], out[Columns.ACTION_DIST_INPUTS][0, 0].numpy(),
                                       atol=1e-5)
            torch_state, onnx_state = out[Columns.STATE_OUT], got["state"]
            obs, *_ = env.step(int(got["greedy_action"][0]))
    with pytest.raises(ValueError, match="exported with --theta sample"):
        policy.step(obs[None], onnx_state)


@pytest.mark.parametrize("algorithm", ["ppo", "sac", "sac-stored"])
def test_every_exported_output_is_finite_and_sac_has_no_value(tmp_path, algorithm):
    """PPO's ``value`` is V(h), finite over an episode; a SAC policy (the actor) exports no ``value``
    (it has no V(h)) and says so in the sidecar, instead of a NaN; ``evaluate policy.onnx`` runs it.
    With stored chunk start states the critic trunk acts in training; the export is the actor alone."""
    stored = ["algo.sac.replay=chunks", "algo.sac.chunk_start_state=stored", "algo.sac.chunk_length=8",
              "algo.sac.burn_in=8", "module.max_seq_len=16"]
    directory = checkpoint(tmp_path, "shm") if algorithm == "ppo" else \
        sac_checkpoint(tmp_path, TASK, *(stored if algorithm == "sac-stored" else []))
    policy = export(directory, tmp_path / "policy.onnx")
    module = acting_module(load_checkpoint(directory).module, "expected")
    names = [entry["name"] for entry in policy.meta["outputs"]]
    assert ("value" in names) == (algorithm == "ppo")
    assert policy.meta["value"].startswith("V(h)" if algorithm == "ppo" else "none: a SAC policy")
    assert policy.meta["shared_trunk"] == (algorithm == "ppo")
    assert {entry["name"] for entry in policy.meta["state"]} == {"step", "memory"}  # one trunk: PPO's or the actor
    env = make_env(TASK)
    obs, _ = env.reset(seed=0)
    state, steps, done = policy.initial_state(1), 0, False
    while not done:
        out = policy.step(obs[None], state)
        for name, value in [*out.items(), *out["state"].items()]:
            if name != "state":
                assert np.all(np.isfinite(np.asarray(value, np.float64))), (name, steps)
        state = out["state"]
        obs, _, terminated, truncated, _ = env.step(int(out["greedy_action"][0]))
        steps, done = steps + 1, terminated or truncated
    assert steps == 202
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "policy.onnx"), "--episodes", "2", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["returns"] == run_episodes(module, make_env(TASK), 2, seed=0)["returns"]


def test_box_actions_are_unsquashed_like_evaluate(tmp_path):
    directory = checkpoint(tmp_path, "gru", env_id="rllib_shm/PointRobot-v0")
    policy = export(directory, tmp_path / "policy.onnx")
    module = acting_module(load_checkpoint(directory).module, "expected")
    env = make_env("rllib_shm/PointRobot-v0")
    assert run_onnx_episodes(policy, env, 1, seed=2)["returns"] == pytest.approx(
        run_episodes(module, make_env("rllib_shm/PointRobot-v0"), 1, seed=2)["returns"], abs=1e-4)


def test_cli_evaluates_the_onnx_policy_and_refuses_bad_exports(tmp_path, capsys):
    directory = checkpoint(tmp_path, "shm")
    export(directory, tmp_path / "policy.onnx")
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "policy.onnx"), "--episodes", "2", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["episodes"] == 2
    capsys.readouterr()
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, message in (
        (["export", str(directory), "--output", str(tmp_path / "policy.onnx")], "exists; results are never"),
        (["export", str(directory), "--output", str(tmp_path / "p.pt")], "must end in .onnx"),
        (["export", str(directory), "--output", str(tmp_path / "missing" / "p.onnx")], "does not exist"),
        (["export", str(tmp_path), "--output", str(tmp_path / "q.onnx")], "is not an RLlib checkpoint"),
        (["evaluate", str(tmp_path / "policy.onnx"), "--record-memory", str(tmp_path / "m")], "not available"),
        (["evaluate", str(tmp_path / "policy.onnx"), "--env", "rllib_shm/VisualMatch-L5-v0"],
         "the env does not match the exported policy: observation_space"),
        (["evaluate", str(tmp_path / "policy.onnx"), "--output", str(tmp_path / "no" / "e.json")], "does not exist"),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    sidecar = json.loads((tmp_path / "policy.json").read_text())
    (tmp_path / "policy.json").write_text(json.dumps({**sidecar, "format": "something else"}))
    assert main(["evaluate", str(tmp_path / "policy.onnx")]) == 2
    assert "is not a 'rllib-shm onnx policy 1' sidecar" in capsys.readouterr().err


def test_onnx_evaluation_takes_the_env_kwargs_over_the_exported_config(tmp_path, capsys):
    """``--env-config subset=eval`` on a policy trained on Wind's train tasks: held-out tasks only,
    the env config recorded; a bad value is refused before any episode."""
    directory = checkpoint(tmp_path, "gru", env_id="rllib_shm/Wind-v0", **{"env.config.split": "50_150"})
    export(directory, tmp_path / "policy.onnx")
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "policy.onnx"), "--episodes", "4", "--env-config", "subset=eval",
                 "--output", str(report)]) == 0
    payload = json.loads(report.read_text())
    assert payload["env_config"] == {"split": "50_150", "subset": "eval"}
    assert len(payload["tasks"]) == 4 and all(50 <= task < 200 for task in payload["tasks"])
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "policy.onnx"), "--env-config", "subset=foo"]) == 2
    assert "subset must be one of ('train', 'eval'), got 'foo'" in capsys.readouterr().err
    each = tmp_path / "each.json"  # every held-out task exactly once, in pool order
    assert main(["evaluate", str(tmp_path / "policy.onnx"), "--env-config", "subset=eval", "--each-task",
                 "--output", str(each)]) == 0
    payload = json.loads(each.read_text())
    assert payload["tasks"] == list(range(50, 200)) and payload["episodes"] == 150 and payload["each_task"]


def test_docs_example_runs_without_torch_or_ray(tmp_path):
    """docs/export.md's onnxruntime loop (the block after ``<!-- onnx-example -->``) on a real export."""
    directory = checkpoint(tmp_path, "shm")
    export(directory, tmp_path / "policy.onnx")
    page = (ROOT / "docs" / "export.md").read_text()
    code = re.search(r"<!-- onnx-example -->\n```python\n(.*?)```", page, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 14
    check = "\nimport sys\nassert 'torch' not in sys.modules and 'ray' not in sys.modules, 'torch or ray imported'\n"
    done = subprocess.run([sys.executable, "-c", code + check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    module = acting_module(load_checkpoint(directory).module, "expected")
    expected = run_episodes(module, make_env(TASK), 1, seed=0)["returns"][0]
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(expected)


def test_bench_onnx_reports_size_and_latency(tmp_path):
    output = tmp_path / "onnx.json"
    assert main(["bench", "onnx", "--size", "8", "--steps", "20", "--theta", "sample", "--output", str(output)]) == 0
    row = json.loads(output.read_text())
    assert row["model_bytes"] > 1000 and row["torch_ms_per_step"] > 0 and row["onnxruntime_ms_per_step"] > 0
    assert row["theta"] == "sample" and row["H"] == 8


def test_a_study_trials_checkpoint_directory_loads_without_naming_its_algo_subdirectory(tmp_path):
    """`rllib-shm tune` saves `<trial>/checkpoint_<n>/algo`; the help of evaluate and export names
    `checkpoint_<n>[/algo]`, so both paths load the same module and config."""
    source = checkpoint(tmp_path, "gru")
    trial_checkpoint = tmp_path / "study" / "trial_ab12" / "checkpoint_000003"
    trial_checkpoint.mkdir(parents=True)
    source.rename(trial_checkpoint / "algo")
    (trial_checkpoint / "progress.json").write_text("{}")
    outer, inner = load_checkpoint(trial_checkpoint), load_checkpoint(trial_checkpoint / "algo")
    assert outer.config == inner.config and outer.path.name == "algo"
    for a, b in zip(outer.module.state_dict().values(), inner.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="is not an RLlib checkpoint"):
        load_checkpoint(trial_checkpoint.parent)
